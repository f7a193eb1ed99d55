"""The embedded servers: JetStream works on the started nats-server; SeaweedFS S3 takes only its credentials."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import pytest
from minio import Minio
from minio.error import S3Error

from deploy.local.embedded import free_port, free_ports, pid_alive, port_is_free, stop_process
from kernel import messaging, objectstore
from trainyard.events.v1 import events_pb2

pytestmark = pytest.mark.integration


async def test_jetstream_publish_and_pull(nats_server):
    nc = await messaging.connect(nats_server.url, "test-embedded")
    try:
        js = nc.jetstream()
        stream = f"EMBEDDED_{os.getpid()}"
        await js.add_stream(name=stream, subjects=[f"embedded.{os.getpid()}.>"])
        ack = await js.publish(f"embedded.{os.getpid()}.one", b"hello", headers={"Nats-Msg-Id": "m-1"})
        duplicate = await js.publish(f"embedded.{os.getpid()}.one", b"hello", headers={"Nats-Msg-Id": "m-1"})
        assert ack.stream == stream and duplicate.duplicate
        sub = await js.pull_subscribe(f"embedded.{os.getpid()}.>", durable="embedded-test", stream=stream)
        [msg] = await sub.fetch(1, timeout=5)
        assert msg.data == b"hello"
        await msg.ack_sync()
        info = await js.consumer_info(stream, "embedded-test")
        assert info.num_ack_pending == 0 and info.num_pending == 0
        await js.delete_stream(stream)
    finally:
        await nc.close()


async def test_jetstream_stores_on_disk(nats_server):
    nc = await messaging.connect(nats_server.url, "test-embedded")
    try:
        js = nc.jetstream()
        await messaging.ensure_streams(js)
        info = await js.stream_info(messaging.JOBS_STREAM)
        assert str(getattr(info.config.storage, "value", info.config.storage)) == "file"
    finally:
        await nc.close()
    assert any(nats_server.store_dir.rglob("*")), "JetStream wrote nothing under its store dir"


def test_s3_put_get_with_credentials(s3_server):
    client = s3_server.client()
    objectstore.ensure_buckets(client)
    objectstore.ensure_buckets(client)  # idempotent
    digest = objectstore.put_bytes(client, objectstore.UPLOADS_BUCKET, "embedded/test.bin", b"\x00payload\xff")
    assert objectstore.get_bytes(client, objectstore.UPLOADS_BUCKET, "embedded/test.bin") == b"\x00payload\xff"
    assert len(digest) == 64
    assert objectstore.exists(client, objectstore.UPLOADS_BUCKET, "embedded/test.bin")
    assert not objectstore.exists(client, objectstore.UPLOADS_BUCKET, "embedded/missing.bin")


def test_s3_refuses_anonymous_and_wrong_secret(s3_server):
    owner = s3_server.client()
    objectstore.ensure_buckets(owner, (objectstore.UPLOADS_BUCKET,))
    owner.put_object(objectstore.UPLOADS_BUCKET, "embedded/private", io.BytesIO(b"secret"), 6)

    anonymous = Minio(s3_server.endpoint, secure=False, region="us-east-1")
    with pytest.raises(S3Error) as listed:
        anonymous.list_buckets()
    assert listed.value.code == "AccessDenied"
    with pytest.raises(S3Error) as read:
        anonymous.get_object(objectstore.UPLOADS_BUCKET, "embedded/private").read()
    assert read.value.code == "AccessDenied"
    with pytest.raises(S3Error):
        anonymous.put_object(objectstore.UPLOADS_BUCKET, "embedded/anon", io.BytesIO(b"x"), 1)

    wrong = Minio(
        s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key="not-the-secret",
        secure=False,
        region="us-east-1",
    )
    with pytest.raises(S3Error) as denied:
        wrong.list_buckets()
    assert denied.value.code in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
    assert not objectstore.exists(owner, objectstore.UPLOADS_BUCKET, "embedded/anon")


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(8)
    assert len(set(ports)) == 8
    assert all(port_is_free(p) for p in ports)
    assert port_is_free(free_port())


def _stubborn_child() -> subprocess.Popen:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def test_stop_process_escalates_to_sigkill():
    # Children that ignore SIGTERM: stop_process must fall back to SIGKILL after the grace.
    proc = _stubborn_child()
    started = time.monotonic()
    assert stop_process(proc, grace=0.5)
    assert time.monotonic() - started < 5
    assert proc.returncode == -9

    by_pid = _stubborn_child()
    assert stop_process(by_pid.pid, grace=0.5)
    assert not pid_alive(by_pid.pid)
    assert not stop_process(by_pid.pid, grace=0.5)


async def test_nats_refuses_anonymous_clients_and_a_trainer_cannot_publish_jobs_or_cancels(nats_server):
    """Issue 18 item 7: nats-server took anonymous clients that could publish jobs, events and cancels."""
    import asyncio

    import nats
    from nats.errors import NoServersError

    for url in (f"nats://{nats_server.address}", f"nats://trainer:wrong@{nats_server.address}"):
        with pytest.raises((NoServersError, nats.errors.Error)) as err:
            await asyncio.wait_for(nats.connect(url, allow_reconnect=False, connect_timeout=3), 15)
        assert "Authorization Violation" in str(err.value)

    refused: list[str] = []

    async def on_error(exc: Exception) -> None:
        refused.append(str(exc))

    trainer = await nats.connect(nats_server.trainer_url, error_cb=on_error, allow_reconnect=False)
    try:
        js = trainer.jetstream()
        await messaging.ensure_streams(js)
        # A well-formed event: the session's server is shared, and other tests read its events stream.
        event = events_pb2.TrainerEvent(task_id=f"tt-embedded-{os.getpid()}", log="nats permissions test")
        ack = await js.publish(messaging.events_subject(event.task_id), event.SerializeToString())
        assert ack.stream == messaging.EVENTS_STREAM  # a trainer reports events
        await trainer.publish(messaging.jobs_subject("classification"), b"a forged job")
        await trainer.publish(messaging.cancel_subject("tt-someone-elses"), b"a forged cancel")
        await trainer.flush()
        deadline = time.monotonic() + 5
        while len(refused) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert any("permissions violation for publish" in r.lower() and "trainyard.jobs." in r for r in refused), (
            refused
        )
        assert any(
            "permissions violation for publish" in r.lower() and "trainyard.control.cancel" in r for r in refused
        )
    finally:
        await trainer.close()


def test_the_object_store_takes_requests_only_on_its_authenticated_s3_port(s3_server):
    """Issue 18 item 7: SeaweedFS's filer port read and wrote every bucket without credentials; its gRPC
    ports (filer, master, volume) took any local client."""
    import urllib.error
    import urllib.request

    import grpc

    owner = s3_server.client()
    objectstore.ensure_buckets(owner, (objectstore.UPLOADS_BUCKET,))
    owner.put_object(objectstore.UPLOADS_BUCKET, "embedded/filer-private", io.BytesIO(b"secret"), 6)
    filer = f"http://{s3_server.host}:{s3_server.ports['filer']}"
    for request in (
        urllib.request.Request(f"{filer}/buckets/{objectstore.UPLOADS_BUCKET}/embedded/filer-private"),
        urllib.request.Request(f"{filer}/buckets/"),
        urllib.request.Request(
            f"{filer}/buckets/{objectstore.UPLOADS_BUCKET}/embedded/forged", data=b"x", method="PUT"
        ),
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 401
    for name in ("filer_grpc", "master_grpc", "volume_grpc"):
        channel = grpc.insecure_channel(f"{s3_server.host}:{s3_server.ports[name]}")
        with pytest.raises(grpc.FutureTimeoutError):
            grpc.channel_ready_future(channel).result(timeout=2)  # mutual TLS: no certificate, no channel
        channel.close()
    assert objectstore.get_bytes(owner, objectstore.UPLOADS_BUCKET, "embedded/filer-private") == b"secret"
