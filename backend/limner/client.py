"""The client that the CLI and both editor plug-ins use to talk to the backend.

Standard library plus the pure-Python `websockets` package (its sync client), no numpy:
it moves raw bytes, so it runs inside the editors' own Python. `run` blocks the calling
thread; plug-ins call it off their GUI thread and may call `cancel` from any thread.
"""

from __future__ import annotations

import contextlib
import itertools
import ssl
import uuid
from collections.abc import Callable
from pathlib import Path

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from . import discovery, protocol, schema
from .protocol import Pixels

_buffer_ids = itertools.count(1)


class BackendError(protocol.ProtocolError):
    """The backend said no (code: a protocol E_* code), or could not be reached
    (protocol.E_UNREACHABLE, E_NOT_RUNNING, E_CLOSED, E_TIMEOUT)."""


class Client:
    def __init__(self, uri: str, token: str, name: str = "limner-client", timeout: float = 10,
                 receive_timeout: float | None = None, fingerprint: str = ""):
        """`timeout`: for connecting; `receive_timeout`: the longest wait for any message
        from the backend (None: as long as a job takes). A studio server (wss://) is
        trusted by its certificate's SHA-256 `fingerprint` when one is pinned (a
        self-signed studio certificate), else by the system's certificate authorities;
        the token is sent only after that check."""
        self.receive_timeout = receive_timeout
        self._context = contextlib.ExitStack()   # websockets >= 17.1 wants connect() entered
        secure = uri.startswith("wss://")
        try:
            self.ws = self._context.enter_context(
                connect(uri, compression=None, open_timeout=timeout,
                        max_size=protocol.DEFAULT_MAX_MESSAGE_BYTES, close_timeout=2,
                        ssl=_tls(fingerprint) if secure else None))
        except ssl.SSLCertVerificationError as exc:
            raise BackendError(protocol.E_CERTIFICATE, f"the studio server at {uri} has a "
                               f"certificate this machine does not trust ({exc.verify_message}"
                               "); pin its fingerprint in the studio server setting") from None
        except (OSError, InvalidHandshake) as exc:
            raise BackendError(protocol.E_UNREACHABLE, f"cannot reach the Limner backend at "
                                                       f"{uri}: {exc}") from None
        if secure and fingerprint:
            der = self.ws.socket.getpeercert(binary_form=True) or b""
            if not protocol.same_fingerprint(fingerprint, der):
                self.close()
                raise BackendError(protocol.E_CERTIFICATE,
                                   f"the studio server at {uri} shows a certificate "
                                   f"({protocol.fingerprint(der)}) that is not the one pinned "
                                   f"({fingerprint}); the token was not sent. Ask the "
                                   "studio's admin whether the server's certificate changed")
        self.ws.send(protocol.Hello(token, name).to_json())
        welcome = self._receive_for(None)
        self.server = welcome.server
        self.capabilities = schema.Capabilities.from_json(welcome.capabilities)
        self.described = welcome.capabilities      # the welcome's JSON, state included
        self.features = welcome.features

    @classmethod
    def discover(cls, state_dir: Path | None = None, **kwargs) -> Client:
        """Connect to the backend named by the discovery file."""
        info = discovery.read(state_dir)
        if info is None:
            raise BackendError(protocol.E_NOT_RUNNING, "no Limner backend is running (no "
                               f"discovery file at {discovery.discovery_path(state_dir)})")
        return cls.from_info(info, **kwargs)

    @classmethod
    def from_info(cls, info: dict, **kwargs) -> Client:
        """Connect to the backend a discovery record names (discovery.read, or
        launcher.ensure_running, which starts one when none answers, or gives the studio
        server's setting when there is one: its url and pinned fingerprint)."""
        if info.get("url"):
            return cls(info["url"], info["token"], fingerprint=info.get("fingerprint", ""),
                       **kwargs)
        return cls(f"ws://{protocol.DEFAULT_HOST}:{info['port']}", info["token"], **kwargs)

    def close(self) -> None:
        self._context.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def operation(self, op_id: str) -> schema.OperationSpec | None:
        """One of the backend's operations, or None if it has no such operation."""
        return self.capabilities.operation(op_id)

    def require(self, *features: str) -> None:
        """Raise unless the backend speaks every one of `features` (protocol.FEATURES): a
        backend from before one would ignore it, not refuse it."""
        missing = [name for name in features if name not in self.features]
        if missing:
            raise BackendError(protocol.E_MISSING_FEATURE,
                               f"the Limner backend ({self.server}) lacks "
                               f"{', '.join(missing)}; update it")

    def run(self, op: str, params: dict, image: Pixels, mask: bytes | None = None,
            offset: tuple[int, int] = (0, 0), inputs: dict[str, Pixels] | None = None,
            transfer: str = "srgb", preview_side: int | None = None,
            on_progress: Callable[[str, float, str], None] | None = None,
            job: str | None = None) -> list[tuple[protocol.ResultLayer, Pixels]]:
        """Run one job and return its layers (top first), each with its pixels. `mask`:
        image.width x image.height u8 bytes. `inputs`: other layers for image
        parameters, by name. `transfer`: "linear" for linear-light samples.
        `preview_side`: a quick preview at that long side (the main layer only, at that
        size). `on_progress(job, fraction, stage)` is called from this thread."""
        job = job or uuid.uuid4().hex[:12]
        inputs = inputs or {}
        sent = [(image.spec(next(_buffer_ids)), image.data)]
        if mask is not None:
            sent.append((protocol.BufferSpec(next(_buffer_ids), image.width, image.height, 1,
                                             "u8"), mask))
        extra = {name: pixels.spec(next(_buffer_ids)) for name, pixels in inputs.items()}
        sent += [(extra[name], pixels.data) for name, pixels in inputs.items()]
        request = protocol.RunRequest(job, op, params, sent[0][0],
                                      sent[1][0] if mask is not None else None, extra,
                                      tuple(offset), transfer, preview_side)
        self.require(*request.features())
        self.ws.send(request.to_json())
        for spec, data in sent:
            for frame in protocol.frames(spec, data):
                self.ws.send(frame)
        while True:
            msg = self._receive_for(job)
            if isinstance(msg, protocol.Progress) and on_progress:
                on_progress(job, msg.fraction, msg.stage)
            elif isinstance(msg, protocol.Result):
                return [(layer, self._receive_pixels(layer.buffer)) for layer in msg.layers]

    def pull(self, model: str, on_progress: Callable[[str, float, str], None] | None = None,
             job: str | None = None) -> str:
        """Have the backend download a model (capabilities.models says which exist, their
        size and licence); returns where it now is. Cancel with `cancel(job)`."""
        self.require("pull")
        job = job or uuid.uuid4().hex[:12]
        self.ws.send(protocol.Pull(job, model).to_json())
        while True:
            msg = self._receive_for(job)
            if isinstance(msg, protocol.Progress) and on_progress:
                on_progress(job, msg.fraction, msg.stage)
            elif isinstance(msg, protocol.Pulled):
                return msg.path

    def cancel(self, job: str) -> None:
        """Ask the backend to stop a job or a pull; its call then raises
        BackendError('cancelled')."""
        self.ws.send(protocol.Cancel(job).to_json())

    def _receive_for(self, job: str | None):
        """The next message about `job` (or about the connection itself); an error about
        it raises. Messages about other jobs are dropped: they are about an earlier job,
        cancelled or finished, that nobody waits for (a cancel that crossed its result)."""
        while True:
            message = self._recv()
            if isinstance(message, bytes):
                continue  # frames of a result nobody waits for any more
            msg = protocol.parse(message, protocol.SERVER_TYPES)
            if getattr(msg, "job", None) not in (job, None):
                continue
            if isinstance(msg, protocol.ErrorMessage):
                raise BackendError(msg.code, msg.message, msg.job)
            return msg

    def _receive_pixels(self, spec: protocol.BufferSpec) -> Pixels:
        assembler = protocol.BufferAssembler(spec)
        while not assembler.done:
            frame = self._recv()
            if isinstance(frame, str):
                raise BackendError(protocol.E_BAD_MESSAGE,
                                   "the backend sent a message in the middle of a layer")
            assembler.add(*protocol.parse_frame(frame))
        return Pixels(assembler.data, spec.width, spec.height, spec.channels, spec.sample)

    def _recv(self):
        try:
            return self.ws.recv(timeout=self.receive_timeout)
        except TimeoutError:
            raise BackendError(protocol.E_TIMEOUT, f"the backend sent nothing for "
                                                   f"{self.receive_timeout} s") from None
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd else "no reason given"
            raise BackendError(protocol.E_CLOSED, f"the backend closed the connection: "
                                                  f"{reason}") from None


def _tls(fingerprint: str) -> ssl.SSLContext:
    """TLS for a studio server: the system's trust, or (with a pinned fingerprint, checked
    once connected) none beyond the pin, which is what makes a self-signed pair safe."""
    context = ssl.create_default_context()
    if fingerprint:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
