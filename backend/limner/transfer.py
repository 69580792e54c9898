"""Pixels in and out of a connection: an Upload collects a run's buffers as their frames
arrive (after the checks that need the operation); `deliver` waits for the job and sends
its result message and the buffers whose frames follow it, through the connection's
Outbox (one sender task, so progress and results never interleave mid-buffer, and
reading goes on while a large result is written)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import numpy as np
from websockets.exceptions import ConnectionClosed

from . import imaging, operations, protocol
from .jobs import Cancelled, Job
from .protocol import BufferAssembler, BufferSpec, ErrorMessage, ProtocolError, RunRequest
from .schema import Kind

log = logging.getLogger("limner.server")
#: how long a closing connection may take to send what it still has queued
DRAIN_SECONDS = 5


class Upload:
    """A checked run whose buffers are arriving."""

    def __init__(self, request: RunRequest, op: operations.Operation, params: dict):
        self.request = request
        self.op = op
        self.params = params
        self.buffers = {spec.id: BufferAssembler(spec) for spec in request.buffers()}

    @property
    def job(self) -> str:
        return self.request.job

    @classmethod
    def begin(cls, request: RunRequest, local: bool) -> Upload:
        """What the protocol cannot check alone: the operation exists, its parameters
        are valid, extra layers go to its image parameters, and file parameters come
        from a client on this machine."""
        try:
            op = operations.get(request.op)
            params = op.validate(request.params)
            if not local:
                refuse_file_parameters(op, params)
            takes = [p.name for p in op.spec().layers()]
            for name in request.inputs:
                if name not in takes:
                    raise ProtocolError(protocol.E_BAD_PARAMETER,
                                        f"{op.id}: {protocol.shown(name)} is not an image "
                                        f"parameter; it takes "
                                        f"{', '.join(takes) or 'no extra layers'}")
        except ProtocolError as exc:
            exc.job = request.job
            raise
        return cls(request, op, params)

    def add(self, frame: bytes) -> bool:
        """Take one binary frame; True when every buffer is complete."""
        try:
            header, payload = protocol.parse_frame(frame)
            if header.buffer not in self.buffers:
                raise ProtocolError(protocol.E_SIZE_MISMATCH,
                                    f"buffer {header.buffer} is not one the run declared "
                                    f"({', '.join(map(str, self.buffers))})")
            self.buffers[header.buffer].add(header, payload)
        except ProtocolError as exc:
            exc.job = self.job
            raise
        return all(buffer.done for buffer in self.buffers.values())

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None, dict]:
        """(image, mask or None, parameters with the extra layers as arrays)."""
        request = self.request

        def array(spec: BufferSpec, what: str) -> np.ndarray:
            return imaging.check_finite(imaging.from_bytes(self.buffers[spec.id].data, spec),
                                        what)

        try:
            mask = array(request.mask, "mask")[:, :, 0] if request.mask else None
            params = {**self.params, **{name: array(spec, name)
                                        for name, spec in request.inputs.items()}}
            return array(request.image, "the layer"), mask, params
        except ProtocolError as exc:
            exc.job = self.job
            raise


class Outbox:
    """What a connection sends, in order: text messages and (BufferSpec, bytes) buffers,
    drained by one task (`run`)."""

    def __init__(self, ws):
        self.ws = ws
        self.queue: asyncio.Queue = asyncio.Queue()
        self.open = True                 # until the sender finds the socket gone

    def send(self, item) -> None:
        """Queue an item (dropped once the socket is gone: nobody will read it)."""
        if self.open:
            self.queue.put_nowait(item)

    async def run(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                try:
                    if isinstance(item, str):
                        await self.ws.send(item)
                    else:
                        for frame in protocol.frames(*item):
                            await self.ws.send(frame)
                finally:
                    self.queue.task_done()
        except ConnectionClosed:
            pass
        finally:                     # whatever is left will never go: let drains finish
            self.open = False
            while not self.queue.empty():
                self.queue.get_nowait()
                self.queue.task_done()

    async def close(self, code: int, reason: str) -> None:
        """Send what is queued (for at most DRAIN_SECONDS), then close the socket."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), DRAIN_SECONDS)
        await self.ws.close(code, reason)


async def deliver(job: Job, offset: tuple[int, int], send: Callable, ids: Iterator[int]) -> None:
    """Wait for a job; send its result and buffers, or the error it ended with."""
    try:
        layers = await job.done
    except Cancelled:
        send(ErrorMessage(protocol.E_CANCELLED, f"job {job.id} was cancelled", job.id).to_json())
        return
    except ProtocolError as exc:
        send(ErrorMessage(exc.code, exc.message, job.id).to_json())
        return
    except Exception as exc:
        log.exception("job %s failed", job.id)
        send(ErrorMessage(protocol.E_OPERATION_FAILED, str(exc), job.id).to_json())
        return
    message, buffers = outgoing(job.id, layers, offset, ids)
    send(message)
    for item in buffers:
        send(item)


def outgoing(job: str, layers: list[operations.Layer], offset: tuple[int, int],
             ids: Iterator[int]) -> tuple[str, list[tuple[BufferSpec, bytes]]]:
    """The result message for a job's layers (moved by the run's offset) and the buffers
    that follow it, numbered from `ids`."""
    described, buffers = [], []
    for layer in layers:
        pixels = imaging.to_pixels(layer.pixels)
        spec = pixels.spec(next(ids))
        described.append(protocol.ResultLayer(
            layer.name, spec, layer.role, (offset[0] + layer.offset[0],
                                           offset[1] + layer.offset[1]),
            layer.blend, layer.visible, layer.provenance))
        buffers.append((spec, pixels.data))
    return protocol.Result(job, tuple(described)).to_json(), buffers


def refuse_file_parameters(op: operations.Operation, params: dict) -> None:
    """File parameters name paths on the backend's machine: only a client on that machine
    may use them (a remote one sends the picture as a layer, in run.inputs)."""
    named = [p.name for p in op.all_params() if p.kind in (Kind.FILE, Kind.IMAGE)
             and isinstance(params.get(p.name), str) and params[p.name]]
    if named:
        raise ProtocolError(protocol.E_BAD_PARAMETER,
                            f"{op.id}: {', '.join(named)} name files on the backend's machine, "
                            "which only a client on that machine may do; send the picture as "
                            "a layer (run.inputs)")
