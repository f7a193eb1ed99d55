"""The jobs queue on a 3-node NATS JetStream cluster (R3 streams) keeps every job when a node dies."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

import nats.errors
import nats.js.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from deploy.local.embedded import start_nats_cluster
from kernel import messaging
from trainer.worker import durable_name
from trainyard.events.v1 import events_pb2

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOBS = 40
SUBJECT = messaging.jobs_subject("classification")


@pytest.fixture
def cluster(tmp_path):
    c = start_nats_cluster(tmp_path / "nats", size=3)
    yield c
    c.stop(grace=2)


async def _publish(js, i: int) -> None:
    """Publish job i the way the training service does; retried (deduplicated by Nats-Msg-Id) through a failover."""
    job = events_pb2.TrainingJob(task_id=f"task-{i:03d}", project="default", output_prefix=f"tasks/task-{i:03d}/")
    deadline = time.monotonic() + 30
    while True:
        try:
            await js.publish(SUBJECT, job.SerializeToString(), headers={"Nats-Msg-Id": f"{job.task_id}-1"}, timeout=2)
            return
        except (
            nats.errors.TimeoutError,
            nats.errors.NoRespondersError,
            nats.js.errors.NoStreamResponseError,
            nats.js.errors.APIError,
            TimeoutError,
        ):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def test_three_node_cluster_loses_no_job_when_a_node_is_killed(cluster) -> None:
    admin = await messaging.connect(cluster.url, "test-admin")
    js = admin.jetstream()
    await messaging.ensure_streams(js, replicas=3)
    await messaging.ensure_streams(js)  # a process without the setting must not scale the streams down
    for name in (messaging.JOBS_STREAM, messaging.EVENTS_STREAM, messaging.CONTROL_STREAM):
        info = await js.stream_info(name)
        assert info.config.num_replicas == 3, name
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2, name

    # Two trainers on their own connections share the trainers' durable pull consumer (as trainer.worker does).
    consumer_config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=8, max_deliver=5, max_ack_pending=-1)
    in_flight: set[str] = set()
    doubled: list[str] = []  # delivered to a second trainer while the first still held it
    deliveries: collections.Counter[str] = collections.Counter()
    processed: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()
    trainers = []
    for n in range(2):
        nc = await messaging.connect(cluster.url, f"trainer-{n}")
        sub = await nc.jetstream().pull_subscribe(
            SUBJECT, durable=durable_name("classification"), stream=messaging.JOBS_STREAM, config=consumer_config
        )
        trainers.append((nc, sub))

    async def trainer(sub) -> None:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(1, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception:  # noqa: BLE001 - a node went away; the client reconnects
                await asyncio.sleep(0.3)
                continue
            for msg in msgs:
                task_id = events_pb2.TrainingJob.FromString(msg.data).task_id
                if task_id in in_flight:
                    doubled.append(task_id)
                in_flight.add(task_id)
                deliveries[task_id] += 1
                try:
                    await asyncio.sleep(0.05)  # "training"
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
                    processed[task_id] += 1
                    for _ in range(30):  # the ack must stick, across a leader change too
                        try:
                            await msg.ack_sync(timeout=2)
                            break
                        except Exception:  # noqa: BLE001 - retried
                            await asyncio.sleep(0.3)
                finally:
                    in_flight.discard(task_id)

    workers = [asyncio.create_task(trainer(sub)) for _, sub in trainers]
    try:
        for i in range(JOBS // 2):
            await _publish(js, i)
        deadline = time.monotonic() + 60
        while len(processed) < JOBS // 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(processed) >= JOBS // 4, "the trainers did not get going"

        # Kill the jobs stream's leader mid-way (hard: SIGKILL), then keep publishing.
        leader = (await js.stream_info(messaging.JOBS_STREAM)).cluster.leader
        victim = cluster.node_named(leader)
        victim.process.popen.kill()
        victim.process.popen.wait(10)
        for i in range(JOBS // 2, JOBS):
            await _publish(js, i)

        deadline = time.monotonic() + 90
        while len(processed) < JOBS and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        expected = {f"task-{i:03d}" for i in range(JOBS)}
        assert set(processed) == expected, f"lost jobs: {sorted(expected - set(processed))}"
        assert not doubled, f"delivered twice at once: {doubled}"

        # The queue drains to empty on the surviving pair, under a new leader.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                info = await js.stream_info(messaging.JOBS_STREAM)
                consumer = await js.consumer_info(messaging.JOBS_STREAM, durable_name("classification"))
                if info.state.messages == 0 and consumer.num_ack_pending == 0 and consumer.num_pending == 0:
                    break
            await asyncio.sleep(0.2)
        assert info.state.messages == 0, f"{info.state.messages} jobs left in the work queue"
        assert info.cluster.leader and info.cluster.leader != leader
        # At-least-once: a job is redelivered only when an ack was lost in the failover, never run twice at once.
        assert sum(deliveries.values()) - JOBS <= 3, dict(deliveries)
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        for nc, _ in trainers:
            with contextlib.suppress(Exception):
                await nc.close()
        with contextlib.suppress(Exception):
            await admin.close()
