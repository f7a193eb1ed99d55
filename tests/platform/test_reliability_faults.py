"""Fault injection (integration): each test starts the servers it kills (deploy.local.embedded) and
never touches the session-wide nats_server / s3_server fixtures.

Figures for RELIABILITY.md come from these tests (durations are logged with -s).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from pathlib import Path

import grpc
import pytest
import urllib3
from minio import Minio
from minio.error import S3Error, ServerError
from sqlalchemy import text

from deploy.local.embedded import free_port, start_s3
from kernel import errors, objectstore
from kernel.db import make_engine
from services.dataset.app import start as start_dataset
from services.dataset.domain import CreateSpec, Datasets
from services.dataset.samples import make_classification_archive, upload_chunks
from services.dataset.settings import dataset_settings
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_service_pb2, dataset_service_pb2_grpc

log = logging.getLogger(__name__)
pytestmark = pytest.mark.integration


def _zip(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    return path


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


# -- (c) the object store goes away during an import -----------------------------------------------
# The outage starts while the client is still streaming the archive: the service spools the upload and
# touches the object store only once the stream ends, so every S3 call of the import meets the outage,
# however fast or slow the machine is.


class _OwnS3:
    """A SeaweedFS of the test's own, stopped and started again on the same ports and data."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = start_s3(path)
        self.restarts: list[asyncio.Task] = []
        self.unreachable_s: list[float] = []  # per outage: stopped until answering again

    def settings(self, settings, **update):
        server = self.server
        return dataset_settings(
            settings.model_copy(
                update={
                    "s3_endpoint": server.endpoint,
                    "s3_access_key": server.access_key,
                    "s3_secret_key": server.secret_key,
                    **update,
                }
            )
        )

    def client(self):
        return self.server.client()

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop, 1)

    async def start(self) -> None:
        s = self.server
        self.server = await asyncio.to_thread(
            start_s3, self.path, access_key=s.access_key, secret_key=s.secret_key, ports=s.ports
        )

    async def outage(self, seconds: float) -> None:
        """Stop now; start again `seconds` later, in the background."""
        await self.stop()
        down = time.monotonic()

        async def later() -> None:
            await asyncio.sleep(seconds)
            await self.start()
            self.unreachable_s.append(time.monotonic() - down)

        self.restarts.append(asyncio.create_task(later()))


async def _ending_with(requests, before_the_end):
    """The request stream, awaiting before_the_end() before its last message (the upload is then spooled
    but the import has not begun)."""
    items = list(requests)
    for item in items[:-1]:
        yield item
    await before_the_end()
    yield items[-1]


def _version_chunks(meta, data: bytes):
    yield dataset_service_pb2.CreateDatasetVersionRequest(metadata=meta)
    for i in range(0, len(data), 16 * 1024):
        yield dataset_service_pb2.CreateDatasetVersionRequest(chunk=data[i : i + 16 * 1024])


def _every_image_readable(client, version) -> int:
    manifest = objectstore.get_json(client, version.manifest.bucket, version.manifest.key)
    for case in manifest["cases"]:
        data = objectstore.get_bytes(client, objectstore.DATASETS_BUCKET, case["image_key"])
        assert hashlib.sha256(data).hexdigest() == case["sha256"], case["image_key"]
    return len(manifest["cases"])


def _waits(caplog) -> int:
    return sum(r.getMessage() == "object store unavailable during an import; waiting for it" for r in caplog.records)


def test_only_an_unreachable_store_is_waited_for_never_a_refusal(s3_server):
    """objectstore.call_with_retry (the trainer's and the imports' loop) against real answers."""
    waits: list[str] = []

    def note(error: BaseException, wait_s: float, left_s: float) -> None:
        waits.append(objectstore.describe(error))

    good = s3_server.client()
    wrong_key = Minio(s3_server.endpoint, access_key=s3_server.access_key, secret_key="not-the-key", secure=False)
    refusals = (
        (lambda: good.get_object("trainyard-no-such-bucket", "k"), "NoSuchBucket"),
        (lambda: wrong_key.list_objects(objectstore.DATASETS_BUCKET).__next__(), "SignatureDoesNotMatch"),
    )
    for call, code in refusals:
        with pytest.raises(S3Error) as exc:
            objectstore.call_with_retry(call, retry_s=30, first_backoff_s=0.1, on_retry=note)
        assert exc.value.code == code and not objectstore.is_transient(exc.value)
    with pytest.raises(ValueError, match="invalid bucket name"):  # bad input
        objectstore.call_with_retry(lambda: good.bucket_exists("b"), retry_s=30, on_retry=note)
    assert waits == []

    nobody = Minio(f"127.0.0.1:{free_port()}", secure=False, http_client=urllib3.PoolManager(retries=1))
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as exc:
        objectstore.call_with_retry(
            lambda: nobody.bucket_exists("some-bucket"), retry_s=1.5, first_backoff_s=0.1, on_retry=note
        )
    assert objectstore.is_transient(exc.value) and time.monotonic() - started >= 1.5
    assert len(waits) >= 2 and "Connection refused" in waits[0], waits
    assert objectstore.is_transient(ServerError("503", 503)) and not objectstore.is_transient(ServerError("401", 401))


@pytest.mark.slow
async def test_object_store_down_8s_mid_import_the_import_waits_and_completes(settings, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="services.dataset.domain")
    s3 = _OwnS3(tmp_path / "s3")
    running = None
    try:
        # 120 s, not the default 60: a loaded 2-core machine may take a while to restart SeaweedFS
        running = await start_dataset(s3.settings(settings, dataset_object_store_retry_s=120))
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
            archive = make_classification_archive(per_class=10, size=40, seed=3)
            started = time.monotonic()
            created = await stub.CreateDataset(
                _ending_with(
                    upload_chunks(dataset_service_pb2.CreateDatasetMetadata(name="pets"), archive, 16 * 1024),
                    lambda: s3.outage(8),
                ),
                timeout=180,
            )
            took = time.monotonic() - started
            ds = created.dataset
            assert ds.latest_version.case_count == 30
            assert _waits(caplog) > 0, "the import never met the outage"
            first_waits = _waits(caplog)

            # a new version of it, through the same outage
            await asyncio.gather(*s3.restarts)
            extra = make_classification_archive(classes=("star", "ring"), per_class=8, size=40, seed=4)
            version = (
                await stub.CreateDatasetVersion(
                    _ending_with(
                        _version_chunks(dataset_service_pb2.CreateDatasetVersionMetadata(dataset_id=ds.id), extra),
                        lambda: s3.outage(8),
                    ),
                    timeout=180,
                )
            ).version
            assert version.number == 2 and version.case_count == 46
            assert _waits(caplog) > first_waits, "the version import never met the outage"
            await asyncio.gather(*s3.restarts)
            client = s3.client()
            assert _every_image_readable(client, ds.latest_version) == 30
            assert _every_image_readable(client, version) == 46
            listed = await stub.ListDatasets(dataset_service_pb2.ListDatasetsRequest())
            assert [d.latest_version.number for d in listed.datasets] == [2]
        print(
            f"FIGURE s3 stopped for 8 s mid-import (unreachable {s3.unreachable_s[0]:.1f} s and "
            f"{s3.unreachable_s[1]:.1f} s with SeaweedFS's restart): the dataset import completed in {took:.1f} s, "
            f"the version import too; {_waits(caplog)} waits logged"
        )
    finally:
        await asyncio.gather(*s3.restarts, return_exceptions=True)
        if running is not None:
            await running.stop()
        s3.server.stop(grace=2)


@pytest.mark.slow
async def test_object_store_down_longer_than_the_window_fails_cleanly_then_a_retry_succeeds(settings, tmp_path):
    s3 = _OwnS3(tmp_path / "s3")
    cfg = s3.settings(settings, dataset_object_store_retry_s=2)
    engine = make_engine(cfg.database_url)
    running = None
    try:
        running = await start_dataset(cfg)
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
            archive = make_classification_archive(per_class=6, size=40, seed=5)
            base = (
                await stub.CreateDataset(upload_chunks(dataset_service_pb2.CreateDatasetMetadata(name="base"), archive))
            ).dataset
            objectstore.put_bytes(s3.client(), objectstore.UPLOADS_BUCKET, "u/pets.zip", archive)

            meta = dataset_service_pb2.CreateDatasetMetadata(name="pets", request_id="import-1")
            other = make_classification_archive(classes=("star", "ring"), per_class=6, size=40, seed=6)
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as err:  # the store stays down
                await stub.CreateDataset(_ending_with(upload_chunks(meta, other, 16 * 1024), s3.stop), timeout=120)
            failed_after = time.monotonic() - started
            print(f"FIGURE s3 down, 2 s window: the import failed after {failed_after:.1f} s: {err.value.details()}")
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert errors.error_reason(err.value) == "OBJECT_STORE_UNAVAILABLE"
            message = err.value.details()
            assert f"the object store at {cfg.s3_endpoint} was unavailable for more than 2 s" in message
            assert "while storing image images/" in message and "retry the import later" in message

            with pytest.raises(grpc.aio.AioRpcError) as err:  # a version fails the same way
                await stub.CreateDatasetVersion(
                    _version_chunks(dataset_service_pb2.CreateDatasetVersionMetadata(dataset_id=base.id), other),
                    timeout=120,
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
            assert cfg.s3_endpoint in err.value.details() and "images/" in err.value.details()

            with pytest.raises(grpc.aio.AioRpcError) as err:  # the store is down, not the object missing
                await stub.ImportDataset(
                    dataset_service_pb2.ImportDatasetRequest(
                        source=common_pb2.ObjectRef(bucket=objectstore.UPLOADS_BUCKET, key="u/pets.zip"),
                        metadata=dataset_service_pb2.CreateDatasetMetadata(name="pets-import"),
                    ),
                    timeout=120,
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()

            with pytest.raises(grpc.aio.AioRpcError) as err:  # reads too: an outage, not an internal error
                await stub.PreviewCases(
                    dataset_service_pb2.PreviewCasesRequest(dataset_id=base.id, count=2), timeout=60
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
            assert errors.error_reason(err.value) == "OBJECT_STORE_UNAVAILABLE"

            # nothing half written: no new dataset, version or manifest; the request id is free
            assert _count(engine, "dataset_datasets") == 1
            assert _count(engine, "dataset_versions") == 1
            await s3.start()
            client = s3.client()
            manifests = list(client.list_objects(objectstore.DATASETS_BUCKET, prefix="manifests/", recursive=True))
            assert [m.object_name for m in manifests] == [base.latest_version.manifest.key]

            # the import reports that it waits (WatchImport streams this line), then why it gave up
            notices: list[str] = []
            datasets = Datasets(engine, client, cfg, import_s3=objectstore.make_client(cfg, retries=1))
            await s3.stop()
            with pytest.raises(errors.Unavailable):
                await asyncio.to_thread(
                    datasets.create, "default", CreateSpec(name="noted"), _zip(tmp_path, other), None, notices.append
                )
            assert any(
                n.startswith(f"waiting for the object store at {cfg.s3_endpoint} (storing image") for n in notices
            )
            await s3.start()

            created = (await stub.CreateDataset(upload_chunks(meta, other), timeout=120)).dataset
            again = (await stub.CreateDataset(upload_chunks(meta, other), timeout=120)).dataset
            assert created.id == again.id and created.latest_version.case_count == 12
            assert _count(engine, "dataset_datasets") == 2
            assert _every_image_readable(s3.client(), created.latest_version) == 12
            datasets.close()
    finally:
        if running is not None:
            await running.stop()
        s3.server.stop(grace=2)
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
    from test_trainer_integration import (
        make_job,
        trainer_events,
        trainer_settings,
        upload_dataset,
        upload_weights,
    )

    from kernel import messaging
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
    from test_trainer_integration import CLASSES, trainer_settings, upload_dataset, upload_weights
    from test_training_validation import FakeDatasets, FakeRecommender, FakeZoo, make_dataset, make_model

    from deploy.local.embedded import start_nats
    from kernel import db, messaging
    from services.training.domain import JetStreamPublisher, TrainingDomain
    from services.training.store import TaskStore
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
        engine, Path(__file__).parent.parent.parent / "services" / "training" / "migrations", "alembic_version_training"
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
