"""The job queue: one worker owns the models and runs one job at a time, taking clients in
turn (round robin) so one client's long batch cannot starve another's single job; in
studio mode the turns are users', so a user with three connections does not get three
turns. Waiting jobs are told their place in the line whenever it changes. After
`unload_after` seconds without a job it lets the models and the layer cache go (a
retoucher's laptop gets the memory back), and says so when the next job loads them."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import __version__, cache, engines, imaging, operations, protocol
from .operations import Layer, Request
from .protocol import ProtocolError

log = logging.getLogger("limner.jobs")


def resident_mb() -> float:
    """This process's resident memory now, MB (0 where /proc is not there to say)."""
    try:
        with open("/proc/self/statm") as statm:
            return round(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return 0.0


@functools.cache
def _libc():
    return ctypes.CDLL("libc.so.6")


def give_back_memory() -> None:
    """Freed memory returned to the system (glibc keeps it in its arenas otherwise)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            _libc().malloc_trim(0)


class Cancelled(Exception):
    """Raised inside a running operation at its next progress report after a cancel."""


@dataclass(eq=False)       # a job is itself: its pixels are no part of equality
class Job:
    id: str
    client: Hashable
    op: operations.Operation
    params: dict
    image: np.ndarray
    mask: np.ndarray | None
    report: Callable[[float, str], None]   # thread-safe: forwards progress to the client
    done: asyncio.Future
    transfer: str = "srgb"                 # "linear": samples are linear light
    preview_side: int | None = None        # a preview: work on the image this size
    user: Hashable | None = None           # studio mode: whose turn it takes
    cancelled: threading.Event = field(default_factory=threading.Event)
    ahead: int | None = None               # jobs before it, as last said to its client

    @property
    def turn(self) -> Hashable:
        """Whose turn it waits for: its user's, or (locally) its connection's."""
        return self.client if self.user is None else self.user

    def progress(self, fraction: float, stage: str) -> None:
        if self.cancelled.is_set():
            raise Cancelled()
        self.report(fraction, stage)


def execute(job: Job) -> list[Layer]:
    """Run one job's operation and tag what it made (name and provenance) as AI-edited."""
    source, mask = job.image, job.mask
    if job.preview_side is not None:
        source, mask = imaging.shrink(source, job.preview_side), \
            None if mask is None else imaging.shrink(mask, job.preview_side)
    linear = job.transfer == "linear"
    image = imaging.encode_srgb(source) if linear else source
    layers = job.op.run(Request(image, mask, job.params, job.progress, owner=job.client,
                                preview=job.preview_side is not None))
    if linear:   # back to the client's encoding; untouched pixels stay bit-identical
        for layer in layers:
            if layer.role == "layer":
                layer.pixels = imaging.decode_srgb(layer.pixels)
                if mask is not None and layer.pixels.shape == source.shape:
                    layer.pixels = np.where(mask[:, :, None] == 0, source, layer.pixels)
    engine = job.params.get("engine")
    licence = next((e.licence for e in engines.of_kind(job.op.engine_kind or "")
                    if e.name == engine), None)
    params = {k: f"layer {v.shape[1]}x{v.shape[0]}" if isinstance(v, np.ndarray) else v
              for k, v in job.params.items()}
    for layer in layers:
        layer.name = f"{layer.name} [AI {engine or job.op.id}]"
        layer.provenance = {"ai_edited": True, "operation": job.op.id, "engine": engine,
                            "weights_licence": licence, "params": params,
                            "backend": f"limner {__version__}",
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            **layer.provenance}   # what the operation adds (models used)
    return layers


class JobQueue:
    def __init__(self, run: Callable[[Job], list[Layer]] = execute, unload_after: float = 0,
                 workers: int = 1):
        """`run(job)`: a job's work, in a worker thread; `workers`: how many jobs run at
        once (one here, where one process owns the models; one per engine replica on
        Ray)."""
        self._run = run
        self.workers = workers
        self.unload_after = unload_after
        self._released = False                     # the models were let go when idle
        self._holding = False                      # a job ran since the last release
        self._waiting: dict[Hashable, deque[Job]] = {}
        self._turns: deque[Hashable] = deque()     # clients with waiting jobs, next first
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="limner-worker")
        self.running: list[Job] = []
        self._gone: set[Hashable] = set()      # running jobs' clients, disconnected
        self.finished: deque[tuple[str, str]] = deque(maxlen=64)  # (job id, outcome)

    def submit(self, job: Job) -> int:
        """Queue a job; returns how many jobs will run before it. Others whose place it
        changed (it went ahead of their later jobs) are told."""
        if job.turn not in self._waiting:
            self._waiting[job.turn] = deque()
            self._turns.append(job.turn)
        self._waiting[job.turn].append(job)
        self._wakeup.set()
        job.ahead = next(i for i, other in enumerate(self._line()) if other is job) + \
            len(self.running)
        self._tell_places(but=job)
        return job.ahead

    def _line(self) -> list[Job]:
        """The waiting jobs in the order they will run: a turn each, in turn."""
        queues = [list(self._waiting.get(turn, ())) for turn in self._turns]
        line = []
        while any(queues):
            for queue in queues:
                if queue:
                    line.append(queue.pop(0))
        return line

    def _tell_places(self, but: Job | None = None) -> None:
        """Each waiting job whose place in the line changed hears its new place."""
        for ahead, job in enumerate(self._line(), start=len(self.running)):
            if job is not but and job.ahead != ahead:
                job.ahead = ahead
                job.report(0.0, f"queued ({ahead} ahead)")

    def cancel(self, client: Hashable, job_id: str) -> bool:
        """Cancel a waiting or running job of this client; False if there is none."""
        for job in self.running:
            if job.client == client and job.id == job_id:
                job.cancelled.set()
                return True
        for waiting in self._waiting.values():
            for job in waiting:
                if job.client == client and job.id == job_id:
                    waiting.remove(job)
                    self._finish(job, exc=Cancelled())
                    self._tell_places()
                    return True
        return False

    def drop_client(self, client: Hashable) -> None:
        """A client went away: cancel everything it asked for, forget what was cached for
        it."""
        cache.LAYERS.release(client)
        for turn, waiting in list(self._waiting.items()):
            for job in [job for job in waiting if job.client == client]:
                waiting.remove(job)
                self._finish(job, exc=Cancelled())
            if not waiting:
                del self._waiting[turn]
                if turn in self._turns:
                    self._turns.remove(turn)
        for job in self.running:
            if job.client == client:
                job.cancelled.set()
                self._gone.add(client)   # what its last job caches is forgotten too
        self._tell_places()

    def _next(self) -> Job | None:
        while self._turns:
            turn = self._turns.popleft()
            waiting = self._waiting.get(turn)
            if not waiting:
                self._waiting.pop(turn, None)
                continue
            job = waiting.popleft()
            if waiting:
                self._turns.append(turn)     # back of the line for its next job
            else:
                del self._waiting[turn]
            return job
        return None

    def _finish(self, job: Job, result=None, exc: BaseException | None = None) -> None:
        outcome = "done" if exc is None else type(exc).__name__
        self.finished.append((job.id, outcome))
        if not job.done.done():
            if exc is None:
                job.done.set_result(result)
            else:
                job.done.set_exception(exc)

    async def worker(self) -> None:
        """Run jobs as they come, `workers` at a time, until cancelled."""
        await asyncio.gather(*(self._work() for _ in range(self.workers)))

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = self._next()
            if job is None:
                self._wakeup.clear()
                if self.unload_after > 0 and self._holding and not self.running:
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), self.unload_after)
                    except asyncio.TimeoutError:   # idle: in the worker's thread, so no
                        await loop.run_in_executor(self._executor, self._release)  # job
                else:                                                   # runs meanwhile
                    await self._wakeup.wait()
                continue
            self.running.append(job)
            self._tell_places()
            started = time.perf_counter()
            try:
                layers = await loop.run_in_executor(self._executor, self._guarded, job)
            except asyncio.CancelledError:   # the backend is stopping: the job with it
                self._finish(job, exc=Cancelled("the backend stopped"))
                if job.done.done():          # no one may be left to read it: said, not logged
                    job.done.exception()
                raise
            except BaseException as exc:  # noqa: BLE001 - every failure goes to the client
                self._finish(job, exc=exc)
            else:
                self._finish(job, layers)
            finally:
                self.running.remove(job)
                if job.client in self._gone and all(j.client != job.client
                                                    for j in self.running):
                    self._gone.discard(job.client)
                    cache.LAYERS.release(job.client)
            outcome = self.finished[-1][1]
            log.log(logging.INFO if outcome in ("done", "Cancelled") else logging.WARNING,
                    "job %s %s: %s in %.2f s", job.id, job.op.id, outcome,
                    time.perf_counter() - started, extra={"job": job.id})

    def _release(self) -> None:
        """The models and everything cached about layers let go, and the memory given back
        to the system."""
        engines.unload()
        cache.LAYERS.clear()
        gc.collect()
        give_back_memory()
        self._released, self._holding = True, False
        log.info("idle for %.0f s: models and caches released (%.0f MB resident)",
                 self.unload_after, resident_mb())

    def _guarded(self, job: Job) -> list[Layer]:
        if job.cancelled.is_set():
            raise Cancelled()
        self._holding = True
        if self._released:
            self._released = False
            job.report(0.0, f"loading the models again (released after {self.unload_after:.0f}"
                            " s without a job)")
        try:
            return self._run(job)
        except (Cancelled, ProtocolError):
            raise
        except Exception as exc:
            log.exception("job %s failed", job.id, extra={"job": job.id})
            raise ProtocolError(protocol.E_OPERATION_FAILED,
                                f"{job.op.id} failed: {type(exc).__name__}: {exc}") from exc
        finally:       # what the job freed, back to the system before the next one grows
            give_back_memory()

    def shutdown(self) -> None:
        for client in list(self._waiting):
            self.drop_client(client)
        for job in self.running:
            job.cancelled.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
