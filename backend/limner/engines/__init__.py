"""The engine registry: every model the operations can use, by kind ("matting", …).

Operations ask for an engine by kind and name; the registry loads it once, on first use,
in the worker that owns the models, checks it against its kind's contract
(engines/contracts.py) and keeps it. Each engine names the weights it needs: inside an
installed package (`find_weights`) or from the model manager (`models`); its availability,
and which engines each model serves, follow from that alone.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .. import models, protocol
from ..protocol import ProtocolError
from . import contracts


@dataclass(frozen=True)
class EngineInfo:
    kind: str
    name: str
    label: str
    licence: str                      # the licence of the weights (and code) it runs
    weights: str                      # where the weights come from, for people
    load: Callable[[], object]        # builds the engine
    install_hint: str                 # what to run when the weights are missing
    #: weights inside an installed package: their path, or None when not installed
    find_weights: Callable[[], object] | None = None
    #: model-manager models it needs: each a name, or a tuple of names of which one will do
    models: tuple[str | tuple[str, ...], ...] = ()
    extras: tuple[str, ...] = ()      # model-manager models it uses when they are present
    #: Python packages it needs beyond the default install (the diffusion extra's)
    packages: tuple[str, ...] = ()
    is_default: bool = False

    def model_names(self) -> list[str]:
        """Every model-manager model it can use."""
        needed = [n for group in self.models for n in ((group,) if isinstance(group, str)
                                                       else group)]
        return needed + list(self.extras)

    def missing_packages(self) -> list[str]:
        return [name for name in self.packages if importlib.util.find_spec(name) is None]

    def setup_hint(self) -> str | None:
        """What installs the packages it lacks (None when none is missing)."""
        return models.DIFFUSION_SETUP if self.missing_packages() else None

    def available(self) -> bool:
        if self.missing_packages():
            return False
        if self.find_weights is not None and self.find_weights() is None:
            return False
        return all(any(models.local_path(n) for n in ((group,) if isinstance(group, str)
                                                      else group))
                   for group in self.models)

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "label": self.label,
                "licence": self.licence, "weights": self.weights,
                "models": self.model_names(), "available": self.available(),
                "setup": self.setup_hint(), "default": self.is_default}


#: the packages of the diffusion extra (models.DIFFUSION_SETUP adds them) the engines import
DIFFUSION_PACKAGES = ("torch", "diffusers", "transformers", "safetensors", "huggingface_hub")

_ENGINES: dict[str, dict[str, EngineInfo]] = {}
_LOADED: dict[tuple[str, str], object] = {}
_LOCK = threading.Lock()


def package_file(package: str, *parts: str) -> str | None:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], *parts)
    return path if os.path.isfile(path) else None


def register(info: EngineInfo) -> None:
    """Add an engine (or replace the one of that kind and name)."""
    if info.kind not in contracts.BY_KIND:
        raise ValueError(f"unknown engine kind {info.kind}")
    _ENGINES.setdefault(info.kind, {})[info.name] = info


def of_kind(kind: str) -> list[EngineInfo]:
    return list(_ENGINES.get(kind, {}).values())


def default(kind: str) -> str:
    engines = of_kind(kind)
    return next((e.name for e in engines if e.is_default), engines[0].name)


def get_info(kind: str, name: str) -> EngineInfo:
    return _ENGINES[kind][name]


def require_packages(kind: str, name: str) -> None:
    """Nothing, or the error that says how to install the packages an engine lacks."""
    info = _ENGINES[kind][name]
    if info.missing_packages():
        raise ProtocolError(protocol.E_MODEL_MISSING,
                            f"the {name} {kind} engine needs the diffusion engines' packages "
                            f"({', '.join(info.missing_packages())}), which are not "
                            f"installed; add them with: {models.DIFFUSION_SETUP}; then get "
                            f"its weights with: {info.install_hint}")


def get(kind: str, name: str):
    """The loaded engine, loading it on first use; it offers its kind's contract."""
    info = _ENGINES[kind][name]
    with _LOCK:
        if (kind, name) not in _LOADED:
            require_packages(kind, name)
            if not info.available():
                raise ProtocolError(protocol.E_MODEL_MISSING,
                                    f"the {name} {kind} engine's weights are not installed; "
                                    f"install them with: {info.install_hint}")
            engine = info.load()
            mediapipe_imported()       # loads run deep in a job: see there
            lacking = contracts.missing(engine, kind)
            if lacking:
                raise TypeError(f"the {name} {kind} engine lacks {', '.join(lacking)}")
            _LOADED[(kind, name)] = engine
        return _LOADED[(kind, name)]


def unload(kind: str | None = None, name: str | None = None) -> None:
    """Forget loaded engines (all, those of a kind, or one), so that the next use looks
    for their weights again (after weights were pulled, removed or replaced) and their
    memory goes (an idle backend); an engine with a `close()` (mediapipe's graphs, which
    a callback of their own keeps alive otherwise) is closed."""
    with _LOCK:
        for key in [k for k in _LOADED if kind in (None, k[0]) and name in (None, k[1])]:
            engine = _LOADED.pop(key)
            if hasattr(engine, "close"):
                engine.close()


def mediapipe_imported() -> None:
    """After an engine loads (mediapipe is imported by the first that needs it, deep in a
    job's stack): mediapipe keeps the ImportError of an optional audio
    package (sounddevice) in a module global, and that error's traceback holds every
    frame on the stack of the job that first imported it, so the whole layer's arrays
    stayed in memory for the life of the backend (400-900 MB at 2048 px). The traceback
    is let go."""
    module = sys.modules.get("mediapipe.tasks.python.audio.core.audio_record")
    error = getattr(module, "sd_error", None)
    if error is not None:
        error.__traceback__ = None


def loaded() -> list[str]:
    """The engines in memory now ("kind/name")."""
    with _LOCK:
        return sorted(f"{kind}/{name}" for kind, name in _LOADED)


def using(model: str) -> list[str]:
    """The engines ("kind/name") that use a model-manager model."""
    return [f"{e.kind}/{e.name}" for kind in _ENGINES.values() for e in kind.values()
            if model in e.model_names()]


def describe_all() -> dict:
    return {kind: [e.describe() for e in engines.values()] for kind, engines in _ENGINES.items()}


from . import diffusion, face, iclight, matting, relight, style  # noqa: E402, F401  (they register themselves)
