"""A client's `pull`: a model downloaded on a thread of its own (jobs keep running
meanwhile), its bytes reported as progress, stopped at the next chunk by a cancel."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from . import models, protocol
from .jobs import Cancelled
from .protocol import ErrorMessage, Progress, Pulled


def check(msg: protocol.Pull) -> None:
    """A pull names a model the backend knows."""
    if msg.model not in models.MODELS:
        raise protocol.ProtocolError(protocol.E_BAD_PARAMETER,
                                     f"unknown model {protocol.shown(msg.model)}; known: "
                                     f"{', '.join(models.MODELS)}", msg.job)


async def pull(job: str, name: str, send: Callable[[str], None],
               stop: threading.Event) -> None:
    """Download model `name`, sending progress (at most every 1 % or half second), then
    `pulled` or an error; `send` is called on the event loop's thread."""
    loop = asyncio.get_running_loop()
    info, last = models.MODELS[name], [0.0, -1.0]
    send(Progress(job, 0.0, f"downloading {name} ({info.size_mb} MB, {info.licence})").to_json())

    def on_bytes(done: int, total: int) -> None:       # called from the download threads
        if stop.is_set():
            raise Cancelled()
        fraction, now = done / total if total else 0.0, time.monotonic()
        if fraction - last[1] >= 0.01 or now - last[0] >= 0.5 or done == total:
            last[:] = now, fraction
            loop.call_soon_threadsafe(send, Progress(
                job, fraction, f"{name}: {done / 2**20:.0f} of {total / 2**20:.0f} MB").to_json())

    try:
        path = await in_daemon_thread(models.pull, name, on_bytes)
    except Cancelled:
        send(ErrorMessage(protocol.E_CANCELLED, f"downloading {name} was cancelled; pull it "
                          "again to continue (finished files are kept)", job).to_json())
    except Exception as exc:  # noqa: BLE001 - the hub's many errors all reach the user
        send(ErrorMessage(protocol.E_OPERATION_FAILED, f"downloading {name} failed: {exc}",
                          job).to_json())
    else:
        send(Pulled(job, name, str(path)).to_json())


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
