"""What an operation is: its parameters as data (the schema the plug-ins build their
controls from), validation of what a client sends, and the layers it returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from .. import protocol, schema
from ..protocol import ProtocolError
from ..schema import Kind, Param

#: the diffusion engines' shared controls, declared once (operations adapt them with `but`)
SEED = Param("seed", "int", 1, "Seed", "The same seed gives the same result.",
             min=0, max=2**31 - 1, step=1)
STEPS = Param("steps", "int", 25, "Diffusion steps",
              "Denoising steps (at most 8 in fast mode).", min=1, max=100, step=1)
FAST = Param("fast", "bool", False, "Fast mode",
             "A few steps with LCM-LoRA instead of many (needs the lcm-lora-sd15 model).")


@dataclass
class Layer:
    """A layer an operation made: pixels (H, W, C) in the input's sample type, its place
    relative to the input layer's origin, its role ("layer", or "mask" for a matte that a
    plug-in applies as a layer or transparency mask), blend mode and visibility."""

    name: str
    pixels: np.ndarray
    role: str = "layer"
    offset: tuple[int, int] = (0, 0)
    blend: str = "normal"            # normal, multiply or dodge: modes both editors have
    visible: bool = True
    provenance: dict = field(default_factory=dict)


@dataclass
class Request:
    """What an operation receives: the layer, the selection and the checked parameters;
    who asked (cached work about a layer belongs to that connection) and whether it is a
    preview (the image already scaled down: the main layer is all that is wanted)."""

    image: np.ndarray                      # (H, W, 3|4) u8, u16 or f32
    mask: np.ndarray | None                # (H, W) u8 selection, None for "everything"
    params: dict
    progress: Callable[[float, str], None]  # raises jobs.Cancelled when the job is cancelled
    owner: Hashable | None = None
    preview: bool = False

    def sent_or_read(self, name: str) -> np.ndarray | None:
        """An image parameter's pixels as they came: the layer the plug-in sent, or the
        file it names read; None when it names neither."""
        from ..ora import read_picture

        value = self.params.get(name)
        if isinstance(value, np.ndarray):
            return value
        return read_picture(value, name) if value else None

    def picture(self, name: str) -> np.ndarray | None:
        """An image parameter's picture as RGB float 0..1 (None: none given)."""
        from .. import imaging

        picture = self.sent_or_read(name)
        return None if picture is None else np.clip(imaging.to_float(picture)[:, :, :3], 0, 1)

    def hint(self, name: str, box: tuple[slice, slice]) -> np.ndarray | None:
        """A keep or remove hint (0..1 over `box`): the layer the plug-in sent for the
        parameter, or the mask file it names, the layer's size; None when there is none."""
        from .. import imaging
        from ..engines.subject import hint_strength

        picture = self.sent_or_read(name)
        if picture is None:
            return None
        if picture.shape[:2] != self.image.shape[:2]:
            raise ProtocolError(protocol.E_BAD_PARAMETER,
                                f"{name}: the hint is {picture.shape[1]}x{picture.shape[0]}, "
                                f"the layer {self.image.shape[1]}x{self.image.shape[0]}; "
                                "paint it over the layer, at the layer's size")
        return hint_strength(imaging.to_float(picture)[box])

    def subject_matte(self, box: tuple[slice, slice], engine: str | None = None,
                      detail: str = "normal", hints: bool = False):
        """The subject's matte over `box` (refine.Matte: alpha, float32 0..1, read-only,
        and the parts decided on the way): the matting engine's, refined at the hair to
        `detail`, the subject whole, with the `keep` and `remove` hint parameters when
        `hints`. One per layer and hints: background, relight and mood runs on the same
        pixels share it through the layer cache."""
        from .. import cache, engines, imaging
        from ..engines import refine

        name = engine or engines.default("matting")
        region = self.image[box]
        keep, remove = (self.hint("keep", box), self.hint("remove", box)) if hints else \
            (None, None)

        def opinion(other: str, rgb: np.ndarray) -> np.ndarray:
            self.progress(0.25, f"asking {other} about the subject")
            return engines.get("matting", other).matte(rgb)

        def build() -> refine.Matte:
            self.progress(0.05, "loading the matting model")
            model = engines.get("matting", name)
            self.progress(0.15, "matting")
            matte = refine.refined(model, imaging.to_float(region)[:, :, :3], detail,
                                   lambda what: self.progress(0.3, what), opinion, keep,
                                   remove, name)
            matte.alpha.flags.writeable = False
            return matte

        hinted = cache.layer_key(keep, remove) if keep is not None or remove is not None \
            else None
        key = cache.layer_key(region, None, box, name, detail, hinted)
        return dataclasses.replace(cache.LAYERS.get(("matte", key), self.owner, build), key=key)


@dataclass
class Operation:
    id: str
    label: str
    description: str
    params: list[Param]
    run: Callable[[Request], list[Layer]]
    engine_kind: str | None = None   # the engine registry kind behind the "engine" parameter
    hidden: bool = False             # not offered in the editors' menus (diagnostics)

    def all_params(self) -> list[Param]:
        if self.engine_kind is None:
            return self.params
        from .. import engines
        names = tuple(e.name for e in engines.of_kind(self.engine_kind))
        engine = Param("engine", Kind.CHOICE, engines.default(self.engine_kind), "Engine",
                       "Model that does the work; see the capabilities' engines for licences.",
                       choices=names)
        return [engine, *self.params]

    def spec(self) -> schema.OperationSpec:
        """What the editors see of it (schema.py), and the rules its parameters follow."""
        return schema.OperationSpec(self.id, self.label, self.description,
                                    tuple(self.all_params()), self.hidden, self.engine_kind)

    def validate(self, params) -> dict:
        """Completed (schema.OperationSpec.completed) and checked; unknown or bad values
        raise a bad_parameter ProtocolError."""
        try:
            return self.spec().check(params)
        except ValueError as exc:
            raise ProtocolError(protocol.E_BAD_PARAMETER, str(exc)) from None

    def schema(self) -> dict:
        return self.spec().to_json()
