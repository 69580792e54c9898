"""Limner protocol v1: the single definition of every message and of the pixel frame.

Imports the Python standard library only: the GIMP and Krita plug-ins run it inside the
editors' own Python, which has no numpy or torch.

Text WebSocket frames carry JSON control messages (an object with a "type"); binary frames
carry raw pixel samples, little-endian, row-major, interleaved channels, split into chunks
of about CHUNK_BYTES. Every binary frame starts with a fixed header (FRAME_HEADER) naming
the buffer, its geometry and the byte offset of the chunk, so a receiver can check each
chunk against what the JSON message declared. See docs in README.md ("Protocol").
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1
DEFAULT_PORT = 7421
DEFAULT_HOST = "127.0.0.1"
#: Payload bytes per binary frame: ~1 MiB measured fastest on loopback (FIELD-NOTES).
CHUNK_BYTES = 1 << 20
#: Largest WebSocket message a peer accepts by default (a chunk plus headroom for JSON).
DEFAULT_MAX_MESSAGE_BYTES = 4 << 20
#: Largest pixel buffer accepted by default (8192x8192 RGBA u16 is 512 MiB).
DEFAULT_MAX_BUFFER_BYTES = 1 << 30
#: Largest side of an image, in pixels.
MAX_SIDE = 32768
#: The range of a run's preview_side, in pixels.
PREVIEW_SIDES = (16, 4096)

# Message types: each is one class below (Hello, Welcome, RunRequest, ...), the only
# definition of its fields.
HELLO = "hello"
WELCOME = "welcome"
RUN = "run"
CANCEL = "cancel"
PULL = "pull"
PULLED = "pulled"
PROGRESS = "progress"
RESULT = "result"
ERROR = "error"
CLIENT_TYPES = (HELLO, RUN, CANCEL, PULL)
SERVER_TYPES = (WELCOME, PROGRESS, RESULT, PULLED, ERROR)

#: what this side speaks beyond protocol 1's first release; the welcome lists the
#: backend's, and a client that needs one the backend lacks is told which (a backend from
#: before a feature would ignore its field: a linear-light layer taken for sRGB)
FEATURES = ("transfer", "inputs", "pull", "preview")

# Error codes: a client can branch on these; the message is for people.
E_BAD_JSON = "bad_json"
E_UNKNOWN_TYPE = "unknown_type"
E_BAD_MESSAGE = "bad_message"
E_AUTH = "auth"
E_VERSION = "version"
E_MISSING_FEATURE = "missing_feature"
E_UNKNOWN_OPERATION = "unknown_operation"
E_BAD_PARAMETER = "bad_parameter"
E_BAD_BUFFER = "bad_buffer"
E_UNEXPECTED_BINARY = "unexpected_binary"
E_SIZE_MISMATCH = "size_mismatch"
E_TOO_LARGE = "too_large"
E_MASK_SIZE = "mask_size"
E_EMPTY_SELECTION = "empty_selection"
E_BUSY = "busy"
E_CANCELLED = "cancelled"
E_UNKNOWN_JOB = "unknown_job"
E_OPERATION_FAILED = "operation_failed"
E_MODEL_MISSING = "model_missing"
E_FORBIDDEN = "forbidden"          # studio mode: for the studio's admins only
E_USER_LIMIT = "user_limit"        # studio mode: a user's jobs or pixels over their limit
# ... and the client's own, for a backend it cannot talk to
E_UNREACHABLE = "unreachable"      # nothing answers at the address
E_NOT_RUNNING = "not_running"      # no discovery file: no backend started
E_CLOSED = "closed"                # the backend closed the connection
E_TIMEOUT = "timeout"              # the backend sent nothing for too long
E_CERTIFICATE = "certificate"      # a studio server's certificate is not the one pinned

# WebSocket close codes used by the server.
CLOSE_POLICY = 1008      # authentication failed
CLOSE_TOO_BIG = 1009     # a message over the size limit (sent by the websockets library)

# Sample types: name -> (code in the frame header, bytes per sample, struct/array letter).
SAMPLE_TYPES = {"u8": (1, 1, "B"), "u16": (2, 2, "H"), "f32": (3, 4, "f")}
_SAMPLE_BY_CODE = {code: name for name, (code, _, _) in SAMPLE_TYPES.items()}

# Binary frame header: magic, sample code, channels, flags, reserved, buffer id, width,
# height, byte offset of this chunk within the buffer. Little-endian, 28 bytes.
FRAME_MAGIC = b"LMN1"
FRAME_HEADER = struct.Struct("<4sBBBxIIIQ")
FLAG_LAST = 1            # the final chunk of its buffer


class ProtocolError(Exception):
    """An error a peer reports: `code` is one of the E_* codes above, `message` is for people."""

    def __init__(self, code: str, message: str, job: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.job = job

    def to_message(self) -> str:
        return ErrorMessage(self.code, self.message, self.job).to_json()


def shown(value, limit: int = 80) -> str:
    """`value` as it goes into a message for people: its repr, cut to about `limit`
    characters, so a hostile or broken client's 4 MB value is never echoed back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 15]}… ({len(text)} chars)"


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint as a studio server prints it and the plug-ins
    pin it: upper-case hex pairs joined by colons."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def same_fingerprint(pinned: str, der: bytes) -> bool:
    """Whether `der` is the pinned certificate (the pin with or without colons, any case)."""
    wanted = "".join(ch for ch in pinned.upper() if ch in "0123456789ABCDEF")
    return secrets.compare_digest(wanted, fingerprint(der).replace(":", ""))


# --------------------------------------------------------------------------- JSON messages

def encode(type_: str, **fields) -> str:
    """One JSON control message. NaN and Infinity are not JSON (strict parsers refuse
    them), so a message that would carry one is a bug: it raises ValueError."""
    return json.dumps({"type": type_, **fields}, separators=(",", ":"), allow_nan=False)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def decode(text: str | bytes, allowed: tuple[str, ...]) -> dict:
    """Parse one control message and check its type is one of `allowed`. NaN, Infinity
    and nesting deeper than Python's stack are refused as bad JSON."""
    try:
        msg = json.loads(text, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProtocolError(E_BAD_JSON, f"message is not valid JSON: {shown(reason)}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError(E_BAD_MESSAGE, 'a message must be a JSON object with a string "type"')
    if msg["type"] not in allowed:
        raise ProtocolError(E_UNKNOWN_TYPE, f"unknown message type {shown(msg['type'])}; "
                                            f"expected one of {', '.join(allowed)}")
    return msg


def is_number(value) -> bool:
    """A finite number (True and False are not numbers here)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


# --------------------------------------------------------------------------- pixel buffers

@dataclass(frozen=True)
class BufferSpec:
    """What a JSON message declares about a pixel buffer that binary frames then carry."""

    id: int
    width: int
    height: int
    channels: int
    sample: str

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channels * SAMPLE_TYPES[self.sample][1]

    def to_json(self) -> dict:
        return {"id": self.id, "width": self.width, "height": self.height,
                "channels": self.channels, "sample": self.sample}

    @classmethod
    def from_json(cls, obj, what: str, max_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
                  channels: tuple[int, ...] = (1, 2, 3, 4)) -> BufferSpec:
        """Validate a declared buffer; `what` names it in errors ("image", "mask")."""
        if not isinstance(obj, dict):
            raise ProtocolError(E_BAD_BUFFER, f"{what}: expected an object with id, width, "
                                              "height, channels and sample")
        for key in ("id", "width", "height", "channels"):
            value = obj.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ProtocolError(E_BAD_BUFFER, f"{what}.{key} must be an integer, "
                                                  f"got {shown(value)}")
        if obj["id"] < 0 or obj["id"] >= 1 << 32:
            raise ProtocolError(E_BAD_BUFFER, f"{what}.id must be in 0..2^32-1")
        w, h = obj["width"], obj["height"]
        if w <= 0 or h <= 0:
            raise ProtocolError(E_BAD_BUFFER, f"{what}: width and height must be positive, "
                                              f"got {w}x{h}")
        if w > MAX_SIDE or h > MAX_SIDE:
            raise ProtocolError(E_TOO_LARGE, f"{what}: {w}x{h} exceeds the largest side "
                                             f"of {MAX_SIDE} pixels")
        if obj["channels"] not in channels:
            raise ProtocolError(E_BAD_BUFFER, f"{what}.channels must be one of {list(channels)}, "
                                              f"got {obj['channels']}")
        if not isinstance(obj.get("sample"), str) or obj["sample"] not in SAMPLE_TYPES:
            raise ProtocolError(E_BAD_BUFFER, f"{what}.sample must be one of "
                                              f"{', '.join(SAMPLE_TYPES)}, "
                                              f"got {shown(obj.get('sample'))}")
        spec = cls(obj["id"], w, h, obj["channels"], obj["sample"])
        if spec.nbytes > max_bytes:
            raise ProtocolError(E_TOO_LARGE, f"{what}: {w}x{h}x{spec.channels} {spec.sample} is "
                                             f"{spec.nbytes / 2**20:.0f} MiB, over this server's "
                                             f"limit of {max_bytes / 2**20:.0f} MiB")
        return spec


@dataclass(frozen=True)
class Pixels:
    """A layer's raw samples as the protocol carries them: little-endian, row-major,
    interleaved channels (R, G, B[, A]; one channel for a mask or matte). What the
    client sends and returns, and what the plug-ins read from and write to the editors."""

    data: bytes | bytearray | memoryview
    width: int
    height: int
    channels: int
    sample: str                  # u8, u16 or f32

    def spec(self, buffer_id: int) -> BufferSpec:
        return BufferSpec(buffer_id, self.width, self.height, self.channels, self.sample)


def frames(spec: BufferSpec, data, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Split a buffer's bytes into binary frames (header + chunk)."""
    view = memoryview(data).cast("B")
    if view.nbytes != spec.nbytes:
        raise ValueError(f"buffer {spec.id}: {view.nbytes} bytes given, header says {spec.nbytes}")
    code = SAMPLE_TYPES[spec.sample][0]
    offset = 0
    while True:
        end = min(offset + chunk_bytes, spec.nbytes)
        flags = FLAG_LAST if end == spec.nbytes else 0
        header = FRAME_HEADER.pack(FRAME_MAGIC, code, spec.channels, flags, spec.id,
                                   spec.width, spec.height, offset)
        yield header + view[offset:end]
        if flags:
            return
        offset = end


@dataclass(frozen=True)
class FrameHeader:
    buffer: int
    sample: str
    channels: int
    width: int
    height: int
    offset: int
    last: bool


def parse_frame(frame: bytes) -> tuple[FrameHeader, memoryview]:
    """Split a binary frame into its header and its payload (no copy)."""
    if len(frame) < FRAME_HEADER.size:
        raise ProtocolError(E_BAD_BUFFER, f"binary frame of {len(frame)} bytes is shorter than "
                                          f"the {FRAME_HEADER.size}-byte header")
    magic, code, channels, flags, buf, w, h, offset = FRAME_HEADER.unpack_from(frame)
    if magic != FRAME_MAGIC:
        raise ProtocolError(E_BAD_BUFFER, f"binary frame does not start with {FRAME_MAGIC!r}")
    if code not in _SAMPLE_BY_CODE:
        raise ProtocolError(E_BAD_BUFFER, f"binary frame has unknown sample code {code}")
    header = FrameHeader(buf, _SAMPLE_BY_CODE[code], channels, w, h, offset, bool(flags & FLAG_LAST))
    return header, memoryview(frame)[FRAME_HEADER.size:]


class BufferAssembler:
    """Collects the frames of one declared buffer into a bytearray that grows as they
    arrive: declaring a gigabyte costs nothing until the gigabyte is sent.

    Chunks must arrive in order; the last one carries FLAG_LAST, so a buffer whose bytes
    fall short of its header is caught when the sender says it is done.
    """

    def __init__(self, spec: BufferSpec):
        self.spec = spec
        self.data = bytearray()
        self.received = 0
        self.done = False

    def add(self, header: FrameHeader, payload: memoryview) -> bool:
        """Take one frame; returns True when the buffer is complete."""
        s = self.spec
        if (header.sample, header.channels, header.width, header.height) != \
                (s.sample, s.channels, s.width, s.height):
            raise ProtocolError(E_SIZE_MISMATCH,
                                f"buffer {s.id}: frame says {header.width}x{header.height}x"
                                f"{header.channels} {header.sample}, the run message declared "
                                f"{s.width}x{s.height}x{s.channels} {s.sample}")
        if header.offset != self.received:
            raise ProtocolError(E_SIZE_MISMATCH, f"buffer {s.id}: chunk at byte {header.offset}, "
                                                 f"expected byte {self.received}")
        end = self.received + len(payload)
        if end > s.nbytes:
            raise ProtocolError(E_SIZE_MISMATCH, f"buffer {s.id}: {end} bytes received, more than "
                                                 f"the {s.nbytes} that {s.width}x{s.height}x"
                                                 f"{s.channels} {s.sample} needs")
        self.data += payload
        self.received = end
        if header.last:
            if end != s.nbytes:
                raise ProtocolError(E_SIZE_MISMATCH, f"buffer {s.id}: last chunk ends at byte "
                                                     f"{end}, {s.width}x{s.height}x{s.channels} "
                                                     f"{s.sample} needs {s.nbytes}")
            self.done = True
        return self.done


# --------------------------------------------------------------------------- control messages
# One class per message type: to_json() writes it, from_json(obj) checks a decoded one and
# raises ProtocolError with the E_* code a peer can act on. Both the backend and the client
# use them, so each message's layout is written here once.

def _fields(obj: dict, allowed: tuple[str, ...]) -> None:
    """A message field this side does not know is refused, never ignored: it means a
    newer peer relies on something this one would silently not do."""
    unknown = sorted(set(obj) - {"type", *allowed})
    if unknown:
        raise ProtocolError(E_BAD_MESSAGE, f"{obj['type']}: unknown field "
                                           f"{shown(unknown[0])}; this side speaks protocol "
                                           f"{PROTOCOL_VERSION} with {', '.join(FEATURES)}")


def _job(obj: dict) -> str:
    job = obj.get("job")
    if not isinstance(job, str) or not 0 < len(job) <= 64:
        raise ProtocolError(E_BAD_MESSAGE, f"{obj['type']}.job must be a string id of 1 to 64 "
                                           "characters")
    return job


def _text(obj: dict, key: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise ProtocolError(E_BAD_MESSAGE, f"{obj['type']}.{key} must be a string, got "
                                           f"{shown(value)}")
    return value


def _features(obj: dict) -> tuple[str, ...]:
    value = obj.get("features", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(E_BAD_MESSAGE, f"{obj['type']}.features must be a list of names")
    return tuple(value)


@dataclass(frozen=True)
class Hello:
    """client -> server, first: who is asking, with the discovery file's token, and the
    features it will use."""

    token: str
    client: str
    protocol: int = PROTOCOL_VERSION
    features: tuple[str, ...] = ()

    def to_json(self) -> str:
        return encode(HELLO, protocol=self.protocol, token=self.token, client=self.client,
                      features=list(self.features))

    @classmethod
    def from_json(cls, obj: dict) -> Hello:
        _fields(obj, ("protocol", "token", "client", "features"))
        token = obj.get("token")
        if not isinstance(token, str):
            raise ProtocolError(E_AUTH, "missing or wrong token; read it from the discovery "
                                        "file")
        return cls(token, _text(obj, "client", ""), obj.get("protocol"), _features(obj))

    def check(self, token: str) -> None:
        """Raise unless this hello carries `token`, speaks our version and asks only for
        features we have."""
        if not secrets.compare_digest(self.token.encode("utf-8", "surrogatepass"),
                                      token.encode()):
            raise ProtocolError(E_AUTH, "missing or wrong token; read it from the discovery "
                                        "file")
        self.check_speaks()

    def check_speaks(self) -> None:
        """Raise unless this hello speaks our version and asks only for features we have."""
        if self.protocol != PROTOCOL_VERSION:
            raise ProtocolError(E_VERSION, f"this backend speaks protocol {PROTOCOL_VERSION}, "
                                           f"the client {shown(self.protocol)}; update the "
                                           "plug-in")
        missing = [name for name in self.features if name not in FEATURES]
        if missing:
            raise ProtocolError(E_MISSING_FEATURE,
                                f"this backend lacks {', '.join(missing)}; update it")


@dataclass(frozen=True)
class Welcome:
    """server -> client: the backend's name, its capabilities (operations, engines,
    models, limits) and the features it speaks (none listed: older than features)."""

    server: str
    capabilities: dict
    protocol: int = PROTOCOL_VERSION
    features: tuple[str, ...] = FEATURES

    def to_json(self) -> str:
        return encode(WELCOME, protocol=self.protocol, server=self.server,
                      capabilities=self.capabilities, features=list(self.features))

    @classmethod
    def from_json(cls, obj: dict) -> Welcome:
        capabilities = obj.get("capabilities")
        if not isinstance(capabilities, dict):
            raise ProtocolError(E_BAD_MESSAGE, "welcome.capabilities must be an object")
        return cls(_text(obj, "server", ""), capabilities, obj.get("protocol"),
                   _features(obj))


@dataclass(frozen=True)
class RunRequest:
    """client -> server: run an operation on a layer whose buffers follow as binary
    frames: `image` (3 or 4 channels), `mask` (1 channel u8, the image's size), `inputs`
    (extra layers for parameters of kind "image", by name). `offset`: where the layer
    sits, added to the result layers' offsets. `transfer`: "linear" when the samples are
    linear light (the results come back so too). `preview_side`: a quick preview, worked
    out on the image scaled down to this long side; the main layer only, at that size
    (work kept about the layer, such as relight's geometry, is reused between previews)."""

    job: str
    op: str
    params: dict
    image: BufferSpec
    mask: BufferSpec | None = None
    inputs: dict[str, BufferSpec] = field(default_factory=dict)
    offset: tuple[int, int] = (0, 0)
    transfer: str = "srgb"
    preview_side: int | None = None

    FIELDS = ("job", "op", "params", "image", "mask", "inputs", "offset", "transfer",
              "preview_side")

    def features(self) -> tuple[str, ...]:
        """The FEATURES this request relies on."""
        return tuple(name for name, used in (("transfer", self.transfer != "srgb"),
                                             ("inputs", bool(self.inputs)),
                                             ("preview", self.preview_side is not None))
                     if used)

    def buffers(self) -> list[BufferSpec]:
        """The buffers whose frames follow, in the order they are sent."""
        return [spec for spec in (self.image, self.mask, *self.inputs.values()) if spec]

    def to_json(self) -> str:
        return encode(RUN, job=self.job, op=self.op, params=self.params,
                      image=self.image.to_json(),
                      mask=self.mask.to_json() if self.mask else None,
                      offset=list(self.offset),
                      inputs={name: spec.to_json() for name, spec in self.inputs.items()},
                      transfer=self.transfer, preview_side=self.preview_side)

    @classmethod
    def from_json(cls, obj: dict, max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES
                  ) -> RunRequest:
        job = _job(obj)
        try:
            return cls._checked(obj, job, max_buffer_bytes)
        except ProtocolError as exc:
            exc.job = job
            raise

    @classmethod
    def _checked(cls, obj: dict, job: str, limit: int) -> RunRequest:
        _fields(obj, cls.FIELDS)
        op = obj.get("op")
        if not isinstance(op, str):
            raise ProtocolError(E_UNKNOWN_OPERATION, f"unknown operation {shown(op)}")
        params = obj.get("params") or {}
        if not isinstance(params, dict):
            raise ProtocolError(E_BAD_PARAMETER, "params must be a JSON object")
        image = BufferSpec.from_json(obj.get("image"), "image", limit, (3, 4))
        mask = None
        if obj.get("mask") is not None:
            mask = BufferSpec.from_json(obj["mask"], "mask", limit)
            if (mask.width, mask.height, mask.channels, mask.sample) != \
                    (image.width, image.height, 1, "u8"):
                raise ProtocolError(E_MASK_SIZE, f"the mask must be {image.width}x"
                                                 f"{image.height}x1 u8 like the image, got "
                                                 f"{mask.width}x{mask.height}x{mask.channels} "
                                                 f"{mask.sample}")
        inputs = obj.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise ProtocolError(E_BAD_MESSAGE, "run.inputs must be an object")
        inputs = {name: BufferSpec.from_json(spec, name, limit, (3, 4))
                  for name, spec in inputs.items()}
        ids = [spec.id for spec in (image, mask, *inputs.values()) if spec]
        if len(set(ids)) != len(ids):
            raise ProtocolError(E_BAD_BUFFER, "every buffer of a run needs its own id")
        transfer = obj.get("transfer", "srgb")
        if transfer not in ("srgb", "linear"):
            raise ProtocolError(E_BAD_MESSAGE, 'run.transfer must be "srgb" or "linear", got '
                                               f"{shown(transfer)}")
        preview_side = obj.get("preview_side")
        low, high = PREVIEW_SIDES
        if preview_side is not None and not (isinstance(preview_side, int) and
                                             not isinstance(preview_side, bool) and
                                             low <= preview_side <= high):
            raise ProtocolError(E_BAD_MESSAGE, f"run.preview_side must be an integer from "
                                               f"{low} to {high}, or null")
        offset = obj.get("offset", [0, 0])
        if not (isinstance(offset, list) and len(offset) == 2 and
                all(isinstance(v, int) and not isinstance(v, bool) for v in offset)):
            raise ProtocolError(E_BAD_MESSAGE, "run.offset must be [x, y] integers")
        return cls(job, op, params, image, mask, inputs, (offset[0], offset[1]), transfer,
                   preview_side)


@dataclass(frozen=True)
class Cancel:
    """client -> server: stop a run (waiting, running or still uploading) or a pull."""

    job: str

    def to_json(self) -> str:
        return encode(CANCEL, job=self.job)

    @classmethod
    def from_json(cls, obj: dict) -> Cancel:
        if not isinstance(obj.get("job"), str):
            raise ProtocolError(E_BAD_MESSAGE, "cancel.job must be a job id (a string)")
        return cls(obj["job"])


@dataclass(frozen=True)
class Pull:
    """client -> server: download one of capabilities.models, with progress."""

    job: str
    model: str

    def to_json(self) -> str:
        return encode(PULL, job=self.job, model=self.model)

    @classmethod
    def from_json(cls, obj: dict) -> Pull:
        _fields(obj, ("job", "model"))
        job = _job(obj)
        model = obj.get("model")
        if not isinstance(model, str):
            raise ProtocolError(E_BAD_PARAMETER, f"unknown model {shown(model)}", job)
        return cls(job, model)


@dataclass(frozen=True)
class Progress:
    """server -> client: how far a job (or a pull: bytes so far) has got."""

    job: str
    fraction: float
    stage: str

    def to_json(self) -> str:
        return encode(PROGRESS, job=self.job, fraction=round(float(self.fraction), 4),
                      stage=self.stage)

    @classmethod
    def from_json(cls, obj: dict) -> Progress:
        fraction = obj.get("fraction")
        if not is_number(fraction):
            raise ProtocolError(E_BAD_MESSAGE, "progress.fraction must be a number")
        return cls(_job(obj), float(fraction), _text(obj, "stage", ""))


@dataclass(frozen=True)
class Pulled:
    """server -> client: a pull finished; `path` is where the model now is."""

    job: str
    model: str
    path: str

    def to_json(self) -> str:
        return encode(PULLED, job=self.job, model=self.model, path=self.path)

    @classmethod
    def from_json(cls, obj: dict) -> Pulled:
        return cls(_job(obj), _text(obj, "model"), _text(obj, "path"))


@dataclass(frozen=True)
class ResultLayer:
    """One layer of a result: its buffer's frames follow the result message, in order.
    `role`: "layer", or "mask" for a matte; `blend`: normal, multiply or dodge (colour
    dodge); `offset`: in the run's coordinates."""

    name: str
    buffer: BufferSpec
    role: str = "layer"
    offset: tuple[int, int] = (0, 0)
    blend: str = "normal"
    visible: bool = True
    provenance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "blend": self.blend,
                "visible": self.visible, "offset": list(self.offset),
                "buffer": self.buffer.to_json(), "provenance": self.provenance}

    @classmethod
    def from_dict(cls, obj) -> ResultLayer:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise ProtocolError(E_BAD_MESSAGE, "a result layer must be an object with a name")
        offset = obj.get("offset", [0, 0])
        if not (isinstance(offset, list) and len(offset) == 2 and
                all(isinstance(v, int) for v in offset)):
            raise ProtocolError(E_BAD_MESSAGE, "a result layer's offset must be [x, y]")
        return cls(obj["name"], BufferSpec.from_json(obj.get("buffer"), obj["name"],
                                                     max_bytes=1 << 62),
                   obj.get("role", "layer"), (offset[0], offset[1]),
                   obj.get("blend", "normal"), bool(obj.get("visible", True)),
                   obj.get("provenance") or {})


@dataclass(frozen=True)
class Result:
    """server -> client: a job's layers in stack order, top first; each layer's frames
    follow in that order."""

    job: str
    layers: tuple[ResultLayer, ...]

    def to_json(self) -> str:
        return encode(RESULT, job=self.job, layers=[layer.to_dict() for layer in self.layers])

    @classmethod
    def from_json(cls, obj: dict) -> Result:
        layers = obj.get("layers")
        if not isinstance(layers, list):
            raise ProtocolError(E_BAD_MESSAGE, "result.layers must be a list")
        return cls(_job(obj), tuple(ResultLayer.from_dict(layer) for layer in layers))


@dataclass(frozen=True)
class ErrorMessage:
    """server -> client: `code` (an E_* code) for programs, `message` for people; `job`
    when the error is about one."""

    code: str
    message: str
    job: str | None = None

    def to_json(self) -> str:
        return encode(ERROR, code=self.code, message=self.message[:2000], job=self.job)

    @classmethod
    def from_json(cls, obj: dict) -> ErrorMessage:
        job = obj.get("job")
        return cls(_text(obj, "code"), _text(obj, "message", ""),
                   job if isinstance(job, str) else None)

    def error(self) -> ProtocolError:
        return ProtocolError(self.code, self.message, self.job)


MESSAGES = {HELLO: Hello, WELCOME: Welcome, RUN: RunRequest, CANCEL: Cancel, PULL: Pull,
            PROGRESS: Progress, PULLED: Pulled, RESULT: Result, ERROR: ErrorMessage}


def message(obj: dict, **limits):
    """A decoded control message as its class: `limits` go to the classes that take them
    (RunRequest: max_buffer_bytes)."""
    kind = MESSAGES[obj["type"]]
    return kind.from_json(obj, **limits) if kind is RunRequest else kind.from_json(obj)


def parse(text: str | bytes, allowed: tuple[str, ...], **limits):
    """One control message as its class (decode, then message)."""
    return message(decode(text, allowed), **limits)
