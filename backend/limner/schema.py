"""The parameter vocabulary the backend and both plug-ins share: the kinds of parameter
and how each is checked, an operation's parameters with the rules an editor needs about
them (which ones the chosen engine reads, what a preset or an implied choice fills in,
which are extra layers, which drive a light, ranges), and the backend's capabilities as
parsed once from the welcome.

Standard library only and within Python 3.8: it is vendored into both plug-ins with the
client (install/common.py). The editors build their controls from these types, one
control per Kind; nothing outside this module compares kind names or walks the
capabilities' JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from . import protocol

TEXT_LIMIT = 500         # characters; SD's text encoder reads 77 tokens (about 300 chars)
PATH_LIMIT = 4096
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class Kind(str, enum.Enum):
    """What a parameter holds. Its rules (checking a value, reading one from text) are the
    Rule of the same name below: a new kind is one member here, one Rule, and one control
    per editor."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"
    COLOR = "color"      # "#rrggbb"
    TEXT = "text"        # one line, at most TEXT_LIMIT characters (a prompt)
    FILE = "file"        # a path on the backend's machine, "" for none
    IMAGE = "image"      # like file, or a layer the editor sends as an extra buffer

    @property
    def rule(self) -> Rule:
        return RULES[self]


class Rule:
    """How values of one kind are checked and read from the command line."""

    def check(self, param: Param, value: Any) -> Any:
        raise NotImplementedError

    def parse_text(self, param: Param, text: str) -> Any:
        return text

    def clamp(self, param: Param, value: Any) -> Any:
        return value


class Number(Rule):
    what, convert = "a number", float

    def check(self, param, value):
        shown = protocol.shown(value)
        if not protocol.is_number(value):
            raise ValueError(f"must be {self.what}, got {shown}")
        try:                                  # a 400-digit integer is no float
            number = float(value)
        except OverflowError:
            raise ValueError(f"must be between {param.min} and {param.max}, got {shown}") \
                from None
        if self.convert is int and not number.is_integer():
            raise ValueError(f"must be {self.what}, got {shown}")
        value = int(value) if self.convert is int else number
        if (param.min is not None and value < param.min) or \
                (param.max is not None and value > param.max):
            raise ValueError(f"must be between {param.min} and {param.max}, got {shown}")
        return value

    def parse_text(self, param, text):
        try:
            return self.convert(text)
        except ValueError:
            raise ValueError(f"{param.name} must be {self.what}, got {text!r}") from None

    def clamp(self, param, value):
        """Inside the range (an int rounded): what a spin box or a slider may hold."""
        value = self.convert(round(value) if self.convert is int else value)
        low = -2 ** 31 if param.min is None else param.min
        high = 2 ** 31 - 1 if param.max is None else param.max
        return self.convert(max(low, min(high, value)))


class Integer(Number):
    what, convert = "an integer", int


class Boolean(Rule):
    def check(self, param, value):
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {protocol.shown(value)}")
        return value

    def parse_text(self, param, text):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{param.name} must be true or false, got {text!r}")
        return text.lower() in ("true", "1", "yes")


class Choice(Rule):
    def check(self, param, value):
        if not isinstance(value, (str, int, float)) or value not in param.choices:
            raise ValueError(f"must be one of {', '.join(map(str, param.choices))}, "
                             f"got {protocol.shown(value)}")
        return value


class Colour(Rule):
    def check(self, param, value):
        if not isinstance(value, str) or not _HEX_COLOUR.match(value):
            raise ValueError(f"must be a colour as #rrggbb, got {protocol.shown(value)}")
        return value.lower()


class Text(Rule):
    def check(self, param, value):
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {protocol.shown(value)}")
        if len(value) > TEXT_LIMIT:
            raise ValueError(f"must be at most {TEXT_LIMIT} characters, got {len(value)}")
        return " ".join(value.split())


class FilePath(Rule):
    def check(self, param, value):
        # only the type here: whether the path can be read is found out when it is read,
        # with one answer for every failure (ora.read_picture, named_files)
        if not isinstance(value, str) or len(value) > PATH_LIMIT:
            raise ValueError(f"must be a file path, got {protocol.shown(value)}")
        return value


RULES: Dict[Kind, Rule] = {Kind.FLOAT: Number(), Kind.INT: Integer(), Kind.BOOL: Boolean(),
                           Kind.CHOICE: Choice(), Kind.COLOR: Colour(), Kind.TEXT: Text(),
                           Kind.FILE: FilePath(), Kind.IMAGE: FilePath()}


@dataclass(frozen=True)
class Param:
    """One parameter. `engines`: the engines of the operation's kind that read it (none
    named: all of them), so editors show only the controls that matter. `presets`
    (choices): for each choice, the values it sets in other parameters (a lighting setup's
    angles, a mood's recipe). `implies`: the values other parameters take when this one is
    given (a LUT file makes the look "LUT file"). `extensions` (files): the file types a
    picker offers (none named: pictures). `over_layer` (images): the layer is a mask
    painted over the one being worked on, so editors send it read over that layer's
    rectangle, at its size."""

    name: str
    kind: Kind
    default: Any
    label: str
    help: str = ""
    min: Optional[float] = None
    max: Optional[float] = None
    step: Optional[float] = None
    choices: tuple = ()
    engines: Tuple[str, ...] = ()
    presets: Optional[dict] = None
    implies: Optional[dict] = None
    extensions: Tuple[str, ...] = ()
    over_layer: bool = False

    def __post_init__(self):
        object.__setattr__(self, "kind", Kind(self.kind))

    def but(self, **changes) -> Param:
        """This parameter with some fields changed (one declaration, reused)."""
        return dataclasses.replace(self, **changes)

    def check(self, value):
        """The value to use, or a ValueError that says what is wrong with `value`."""
        return self.kind.rule.check(self, value)

    def parse_text(self, text: str):
        """Command-line text as the value `check` expects."""
        return self.kind.rule.parse_text(self, text)

    def clamp(self, value):
        """A number inside the range (an int rounded); other kinds as they are."""
        return self.kind.rule.clamp(self, value)

    def read_by(self, engine: Optional[str]) -> bool:
        """Whether the engine chosen (None: the operation has no engine choice) reads it."""
        return not self.engines or engine is None or engine in self.engines

    @property
    def is_layer(self) -> bool:
        """An image parameter: editors send a layer as an extra buffer."""
        return self.kind is Kind.IMAGE

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": self.kind.value, "default": self.default,
               "label": self.label, "help": self.help}
        for key in ("min", "max", "step"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("choices", "engines", "extensions"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        for key in ("presets", "implies"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.over_layer:
            out["over_layer"] = True
        return out

    @classmethod
    def from_json(cls, obj: dict) -> Param:
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in obj.items() if key in known}
        for key in ("choices", "engines", "extensions"):
            if key in fields:
                fields[key] = tuple(fields[key])
        return cls(**fields)


#: the prefixes of a light's parameters (azimuth, elevation, intensity): key, fill, rim
LIGHT_PREFIXES = ("", "fill_", "rim_")


@dataclass(frozen=True)
class LightHandle:
    """The parameters that place one light: `prefix` "" for the key, "fill_", "rim_";
    `intensity` None where the light is always on (the key)."""

    prefix: str
    azimuth: str
    elevation: str
    intensity: Optional[str]


def sphere_point(azimuth: float, elevation: float) -> Tuple[float, float, bool]:
    """Where a light at azimuth a and elevation e (the backend's angles: 0 from the camera,
    -90 from the image's left, elevation up) sits on the light widget's unit disc, the
    sphere seen head on (x right, y up: cos e sin a, sin e), and whether it is in front."""
    a, e = math.radians(azimuth), math.radians(elevation)
    return math.cos(e) * math.sin(a), math.sin(e), math.cos(a) >= 0


def sphere_angles(x: float, y: float, front: bool) -> Tuple[float, float]:
    """The azimuth and elevation (degrees) of a point on the unit disc, in front of the
    subject or behind it; points outside the disc are taken at its edge."""
    r = math.hypot(x, y)
    if r > 1:
        x, y = x / r, y / r
    z = math.sqrt(max(0.0, 1 - x * x - y * y)) * (1 if front else -1)
    return math.degrees(math.atan2(x, z)), math.degrees(math.asin(max(-1.0, min(1.0, y))))


def by_role(placed: list) -> Dict[str, list]:
    """The lights a relight placed (its provenance's `lights`), by role, in order."""
    roles: Dict[str, list] = {}
    for light in placed:
        roles.setdefault(light["role"], []).append(light)
    return roles


def light_markers(values: Dict[str, Any], placed: Optional[list],
                  handles: Tuple["LightHandle", ...]) -> Dict[str, Optional[Tuple[float, float]]]:
    """Where a light widget shows each light ("" key, "fill_", "rim_", and "rim_mirror"
    for the rim's mirror), None for one that is off: with a named setup, where the backend
    put its lights (the last preview's provenance: turned with the face); else the values'."""
    if values.get("setup", "custom") != "custom" and placed:
        keys, fills, rims = (by_role(placed).get(role, []) + [None, None]
                             for role in ("key", "fill", "rim"))
        chosen = {"": keys[0], "fill_": fills[0], "rim_": rims[0], "rim_mirror": rims[1]}
        return {prefix: None if light is None else (light["azimuth"], light["elevation"])
                for prefix, light in chosen.items()}
    markers: Dict[str, Optional[Tuple[float, float]]] = {}
    for light in handles:
        on = light.intensity is None or values.get(light.intensity, 0) > 0
        markers[light.prefix] = (values[light.azimuth], values[light.elevation]) if on else None
    rim = markers.get("rim_")
    markers["rim_mirror"] = (-rim[0], rim[1]) if rim and values.get("rim_pair") else None
    return markers


def adopted_values(placed: list, ambient: Optional[float],
                   temperature: Optional[float] = None) -> Dict[str, Any]:
    """The custom setup's values that put each light where a named setup put it (so that
    dragging one light of a setup leaves the others where they were)."""
    roles = by_role(placed)
    key = roles["key"][0]
    values = {"azimuth": key["azimuth"], "elevation": key["elevation"],
              "intensity": key["intensity"], "key_distance": key.get("distance") or 0.0,
              "fill_intensity": 0.0, "rim_intensity": 0.0, "rim_pair": False}
    for light in roles.get("fill", [])[:1]:
        values.update(fill_azimuth=light["azimuth"], fill_elevation=light["elevation"],
                      fill_intensity=light["intensity"], fill_softness=light["softness"],
                      fill_temperature=6500.0)
    rims = roles.get("rim", [])
    for light in rims[:1]:
        values.update(rim_azimuth=light["azimuth"], rim_elevation=light["elevation"],
                      rim_intensity=light["intensity"], rim_softness=light["softness"],
                      rim_pair=len(rims) > 1)
        if temperature is not None:
            values["rim_temperature"] = temperature
    if ambient is not None:
        values["ambient"] = ambient
    return values


@dataclass(frozen=True)
class OperationSpec:
    """An operation as the editors see it: its parameters and the rules about them."""

    id: str
    label: str
    description: str
    params: Tuple[Param, ...]
    hidden: bool = False
    engine_kind: Optional[str] = None

    def param(self, name: str) -> Optional[Param]:
        return next((p for p in self.params if p.name == name), None)

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def shown_for(self, engine: Optional[str]) -> Tuple[Param, ...]:
        """The parameters `engine` reads (all when there is no engine choice)."""
        return tuple(p for p in self.params if p.read_by(engine))

    def layers(self) -> Tuple[Param, ...]:
        """The image parameters: sent as extra layers when they name one."""
        return tuple(p for p in self.params if p.is_layer)

    def implied(self, name: str, value) -> dict:
        """The values other parameters take when `name` is set to `value` in an editor:
        a choice's preset, or what a given file implies. Only parameters of this
        operation, each as its kind wants it."""
        param = self.param(name)
        if param is None:
            return {}
        values = dict((param.presets or {}).get(value, {}))
        if param.implies and value not in ("", None, param.default):
            values.update(param.implies)
        return {key: v for key, v in values.items() if self.param(key) is not None}

    def lights(self) -> Tuple[LightHandle, ...]:
        """The lights an editor can place (a sphere widget): each prefix with both an
        azimuth and an elevation parameter."""
        out = []
        for prefix in LIGHT_PREFIXES:
            azimuth, elevation = f"{prefix}azimuth", f"{prefix}elevation"
            if self.param(azimuth) is not None and self.param(elevation) is not None:
                intensity = f"{prefix}intensity" if prefix else None
                out.append(LightHandle(prefix, azimuth, elevation,
                                       intensity if intensity and self.param(intensity)
                                       else None))
        return tuple(out)

    @property
    def has_light(self) -> bool:
        """Whether it places a light (a preview follows it live)."""
        return bool(self.lights())

    def completed(self, given: dict) -> dict:
        """The values a request runs with: what was given; a parameter left out takes
        what a given (or default) choice's preset or a given file implies, else its
        default. So `mood="film noir"` alone runs film noir's recipe, and a value the user
        changed runs as changed."""
        values = dict(given)
        filled = {}
        for param in self.params:
            chosen = values.get(param.name, param.default)
            for key, value in self.implied(param.name, chosen).items():
                filled.setdefault(key, value)
        for param in self.params:
            if param.name not in values:
                values[param.name] = filled.get(param.name, param.default)
        return values

    def check(self, given) -> dict:
        """`given` completed and checked; a ValueError says what is wrong, naming the
        parameter."""
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise ValueError("params must be a JSON object")
        unknown = sorted(set(given) - set(self.names), key=str)
        if unknown:
            raise ValueError(f"{self.id}: unknown parameter "
                             f"{', '.join(protocol.shown(n)[1:-1] for n in unknown[:5])}; "
                             f"it takes {', '.join(self.names) or 'none'}")
        for param in self.params:        # a file that implies a choice, with another one
            value = given.get(param.name)
            if param.implies and value not in (None, "", param.default):
                for name, wanted in param.implies.items():
                    if name in given and given[name] != wanted:
                        raise ValueError(
                            f"{self.id}: {param.name} is given, which applies only with "
                            f"{name} {wanted!r}, but {name} is {protocol.shown(given[name])}:"
                            f" choose {name} {wanted!r}, or leave {param.name} empty")
        values = self.completed(given)
        out = {}
        for param in self.params:
            try:
                out[param.name] = param.check(values[param.name])
            except ValueError as exc:
                raise ValueError(f"{self.id}: parameter {param.name} {exc}") from None
        return out

    def to_json(self) -> dict:
        return {"id": self.id, "label": self.label, "description": self.description,
                "hidden": self.hidden, "engine_kind": self.engine_kind,
                "params": [p.to_json() for p in self.params]}

    @classmethod
    def from_json(cls, obj: dict) -> OperationSpec:
        return cls(obj["id"], obj["label"], obj.get("description", ""),
                   tuple(Param.from_json(p) for p in obj.get("params", [])),
                   bool(obj.get("hidden", False)), obj.get("engine_kind"))


@dataclass(frozen=True)
class EngineSpec:
    """An engine as the capabilities describe it: `available` (weights and packages
    here), `setup` (the command that installs what it imports, on a lean install)."""

    kind: str
    name: str
    label: str
    licence: str = ""
    available: bool = True
    setup: str = ""
    models: Tuple[str, ...] = ()
    default: bool = False

    @classmethod
    def from_json(cls, obj: dict) -> EngineSpec:
        return cls(obj["kind"], obj["name"], obj.get("label", obj["name"]),
                   obj.get("licence") or "", bool(obj.get("available", True)),
                   obj.get("setup") or "", tuple(obj.get("models") or ()),
                   bool(obj.get("default", False)))


@dataclass
class ModelSpec:
    """A model the backend can download: `present` once it is here."""

    name: str
    size_mb: float
    licence: str
    engines: Tuple[str, ...]
    present: bool
    description: str = ""

    @classmethod
    def from_json(cls, obj: dict) -> ModelSpec:
        return cls(obj["name"], obj.get("size_mb", 0), obj.get("licence", ""),
                   tuple(obj.get("engines") or ()), bool(obj.get("present")),
                   obj.get("description", ""))


@dataclass(frozen=True)
class Capabilities:
    """What the backend offers, from its welcome: operations, engines by kind, models."""

    operations: Tuple[OperationSpec, ...]
    engines: Dict[str, Tuple[EngineSpec, ...]] = field(default_factory=dict)
    models: Tuple[ModelSpec, ...] = ()

    def operation(self, op_id: str) -> Optional[OperationSpec]:
        return next((op for op in self.operations if op.id == op_id), None)

    @property
    def offered(self) -> Tuple[OperationSpec, ...]:
        """The operations an editor's menus show (not the diagnostics)."""
        return tuple(op for op in self.operations if not op.hidden)

    def engine(self, op: OperationSpec, name: Optional[str]) -> Optional[EngineSpec]:
        return next((e for e in self.engines.get(op.engine_kind or "", ())
                     if e.name == name), None)

    def missing_models(self, engine: Optional[EngineSpec]) -> list:
        """The models `engine` needs that are not here."""
        present = {m.name for m in self.models if m.present}
        return [name for name in (engine.models if engine else ()) if name not in present]

    @classmethod
    def from_json(cls, obj: dict) -> Capabilities:
        if not isinstance(obj, dict):
            raise ValueError("capabilities must be an object")
        return cls(tuple(OperationSpec.from_json(op) for op in obj.get("operations", [])),
                   {kind: tuple(EngineSpec.from_json(e) for e in engines)
                    for kind, engines in (obj.get("engines") or {}).items()},
                   tuple(ModelSpec.from_json(m) for m in obj.get("models", [])))
