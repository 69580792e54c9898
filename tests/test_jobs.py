"""The job queue's order: clients take turns, so one client's batch cannot starve another."""

from __future__ import annotations

import asyncio

import numpy as np
from limner import operations
from limner.jobs import Cancelled, Job, JobQueue


def _job(loop, client, job_id):
    return Job(job_id, client, operations.get("diagnostics.echo"), {}, np.zeros((1, 1, 3), np.uint8),
               None, lambda fraction, stage: None, loop.create_future())


def test_clients_take_turns_and_cancelled_jobs_never_run():
    ran = []

    def record(job):            # the job body: note the order the worker runs jobs in
        ran.append(job.id)
        return []

    async def scenario():
        loop = asyncio.get_running_loop()
        queue = JobQueue(record)
        jobs = [_job(loop, "A", f"a{i}") for i in range(4)]
        jobs += [_job(loop, "B", "b0"), _job(loop, "B", "b1"), _job(loop, "C", "c0")]
        for job in jobs:        # all queued before the worker starts
            queue.submit(job)
        assert queue.cancel("A", "a2") and not queue.cancel("B", "a3")
        queue.drop_client("C")
        worker = asyncio.create_task(queue.worker())
        await asyncio.gather(*(j.done for j in jobs), return_exceptions=True)
        worker.cancel()
        return jobs, queue

    jobs, queue = asyncio.run(scenario())
    assert ran == ["a0", "b0", "a1", "b1", "a3"]
    outcomes = dict(queue.finished)
    assert outcomes["a2"] == "Cancelled" and outcomes["c0"] == "Cancelled"
    assert isinstance(jobs[2].done.exception(), Cancelled)
