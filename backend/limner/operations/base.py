"""What an operation is: its parameters as data (the schema the plug-ins build their
controls from), validation of what a client sends, and the layers it returns."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import protocol
from ..protocol import ProtocolError

_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
TEXT_LIMIT = 500         # characters; SD's text encoder reads 77 tokens (about 300 chars)


@dataclass(frozen=True)
class Param:
    """One parameter. `kind` is float, int, bool, choice, color ("#rrggbb"), text (one
    line, at most TEXT_LIMIT characters: a prompt), file (a path on the backend's machine,
    "" for none) or image (like file, or a layer the client sends as an extra buffer: the
    run message's `inputs`). `engines`: the engines of the operation's kind it applies
    to (none named: all of them), so editors show only the controls that matter.
    `presets` (choices): for a choice, the values it implies for other parameters, which
    editors put into their controls when it is picked. `extensions` (files): the file
    types a file picker offers (none named: pictures). `over_layer` (images): the layer
    is a mask painted over the one being worked on (a hint), so editors send it read
    over that layer's rectangle, at its size."""

    name: str
    kind: str
    default: Any
    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple = ()
    engines: tuple[str, ...] = ()
    presets: dict | None = None
    extensions: tuple[str, ...] = ()
    over_layer: bool = False

    def schema(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "default": self.default,
               "label": self.label, "help": self.help}
        for key in ("min", "max", "step"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.engines:
            out["engines"] = list(self.engines)
        if self.presets:
            out["presets"] = self.presets
        if self.extensions:
            out["extensions"] = list(self.extensions)
        if self.over_layer:
            out["over_layer"] = True
        return out

    def but(self, **changes) -> Param:
        """This parameter with some fields changed (one declaration, reused)."""
        return dataclasses.replace(self, **changes)

    def check(self, value):
        """The value to use, or a ValueError that says what is wrong with `value`."""
        kind, shown = self.kind, protocol.shown(value)
        if kind in ("float", "int"):
            what = "an integer" if kind == "int" else "a number"
            if not protocol.is_number(value):
                raise ValueError(f"must be {what}, got {shown}")
            try:                                  # a 400-digit integer is no float
                number = float(value)
            except OverflowError:
                raise ValueError(f"must be between {self.min} and {self.max}, got {shown}") \
                    from None
            if kind == "int" and not number.is_integer():
                raise ValueError(f"must be {what}, got {shown}")
            value = int(value) if kind == "int" else number
            if (self.min is not None and value < self.min) or \
                    (self.max is not None and value > self.max):
                raise ValueError(f"must be between {self.min} and {self.max}, got {shown}")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, got {shown}")
            return value
        if kind == "choice":
            if not isinstance(value, (str, int, float)) or value not in self.choices:
                raise ValueError(f"must be one of {', '.join(map(str, self.choices))}, "
                                 f"got {shown}")
            return value
        if kind == "color":
            if not isinstance(value, str) or not _HEX_COLOR.match(value):
                raise ValueError(f"must be a colour as #rrggbb, got {shown}")
            return value.lower()
        if kind == "text":
            if not isinstance(value, str):
                raise ValueError(f"must be text, got {shown}")
            if len(value) > TEXT_LIMIT:
                raise ValueError(f"must be at most {TEXT_LIMIT} characters, got {len(value)}")
            return " ".join(value.split())
        if kind in ("file", "image"):
            # only the type here: whether the path can be read is found out when it is
            # read, with one answer for every failure (imaging.read_picture)
            if not isinstance(value, str) or len(value) > 4096:
                raise ValueError(f"must be a file path, got {shown}")
            return value
        raise AssertionError(f"unknown parameter kind {kind}")

    def parse_text(self, text: str):
        """Turn command-line text into the value `check` expects."""
        kinds = {"float": (float, "a number"), "int": (int, "an integer")}
        if self.kind in kinds:
            convert, what = kinds[self.kind]
            try:
                return convert(text)
            except ValueError:
                raise ValueError(f"{self.name} must be {what}, got {text!r}") from None
        if self.kind == "bool":
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{self.name} must be true or false, got {text!r}")
            return text.lower() in ("true", "1", "yes")
        return text


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
        engine = Param("engine", "choice", engines.default(self.engine_kind), "Engine",
                       "Model that does the work; see the capabilities' engines for licences.",
                       choices=names)
        return [engine, *self.params]

    def validate(self, params) -> dict:
        """Defaults filled in; unknown or bad values raise a bad_parameter ProtocolError."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ProtocolError(protocol.E_BAD_PARAMETER, "params must be a JSON object")
        known = {p.name: p for p in self.all_params()}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ProtocolError(protocol.E_BAD_PARAMETER,
                                f"{self.id}: unknown parameter "
                                f"{', '.join(protocol.shown(n)[1:-1] for n in unknown[:5])}; "
                                f"it takes {', '.join(known) or 'none'}")
        out = {}
        for name, param in known.items():
            try:
                out[name] = param.check(params.get(name, param.default))
            except ValueError as exc:
                raise ProtocolError(protocol.E_BAD_PARAMETER,
                                    f"{self.id}: parameter {name} {exc}") from None
        return out

    def schema(self) -> dict:
        return {"id": self.id, "label": self.label, "description": self.description,
                "hidden": self.hidden, "engine_kind": self.engine_kind,
                "params": [p.schema() for p in self.all_params()]}
