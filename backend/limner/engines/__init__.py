"""The engine registry: every model the operations can use, by kind ("matting", …).

Operations ask for an engine by kind and name; the registry loads it once, on first use,
in the worker that owns the models, and keeps it. Later engines (BiRefNet, diffusion)
register here without any change to the server or the operations' callers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .. import protocol
from ..protocol import ProtocolError


@dataclass(frozen=True)
class EngineInfo:
    kind: str
    name: str
    label: str
    licence: str                      # the licence of the weights (and code) it runs
    weights: str                      # where the weights come from, for people
    load: Callable[[], object]        # builds the engine; raises ModelMissing if absent
    find_weights: Callable[[], object]  # the weights' path, or None when not installed
    install_hint: str                 # what to run when the weights are missing
    is_default: bool = False

    def available(self) -> bool:
        return self.find_weights() is not None

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "label": self.label,
                "licence": self.licence, "weights": self.weights,
                "available": self.available(), "default": self.is_default}


_ENGINES: dict[str, dict[str, EngineInfo]] = {}
_LOADED: dict[tuple[str, str], object] = {}
_LOCK = threading.Lock()


def register(info: EngineInfo) -> None:
    _ENGINES.setdefault(info.kind, {})[info.name] = info


def of_kind(kind: str) -> list[EngineInfo]:
    return list(_ENGINES.get(kind, {}).values())


def default(kind: str) -> str:
    engines = of_kind(kind)
    return next((e.name for e in engines if e.is_default), engines[0].name)


def get_info(kind: str, name: str) -> EngineInfo:
    return _ENGINES[kind][name]


def get(kind: str, name: str):
    """The loaded engine, loading it on first use."""
    info = _ENGINES[kind][name]
    with _LOCK:
        if (kind, name) not in _LOADED:
            if not info.available():
                raise ProtocolError(protocol.E_MODEL_MISSING,
                                    f"the {name} {kind} engine's weights are not installed; "
                                    f"install them with: {info.install_hint}")
            _LOADED[(kind, name)] = info.load()
        return _LOADED[(kind, name)]


def describe_all() -> dict:
    return {kind: [e.describe() for e in engines.values()] for kind, engines in _ENGINES.items()}


from . import diffusion, face, iclight, matting, relight, style  # noqa: F401  (they register themselves)
