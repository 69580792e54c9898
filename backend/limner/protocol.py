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

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

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

# Message types.
HELLO = "hello"          # client -> server: {protocol, token, client}
WELCOME = "welcome"      # server -> client: {protocol, server, capabilities}
RUN = "run"              # client -> server: {job, op, params, image, mask?, inputs?, offset?,
#                          transfer?: "srgb" (default) or "linear" samples,
#                          preview_side?: answer a quick preview, the image scaled down to
#                          this long side first (PREVIEW_SIDES); the result's layers come
#                          at that size, the main layer only}
CANCEL = "cancel"        # client -> server: {job} (a run or a pull)
PULL = "pull"            # client -> server: {job, model}: download a model, with progress
PULLED = "pulled"        # server -> client: {job, model, path}: the pull finished
PROGRESS = "progress"    # server -> client: {job, fraction, stage}
RESULT = "result"        # server -> client: {job, layers: [...]}, then the layers' frames
ERROR = "error"          # server -> client: {code, message, job?}
CLIENT_TYPES = (HELLO, RUN, CANCEL, PULL)
SERVER_TYPES = (WELCOME, PROGRESS, RESULT, PULLED, ERROR)

# Error codes: a client can branch on these; the message is for people.
E_BAD_JSON = "bad_json"
E_UNKNOWN_TYPE = "unknown_type"
E_BAD_MESSAGE = "bad_message"
E_AUTH = "auth"
E_VERSION = "version"
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
        return error(self.code, self.message, self.job)


def shown(value, limit: int = 80) -> str:
    """`value` as it goes into a message for people: its repr, cut to about `limit`
    characters, so a hostile or broken client's 4 MB value is never echoed back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 15]}… ({len(text)} chars)"


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


def hello(token: str, client: str) -> str:
    return encode(HELLO, protocol=PROTOCOL_VERSION, token=token, client=client)


def welcome(server: str, capabilities: dict) -> str:
    return encode(WELCOME, protocol=PROTOCOL_VERSION, server=server, capabilities=capabilities)


def run(job: str, op: str, params: dict, image: BufferSpec, mask: BufferSpec | None = None,
        offset: tuple[int, int] = (0, 0), inputs: dict[str, BufferSpec] | None = None,
        transfer: str = "srgb", preview_side: int | None = None) -> str:
    """`inputs`: extra layers for parameters of kind "image", by parameter name.
    `transfer`: "linear" when the samples are linear light (Krita's g10 profiles); the
    result layers come back in the same encoding. `preview_side`: a preview, worked out
    on the image scaled down to this long side (what a dragged light control asks for:
    work the backend can keep about the layer, such as relight's geometry, is reused
    between previews of the same pixels)."""
    return encode(RUN, job=job, op=op, params=params, image=image.to_json(),
                  mask=mask.to_json() if mask else None, offset=list(offset),
                  inputs={name: spec.to_json() for name, spec in (inputs or {}).items()},
                  transfer=transfer, preview_side=preview_side)


def cancel(job: str) -> str:
    return encode(CANCEL, job=job)


def pull(job: str, model: str) -> str:
    """Download one of capabilities["models"]; progress messages carry the bytes so far."""
    return encode(PULL, job=job, model=model)


def pulled(job: str, model: str, path: str) -> str:
    return encode(PULLED, job=job, model=model, path=path)


def progress(job: str, fraction: float, stage: str) -> str:
    return encode(PROGRESS, job=job, fraction=round(float(fraction), 4), stage=stage)


def result(job: str, layers: list[dict]) -> str:
    """`layers`: [{name, role, blend ("normal", "multiply" or "dodge": colour dodge),
    visible, offset, buffer: BufferSpec.to_json(),
    provenance}] in stack order, top first; each layer's frames follow in that order."""
    return encode(RESULT, job=job, layers=layers)


def error(code: str, message: str, job: str | None = None) -> str:
    return encode(ERROR, code=code, message=message[:2000], job=job)


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
