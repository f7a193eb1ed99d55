"""Gateway limits and short-lived tokens against real grpc.aio test backends."""

from __future__ import annotations

import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_gateway import ADMIN_TOKEN, INTERNAL_TOKEN, DatasetBackend, Seen, bearer

from gateway import tokens
from gateway.app import start
from gateway.settings import GatewaySettings
from kernel.errors import error_reason
from kernel.server import serve
from kernel.settings import Settings
from trainyard.auth.v1 import auth_pb2, auth_service_pb2, auth_service_pb2_grpc
from trainyard.dataset.v1 import dataset_service_pb2, dataset_service_pb2_grpc

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(database_url):
    seen = Seen()
    backend, port = await serve(
        Settings(listen="127.0.0.1:0", internal_token=INTERNAL_TOKEN),
        [(dataset_service_pb2_grpc.add_DatasetServiceServicer_to_server, DatasetBackend(seen), "x")],
    )
    gw = await start(
        GatewaySettings(
            listen="127.0.0.1:0",
            database_url=database_url,
            internal_token=INTERNAL_TOKEN,
            dataset_address=f"127.0.0.1:{port}",
            bootstrap_token=ADMIN_TOKEN,
            max_upload_bytes=10_000,
            rate_limit_per_second=20,
            rate_limit_burst=10,
        )
    )
    channel = grpc.aio.insecure_channel(gw.address)
    try:
        yield channel, seen
    finally:
        await channel.close()
        await gw.stop()
        await backend.stop(0)


def upload(size: int, chunk: int = 1000):
    yield dataset_service_pb2.CreateDatasetRequest(metadata=dataset_service_pb2.CreateDatasetMetadata(name="u"))
    for start_ in range(0, size, chunk):
        yield dataset_service_pb2.CreateDatasetRequest(chunk=b"x" * min(chunk, size - start_))


async def test_upload_size_limit(gateway):
    channel, _ = gateway
    stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    ok = await stub.CreateDataset(upload(5_000), metadata=bearer(ADMIN_TOKEN), timeout=10)
    assert ok.dataset.description == "5:5000"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateDataset(upload(50_000), metadata=bearer(ADMIN_TOKEN), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(err.value) == "UPLOAD_TOO_LARGE" and "10000" in err.value.details()


async def test_rate_limit_carries_retry_info(gateway):
    channel, _ = gateway
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        for _ in range(100):
            await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN), timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(err.value)
    retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert retry
    info = error_details_pb2.RetryInfo()
    retry[0].Unpack(info)
    assert 0 < info.retry_delay.seconds + info.retry_delay.nanos / 1e9 <= 1


async def test_short_lived_tokens(gateway):
    channel, _ = gateway
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    made = await auth.CreateToken(
        auth_service_pb2.CreateTokenRequest(ttl_seconds=120, role=auth_pb2.ROLE_VIEWER), metadata=bearer(ADMIN_TOKEN)
    )
    assert made.token.startswith("tyt_") and made.role == auth_pb2.ROLE_VIEWER and made.project == "default"
    me = await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(made.token))
    assert me.key.role == auth_pb2.ROLE_VIEWER
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a viewer token cannot mint an admin token
        await auth.CreateToken(
            auth_service_pb2.CreateTokenRequest(role=auth_pb2.ROLE_ADMIN), metadata=bearer(made.token)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # tampering with the payload (e.g. to raise the role) breaks the signature
    payload, _, sig = made.token[len("tyt_") :].partition(".")
    forged = tokens.sign_short_lived(b"wrong-key", key_id="bootstrap1", project="default", role="admin", expires=2**31)
    for bad in (forged, f"tyt_{payload[:-2]}AA.{sig}"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(bad))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_expired_short_lived_token_is_refused():
    key = b"k" * 32
    token = tokens.sign_short_lived(key, key_id="a", project="p", role="viewer", expires=1)
    assert tokens.parse_short_lived(key, token) is None  # expired in 1970
    later = int(time.time()) + 60
    token = tokens.sign_short_lived(key, key_id="a", project="p", role="viewer", expires=later)
    assert tokens.parse_short_lived(key, token) == {"k": "a", "p": "p", "r": "viewer", "e": later}
    assert tokens.parse_short_lived(b"other" * 8, token) is None
