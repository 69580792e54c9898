"""Device and memory policy for the torch engines, in one place: which device and
precision, memory savers for large layers, and a small cache of loaded pipelines that is
emptied when the device runs out of memory."""

from __future__ import annotations

import gc
import os
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager

from . import protocol
from .protocol import ProtocolError


def pick():
    """(torch device, dtype): CUDA in fp16 (bf16 where supported), Apple MPS in fp16,
    else the CPU in fp32. LIMNER_DEVICE=cpu|cuda|mps overrides the choice."""
    import torch

    wanted = os.environ.get("LIMNER_DEVICE")
    if wanted == "cuda" or (wanted is None and torch.cuda.is_available()):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.device("cuda"), dtype
    if wanted == "mps" or (wanted is None and torch.backends.mps.is_available()):
        return torch.device("mps"), torch.float16
    return torch.device("cpu"), torch.float32


def save_memory(pipe, side: int) -> None:
    """Attention slicing and VAE tiling for layers above the model's native size."""
    if side > 768 and hasattr(pipe, "enable_attention_slicing"):
        pipe.enable_attention_slicing()
    if side > 1024 and hasattr(pipe, "vae"):
        pipe.vae.enable_tiling()


def is_out_of_memory(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower()


@contextmanager
def out_of_memory_as_error(cache: PipelineCache, what: str):
    """Running out of device memory empties the pipeline cache and becomes an error the
    user can act on, instead of a crash."""
    try:
        yield
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        cache.clear()
        raise ProtocolError(protocol.E_OPERATION_FAILED,
                            f"out of device memory for {what}; work on a smaller selection "
                            "or close other programs that use the GPU") from None


def step_callback(progress, runs: int, start: float, end: float):
    """A diffusers step-end callback that reports each denoising step as progress (a
    cancelled job raises out of it, so a cancel stops within one step)."""
    def on_step(_pipe, index, _timestep, tensors):
        progress(start + (end - start) * (index + 1) / runs, f"step {index + 1}/{runs}")
        return tensors

    return on_step


class PipelineCache:
    """The most recently used pipelines, at most `size`; all dropped on demand (memory)."""

    def __init__(self, size: int = 2):
        self.size = size
        self._items: OrderedDict[str, object] = OrderedDict()

    def get(self, key: str, load: Callable[[], object]):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        while len(self._items) >= self.size:
            self._items.popitem(last=False)
            self._release()
        self._items[key] = load()
        return self._items[key]

    def clear(self) -> None:
        self._items.clear()
        self._release()

    @staticmethod
    def _release() -> None:
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
