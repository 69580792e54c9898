"""`limner serve`: the local WebSocket server.

Binds to 127.0.0.1 only, writes the discovery file (owner-only) and removes it on exit,
refuses browser connections (an Origin header) and unauthenticated clients, and turns every
bad input into an error message on a connection that stays usable. Jobs go to the one
JobQueue; each result goes back only to the connection that asked for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import threading
import time
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from . import __version__, discovery, engines, imaging, models, operations, protocol
from .jobs import Cancelled, Job, JobQueue
from .protocol import ProtocolError

log = logging.getLogger("limner.server")

#: a connection must say hello within this many seconds
HELLO_SECONDS = 10
#: at most this many connections may be waiting to say hello; more are turned away (503)
MAX_WAITING_FOR_HELLO = 32
#: how long a closing connection may take to send what it still has queued
DRAIN_SECONDS = 5


class AlreadyRunning(RuntimeError):
    """Another backend answers for this state folder: a second would make it undiscoverable."""


class Server:
    def __init__(self, port: int = protocol.DEFAULT_PORT, token: str | None = None,
                 max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES,
                 max_buffer_bytes: int = protocol.DEFAULT_MAX_BUFFER_BYTES,
                 state_dir: Path | None = None, write_discovery: bool = True):
        self.requested_port = port
        self.port: int | None = None
        self.token = token or secrets.token_urlsafe(24)
        self.max_message_bytes = max_message_bytes
        self.max_buffer_bytes = max_buffer_bytes
        self.state_dir = state_dir
        self.write_discovery = write_discovery
        self.jobs: JobQueue | None = None
        self.waiting_for_hello = 0            # connections that have not said hello yet
        self._server = None
        self._worker: asyncio.Task | None = None

    def capabilities(self) -> dict:
        return {"operations": operations.schemas(), "engines": engines.describe_all(),
                "models": models.describe_all(),
                "samples": list(protocol.SAMPLE_TYPES), "chunk_bytes": protocol.CHUNK_BYTES,
                "max_message_bytes": self.max_message_bytes,
                "max_buffer_bytes": self.max_buffer_bytes}

    async def start(self) -> None:
        if self.write_discovery:
            running = discovery.answering(self.state_dir)
            if running is not None:
                folder = discovery.state_dir_of(self.state_dir)
                raise AlreadyRunning(
                    f"a Limner backend is already running for {folder} (pid {running['pid']}, "
                    f"port {running['port']}); stop it first, or give this one its own "
                    "LIMNER_STATE_DIR")
        self.jobs = JobQueue()
        self._worker = asyncio.create_task(self.jobs.worker())
        options = dict(process_request=self._admit, compression=None,
                       max_size=self.max_message_bytes, max_queue=64)
        try:
            self._server = await serve(self._handle, protocol.DEFAULT_HOST, self.requested_port,
                                       **options)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self.requested_port == 0:
                raise
            # A stale or foreign process holds the port: take a free one; clients find it
            # through the discovery file.
            log.warning("port %s is in use; using a free port instead", self.requested_port)
            self._server = await serve(self._handle, protocol.DEFAULT_HOST, 0, **options)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.write_discovery:
            path = discovery.write({"port": self.port, "token": self.token, "pid": os.getpid(),
                                    "protocol": protocol.PROTOCOL_VERSION,
                                    "version": __version__}, self.state_dir)
            log.info("discovery file: %s", path)
        log.info("limner %s listening on ws://%s:%s", __version__, protocol.DEFAULT_HOST,
                 self.port)

    async def close(self) -> None:
        """Stop within a few seconds, whatever the clients are doing."""
        if self.write_discovery:
            discovery.remove(self.token, self.state_dir)
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), DRAIN_SECONDS)
            except TimeoutError:
                log.warning("connections still open after %s s; closing anyway", DRAIN_SECONDS)
        if self._worker is not None:
            self._worker.cancel()
        if self.jobs is not None:
            self.jobs.shutdown()

    async def serve_forever(self, stop: asyncio.Event | None = None) -> None:
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self.close()

    def _admit(self, connection: ServerConnection, request):
        """Refuse browsers (any web page can open a WebSocket to localhost; browsers always
        send Origin, the editors' plug-ins never do) and a crowd of connections that have
        not said hello yet."""
        if "Origin" in request.headers:
            log.warning("refused a connection with Origin %s",
                        protocol.shown(request.headers["Origin"]))
            return connection.respond(HTTPStatus.FORBIDDEN,
                                      "Limner refuses browser connections (Origin header).\n")
        if self.waiting_for_hello >= MAX_WAITING_FOR_HELLO:
            log.warning("refused a connection: %s others have not said hello yet",
                        self.waiting_for_hello)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                      "Too many connections waiting to say hello.\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        connection = Connection(self, ws)
        self.waiting_for_hello += 1
        try:
            await connection.serve()
        finally:
            if not connection.authed:
                self.waiting_for_hello -= 1


class Connection:
    """One client: authentication, the upload in progress, its jobs, and an outbox that a
    single sender task drains (so progress and results never interleave mid-buffer, and
    reading goes on while a large result is written)."""

    def __init__(self, server: Server, ws: ServerConnection):
        self.server = server
        self.ws = ws
        self.authed = False
        self.upload: dict | None = None          # the run whose buffers are arriving
        self.skip_binary = False                 # frames of a refused run: drop quietly
        self.jobs: dict[str, Job] = {}
        self.pulls: dict[str, threading.Event] = {}   # downloads in progress: their stop flag
        self.next_buffer = 1
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.sending = True                      # until the sender finds the socket gone
        self.loop = asyncio.get_running_loop()
        # on this machine: file parameters (paths the backend would read) are for local
        # clients only, should a backend ever listen beyond loopback
        host = (ws.remote_address or ("",))[0]
        self.local = host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")

    async def serve(self) -> None:
        sender = asyncio.create_task(self._send_loop())
        deadline = self.loop.call_later(HELLO_SECONDS, self._no_hello)
        try:
            async for message in self.ws:
                try:
                    if isinstance(message, str):
                        self.skip_binary = False
                        await self._on_text(message)
                    else:
                        self._on_binary(message)
                except ProtocolError as exc:
                    self.send(exc.to_message())
                    # pixels of a refused run may already be on their way: drop them quietly
                    # until the client's next text message (unless another run's upload is
                    # under way: the frames that follow are its)
                    if isinstance(message, str) and self.upload is None:
                        self.skip_binary = True
                    if exc.code == protocol.E_AUTH:
                        await self._drain_then_close(protocol.CLOSE_POLICY, "authentication failed")
                        return
                except Exception:   # a bug must not cost the client its connection
                    log.exception("could not handle a message")
                    self.send(protocol.error(protocol.E_BAD_MESSAGE,
                                             "the backend could not handle that message"))
                    if not self.authed:
                        await self._drain_then_close(protocol.CLOSE_POLICY, "bad hello")
                        return
        except ConnectionClosed:
            pass
        finally:
            deadline.cancel()
            self.server.jobs.drop_client(self)
            for stop in self.pulls.values():
                stop.set()
            sender.cancel()

    def _no_hello(self) -> None:
        """A connection that has not said hello in time is closed: idle sockets must not
        pile up until the backend runs out of file descriptors."""
        if not self.authed:
            log.info("closing a connection that sent no hello in %s s", HELLO_SECONDS)
            asyncio.ensure_future(self.ws.close(protocol.CLOSE_POLICY, "no hello in time"))

    # ---------------------------------------------------------------- outgoing

    def send(self, item) -> None:
        """Queue a text message, or a (BufferSpec, bytes) buffer, for the sender task
        (dropped once the socket is gone: nobody will read it)."""
        if self.sending:
            self.outbox.put_nowait(item)

    async def _send_loop(self) -> None:
        try:
            while True:
                item = await self.outbox.get()
                try:
                    if isinstance(item, str):
                        await self.ws.send(item)
                    else:
                        for frame in protocol.frames(*item):
                            await self.ws.send(frame)
                finally:
                    self.outbox.task_done()
        except ConnectionClosed:
            pass
        finally:                     # whatever is left will never go: let drains finish
            self.sending = False
            while not self.outbox.empty():
                self.outbox.get_nowait()
                self.outbox.task_done()

    async def _drain_then_close(self, code: int, reason: str) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.outbox.join(), DRAIN_SECONDS)
        await self.ws.close(code, reason)

    # ---------------------------------------------------------------- incoming

    async def _on_text(self, text: str) -> None:
        if not self.authed:
            msg = self._decode(text, (protocol.HELLO,), "the first message must be hello")
            token = msg.get("token")
            if not isinstance(token, str) or not secrets.compare_digest(
                    token.encode("utf-8", "surrogatepass"), self.server.token.encode()):
                raise ProtocolError(protocol.E_AUTH, "missing or wrong token; read it from the "
                                                     "discovery file")
            if msg.get("protocol") != protocol.PROTOCOL_VERSION:
                raise ProtocolError(protocol.E_VERSION,
                                    f"this backend speaks protocol {protocol.PROTOCOL_VERSION}, "
                                    f"the client {protocol.shown(msg.get('protocol'))}; update "
                                    "the plug-in")
            self.authed = True
            self.server.waiting_for_hello -= 1
            self.send(protocol.welcome(f"limner {__version__}", self.server.capabilities()))
            return
        msg = protocol.decode(text, protocol.CLIENT_TYPES)
        if msg["type"] == protocol.RUN:
            self._on_run(msg)
        elif msg["type"] == protocol.PULL:
            self._on_pull(msg)
        elif msg["type"] == protocol.CANCEL:
            self._on_cancel(msg.get("job"))
        else:
            raise ProtocolError(protocol.E_BAD_MESSAGE, "hello was already received")

    def _on_cancel(self, job_id) -> None:
        if not isinstance(job_id, str):
            raise ProtocolError(protocol.E_BAD_MESSAGE, "cancel.job must be a job id (a string)")
        if job_id in self.pulls:
            self.pulls[job_id].set()
        elif self.upload is not None and self.upload["job"] == job_id:
            self.upload = None           # its remaining frames are dropped as they come
            self.skip_binary = True
            self.send(protocol.error(protocol.E_CANCELLED,
                                     f"job {job_id} was cancelled while uploading", job_id))
        elif not self.server.jobs.cancel(self, job_id):
            raise ProtocolError(protocol.E_UNKNOWN_JOB,
                                f"no waiting or running job {protocol.shown(job_id)}", job_id)

    def _decode(self, text: str, allowed, hint: str) -> dict:
        try:
            return protocol.decode(text, allowed)
        except ProtocolError as exc:
            raise ProtocolError(protocol.E_AUTH, f"{hint}: {exc.message}") from None

    def _new_job_id(self, msg: dict) -> str:
        job_id = msg.get("job")
        if not isinstance(job_id, str) or not 0 < len(job_id) <= 64:
            raise ProtocolError(protocol.E_BAD_MESSAGE, f"{msg['type']}.job must be a string id "
                                                        "of 1 to 64 characters")
        if job_id in self.jobs or job_id in self.pulls:
            raise ProtocolError(protocol.E_BAD_MESSAGE, f"job id {job_id!r} is already in use",
                                job_id)
        return job_id

    def _on_pull(self, msg: dict) -> None:
        job_id, name = self._new_job_id(msg), msg.get("model")
        if not isinstance(name, str) or name not in models.MODELS:
            raise ProtocolError(protocol.E_BAD_PARAMETER, f"unknown model {protocol.shown(name)}"
                                f"; known: {', '.join(models.MODELS)}", job_id)
        self.pulls[job_id] = threading.Event()
        asyncio.create_task(self._pull(job_id, name))

    async def _pull(self, job_id: str, name: str) -> None:
        """Download on a thread of its own (jobs keep running meanwhile), reporting the
        bytes at most every 1 % or half second; a cancel stops it at the next chunk."""
        info, stop, last = models.MODELS[name], self.pulls[job_id], [0.0, -1.0]
        self.send(protocol.progress(job_id, 0.0, f"downloading {name} ({info.size_mb} MB, "
                                                 f"{info.licence})"))

        def on_bytes(done: int, total: int) -> None:       # called from the download threads
            if stop.is_set():
                raise Cancelled()
            fraction, now = done / total if total else 0.0, time.monotonic()
            if fraction - last[1] >= 0.01 or now - last[0] >= 0.5 or done == total:
                last[:] = now, fraction
                self.loop.call_soon_threadsafe(self.send, protocol.progress(
                    job_id, fraction, f"{name}: {done / 2**20:.0f} of {total / 2**20:.0f} MB"))

        try:
            path = await in_daemon_thread(models.pull, name, on_bytes)
        except Cancelled:
            self.send(protocol.error(protocol.E_CANCELLED, f"downloading {name} was cancelled; "
                                     "pull it again to continue (finished files are kept)",
                                     job_id))
        except Exception as exc:  # noqa: BLE001 - the hub's many errors all reach the user
            self.send(protocol.error(protocol.E_OPERATION_FAILED,
                                     f"downloading {name} failed: {exc}", job_id))
        else:
            self.send(protocol.pulled(job_id, name, str(path)))
        finally:
            del self.pulls[job_id]

    def _on_run(self, msg: dict) -> None:
        job_id = msg.get("job")
        try:
            job_id = self._new_job_id(msg)
            if self.upload is not None:
                raise ProtocolError(protocol.E_BUSY, f"job {self.upload['job']!r} is still "
                                                     "uploading; send its buffers first")
            op = operations.get(msg.get("op"))
            params = op.validate(msg.get("params"))
            if not self.local:
                refuse_file_parameters(op, params)
            limit = self.server.max_buffer_bytes
            image = protocol.BufferSpec.from_json(msg.get("image"), "image", limit, (3, 4))
            mask = None
            if msg.get("mask") is not None:
                mask = protocol.BufferSpec.from_json(msg["mask"], "mask", limit)
                if (mask.width, mask.height, mask.channels, mask.sample) != \
                        (image.width, image.height, 1, "u8"):
                    raise ProtocolError(protocol.E_MASK_SIZE,
                                        f"the mask must be {image.width}x{image.height}x1 u8 like "
                                        f"the image, got {mask.width}x{mask.height}x"
                                        f"{mask.channels} {mask.sample}")
            inputs = self._declared_inputs(op, msg.get("inputs"), limit)
            ids = [s.id for s in (image, mask, *inputs.values()) if s is not None]
            if len(set(ids)) != len(ids):
                raise ProtocolError(protocol.E_BAD_BUFFER, "every buffer of a run needs its own id")
            transfer = msg.get("transfer", "srgb")
            if transfer not in ("srgb", "linear"):
                raise ProtocolError(protocol.E_BAD_MESSAGE, 'run.transfer must be "srgb" or '
                                                            f'"linear", got {protocol.shown(transfer)}')
            preview_side = msg.get("preview_side")
            low, high = protocol.PREVIEW_SIDES
            if preview_side is not None and (not isinstance(preview_side, int) or
                                             isinstance(preview_side, bool) or
                                             not low <= preview_side <= high):
                raise ProtocolError(protocol.E_BAD_MESSAGE,
                                    f"run.preview_side must be an integer from {low} to "
                                    f"{high}, or null")
            offset = msg.get("offset", [0, 0])
            if not (isinstance(offset, list) and len(offset) == 2 and
                    all(isinstance(v, int) and not isinstance(v, bool) for v in offset)):
                raise ProtocolError(protocol.E_BAD_MESSAGE, "run.offset must be [x, y] integers")
        except ProtocolError as exc:
            exc.job = job_id if isinstance(job_id, str) else None
            raise
        buffers = {spec.id: protocol.BufferAssembler(spec)
                   for spec in (image, mask, *inputs.values()) if spec}
        self.upload = {"job": job_id, "op": op, "params": params, "image": image,
                       "mask": mask, "inputs": inputs, "offset": offset, "transfer": transfer,
                       "preview_side": preview_side, "buffers": buffers}

    @staticmethod
    def _declared_inputs(op, declared, limit: int) -> dict:
        """Extra layers for the operation's image parameters, by parameter name."""
        if not declared:
            return {}
        if not isinstance(declared, dict):
            raise ProtocolError(protocol.E_BAD_MESSAGE, "run.inputs must be an object")
        kinds = {p.name: p.kind for p in op.all_params()}
        for name in declared:
            if kinds.get(name) != "image":
                takes = [n for n, k in kinds.items() if k == "image"]
                raise ProtocolError(protocol.E_BAD_PARAMETER,
                                    f"{op.id}: {protocol.shown(name)} is not an image "
                                    f"parameter; it takes {', '.join(takes) or 'no extra layers'}")
        return {name: protocol.BufferSpec.from_json(spec, name, limit, (3, 4))
                for name, spec in declared.items()}

    def _on_binary(self, frame: bytes) -> None:
        if self.skip_binary:
            return
        if not self.authed:
            raise ProtocolError(protocol.E_AUTH, "the first message must be hello, not pixels")
        if self.upload is None:
            raise ProtocolError(protocol.E_UNEXPECTED_BINARY,
                                "binary frame with no run waiting for pixels")
        upload = self.upload
        try:
            header, payload = protocol.parse_frame(frame)
            if header.buffer not in upload["buffers"]:
                raise ProtocolError(protocol.E_SIZE_MISMATCH,
                                    f"buffer {header.buffer} is not one the run declared "
                                    f"({', '.join(map(str, upload['buffers']))})")
            upload["buffers"][header.buffer].add(header, payload)
        except ProtocolError as exc:
            exc.job = upload["job"]
            self.upload = None
            self.skip_binary = True   # the rest of this upload's frames
            raise
        if all(b.done for b in upload["buffers"].values()):
            self.upload = None
            self._start_job(upload)

    def _start_job(self, upload: dict) -> None:
        image_buf = upload["buffers"][upload["image"].id]
        image = imaging.from_bytes(image_buf.data, upload["image"])
        mask = None
        if upload["mask"] is not None:
            mask_buf = upload["buffers"][upload["mask"].id]
            mask = imaging.from_bytes(mask_buf.data, upload["mask"])[:, :, 0]
        params = dict(upload["params"])
        for name, spec in upload["inputs"].items():
            params[name] = imaging.from_bytes(upload["buffers"][spec.id].data, spec)
        job_id = upload["job"]

        def report(fraction: float, stage: str) -> None:   # called from the worker thread
            self.loop.call_soon_threadsafe(self.send, protocol.progress(job_id, fraction, stage))

        job = Job(job_id, self, upload["op"], params, image, mask, report,
                  self.loop.create_future(), transfer=upload["transfer"],
                  preview_side=upload["preview_side"])
        self.jobs[job_id] = job
        ahead = self.server.jobs.submit(job)
        self.send(protocol.progress(job_id, 0.0, f"queued ({ahead} ahead)" if ahead else "started"))
        asyncio.create_task(self._deliver(job, upload["offset"]))

    async def _deliver(self, job: Job, offset: list[int]) -> None:
        try:
            layers = await job.done
        except Cancelled:
            self.send(protocol.error(protocol.E_CANCELLED, f"job {job.id} was cancelled", job.id))
            return
        except ProtocolError as exc:
            self.send(protocol.error(exc.code, exc.message, job.id))
            return
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self.send(protocol.error(protocol.E_OPERATION_FAILED, str(exc), job.id))
            return
        finally:
            self.jobs.pop(job.id, None)
        described, buffers = [], []
        for layer in layers:
            spec, data = imaging.to_bytes(layer.pixels)
            spec = protocol.BufferSpec(self.next_buffer, spec.width, spec.height,
                                       spec.channels, spec.sample)
            self.next_buffer += 1
            described.append({"name": layer.name, "role": layer.role, "blend": layer.blend,
                              "visible": layer.visible,
                              "offset": [offset[0] + layer.offset[0], offset[1] + layer.offset[1]],
                              "buffer": spec.to_json(), "provenance": layer.provenance})
            buffers.append((spec, data))
        self.send(protocol.result(job.id, described))
        for item in buffers:
            self.send(item)


def in_daemon_thread(fn, *args) -> asyncio.Future:
    """`fn(*args)` on a thread of its own that never holds up the process's exit: a
    download stuck on an unreachable hub must not keep a stopped backend alive."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(lambda e=exc: future.done() or future.set_exception(e))
        else:
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(result))

    threading.Thread(target=run, name="limner-download", daemon=True).start()
    return future


def refuse_file_parameters(op: operations.Operation, params: dict) -> None:
    """File parameters name paths on the backend's machine: only a client on that machine
    may use them (a remote one sends the picture as a layer, in run.inputs)."""
    named = [p.name for p in op.all_params() if p.kind in ("file", "image")
             and isinstance(params.get(p.name), str) and params[p.name]]
    if named:
        raise ProtocolError(protocol.E_BAD_PARAMETER,
                            f"{op.id}: {', '.join(named)} name files on the backend's machine, "
                            "which only a client on that machine may do; send the picture as "
                            "a layer (run.inputs)")


class ServerThread:
    """A server on its own event loop in a background thread: for the CLI when no backend
    is running, and for tests and benchmarks that need a real server over a real socket."""

    def __init__(self, **kwargs):
        self.server = Server(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="limner-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._started.wait(60)
        if self._error:
            raise self._error
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def uri(self) -> str:
        return f"ws://{protocol.DEFAULT_HOST}:{self.server.port}"

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.close()

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
