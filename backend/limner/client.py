"""The client that the CLI and both editor plug-ins use to talk to the backend.

Standard library plus the pure-Python `websockets` package (its sync client), no numpy:
it moves raw bytes, so it runs inside the editors' own Python. `run` blocks the calling
thread; plug-ins call it off their GUI thread and may call `cancel` from any thread.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from . import discovery, protocol

_buffer_ids = itertools.count(1)


class BackendError(protocol.ProtocolError):
    """The backend said no (code: a protocol E_* code), or could not be reached
    ("unreachable", "not_running", "closed")."""


@dataclass
class ResultLayer:
    name: str
    role: str                  # "layer", or "mask" for a matte
    offset: tuple[int, int]    # in the same coordinates as the run's offset
    spec: protocol.BufferSpec
    data: bytearray            # raw little-endian samples, spec.width x height x channels
    provenance: dict
    blend: str = "normal"      # normal, multiply or dodge (colour dodge)
    visible: bool = True


class Client:
    def __init__(self, uri: str, token: str, name: str = "limner-client", timeout: float = 10,
                 receive_timeout: float | None = None):
        """`timeout`: for connecting; `receive_timeout`: the longest wait for any message
        from the backend (None: as long as a job takes)."""
        self.receive_timeout = receive_timeout
        self._context = contextlib.ExitStack()   # websockets >= 17.1 wants connect() entered
        try:
            self.ws = self._context.enter_context(
                connect(uri, compression=None, open_timeout=timeout,
                        max_size=protocol.DEFAULT_MAX_MESSAGE_BYTES, close_timeout=2))
        except (OSError, InvalidStatus) as exc:
            raise BackendError("unreachable", f"cannot reach the Limner backend at {uri}: "
                                              f"{exc}") from None
        self.ws.send(protocol.hello(token, name))
        welcome = self._receive_for(None)
        self.server = welcome["server"]
        self.capabilities = welcome["capabilities"]

    @classmethod
    def discover(cls, state_dir: Path | None = None, **kwargs) -> Client:
        """Connect to the backend named by the discovery file."""
        info = discovery.read(state_dir)
        if info is None:
            raise BackendError("not_running", "no Limner backend is running (no discovery "
                                              f"file at {discovery.discovery_path(state_dir)})")
        return cls(f"ws://{protocol.DEFAULT_HOST}:{info['port']}", info["token"], **kwargs)

    def close(self) -> None:
        self._context.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def operation(self, op_id: str) -> dict | None:
        """The backend's schema of one operation, or None if it has no such operation."""
        return next((op for op in self.capabilities["operations"] if op["id"] == op_id), None)

    def run(self, op: str, params: dict, image: bytes, width: int, height: int, channels: int,
            sample: str, mask: bytes | None = None, offset: tuple[int, int] = (0, 0),
            on_progress: Callable[[str, float, str], None] | None = None,
            job: str | None = None,
            inputs: dict[str, tuple[bytes, int, int, int, str]] | None = None,
            transfer: str = "srgb", preview_side: int | None = None) -> list[ResultLayer]:
        """Run one job and return its layers (top first). `mask`: width x height u8 bytes.
        `inputs`: other layers for image parameters, name -> (bytes, width, height,
        channels, sample). `transfer`: "linear" for linear-light samples. `preview_side`:
        a quick preview at that long side (the main layer only, at that size).
        `on_progress(job, fraction, stage)` is called from this thread."""
        job = job or uuid.uuid4().hex[:12]
        image_spec = protocol.BufferSpec(next(_buffer_ids), width, height, channels, sample)
        mask_spec = (protocol.BufferSpec(next(_buffer_ids), width, height, 1, "u8")
                     if mask is not None else None)
        extra = {name: (protocol.BufferSpec(next(_buffer_ids), *geometry), data)
                 for name, (data, *geometry) in (inputs or {}).items()}
        self.ws.send(protocol.run(job, op, params, image_spec, mask_spec, offset,
                                  {name: spec for name, (spec, _) in extra.items()}, transfer,
                                  preview_side))
        for spec, data in ((image_spec, image), (mask_spec, mask), *extra.values()):
            if spec is not None:
                for frame in protocol.frames(spec, data):
                    self.ws.send(frame)
        while True:
            msg = self._receive_for(job)
            if msg["type"] == protocol.PROGRESS and on_progress:
                on_progress(job, msg["fraction"], msg["stage"])
            elif msg["type"] == protocol.RESULT:
                return self._receive_layers(msg["layers"])

    def pull(self, model: str, on_progress: Callable[[str, float, str], None] | None = None,
             job: str | None = None) -> str:
        """Have the backend download a model (capabilities["models"] says which exist, their
        size and licence); returns where it now is. Cancel with `cancel(job)`."""
        job = job or uuid.uuid4().hex[:12]
        self.ws.send(protocol.pull(job, model))
        while True:
            msg = self._receive_for(job)
            if msg["type"] == protocol.PROGRESS and on_progress:
                on_progress(job, msg["fraction"], msg["stage"])
            elif msg["type"] == protocol.PULLED:
                return msg["path"]

    def cancel(self, job: str) -> None:
        """Ask the backend to stop a job or a pull; its call then raises
        BackendError('cancelled')."""
        self.ws.send(protocol.cancel(job))

    def _receive_for(self, job: str | None) -> dict:
        """The next message about `job` (or about the connection itself); an error about
        it raises. Messages about other jobs are dropped: they are about an earlier job,
        cancelled or finished, that nobody waits for (a cancel that crossed its result)."""
        while True:
            message = self._recv()
            if isinstance(message, bytes):
                continue  # frames of a result nobody waits for any more
            msg = protocol.decode(message, protocol.SERVER_TYPES)
            if msg.get("job") not in (job, None):
                continue
            if msg["type"] == protocol.ERROR:
                raise BackendError(msg["code"], msg["message"], msg.get("job"))
            return msg

    def _receive_layers(self, described: list[dict]) -> list[ResultLayer]:
        layers = []
        for item in described:
            spec = protocol.BufferSpec.from_json(item["buffer"], item["name"],
                                                 max_bytes=1 << 62)
            assembler = protocol.BufferAssembler(spec)
            while not assembler.done:
                frame = self._recv()
                if isinstance(frame, str):
                    raise BackendError(protocol.E_BAD_MESSAGE,
                                       "the backend sent a message in the middle of a layer")
                assembler.add(*protocol.parse_frame(frame))
            layers.append(ResultLayer(item["name"], item["role"], tuple(item["offset"]), spec,
                                      assembler.data, item.get("provenance", {}),
                                      item.get("blend", "normal"), item.get("visible", True)))
        return layers

    def _recv(self):
        try:
            return self.ws.recv(timeout=self.receive_timeout)
        except TimeoutError:
            raise BackendError("timeout", f"the backend sent nothing for "
                                          f"{self.receive_timeout} s") from None
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd else "no reason given"
            raise BackendError("closed", f"the backend closed the connection: {reason}") from None
