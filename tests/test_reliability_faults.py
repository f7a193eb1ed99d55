"""Fault injection (integration): each test starts the servers it kills (deploy.local.embedded) and
never touches the session-wide nats_server / s3_server fixtures.

Figures for RELIABILITY.md come from these tests (durations are logged with -s).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import grpc
import pytest
from sqlalchemy import text

from deploy.local.embedded import free_port, start_s3
from services.common import errors, objectstore
from services.common.db import make_engine, migrate
from services.dataset.service import CreateSpec, Datasets
from services.dataset.settings import dataset_settings
from tests.fuzz.fuzz_annotations import tiny_png, zip_bytes

log = logging.getLogger(__name__)
pytestmark = pytest.mark.integration
DATASET_MIGRATIONS = Path(__file__).parent.parent / "services" / "dataset" / "migrations"


def _archive(tmp_path: Path) -> Path:
    members = {f"{c}/{i}.png": tiny_png((8 + i, 8 + k)) for k, c in enumerate(("cat", "dog")) for i in range(6)}
    path = tmp_path / "pets.zip"
    path.write_bytes(zip_bytes(members))
    return path


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


# -- (c) the object store goes away during an import -----------------------------------------------


@pytest.mark.slow
def test_object_store_down_during_import_fails_cleanly_then_a_retry_succeeds(settings, tmp_path):
    s3 = start_s3(tmp_path / "s3")
    engine = None
    try:
        cfg = dataset_settings(
            settings.model_copy(
                update={"s3_endpoint": s3.endpoint, "s3_access_key": s3.access_key, "s3_secret_key": s3.secret_key}
            )
        )
        engine = make_engine(cfg.database_url)
        migrate(engine, DATASET_MIGRATIONS, "alembic_version_dataset")
        client = objectstore.make_client(cfg)
        objectstore.ensure_buckets(client, (objectstore.DATASETS_BUCKET,))
        datasets = Datasets(engine, client, cfg)
        archive = _archive(tmp_path)
        spec = CreateSpec(name="pets", request_id="import-1")

        def kill_at_upload(done: int, total: int) -> None:
            if done < 0:  # "uploading": the images are decoded, nothing stored yet
                s3.stop(grace=2)

        started = time.monotonic()
        with pytest.raises(errors.Unavailable) as exc:
            datasets.create("default", spec, archive, kill_at_upload)
        failed_after = time.monotonic() - started
        print(f"FIGURE s3-down import failed after {failed_after:.1f} s: {type(exc.value).__name__}: {exc.value}"[:300])
        assert failed_after < 120
        # no partial state: no dataset, no version, and the request id is free for the retry
        assert _count(engine, "dataset_datasets") == 0
        assert _count(engine, "dataset_versions") == 0
        assert datasets.store.find_by_request_id("default", "import-1") is None

        s3 = start_s3(tmp_path / "s3", access_key=s3.access_key, secret_key=s3.secret_key, ports=s3.ports)
        record = datasets.create("default", spec, archive)
        again = datasets.create("default", spec, archive)
        assert record.dataset.id == again.dataset.id and record.version.case_count == 12
        assert _count(engine, "dataset_datasets") == 1
        assert objectstore.get_json(client, record.version.manifest_bucket, record.version.manifest_key)["cases"]
        datasets.close()
    finally:
        s3.stop(grace=2)
        if engine is not None:
            engine.dispose()


# -- (a) a service killed and restarted behind the gateway -----------------------------------------

ADMIN_TOKEN = "ty_reliab1_" + "r" * 43


async def _list(stub, **kw):
    from trainyard.dataset.v1 import dataset_service_pb2

    return await stub.ListDatasets(
        dataset_service_pb2.ListDatasetsRequest(), metadata=(("authorization", f"Bearer {ADMIN_TOKEN}"),), **kw
    )


async def test_gateway_answers_unavailable_while_a_service_is_down_and_recovers(settings):
    from gateway.app import start as start_gateway
    from services.dataset.app import start as start_dataset
    from trainyard.dataset.v1 import dataset_service_pb2_grpc

    port = free_port()
    dataset_settings_ = settings.model_copy(update={"listen": f"127.0.0.1:{port}", "internal_token": "itok"})
    dataset = await start_dataset(dataset_settings_)
    gateway = await start_gateway(
        settings.model_copy(
            update={
                "listen": "127.0.0.1:0",
                "internal_token": "itok",
                "dataset_address": f"127.0.0.1:{port}",
                "database_url": settings.database_url.replace("test.db", "gateway.db"),
                "bootstrap_token": ADMIN_TOKEN,
            }
        )
    )
    channel = grpc.aio.insecure_channel(gateway.address)
    stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    try:
        await _list(stub, timeout=20)
        await dataset.stop()  # killed: the port closes, the gateway's backend channel breaks
        down = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _list(stub, timeout=20)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "DatasetService" in err.value.details()
        answered_in = time.monotonic() - down
        dataset = await start_dataset(dataset_settings_)  # same port, same database
        restarted = time.monotonic()
        recovered = None
        for _ in range(60):  # bounded: grpc reconnect backoff is at most a few seconds here
            try:
                await _list(stub, timeout=5)
                recovered = time.monotonic() - restarted
                break
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
                await asyncio.sleep(0.5)
        assert recovered is not None, "gateway did not recover within ~30 s of the restart"
        print(f"FIGURE gateway: UNAVAILABLE answered in {answered_in:.2f} s; recovered {recovered:.2f} s after restart")
    finally:
        await channel.close()
        await gateway.stop()
        await dataset.stop()


# -- (d) poison jobs fail with the reason after max deliveries; a good job behind them succeeds ------


@pytest.mark.slow
async def test_poison_jobs_fail_with_the_reason_and_a_following_good_job_succeeds(settings, tmp_path, nats_server):
    from services.common import messaging
    from tests.test_trainer_integration import (
        make_job,
        trainer_events,
        trainer_settings,
        upload_dataset,
        upload_weights,
    )
    from trainer.worker import Worker
    from trainyard.common.v1 import common_pb2 as C

    s3 = objectstore.make_client(settings)
    objectstore.ensure_buckets(s3)
    nc = await messaging.connect(nats_server.url, "reliability-test")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    try:
        weights = upload_weights(s3)
        good_dataset = upload_dataset(s3, per_class=3, val_per_class=1)
        # 1. garbage manifest object (sha256 matches the garbage: it is read, then fails to parse)
        garbage = b"\x00\xffnot json at all{{{"
        digest = objectstore.put_bytes(s3, objectstore.DATASETS_BUCKET, "manifests/poison/garbage.json", garbage)
        garbage_ref = C.ObjectRef(
            bucket=objectstore.DATASETS_BUCKET,
            key="manifests/poison/garbage.json",
            sha256=digest,
            size_bytes=len(garbage),
        )
        # 2. a manifest whose images do not exist (S3 NoSuchKey): permanent, failed on the first delivery
        manifest = objectstore.get_json(s3, good_dataset[2].bucket, good_dataset[2].key)
        for case in manifest["cases"]:
            case["image_key"] = "images/00/" + "0" * 64  # (the trainer's cache is keyed by sha256: change it too)
            case["sha256"] = "0" * 64
        missing_key = f"manifests/poison/{good_dataset[1]}-missing.json"
        msha, msize = objectstore.put_json(s3, objectstore.DATASETS_BUCKET, missing_key, manifest)
        missing_ref = C.ObjectRef(bucket=objectstore.DATASETS_BUCKET, key=missing_key, sha256=msha, size_bytes=msize)

        ids = {name: f"tt{name}{uuid.uuid4().hex[:8]}" for name in ("garbage", "missing", "good")}
        jobs = {
            "garbage": make_job(ids["garbage"], (good_dataset[0], good_dataset[1], garbage_ref), weights, epochs=1),
            "missing": make_job(ids["missing"], (good_dataset[0], good_dataset[1], missing_ref), weights, epochs=1),
            "good": make_job(ids["good"], good_dataset, weights, epochs=1),
        }
        for name in ("garbage", "missing", "good"):
            job = jobs[name]
            await js.publish(
                messaging.jobs_subject("classification"),
                job.SerializeToString(),
                headers={"Nats-Msg-Id": f"{job.task_id}-1"},
            )

        cfg = trainer_settings(settings, tmp_path).model_copy(update={"trainer_max_deliver": 2})
        started = time.monotonic()
        async with Worker(settings=cfg) as worker:
            runner = asyncio.create_task(worker.run())
            try:
                async with asyncio.timeout(240):
                    while True:
                        final = {t: o for t, o in worker.outcomes if o in ("failed", "succeeded")}
                        if set(ids.values()) <= set(final):
                            break
                        if runner.done():
                            runner.result()
                        await asyncio.sleep(0.2)
            finally:
                await worker.shutdown()
                await asyncio.wait_for(runner, 60)
        elapsed = time.monotonic() - started
        outcomes = [(t, o) for t, o in worker.outcomes]
        assert (ids["garbage"], "failed") in outcomes
        assert (ids["good"], "succeeded") in outcomes
        missing = [o for t, o in outcomes if t == ids["missing"]]
        assert missing == ["failed"], missing  # a missing object never appears by retrying: failed at once

        for name, needle in (("garbage", "not valid JSON"), ("missing", "images/00/" + "0" * 64)):
            events = await trainer_events(js, ids[name])
            last = events[-1]
            assert last.WhichOneof("event") == "failed" and not last.failed.retryable
            assert last.failed.reason and needle in last.failed.reason
        reason_missing = (await trainer_events(js, ids["missing"]))[-1].failed.reason
        print(
            f"FIGURE poison: 2 poison jobs + 1 good drained in {elapsed:.1f} s; missing-image reason: {reason_missing[:120]}"
        )
        assert objectstore.exists(s3, objectstore.ARTIFACTS_BUCKET, f"tasks/{ids['good']}/model.pt")
        assert not objectstore.exists(s3, objectstore.ARTIFACTS_BUCKET, f"tasks/{ids['garbage']}/model.pt")
    finally:
        await nc.close()


# -- (b) nats-server restarted while the training domain and a trainer run --------------------------


@pytest.mark.slow
async def test_nats_restart_during_training_loses_nothing_and_creates_are_idempotent(settings, tmp_path):
    from deploy.local.embedded import start_nats
    from services.common import db, messaging
    from services.training.domain import JetStreamPublisher, TrainingDomain
    from services.training.tasks import TaskStore
    from tests.test_trainer_integration import CLASSES, trainer_settings, upload_dataset, upload_weights
    from tests.test_training_validation import FakeDatasets, FakeRecommender, FakeZoo, make_dataset, make_model
    from trainer.worker import Worker
    from trainyard.common.v1 import common_pb2 as C
    from trainyard.dataset.v1 import dataset_pb2
    from trainyard.training.v1 import training_service_pb2 as pb

    nats = start_nats(tmp_path / "nats")
    s3 = objectstore.make_client(settings)
    objectstore.ensure_buckets(s3)
    weights = upload_weights(s3)
    dataset_id, version_id, manifest = upload_dataset(s3, per_class=4, val_per_class=1)
    ds = make_dataset()
    ds.id = ds.latest_version.dataset_id = dataset_id
    ds.latest_version.id = version_id
    ds.latest_version.manifest.CopyFrom(manifest)
    del ds.latest_version.classes[:]
    ds.latest_version.classes.extend(dataset_pb2.ClassInfo(index=i, name=n) for i, n in enumerate(CLASSES))
    model = make_model()
    model.weights.CopyFrom(weights)

    engine = db.make_engine(f"sqlite:///{tmp_path}/training.db")
    db.migrate(
        engine, Path(__file__).parent.parent / "services" / "training" / "migrations", "alembic_version_training"
    )
    store = TaskStore(engine)
    nc = await messaging.connect(nats.url, "reliability-training")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    domain = TrainingDomain(
        store=store,
        datasets=FakeDatasets(ds),
        zoo=FakeZoo(model),
        recommender=FakeRecommender(),
        publisher=JetStreamPublisher(js),
    )
    request = pb.CreateTrainingTaskRequest(
        name="survives",
        task_type=C.TASK_TYPE_CLASSIFICATION,
        dataset_id=dataset_id,
        model_id=model.id,
        hyperparameters=C.Hyperparameters(epochs=3, batch_size=4, image_size=32, seed=1),
        request_id="nats-restart-1",
    )
    cfg = trainer_settings(settings.model_copy(update={"nats_url": nats.url}), tmp_path)
    worker = Worker(settings=cfg)
    runner = None
    try:
        await worker.connect()
        runner = asyncio.create_task(worker.run())
        task = await domain.create(request)

        async def started() -> bool:
            sub = await js.pull_subscribe(messaging.events_subject(task.id), stream=messaging.EVENTS_STREAM)
            try:
                msgs = await sub.fetch(10, timeout=1.0)
                return any(m.data for m in msgs)
            except Exception:  # noqa: BLE001 - nats timeout: nothing yet
                return False
            finally:
                await sub.unsubscribe()

        async with asyncio.timeout(90):
            while not await started():
                await asyncio.sleep(0.5)

        t0 = time.monotonic()
        nats.stop(grace=2)
        nats = start_nats(tmp_path / "nats", port=nats.port, monitor_port=nats.monitor_port)
        restart_s = time.monotonic() - t0

        again = None
        async with asyncio.timeout(60):
            while again is None:  # the publisher's connection comes back on its own
                try:
                    again = await domain.create(request)
                except Exception:  # noqa: BLE001 - not reconnected yet
                    await asyncio.sleep(0.5)
        assert again.id == task.id
        assert len(store.list("default")[0]) == 1

        async with asyncio.timeout(240):
            while not any(t == task.id and o in ("succeeded", "failed") for t, o in worker.outcomes):
                if runner.done():
                    runner.result()
                await asyncio.sleep(0.5)
        outcomes = [o for t, o in worker.outcomes if t == task.id]
        print(f"FIGURE nats restart: server back in {restart_s:.1f} s; trainer outcomes {outcomes}")
        assert outcomes.count("succeeded") == 1 and "failed" not in outcomes, outcomes
        assert objectstore.exists(s3, objectstore.ARTIFACTS_BUCKET, f"tasks/{task.id}/model.pt")
    finally:
        await worker.shutdown()
        if runner is not None:
            await asyncio.wait_for(runner, 60)
        await worker.close()
        await nc.close()
        nats.stop(grace=2)
        engine.dispose()
