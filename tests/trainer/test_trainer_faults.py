"""Trainer faults (integration, real servers): the object store away during a checkpoint upload, the cache
disk full, an image object missing. Each test drops the shared classification consumer first so its
trainer makes it with its own settings, and purges what it queued afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid

import pytest
from test_trainer_integration import make_job, trainer_events, trainer_settings, upload_dataset, upload_weights
from test_trainer_kill import drop_consumer

from deploy.local.embedded import start_s3
from kernel import messaging, objectstore
from trainer.worker import Worker

pytestmark = pytest.mark.integration


async def publish(js, job) -> None:
    await js.publish(
        messaging.jobs_subject("classification"), job.SerializeToString(), headers={"Nats-Msg-Id": f"{job.task_id}-1"}
    )


async def run_until_final(worker: Worker, task_id: str, timeout: float) -> None:
    runner = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while not any(t == task_id and o in ("succeeded", "failed") for t, o in worker.outcomes):
                if runner.done():
                    runner.result()
                await asyncio.sleep(0.1)
    finally:
        await worker.shutdown()
        await asyncio.wait_for(runner, 60)


@pytest.mark.slow
async def test_object_store_down_10s_during_a_checkpoint_upload_training_goes_on(settings, tmp_path, nats_server):
    s3 = start_s3(tmp_path / "s3")
    own = settings.model_copy(
        update={"s3_endpoint": s3.endpoint, "s3_access_key": s3.access_key, "s3_secret_key": s3.secret_key}
    )
    client = objectstore.make_client(own)
    objectstore.ensure_buckets(client)
    nc = await messaging.connect(nats_server.url, "s3-down-test")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    await drop_consumer(settings)
    try:
        weights = upload_weights(client)
        task_id = f"tts3down{uuid.uuid4().hex[:8]}"
        await publish(js, make_job(task_id, upload_dataset(client, per_class=4, val_per_class=1), weights, epochs=3))
        kinds: list[str] = []

        async def on_event(msg) -> None:
            from trainyard.events.v1 import events_pb2

            kinds.append(events_pb2.TrainerEvent.FromString(msg.data).WhichOneof("event"))

        sub = await nc.subscribe(messaging.events_subject(task_id), cb=on_event)
        cfg = trainer_settings(own, tmp_path).model_copy(update={"trainer_task_types": ["classification"]})
        outage = {}
        async with Worker(settings=cfg) as worker:

            async def outage_at_first_step() -> None:
                nonlocal s3
                while "progress" not in kinds:  # images are cached; the epoch-1 checkpoint upload is next
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(s3.stop, 1)
                outage["down"] = time.monotonic()
                await asyncio.sleep(10)
                s3 = await asyncio.to_thread(
                    start_s3, tmp_path / "s3", access_key=s3.access_key, secret_key=s3.secret_key, ports=s3.ports
                )
                outage["up"] = time.monotonic()

            chaos = asyncio.create_task(outage_at_first_step())
            await run_until_final(worker, task_id, timeout=240)
            await chaos
        await sub.unsubscribe()
        assert [o for t, o in worker.outcomes if t == task_id] == ["succeeded"], worker.outcomes  # one attempt
        assert worker.store.retries > 0, "the outage was never seen: the test did not hit an upload"
        events = await trainer_events(js, task_id)
        assert [e.epoch_metrics.epoch for e in events if e.WhichOneof("event") == "epoch_metrics"] == [1, 2, 3]
        ckpt = next(a.object for a in events[-1].succeeded.artifacts if a.name == "checkpoint")
        assert objectstore.exists(client, ckpt.bucket, ckpt.key)
        print(
            f"FIGURE s3 down {outage['up'] - outage['down']:.1f} s during a checkpoint upload: "
            f"{worker.store.retries} retried S3 calls, the job succeeded in one attempt"
        )
    finally:
        await drop_consumer(settings, purge=True)
        await nc.close()
        s3.stop(grace=2)


def _mount_tmpfs(path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a full cache disk here: {done.stderr.decode().strip()[:200]}")


@pytest.mark.slow
async def test_full_cache_disk_fails_with_the_path_and_the_job_runs_on_another_trainer(settings, tmp_path, nats_server):
    s3 = objectstore.make_client(settings)
    objectstore.ensure_buckets(s3)
    nc = await messaging.connect(nats_server.url, "disk-full-test")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    await drop_consumer(settings)
    full = tmp_path / "small-disk"
    _mount_tmpfs(full, "64k")
    try:
        (full / "filler").write_bytes(b"\0" * (1 << 20))  # fills the disk (stops with ENOSPC)
    except OSError:
        pass
    try:
        task_id = f"ttdiskfull{uuid.uuid4().hex[:8]}"
        await publish(js, make_job(task_id, upload_dataset(s3, per_class=3, val_per_class=1), upload_weights(s3), 1))
        base = trainer_settings(settings, tmp_path).model_copy(
            update={"trainer_task_types": ["classification"], "trainer_max_deliver": 2}
        )
        cramped = base.model_copy(update={"trainer_name": "cramped", "trainer_cache_dir": full / "cache"})
        async with Worker(settings=cramped, stop_after=1) as worker:
            await asyncio.wait_for(worker.run(), 120)
        assert worker.outcomes == [(task_id, "retrying")], worker.outcomes
        [failed] = [e for e in await trainer_events(js, task_id) if e.WhichOneof("event") == "failed"]
        reason = failed.failed.reason
        assert failed.failed.retryable and "cache disk is full" in reason and str(full / "cache") in reason, reason
        assert not list((full / "cache").glob("*/*.download")) and not list((full / "cache").glob("*/.*"))

        roomy = base.model_copy(update={"trainer_name": "roomy"})
        async with Worker(settings=roomy) as other:
            await run_until_final(other, task_id, timeout=120)  # after the nak delay (5 s)
        assert other.outcomes == [(task_id, "succeeded")], other.outcomes
        print(f"FIGURE cache disk full: attempt 1 failed on 'cramped' ({reason[:140]}...); attempt 2 succeeded")
    finally:
        subprocess.run(["umount", "-l", str(full)], capture_output=True)
        await drop_consumer(settings, purge=True)
        await nc.close()
