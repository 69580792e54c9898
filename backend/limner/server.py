"""`limner serve`: the WebSocket server.

Locally it binds to 127.0.0.1 only, writes the discovery file (owner-only) and removes it on exit,
refuses browser connections (an Origin header) and unauthenticated clients, and turns every
bad input into an error message on a connection that stays usable. Jobs go to the one
JobQueue; each result goes back only to the connection that asked for it. In studio mode
(studio.py) it listens where it is told, over TLS only, with the studio's users and their
limits instead of the discovery file's token.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import secrets
import threading
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from . import __version__, cache, discovery, downloads, engines, jobs, models, operations, protocol
from .jobs import Job, JobQueue
from .protocol import ErrorMessage, ProtocolError
from .studio import Studio, User
from .transfer import DRAIN_SECONDS, Outbox, Upload, deliver

log = logging.getLogger("limner.server")

#: a connection must say hello within this many seconds
HELLO_SECONDS = 10
#: a studio connection's opening handshake (TCP, TLS, HTTP upgrade) may take this long
STUDIO_OPEN_SECONDS = 30
#: at most this many connections may be waiting to say hello: a new one closes the one
#: that has waited longest, so idle sockets held by someone without the token cannot lock
#: the plug-ins out (they say hello at once)
MAX_WAITING_FOR_HELLO = 32


class AlreadyRunning(RuntimeError):
    """Another backend answers for this state folder: a second would make it undiscoverable."""


class Server:
    def __init__(self, port: int = protocol.DEFAULT_PORT, token: str | None = None,
                 max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES,
                 max_buffer_bytes: int = protocol.DEFAULT_MAX_BUFFER_BYTES,
                 state_dir: Path | None = None, write_discovery: bool = True,
                 unload_after: float = 0, host: str = protocol.DEFAULT_HOST,
                 studio: Studio | None = None):
        self.requested_port = port
        self.port: int | None = None
        self.token = token or secrets.token_urlsafe(24)
        self.max_message_bytes = max_message_bytes
        self.max_buffer_bytes = max_buffer_bytes
        self.state_dir = state_dir
        self.host = host
        self.studio = studio
        # a studio server is found by its address, not by the local discovery file
        self.write_discovery = write_discovery and studio is None
        self.connections: set[Connection] = set()
        self.unload_after = unload_after
        self.jobs: JobQueue | None = None
        # connections that have not said hello yet, oldest first
        self.waiting_for_hello: dict[Connection, None] = {}
        self._server = None
        self._worker: asyncio.Task | None = None

    def capabilities(self) -> dict:
        return {"operations": operations.schemas(), "engines": engines.describe_all(),
                "models": models.describe_all(engines.using),
                "samples": list(protocol.SAMPLE_TYPES), "chunk_bytes": protocol.CHUNK_BYTES,
                "max_message_bytes": self.max_message_bytes,
                "max_buffer_bytes": self.max_buffer_bytes,
                # what is in memory now (limner status): the models and the layer cache
                "loaded": engines.loaded(), "cache_mb": round(cache.LAYERS.bytes_used / 2**20, 1),
                "memory_mb": jobs.resident_mb()}

    async def start(self) -> None:
        if self.write_discovery:
            running = discovery.answering(self.state_dir)
            if running is not None:
                folder = discovery.state_dir_of(self.state_dir)
                raise AlreadyRunning(
                    f"a Limner backend is already running for {folder} (pid {running['pid']}, "
                    f"port {running['port']}); stop it first, or give this one its own "
                    "LIMNER_STATE_DIR")
        engines = self.studio.engines if self.studio else None
        # on Ray the replicas hold the models: the front has none to let go
        self.jobs = JobQueue(unload_after=self.unload_after) if engines is None else \
            JobQueue(engines.run, workers=engines.replicas)
        self._worker = asyncio.create_task(self.jobs.worker())
        options = dict(process_request=self._admit, compression=None,
                       max_size=self.max_message_bytes, max_queue=64,
                       ssl=self.studio.tls if self.studio else None,
                       # a studio's editors are across a network: TLS and all, they get
                       # longer than loopback's 10 s to open
                       open_timeout=STUDIO_OPEN_SECONDS if self.studio else 10)
        try:
            self._server = await serve(self._handle, self.host, self.requested_port,
                                       **options)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self.requested_port == 0:
                raise
            if self.studio:      # its users are told the address: it must be this one
                raise OSError(exc.errno, f"port {self.requested_port} on {self.host} is in "
                                         "use; stop what holds it or give --port") from None
            # A stale or foreign process holds the port: take a free one; clients find it
            # through the discovery file.
            log.warning("port %s is in use; using a free port instead", self.requested_port)
            self._server = await serve(self._handle, self.host, 0, **options)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.write_discovery:
            path = discovery.write({"port": self.port, "token": self.token, "pid": os.getpid(),
                                    "protocol": protocol.PROTOCOL_VERSION,
                                    "version": __version__}, self.state_dir)
            log.info("discovery file: %s", path)
        log.info("limner %s listening on %s", __version__, self.uri)
        if self.studio:
            log.info("studio certificate SHA-256 fingerprint (pin it in the plug-ins): %s",
                     self.studio.fingerprint)

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.studio else 'ws'}://{host}:{self.port}"

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
                        protocol.shown(request.headers.get_all("Origin")))
            return connection.respond(HTTPStatus.FORBIDDEN,
                                      "Limner refuses browser connections (Origin header).\n")
        if len(self.waiting_for_hello) >= MAX_WAITING_FOR_HELLO:
            oldest = next(iter(self.waiting_for_hello))
            del self.waiting_for_hello[oldest]
            log.warning("%s connections have not said hello: closing the one that waited "
                        "longest", MAX_WAITING_FOR_HELLO)
            asyncio.ensure_future(oldest.ws.close(protocol.CLOSE_POLICY,
                                                  "too many connections without hello"))
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        connection = Connection(self, ws)
        self.waiting_for_hello[connection] = None
        self.connections.add(connection)
        try:
            await connection.serve()
        finally:
            self.waiting_for_hello.pop(connection, None)
            self.connections.discard(connection)


class Connection:
    """One client: the handshake, dispatch of its messages, the upload in progress, its
    jobs and pulls. Checking messages is protocol's; pixels in and out and the outbox,
    transfer's; pulls, downloads'."""

    def __init__(self, server: Server, ws: ServerConnection):
        self.server = server
        self.ws = ws
        self.authed = False
        self.user: User | None = None             # studio mode: who this is
        self.upload: Upload | None = None        # the run whose buffers are arriving
        self.skip_binary = False                 # frames of a refused run: drop quietly
        self.jobs: dict[str, Job] = {}
        self.pulls: dict[str, threading.Event] = {}   # downloads in progress: their stop flag
        self.buffer_ids = itertools.count(1)
        self.outbox = Outbox(ws)
        self.send = self.outbox.send
        self.loop = asyncio.get_running_loop()
        # file parameters (paths the backend would read) are for clients on this machine
        # only; a studio's users are never the machine's owner, wherever they connect from
        self.address = str((ws.remote_address or ("",))[0])
        self.local = server.studio is None and (
            self.address in ("127.0.0.1", "::1", "localhost") or self.address.startswith("127."))

    async def serve(self) -> None:
        sender = asyncio.create_task(self.outbox.run())
        deadline = self.loop.call_later(HELLO_SECONDS, self._no_hello)
        try:
            async for message in self.ws:
                try:
                    if isinstance(message, str):
                        self.skip_binary = False
                        if self.authed:
                            self._on_text(message)
                        else:
                            await self._on_hello(message)
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
                        await self.outbox.close(protocol.CLOSE_POLICY, "authentication failed")
                        return
                except Exception:   # a bug must not cost the client its connection
                    log.exception("could not handle a message")
                    self.send(ErrorMessage(protocol.E_BAD_MESSAGE,
                                           "the backend could not handle that message").to_json())
                    if not self.authed:
                        await self.outbox.close(protocol.CLOSE_POLICY, "bad hello")
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

    def _on_text(self, text: str) -> None:
        obj = protocol.decode(text, protocol.CLIENT_TYPES)
        if obj["type"] == protocol.HELLO:
            raise ProtocolError(protocol.E_BAD_MESSAGE, "hello was already received")
        msg = protocol.message(obj, max_buffer_bytes=self.server.max_buffer_bytes)
        if isinstance(msg, protocol.RunRequest):
            self._new_job(msg.job)
            if self.user is not None:
                self._within_limits(msg)
            if self.upload is not None:
                raise ProtocolError(protocol.E_BUSY, f"job {self.upload.job!r} is still "
                                                     "uploading; send its buffers first", msg.job)
            self.upload = Upload.begin(msg, self.local)
        elif isinstance(msg, protocol.Pull):
            self._new_job(msg.job)
            if self.user is not None and not self.user.admin:
                raise ProtocolError(protocol.E_FORBIDDEN, "only the studio's admins may "
                                    "download models; ask one to pull it", msg.job)
            downloads.check(msg)
            stop = self.pulls[msg.job] = threading.Event()
            task = asyncio.create_task(downloads.pull(msg.job, msg.model, self.send, stop))
            task.add_done_callback(lambda _: self.pulls.pop(msg.job, None))
        else:
            self._on_cancel(msg.job)

    async def _on_hello(self, text: str) -> None:
        arrived = self.loop.time()
        try:
            try:
                hello = protocol.parse(text, (protocol.HELLO,))
            except ProtocolError as exc:
                raise ProtocolError(protocol.E_AUTH, f"the first message must be hello: "
                                                     f"{exc.message}") from None
            if self.server.studio is None:
                hello.check(self.server.token)
            else:
                self.user = await asyncio.to_thread(self.server.studio.users.check, hello.token)
                if self.user is None:
                    raise ProtocolError(protocol.E_AUTH, "missing or wrong token; ask the "
                                        "studio's admin for yours (limner users add)")
                hello.check_speaks()
        except ProtocolError as exc:
            if exc.code == protocol.E_AUTH and self.server.studio is not None:
                # one answer after one delay, whoever asks; longer for repeated failures
                wait = self.server.studio.doorman.failed(self.address)
                log.warning("studio: a failed hello from %s", self.address)
                await asyncio.sleep(max(0.0, arrived + wait - self.loop.time()))
            raise
        self.authed = True
        self.server.waiting_for_hello.pop(self, None)
        if self.user is not None:
            log.info("studio: %s connected from %s", self.user.name, self.address)
        self.send(protocol.Welcome(f"limner {__version__}", self.server.capabilities())
                  .to_json())

    def _within_limits(self, request: protocol.RunRequest) -> None:
        """A studio user's jobs (queued, running or uploading, on all their connections)
        and the pixels held for them stay within the studio's limits per user."""
        studio, mine = self.server.studio, [c for c in self.server.connections
                                            if c.user == self.user]
        jobs = sum(len(c.jobs) + (c.upload is not None) for c in mine)
        if jobs >= studio.jobs_per_user:
            raise ProtocolError(protocol.E_USER_LIMIT,
                                f"you have {jobs} jobs queued or running, the studio's limit "
                                "per user; wait for one to finish, or cancel one",
                                request.job)
        held = sum(c.bytes_held() for c in mine)
        size = sum(spec.nbytes for spec in request.buffers())
        if held + size > studio.bytes_per_user:
            raise ProtocolError(protocol.E_USER_LIMIT,
                                f"this layer ({size / 2**20:.0f} MB) and your other jobs "
                                f"({held / 2**20:.0f} MB) are over the studio's limit of "
                                f"{studio.bytes_per_user / 2**20:.0f} MB per user; wait for "
                                "a job to finish, or send a smaller layer", request.job)

    def bytes_held(self) -> int:
        """The pixels this connection's uploads and unfinished jobs hold on the server."""
        uploading = sum(spec.nbytes for spec in self.upload.request.buffers()) \
            if self.upload else 0
        return uploading + sum(job.image.nbytes + (0 if job.mask is None else job.mask.nbytes)
                               for job in self.jobs.values())

    def _new_job(self, job: str) -> None:
        if job in self.jobs or job in self.pulls:
            raise ProtocolError(protocol.E_BAD_MESSAGE, f"job id {job!r} is already in use", job)

    def _on_cancel(self, job: str) -> None:
        if job in self.pulls:
            self.pulls[job].set()
        elif self.upload is not None and self.upload.job == job:
            self.upload = None           # its remaining frames are dropped as they come
            self.skip_binary = True
            self.send(ErrorMessage(protocol.E_CANCELLED, f"job {job} was cancelled while "
                                   "uploading", job).to_json())
        elif not self.server.jobs.cancel(self, job):
            raise ProtocolError(protocol.E_UNKNOWN_JOB,
                                f"no waiting or running job {protocol.shown(job)}", job)

    def _on_binary(self, frame: bytes) -> None:
        if self.skip_binary:
            return
        if not self.authed:
            raise ProtocolError(protocol.E_AUTH, "the first message must be hello, not pixels")
        upload = self.upload
        if upload is None:
            raise ProtocolError(protocol.E_UNEXPECTED_BINARY,
                                "binary frame with no run waiting for pixels")
        try:
            complete = upload.add(frame)
        except ProtocolError:
            self.upload, self.skip_binary = None, True   # and the rest of its frames
            raise
        if complete:
            self.upload = None
            self._start_job(upload)

    def _start_job(self, upload: Upload) -> None:
        request, (image, mask, params) = upload.request, upload.arrays()

        def report(fraction: float, stage: str) -> None:   # called from the worker thread
            self.loop.call_soon_threadsafe(
                self.send, protocol.Progress(request.job, fraction, stage).to_json())

        job = Job(request.job, self, upload.op, params, image, mask, report,
                  self.loop.create_future(), transfer=request.transfer,
                  preview_side=request.preview_side,
                  user=self.user.name if self.user else None)
        self.jobs[job.id] = job
        ahead = self.server.jobs.submit(job)
        self.send(protocol.Progress(job.id, 0.0, f"queued ({ahead} ahead)" if ahead
                                    else "started").to_json())
        task = asyncio.create_task(deliver(job, request.offset, self.send, self.buffer_ids))
        task.add_done_callback(lambda _: self.jobs.pop(job.id, None))


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
        return self.server.uri

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:     # what is still running (a job's delivery) ends here, as asyncio.run's
            left = asyncio.all_tasks(self._loop)
            for task in left:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            self._loop.close()

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
