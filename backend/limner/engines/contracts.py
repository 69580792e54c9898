"""What each kind of engine must offer the operations: one `typing.Protocol` per kind.

The registry checks a loaded engine against its kind's contract, so an engine that lacks a
method fails when it loads, by name, not later inside an operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .lights import Settings
    from .relight import Lighting

#: progress(fraction 0..1, stage in words)
Progress = Callable[[float, str], None]


class Matting(Protocol):
    #: its alpha already resolves single hairs, so refine.refined uses it as it is
    HAIR_LEVEL: bool

    def matte(self, rgb: np.ndarray) -> np.ndarray:
        """The subject's alpha (H x W, float32 0..1) for RGB float32 0..1."""


class Face(Protocol):
    def faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        """One (468, 3) landmark array (x, y in pixels, z towards the camera negative)
        per face found in RGB float32 0..1."""


class Relight(Protocol):
    def render(self, samples: np.ndarray, settings: Settings, progress: Progress,
               memo: Callable[[str, Callable], object] | None = None,
               matte: Callable[[], np.ndarray] | None = None) -> Lighting:
        """A layer region (samples as they are) under the light `settings` describe
        (lights.Settings: the relight parameters, typed).
        `memo(name, build)` keeps what does not depend on the light between runs on the
        same pixels; `matte()` gives the subject's alpha at the region's size."""


class Style(Protocol):
    def plan(self, params: dict, inpaint: bool) -> list[str]:
        """The model-manager models a run with `params` uses (for the result's record)."""

    def stylize(self, rgb: np.ndarray, mask: np.ndarray | None, params: dict,
                reference: np.ndarray | None, progress: Progress) -> np.ndarray:
        """RGB float32 0..1 restyled, same size; `mask` (u8) marks what may change."""


BY_KIND: dict[str, type] = {"matting": Matting, "face": Face, "relight": Relight,
                            "style": Style}


def missing(engine: object, kind: str) -> list[str]:
    """The members of its kind's contract that `engine` (an instance or a class) lacks."""
    contract = BY_KIND[kind]
    wanted = [name for name in (*contract.__annotations__, *vars(contract))
              if not name.startswith("_")]
    return sorted({name for name in wanted if not hasattr(engine, name)})
