"""The model manager: the checkpoints the high-quality engines need, where they live, and
pulling, verifying and removing them (`limner models list | pull | verify | remove`).

A model is found, in this order, in `$LIMNER_MODELS_DIR/<name>` (a folder a user can
fill by hand when the hub is blocked) or in the Hugging Face cache, where `pull` puts it
(the standard cache, HF_HUB_OFFLINE honoured; files finished before a cancel are kept, a
file cut off is fetched again: huggingface_hub 2 keeps no partial file over plain HTTP,
while the Hub's Xet storage reuses the chunks it already has). Nothing here runs at
import time, and nothing is downloaded except by `pull`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from . import launcher, protocol
from .protocol import ProtocolError

#: the models serve the diffusion engines, whose packages (torch, diffusers, the hub's
#: client, …) are an extra of the install: what adds them, run in the Limner folder
DIFFUSION_SETUP = (f"{launcher.setup_command('with-diffusion', 'linux')} (Windows: "
                   f"{launcher.setup_command('with-diffusion', 'windows')})")


def _hub():
    """huggingface_hub, or the error that says how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise ProtocolError(protocol.E_MODEL_MISSING, "downloading models needs the diffusion "
                            f"engines' packages, which are not installed; add them with: "
                            f"{DIFFUSION_SETUP}") from None
    return huggingface_hub


@dataclass(frozen=True)
class ModelInfo:
    name: str
    repo: str
    size_mb: int                       # download size of the files pulled
    licence: str
    description: str
    allow_patterns: tuple[str, ...] = ("*.json", "*.txt", "*.safetensors")
    revision: str = "main"


_DIFFUSERS_FP16 = ("model_index.json", "*/config.json", "*/*.json", "*/*.txt",
                   "*/*.fp16.safetensors")

MODELS = {m.name: m for m in [
    ModelInfo("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", 2130,
              "CreativeML OpenRAIL-M",
              "Stable Diffusion 1.5 (fp16): img2img for the diffusion style engine",
              _DIFFUSERS_FP16),
    ModelInfo("sd15-inpaint", "stable-diffusion-v1-5/stable-diffusion-inpainting", 2130,
              "CreativeML OpenRAIL-M",
              "Stable Diffusion 1.5 inpainting (fp16): diffusion style within a selection",
              _DIFFUSERS_FP16),
    ModelInfo("controlnet-lineart", "lllyasviel/control_v11p_sd15_lineart", 723,
              "CreativeML OpenRAIL-M",
              "ControlNet 1.1 lineart (fp16): keeps the photo's lines under the diffusion style",
              ("config.json", "diffusion_pytorch_model.fp16.safetensors")),
    ModelInfo("lcm-lora-sd15", "latent-consistency/lcm-lora-sdv1-5", 135, "OpenRAIL++",
              "LCM-LoRA for SD 1.5: the diffusion style's few-step mode",
              ("pytorch_lora_weights.safetensors",)),
    # its code runs as transformers remote code, so the revision is pinned, not "main"
    ModelInfo("birefnet-matting", "ZhengPeng7/BiRefNet-matting", 885, "MIT",
              "BiRefNet matting (Swin-L, 1024 px, soft alpha for "
              "hair); its model code comes with it", ("config.json", "*.py", "model.safetensors"),
              revision="eccde0a8cbdce7ac5fecfeb06340fe7b949e85d9"),
    ModelInfo("ic-light-fc", "lllyasviel/ic-light", 1720, "Apache-2.0",
              "IC-Light foreground-conditioned offsets for SD 1.5 "
              "(needs sd15 too)", ("iclight_sd15_fc.safetensors",)),
    ModelInfo("ic-light-fbc", "lllyasviel/ic-light", 1720, "Apache-2.0",
              "IC-Light background-conditioned offsets: relights "
              "the subject to match a generated background (needs sd15 too)",
              ("iclight_sd15_fbc.safetensors",)),
]}


def models_dir() -> Path | None:
    value = os.environ.get("LIMNER_MODELS_DIR")
    return Path(value) if value else None


def local_path(name: str) -> Path | None:
    """Where the model's files are on this machine, or None."""
    info = MODELS[name]
    manual = models_dir()
    if manual is not None and (manual / name).is_dir():
        return manual / name
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(info.repo, revision=info.revision,
                                      allow_patterns=list(info.allow_patterns),
                                      local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the cache (or the hub library is absent)
        return None
    return path if _has_weights(path, info) else None


def _has_weights(path: Path, info: ModelInfo) -> bool:
    """Whether the model's own weight files are in a snapshot (two models can share a
    repository, and a snapshot holds what either pulled)."""
    weights = [p for p in info.allow_patterns if p.endswith(".safetensors")]
    files = [f.relative_to(path).as_posix() for f in path.rglob("*.safetensors")]
    return any(fnmatch(f, p) for f in files for p in weights)


def sharing_repository(name: str) -> list[str]:
    """The other models pulled from the same repository (removing one removes them)."""
    repo = MODELS[name].repo
    return [m.name for m in MODELS.values() if m.repo == repo and m.name != name]


def require(name: str) -> Path:
    """The model's folder, or the error that tells the user how to get it."""
    path = local_path(name)
    if path is None:
        info = MODELS[name]
        where = f" or place its files in {models_dir() / name}" if models_dir() else ""
        raise ProtocolError(protocol.E_MODEL_MISSING,
                            f"the model {name} ({info.description}, {info.size_mb} MB, "
                            f"{info.licence}) is not on this machine; download it with: "
                            f"limner models pull {name}{where}")
    return path


def describe_all(using: Callable[[str], list[str]]) -> list[dict]:
    """Every model as the capabilities show it: what it is, its cost, whether it is here,
    and the engines that use it (`using`: engines.using, which knows them)."""
    return [{"name": m.name, "size_mb": m.size_mb, "licence": m.licence,
             "engines": using(m.name), "description": m.description,
             "present": local_path(m.name) is not None} for m in MODELS.values()]


def pull(name: str, on_bytes: Callable[[int, int], None] | None = None) -> Path:
    """Download (or finish downloading) a model into the Hugging Face cache. Without
    `on_bytes` the hub's own progress bars go to the terminal; with it, on_bytes(done,
    total) is called as bytes arrive, about every megabyte, and may raise to stop the
    download (finished files are kept for the next pull)."""
    _hub()
    from huggingface_hub import constants, snapshot_download

    info = MODELS[name]
    extra = {}
    if on_bytes:
        # the library reads 10 MB between progress updates: a cancel would wait that long
        constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, 1 << 20)
        extra["tqdm_class"] = _reporting_bars(on_bytes)
    return Path(snapshot_download(info.repo, revision=info.revision,
                                  allow_patterns=list(info.allow_patterns), **extra))


def _reporting_bars(on_bytes: Callable[[int, int], None]):
    """A silent tqdm class for snapshot_download whose byte bars (network and disk, each
    over every file) report the furthest of them to on_bytes."""
    import io

    from tqdm import tqdm

    byte_bars: list = []

    class Reporting(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "file": io.StringIO(), "mininterval": 0})
            if self.unit == "B":
                byte_bars.append(self)

        def update(self, n=1):
            shown = super().update(n)
            if self.unit == "B":
                on_bytes(int(max(b.n for b in byte_bars)),
                         int(max(b.total or 0 for b in byte_bars)))
            return shown

    return Reporting


def verify(name: str) -> list[str]:
    """Problems with a model's local files (empty when it is complete)."""
    path = local_path(name)
    if path is None:
        return ["not downloaded"]
    problems = []
    files = [p for p in path.rglob("*") if p.is_file()]
    if not any(p.suffix == ".safetensors" for p in files):
        problems.append("no weights (.safetensors) found")
    problems += [f"empty file {p.relative_to(path)}" for p in files if p.stat().st_size == 0]
    return problems


def remove(name: str) -> int:
    """Delete a model's repository from the Hugging Face cache (with any model that
    shares it: `sharing_repository`); returns the bytes freed."""
    cache = _hub().scan_cache_dir()
    revisions = [rev.commit_hash for repo in cache.repos if repo.repo_id == MODELS[name].repo
                 for rev in repo.revisions]
    if not revisions:
        return 0
    strategy = cache.delete_revisions(*revisions)
    strategy.execute()
    return strategy.expected_freed_size
