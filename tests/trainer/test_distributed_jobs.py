"""Data-parallel training jobs (trainer.distributed wired into trainer.job and trainer.worker), on CPU with gloo.

Tiny data (32 generated images), a tiny timm network without batch norm or dropout (test_efficientnet_gn,
GroupNorm: a 2-process run then does exactly the optimisation of one process with the same global batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import signal
import types
import uuid
from pathlib import Path

import pytest
import testjobs
import torch
from test_trainer_integration import tiny_image
from test_training_service import stack  # noqa: F401 - fixture

from trainer import data
from trainer.job import run_job
from trainer.storage import LocalStore
from trainyard.common.v1 import common_pb2 as C
from trainyard.events.v1 import events_pb2

pytestmark = pytest.mark.slow

CLASSES = ["red", "blue"]


def put_dataset(store, bucket: str = "datasets", per_class: int = 12, val_per_class: int = 4) -> C.ObjectRef:
    """Images and a version manifest laid out the way the dataset service writes them."""
    colors = {"red": (220, 30, 30), "blue": (30, 30, 220)}
    cases = []
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            payload = tiny_image(colors[name], i + 31 * label)
            digest = hashlib.sha256(payload).hexdigest()
            key = f"images/{digest[:2]}/{digest}"
            store.put_bytes(bucket, key, payload, "image/png")
            split = "val" if i < val_per_class else "train"
            cases.append({"id": f"c{len(cases)}", "image_key": key, "sha256": digest, "split": split, "label": label})
    manifest = {
        "schema": data.MANIFEST_SCHEMA,
        "dataset_id": "ds",
        "version_id": "dv",
        "classes": CLASSES,
        "cases": cases,
    }
    payload = json.dumps(manifest).encode()
    digest = store.put_bytes(bucket, "manifests/ds/dv.json", payload, "application/json")
    return C.ObjectRef(bucket=bucket, key="manifests/ds/dv.json", sha256=digest, size_bytes=len(payload))


def make_job(task_id: str, manifest: C.ObjectRef, *, processes: int = 1, nodes: int = 1, epochs: int = 2):
    return testjobs.resolved(
        events_pb2.TrainingJob(
            task_id=task_id,
            project="default",
            task_type=C.TASK_TYPE_CLASSIFICATION,
            model=events_pb2.ModelSpec(
                model_id="timm/test_efficientnet_gn", library="timm", architecture="test_efficientnet_gn"
            ),
            dataset=events_pb2.DatasetSpec(dataset_id="ds", version_id="dv", manifest=manifest, class_names=CLASSES),
            hyperparameters=C.Hyperparameters(
                epochs=epochs,
                batch_size=8,
                learning_rate=0.05,
                backbone_lr_multiplier=1.0,
                weight_decay=0.0,
                image_size=32,
                optimizer=C.OPTIMIZER_SGD,
                seed=7,
                augmentation="none",
                lr_schedule=C.LR_SCHEDULE_CONSTANT,
            ),
            transfer_strategy=C.TRANSFER_STRATEGY_FROM_SCRATCH,
            output_bucket="artifacts",
            output_prefix=f"tasks/{task_id}/",
            resources=C.ComputeResources(processes_per_node=processes, nodes=nodes),
        )
    )


class Recorder:
    def __init__(self) -> None:
        self.epochs: list[tuple[int, dict]] = []
        self.logs: list[str] = []

    def progress(self, *args) -> None:
        pass

    def epoch_metrics(self, epoch: int, values: dict) -> None:
        self.epochs.append((epoch, values))

    def log(self, text: str) -> None:
        self.logs.append(text)


def model_state(store, task_id: str) -> dict:
    blob = torch.load(io.BytesIO(store.get_bytes("artifacts", f"tasks/{task_id}/model.pt")), weights_only=False)
    return blob["state_dict"]


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-4, rtol=1e-3, msg=f"parameter {k} differs")


def test_a_two_process_job_trains_the_same_weights_as_one_process(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    manifest = put_dataset(store)
    cache = data.LocalCache(tmp_path / "cache", 1 << 30)
    one, two = Recorder(), Recorder()
    run_job(make_job("one", manifest), store=store, cache=cache, device=torch.device("cpu"), reporter=one, export=False)
    pids: list[int] = []
    result = run_job(
        make_job("two", manifest, processes=2),
        store=store,
        cache=cache,
        device=torch.device("cpu"),
        reporter=two,
        export=False,
        on_ranks=pids.extend,
    )
    assert len(pids) == 2
    assert any("2 processes (gloo), 4 of the global batch 8" in line for line in two.logs), two.logs
    assert_same(model_state(store, "two"), model_state(store, "one"))
    assert [e for e, _ in two.epochs] == [1, 2]
    for (_, a), (_, b) in zip(one.epochs, two.epochs, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-3)
    # rank 0 wrote the checkpoint of the last epoch through the trainer
    ckpt = torch.load(io.BytesIO(store.get_bytes("artifacts", "tasks/two/checkpoints/last.pt")), weights_only=True)
    assert ckpt["epoch"] == 2
    assert {a.name for a in result.artifacts} >= {"checkpoint", "best_checkpoint", "model.pt", "metrics.json"}
    # and training really moved the weights away from the (seeded) initialisation both runs share
    import timm

    torch.manual_seed(7)
    initial = timm.create_model("test_efficientnet_gn", pretrained=False, num_classes=2).state_dict()
    moved = max((model_state(store, "one")[k] - v).abs().max().item() for k, v in initial.items())
    assert moved > 1e-2


# ---------------------------------------------------------------- through the queue (NATS JetStream + S3)

ACK_WAIT = 3.0  # shorter than a run: only heartbeats during the run keep the job from being redelivered


@pytest.fixture
async def queue(nats_server, settings):
    """JetStream with the classification consumers dropped before and after, so the trainers here create
    them with a short ack wait (an existing durable keeps its config) and later tests get their own."""
    from kernel import messaging
    from trainer.worker import durable_name, members_durable_name

    nc = await messaging.connect(nats_server.url, "test-distributed")
    js = nc.jetstream()
    await messaging.ensure_streams(js)

    async def drop() -> None:
        for name in (durable_name("classification"), members_durable_name("classification")):
            with contextlib.suppress(Exception):
                await js.delete_consumer(messaging.JOBS_STREAM, name)
        with contextlib.suppress(Exception):  # member messages no trainer took (their runs are over)
            await js.purge_stream(messaging.JOBS_STREAM, subject=messaging.members_subject("classification"))

    await drop()
    yield types.SimpleNamespace(nc=nc, js=js)
    await drop()
    await nc.close()


@pytest.fixture
def s3(settings):
    from kernel import objectstore

    client = objectstore.make_client(settings)
    objectstore.ensure_buckets(client)
    return client


def worker_settings(settings, tmp_path: Path, name: str):
    from test_trainer_integration import trainer_settings

    return trainer_settings(settings, tmp_path / name).model_copy(
        update={
            "trainer_name": name,
            "trainer_task_types": ["classification"],
            "trainer_ack_wait": ACK_WAIT,
            "trainer_threads": 1,
            "trainer_advertise_address": "127.0.0.1",
            "trainer_rendezvous_timeout_s": 60.0,
            "trainer_distributed_timeout_s": 60.0,
        }
    )


def s3_job(client, task_id: str, **kw) -> events_pb2.TrainingJob:
    from test_trainer_integration import upload_dataset

    from kernel import objectstore

    job = make_job(task_id, upload_dataset(client)[2], **kw)
    job.output_bucket = objectstore.ARTIFACTS_BUCKET
    return job


async def run_workers_until(workers, done, timeout: float = 150) -> None:
    """Run the workers until done() holds, then shut them all down."""
    runners = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with asyncio.timeout(timeout):
            while not done():
                for r in runners:
                    if r.done():
                        r.result()
                await asyncio.sleep(0.1)
    finally:
        for w in workers:
            await w.shutdown()
        await asyncio.wait_for(asyncio.gather(*runners, return_exceptions=True), 60)


@pytest.mark.integration
async def test_a_two_process_job_runs_through_the_queue(settings, tmp_path, queue, s3):
    from test_trainer_integration import publish_job, trainer_events

    from trainer.worker import Worker

    task_id = f"dp{uuid.uuid4().hex[:10]}"
    await publish_job(queue.js, s3_job(s3, task_id, processes=2, epochs=20))
    # a 1 s ack wait (heartbeats every 0.25 s): a warm 2-core machine trains these 20 tiny epochs in ~3.5 s
    ack_wait = 1.0
    quick = worker_settings(settings, tmp_path, "dp-trainer").model_copy(
        update={"trainer_ack_wait": ack_wait, "trainer_heartbeat_s": 0.25}
    )
    async with Worker(settings=quick) as worker:
        await run_workers_until([worker], lambda: task_id in {t for t, _ in worker.outcomes})
    assert dict(worker.outcomes)[task_id] == "succeeded", worker.outcomes  # (a job an earlier test left may run too)
    events = await trainer_events(queue.js, task_id)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "started" and kinds[-1] == "succeeded" and kinds.count("epoch_metrics") == 20, kinds
    assert any("2 processes (gloo)" in e.log for e in events)
    # longer than the ack wait, yet one delivery: heartbeats flowed while the processes trained
    seconds = (events[-1].time.ToDatetime() - events[0].time.ToDatetime()).total_seconds()
    assert {e.attempt for e in events} == {1} and seconds > ack_wait, (
        seconds,
        [(e.attempt, k) for e, k in zip(events, kinds, strict=True)],
    )
    assert "val_top1" in events[-1].succeeded.metrics


@pytest.mark.integration
async def test_cancel_stops_every_process_of_a_running_job(settings, tmp_path, queue, s3):
    from kernel import messaging
    from trainer.worker import Worker

    task_id = f"dc{uuid.uuid4().hex[:10]}"
    first_epoch = asyncio.Event()

    async def on_event(msg) -> None:
        if events_pb2.TrainerEvent.FromString(msg.data).WhichOneof("event") == "epoch_metrics":
            first_epoch.set()

    sub = await queue.nc.subscribe(messaging.events_subject(task_id), cb=on_event)
    from test_trainer_integration import publish_job

    await publish_job(queue.js, s3_job(s3, task_id, processes=2, epochs=500))
    async with Worker(settings=worker_settings(settings, tmp_path, "dp-trainer")) as worker:
        pids: list[int] = []

        async def cancel() -> None:
            await asyncio.wait_for(first_epoch.wait(), 120)
            pids.extend(worker.rank_pids)
            await queue.js.publish(
                messaging.cancel_subject(task_id), events_pb2.CancelJob(task_id=task_id).SerializeToString()
            )

        canceller = asyncio.create_task(cancel())
        await run_workers_until([worker], lambda: task_id in {t for t, _ in worker.outcomes}, timeout=120)
        await canceller
    await sub.unsubscribe()
    assert dict(worker.outcomes)[task_id] == "cancelled", worker.outcomes
    assert len(pids) == 2 and worker.rank_pids == []
    for pid in pids:  # no rank is left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.integration
async def test_cancel_while_node_0_waits_for_the_other_nodes(settings, tmp_path, queue, s3):
    from test_trainer_integration import publish_job

    from kernel import messaging
    from trainer.worker import Worker

    task_id = f"dw{uuid.uuid4().hex[:10]}"
    waiting = asyncio.Event()

    async def on_event(msg) -> None:
        if "more trainer(s) to join" in events_pb2.TrainerEvent.FromString(msg.data).log:
            waiting.set()

    sub = await queue.nc.subscribe(messaging.events_subject(task_id), cb=on_event)
    await publish_job(queue.js, s3_job(s3, task_id, nodes=3))
    async with Worker(settings=worker_settings(settings, tmp_path, "lonely")) as worker:  # no other trainer

        async def cancel() -> None:
            await asyncio.wait_for(waiting.wait(), 60)
            await queue.js.publish(
                messaging.cancel_subject(task_id), events_pb2.CancelJob(task_id=task_id).SerializeToString()
            )

        canceller = asyncio.create_task(cancel())
        started = asyncio.get_running_loop().time()
        # well before the 60 s rendezvous timeout
        await run_workers_until([worker], lambda: task_id in {t for t, _ in worker.outcomes}, timeout=40)
        await canceller
    await sub.unsubscribe()
    mine = [o for t, o in worker.outcomes if t == task_id]
    assert mine[0] == "cancelled", worker.outcomes
    assert asyncio.get_running_loop().time() - started < 40
    # the run is over: its member messages are dropped by whoever takes them later (this trainer, once free)
    assert set(mine[1:]) <= {"member-stale"}, worker.outcomes
    from trainer import distributed

    assert await distributed.run_state(queue.js, f"{task_id}.1") == distributed.RUN_ENDED


@pytest.mark.integration
async def test_a_two_node_job_runs_on_two_trainers(settings, tmp_path, queue, s3):
    from test_trainer_integration import publish_job, trainer_events

    from trainer.worker import Worker

    task_id = f"mn{uuid.uuid4().hex[:10]}"
    await publish_job(queue.js, s3_job(s3, task_id, nodes=2, epochs=2))
    async with (
        Worker(settings=worker_settings(settings, tmp_path, "node-a")) as a,
        Worker(settings=worker_settings(settings, tmp_path, "node-b")) as b,
    ):
        outcomes = lambda: {o for w in (a, b) for t, o in w.outcomes if t == task_id}  # noqa: E731
        await run_workers_until([a, b], lambda: {"succeeded", "member-done"} <= outcomes())
    events = await trainer_events(queue.js, task_id)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-1] == "succeeded" and kinds.count("epoch_metrics") == 2, kinds
    assert any("all 2 nodes joined" in e.log for e in events)
    assert any("2 processes (gloo)" in e.log for e in events)
    # node 0 reported everything; the member only trained
    assert len({e.trainer_node for e in events}) == 1


@pytest.mark.integration
@pytest.mark.parametrize("victim", ["member node", "process"])
async def test_a_killed_member_fails_the_attempt_and_the_retry_resumes(settings, tmp_path, queue, s3, victim):
    """SIGKILL the rank of a member node (2 trainers x 1 process) or one process of a 2-process job."""
    from kernel import messaging
    from trainer.worker import Worker

    task_id = f"mk{uuid.uuid4().hex[:10]}"
    events: list[events_pb2.TrainerEvent] = []
    first_epoch = asyncio.Event()

    async def on_event(msg) -> None:
        ev = events_pb2.TrainerEvent.FromString(msg.data)
        events.append(ev)
        if ev.WhichOneof("event") == "epoch_metrics" and ev.attempt == 1:
            first_epoch.set()

    sub = await queue.nc.subscribe(messaging.events_subject(task_id), cb=on_event)
    from test_trainer_integration import publish_job

    shape = {"nodes": 2} if victim == "member node" else {"processes": 2}
    await publish_job(queue.js, s3_job(s3, task_id, epochs=8, **shape))
    async with contextlib.AsyncExitStack() as exits:
        names = ["node-a", "node-b"] if victim == "member node" else ["solo"]
        workers = [
            await exits.enter_async_context(Worker(settings=worker_settings(settings, tmp_path, n))) for n in names
        ]
        killed: list[int] = []

        async def kill() -> None:
            await asyncio.wait_for(first_epoch.wait(), 120)
            if victim == "member node":  # the trainer that is not node 0 (node 0 reports the events)
                member = next(w for w in workers if w.node != events[-1].trainer_node)
                killed.extend(member.rank_pids)
            else:  # local rank 1 of the only trainer
                killed.append(workers[0].rank_pids[1])
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

        killer = asyncio.create_task(kill())
        done = lambda: any(o == "succeeded" for w in workers for t, o in w.outcomes if t == task_id)  # noqa: E731
        await run_workers_until(workers, done, timeout=240)
        await killer
    async with asyncio.timeout(30):  # the final event reaches this subscription too
        while not any(e.WhichOneof("event") == "succeeded" for e in events):
            await asyncio.sleep(0.05)
    await sub.unsubscribe()
    assert killed
    kinds = [(e.attempt, e.WhichOneof("event")) for e in events]
    failed = [e.failed for e in events if e.WhichOneof("event") == "failed"]
    assert failed and failed[0].retryable, kinds
    assert "lost a process" in failed[0].reason or "rank 1" in failed[0].reason, failed[0].reason
    started = [e for e in events if e.WhichOneof("event") == "started" and e.attempt == 2]
    assert started and started[0].started.resumed_from_epoch >= 1, kinds
    assert kinds[-1] == (2, "succeeded"), kinds


@pytest.mark.integration
async def test_a_task_created_with_resources_trains_on_two_processes(stack, settings, tmp_path, queue):  # noqa: F811
    """Through the training service: resources are validated, stored on the task, carried by the job."""
    from test_training_service import MOBILENET, make_dataset, request

    from trainer.worker import Worker
    from trainyard.training.v1 import training_pb2 as T
    from trainyard.training.v1 import training_service_pb2 as pb

    datasets, _zoo, training = stack
    dataset_id = await make_dataset(datasets, "shapes")
    task = (
        await training.CreateTrainingTask(
            request(
                dataset_id,
                model_id=MOBILENET,
                transfer_strategy=C.TRANSFER_STRATEGY_FROM_SCRATCH,
                resources=C.ComputeResources(processes_per_node=2),
            )
        )
    ).task
    assert task.resources.processes_per_node == 2
    async with Worker(settings=worker_settings(settings, tmp_path, "dp-trainer")) as worker:
        await run_workers_until([worker], lambda: task.id in {t for t, _ in worker.outcomes})
    events = [
        r.event async for r in training.WatchTrainingTask(pb.WatchTrainingTaskRequest(task_id=task.id, from_start=True))
    ]
    done = (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task
    assert done.state == T.TASK_STATE_SUCCEEDED, done.failure_reason
    assert done.resources.processes_per_node == 2 and len(done.epoch_metrics) == 2
    assert any("2 processes (gloo), 4 of the global batch 8" in e.log for e in events)
