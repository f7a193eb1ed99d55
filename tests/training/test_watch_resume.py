"""A watch ends UNAVAILABLE within seconds when the message bus is down, and resumes from its event cursor
(issue 18, item 4). Before: WatchTrainingTask sent nothing and never ended while NATS was down."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from test_training_reconcile import trainer_event
from test_training_validation import FakeDatasets, FakeRecommender, FakeZoo, good_request, make_dataset, make_model

from deploy.local.embedded import start_nats
from kernel import messaging
from kernel.errors import error_reason
from services.training.app import start as start_training
from trainyard.events.v1 import events_pb2
from trainyard.training.v1 import training_pb2 as T
from trainyard.training.v1 import training_service_pb2 as pb
from trainyard.training.v1 import training_service_pb2_grpc

pytestmark = pytest.mark.integration

GRACE_S = 2.0


async def publish(url: str, event: events_pb2.TrainerEvent) -> None:
    nc = await messaging.connect(url, "test-trainer")
    try:
        await nc.jetstream().publish(messaging.events_subject(event.task_id), event.SerializeToString())
    finally:
        await nc.close()


async def until(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_a_watch_ends_unavailable_when_the_bus_is_down_and_resumes_from_its_cursor(settings, tmp_path):
    nats = start_nats(tmp_path / "nats")
    own = settings.model_copy(update={"nats_url": nats.url, "training_watch_bus_grace_s": GRACE_S})
    training = await start_training(
        own, datasets=FakeDatasets(make_dataset()), zoo=FakeZoo(make_model()), recommender=FakeRecommender()
    )
    channel = grpc.aio.insecure_channel(training.address)
    stub = training_service_pb2_grpc.TrainingServiceStub(channel)
    try:
        task = (await stub.CreateTrainingTask(good_request())).task
        await publish(nats.url, trainer_event(task.id, 1, started=events_pb2.JobStarted()))

        async def running() -> bool:
            got = (await stub.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task
            return got.state == T.TASK_STATE_RUNNING

        await until(running, what="the task RUNNING")

        received: list[T.TaskEvent] = []
        watch = stub.WatchTrainingTask(pb.WatchTrainingTaskRequest(task_id=task.id, from_start=True))

        async def follow():
            async for response in watch:
                received.append(response.event)

        follower = asyncio.create_task(follow())

        async def caught_up() -> bool:
            return any(e.HasField("task") and e.task.state == T.TASK_STATE_RUNNING for e in received)

        await until(caught_up, what="the watch to reach RUNNING")
        nats.stop(grace=2)
        stopped = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await asyncio.wait_for(follower, GRACE_S + 15)
        ended_after = time.monotonic() - stopped
        error = exc.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE and error_reason(error) == "MESSAGE_BUS_UNAVAILABLE"
        cursor = received[-1].sequence
        assert f"after_sequence={cursor}" in error.details()
        print(f"FIGURE watch ended UNAVAILABLE {ended_after:.1f} s after nats-server stopped (grace {GRACE_S} s)")
        assert ended_after >= GRACE_S

        # the bus is back; the trainer's later events arrive; a watch resumed at the cursor gets only those
        nats = start_nats(tmp_path / "nats", port=nats.port, monitor_port=nats.monitor_port)
        await publish(nats.url, trainer_event(task.id, 1, succeeded=events_pb2.JobSucceeded()))
        resumed = []
        async for response in stub.WatchTrainingTask(
            pb.WatchTrainingTaskRequest(task_id=task.id, after_sequence=cursor)
        ):
            resumed.append(response.event)
        assert resumed and all(e.sequence > cursor for e in resumed)
        assert [e.sequence for e in resumed] == list(range(cursor + 1, cursor + 1 + len(resumed)))
        assert resumed[-1].task.state == T.TASK_STATE_SUCCEEDED
        # resuming after the last event of an ended task ends at once
        tail = [
            r
            async for r in stub.WatchTrainingTask(
                pb.WatchTrainingTaskRequest(task_id=task.id, after_sequence=resumed[-1].sequence)
            )
        ]
        assert tail == []
    finally:
        await channel.close()
        await training.stop()
        nats.stop(grace=2)


async def test_watch_import_ends_unavailable_when_its_import_is_no_longer_heard_of(settings):
    """A running import whose replica stopped: the watch ends with IMPORT_STALLED instead of streaming nothing;
    a restarted service fails its own host's imports and stale ones, and leaves a live replica's alone."""
    from datetime import timedelta

    from services.dataset import import_store
    from services.dataset.app import start as start_dataset
    from services.dataset.models import ImportRow
    from trainyard.common.v1 import common_pb2
    from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2_grpc
    from trainyard.dataset.v1 import dataset_service_pb2 as dpb

    own = settings.model_copy(update={"dataset_import_stall_s": 0.4, "dataset_import_heartbeat_s": 0.1})
    running = await start_dataset(own)
    channel = grpc.aio.insecure_channel(running.address)
    stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    store = running.datasets.imports
    try:
        gone = store.create("default", import_store.RUNNING, message="reading and checking images")
        alive = store.create("default", import_store.RUNNING, message="reading and checking images")
        with store._session() as s, s.begin():
            for row_id, worker in ((gone.id, "dataset-replica-that-died"), (alive.id, "dataset-replica-alive")):
                row = s.get(ImportRow, row_id)
                row.worker = worker
                row.update_time = import_store.now() - timedelta(seconds=5)
                s.add(row)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            async for _ in stub.WatchImport(dpb.WatchImportRequest(import_id=gone.id)):
                pass
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE and error_reason(exc.value) == "IMPORT_STALLED"
        assert "dataset-replica-that-died" in exc.value.details() and time.monotonic() - started < 2

        # a live import heartbeats: an import slower than the stall window is watched to its end
        from kernel import objectstore
        from services.dataset.samples import make_classification_archive

        s3 = objectstore.make_client(own)
        objectstore.put_bytes(
            s3, objectstore.UPLOADS_BUCKET, "u/slow.zip", make_classification_archive(per_class=60, size=64, seed=9)
        )
        response = await stub.ImportDataset(
            dpb.ImportDatasetRequest(
                source=common_pb2.ObjectRef(bucket=objectstore.UPLOADS_BUCKET, key="u/slow.zip"),
                metadata=dpb.CreateDatasetMetadata(name="slow"),
            )
        )
        began = time.monotonic()
        states = [
            r.status async for r in stub.WatchImport(dpb.WatchImportRequest(import_id=getattr(response, "import").id))
        ]
        assert states[-1].state == dataset_pb2.IMPORT_STATE_SUCCEEDED, states[-1].message
        print(f"FIGURE a {time.monotonic() - began:.1f} s import watched to its end with a 0.4 s stall window")

        # restart: the stale import of the dead replica fails; the fresh one of a live replica is left alone
        with store._session() as s, s.begin():
            row = s.get(ImportRow, alive.id)
            row.update_time = import_store.now()
            s.add(row)
        store.fail_interrupted(stall_s=1.0)
        assert store.get("default", gone.id).state == import_store.FAILED
        assert store.get("default", alive.id).state == import_store.RUNNING
    finally:
        await channel.close()
        await running.stop()
