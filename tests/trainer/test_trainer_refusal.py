"""A busy trainer's refusal (trainer/worker.py, integration, its own nats-server): a job that lands on a
poll a trainer left open before its job started is handed back late enough that no busy trainer's old
poll is left to take it, so it is not refused over and over until JetStream gives it up."""

from __future__ import annotations

import asyncio
import time

import pytest

from deploy.local.embedded import start_nats
from kernel import messaging
from trainer import worker as worker_module
from trainer.settings import TrainerSettings
from trainer.worker import Worker

pytestmark = pytest.mark.integration


class BusyWorker(Worker):
    """A real worker whose job (standing in for a long training run) lasts until `release` is set."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, msg) -> str:
        self.started.set()
        await self.release.wait()
        await msg.ack()
        return "succeeded"


async def num_waiting(js, task_type: str) -> int:
    info = await js.consumer_info(messaging.JOBS_STREAM, messaging.trainers_durable(task_type))
    return info.num_waiting or 0


async def test_a_job_refused_by_a_busy_trainer_comes_back_only_after_its_polls_ran_out(tmp_path) -> None:
    delay = worker_module.JOB_REFUSE_DELAY_S
    assert delay > worker_module.POLL_TIMEOUT_S
    server = start_nats(tmp_path / "nats")  # its own: no other test's trainer may pull these jobs
    settings = TrainerSettings(
        nats_url=server.url,
        trainer_name="busy",
        trainer_task_types=["classification", "detection"],
        trainer_cache_dir=tmp_path / "cache",
        device="cpu",
        home=tmp_path,
    )
    worker = BusyWorker(settings=settings)
    await worker.connect()
    runner = asyncio.create_task(worker.run())
    nc = await messaging.connect(server.url, "idle-trainer")
    try:
        js = nc.jetstream()
        async with asyncio.timeout(10):  # the worker's first polls, just issued, wait on both queues
            while await num_waiting(js, "classification") < 1 or await num_waiting(js, "detection") < 1:
                await asyncio.sleep(0.02)
        await js.publish(messaging.jobs_subject("classification"), b"job a")
        await asyncio.wait_for(worker.started.wait(), 10)
        # The worker is busy; its detection poll from before is the only pull request on that queue.
        assert await num_waiting(js, "detection") == 1
        published = time.monotonic()
        await js.publish(messaging.jobs_subject("detection"), b"job b")
        async with asyncio.timeout(5):  # the busy worker's old poll takes it and hands it back
            while (
                await js.consumer_info(messaging.JOBS_STREAM, messaging.trainers_durable("detection"))
            ).delivered.consumer_seq < 1:
                await asyncio.sleep(0.02)

        # An idle trainer asks for it: it comes once the refusal delay is over, not at once.
        idle = await js.pull_subscribe_bind(
            durable=messaging.trainers_durable("detection"), stream=messaging.JOBS_STREAM
        )
        [msg] = await idle.fetch(1, timeout=delay + 10)
        waited = time.monotonic() - published
        assert msg.data == b"job b"
        assert waited >= delay - 0.25, f"the refused job came back after {waited:.2f}s"
        assert waited < delay + 10
        assert msg.metadata.num_delivered == 2  # the busy worker's refusal, then this one
        await msg.ack()
        assert not runner.done()  # the worker is still busy with job a
    finally:
        worker.release.set()
        await worker.shutdown()
        await asyncio.wait_for(runner, 30)
        await worker.close()
        await nc.close()
        server.stop(grace=5)
    assert worker.jobs_done == 1
