"""Studio mode past one machine (`limner serve --studio --ray ADDRESS`): the WebSocket
front stays as it is, so the editors see no change, and each job runs on an engine
replica deployed with Ray Serve: one per GPU, or CPU replicas for the offline engines.

- Pixels travel as NumPy arrays through Ray's object store (pickled out of band, never
  re-encoded), there and back.
- Progress streams back from the replica as the operation reports it; a cancel from the
  editor cancels the Serve request, and the replica stops the operation at its next
  progress report, as a local backend does.
- A layer's jobs go to the replica that holds its cache (relight's geometry, the matte):
  the layer's digest rides in the request's multiplexed model ID, and our request router
  ranks the replicas for it by rendezvous hashing, so every front sends a layer to the
  same replica, from its first job on, and a replica's loss moves only its own layers.
- A replica that dies mid-job gives that job a clear error; Serve starts another, and
  the next job runs.

Ray is an optional extra (`limner[studio]`); this module is imported only with --ray.
Every Ray node needs Limner's environment (the replicas import limner).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ray import serve
from ray.serve.config import RequestRouterConfig
from ray.serve.request_router import FIFOMixin, RequestRouter

from . import cache, jobs, operations, protocol, threads
from .jobs import Cancelled, Job
from .operations import Layer
from .protocol import ProtocolError

log = logging.getLogger("limner.replicas")

APP = "limner"
@serve.deployment(name="Engines", max_ongoing_requests=1)
class Engines:
    """One engine replica: its own engines and layer cache, one job at a time (its cores
    are that job's)."""

    def __init__(self, compute_threads: int, cache_bytes: int):
        threads.apply(compute_threads)
        cache.LAYERS.limit_bytes = cache_bytes
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="limner-replica")
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.cancelled = 0

    async def run(self, job_id: str, op_id: str, params: dict, image, mask, transfer: str,
                  preview_side: int | None, owner: str):
        """Run one job, yielding ("started", replica), ("progress", fraction, stage)...
        and last ("result", layers, record) or ("error", code, message)."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job = Job(job_id, owner, operations.get(op_id), params, image, mask,
                  lambda f, stage: loop.call_soon_threadsafe(events.put_nowait, (f, stage)),
                  None, transfer=transfer, preview_side=preview_side)
        hits, builds = cache.LAYERS.hits, cache.LAYERS.builds
        yield ("started", self.name)
        work = loop.run_in_executor(self.executor, jobs.execute, job)
        try:
            while not work.done() or not events.empty():
                waiting = asyncio.ensure_future(events.get())
                await asyncio.wait({waiting, work}, return_when=asyncio.FIRST_COMPLETED)
                if waiting.done():
                    yield ("progress", *waiting.result())
                else:
                    waiting.cancel()
            try:
                layers = work.result()
            except Cancelled:
                yield ("error", protocol.E_CANCELLED, f"job {job_id} was cancelled")
            except ProtocolError as exc:
                yield ("error", exc.code, exc.message)
            except Exception as exc:  # noqa: BLE001 - the front tells the client
                log.exception("job %s failed", job_id)
                yield ("error", protocol.E_OPERATION_FAILED,
                       f"{op_id} failed: {type(exc).__name__}: {exc}")
            else:
                yield ("result", layers, {"replica": self.name, "cancelled": self.cancelled,
                                          "cache_hits": cache.LAYERS.hits - hits,
                                          "cache_builds": cache.LAYERS.builds - builds})
        finally:
            if not work.done():          # cancelled by the front: stop at the next report
                job.cancelled.set()
                self.cancelled += 1
            jobs.give_back_memory()


class LayerAffinityRouter(FIFOMixin, RequestRouter):
    """Serve's request router for the engines: the replicas ranked for a request's layer
    (its multiplexed model ID) by rendezvous hashing, best first; the next ones take it
    when the best is busy."""

    async def choose_replicas(self, candidate_replicas, pending_request=None):
        key = pending_request.metadata.multiplexed_model_id if pending_request else ""
        return [[replica] for replica in sorted(
            candidate_replicas, reverse=True, key=lambda replica: hashlib.blake2b(
                f"{key}/{replica.replica_id.unique_id}".encode(), digest_size=8).digest())]


def layer_key(job: Job) -> str:
    """Which replica a job goes to: its layer, as a digest of a sparse sample of its
    pixels and its size (cheap on a 6000 px layer; a clash only costs a cache miss)."""
    sample = job.image[::7, ::7]
    digest = hashlib.blake2b(sample.tobytes(), digest_size=12)
    digest.update(repr((job.image.shape, str(job.image.dtype))).encode())
    return digest.hexdigest()


class RayEngines:
    """The front's side: deploys the replicas on the Ray cluster at `address` ("local":
    a head started here, on loopback) and runs each job on one (JobQueue's `run`, in a
    worker thread, `replicas` at a time)."""

    def __init__(self, address: str, replicas: int | None = None, replica_cpus: float = 1,
                 cache_bytes: int = cache.DEFAULT_LIMIT_BYTES):
        import ray

        if address == "local":
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, namespace=APP,
                     log_to_driver=False, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, namespace=APP, log_to_driver=False)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.replicas = replicas or max(1, gpus)
        options = {"num_cpus": replica_cpus,
                   "runtime_env": {"env_vars": {name: str(max(1, int(replica_cpus)))
                                                for name in threads.POOL_VARIABLES}}}
        if gpus:
            options["num_gpus"] = 1
        serve.start(proxy_location="Disabled")   # no HTTP ingress: the front is ours
        app = Engines.options(
            num_replicas=self.replicas, ray_actor_options=options,
            request_router_config=RequestRouterConfig(
                request_router_class=LayerAffinityRouter)).bind(max(1, int(replica_cpus)),
                                                                cache_bytes)
        self.handle = serve.run(app, name=APP, route_prefix=None).options(stream=True)
        #: (job id, replica, outcome or the result's record), newest last: for the log
        #: and for tests; and the replica each running job is on
        self.history: deque = deque(maxlen=256)
        self.running: dict[str, str] = {}
        log.info("Ray Serve: %d engine replica(s) on %s (%s per replica)", self.replicas,
                 address, f"1 GPU, {replica_cpus} CPU" if gpus else f"{replica_cpus} CPU")

    def run(self, job: Job) -> list[Layer]:
        from ray.exceptions import RayError
        from ray.serve.exceptions import RequestCancelledError

        stream = self.handle.options(multiplexed_model_id=layer_key(job)).run.remote(
            job.id, job.op.id, job.params, job.image, job.mask, job.transfer,
            job.preview_side, f"{job.turn}/{id(job.client)}")
        finished = threading.Event()
        threading.Thread(target=self._cancel_when_asked, args=(job, stream, finished),
                         daemon=True).start()
        replica, layers = None, None
        try:
            for event in stream:
                if event[0] == "started":
                    replica = self.running[job.id] = event[1]
                elif event[0] == "progress":
                    job.report(event[1], event[2])
                elif event[0] == "error":
                    self.history.append((job.id, replica, event[1]))
                    if event[1] == protocol.E_CANCELLED:
                        raise Cancelled()
                    raise ProtocolError(event[1], event[2], job.id)
                else:
                    # read on to the stream's end: until then the replica counts as busy,
                    # and the layer's next job, sent as soon as this one's result is
                    # back, would go to another replica (and miss the cache)
                    self.history.append((job.id, replica, event[2]))
                    layers = event[1]
            if layers is None:
                raise RuntimeError("the replica's stream ended without a result")
            return layers
        except RequestCancelledError:
            self.history.append((job.id, replica, protocol.E_CANCELLED))
            raise Cancelled() from None
        except RayError as exc:
            self.history.append((job.id, replica, type(exc).__name__))
            log.warning("job %s: engine replica %s failed: %s", job.id, replica, exc)
            raise ProtocolError(protocol.E_OPERATION_FAILED,
                                f"the engine replica running {job.op.id} stopped "
                                f"({type(exc).__name__}); the studio has started another: run "
                                "it again", job.id) from None
        finally:
            finished.set()
            self.running.pop(job.id, None)

    @staticmethod
    def _cancel_when_asked(job: Job, stream, finished: threading.Event) -> None:
        """The editor's cancel, passed on to the replica while the job runs there."""
        while not finished.wait(0.05):
            if job.cancelled.is_set():
                stream.cancel()
                return

    def close(self) -> None:
        import ray

        serve.shutdown()
        ray.shutdown()
