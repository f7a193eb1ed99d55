"""Failed authentication is rate limited by peer and by key id, cheaply, and never locks out a good key
(issue 18, item 6). Before: 50 clients with a wrong secret ran ~1,000 calls/s, each one a database query,
and slowed legitimate calls tenfold (`python -m bench.auth_flood` measures that effect on p50)."""

from __future__ import annotations

import grpc
import pytest
from test_gateway import ADMIN_TOKEN, INTERNAL_TOKEN, bearer

from gateway import tokens
from gateway.app import start
from gateway.auth import peer_host
from gateway.limits import LimitExceeded
from gateway.settings import GatewaySettings
from kernel.errors import Unauthenticated, error_reason
from trainyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc

pytestmark = pytest.mark.integration

BURST = 5


@pytest.fixture
async def gateway(database_url):
    gw = await start(
        GatewaySettings(
            listen="127.0.0.1:0",
            database_url=database_url,
            internal_token=INTERNAL_TOKEN,
            bootstrap_token=ADMIN_TOKEN,
            auth_failures_per_minute=0.06,  # one failure back every 1,000 s: nothing refills during the test
            auth_failure_burst=BURST,
            auth_refusal_delay_seconds=0,
            rate_limit_per_second=0,
        )
    )
    channel = grpc.aio.insecure_channel(gw.address)
    try:
        yield channel, gw
    finally:
        await channel.close()
        await gw.stop()


def test_peer_host_strips_the_port():
    assert peer_host("ipv4:10.0.0.7:53412") == "10.0.0.7"
    assert peer_host("ipv6:[::1]:5000") == "::1"
    assert peer_host("unix:/tmp/s") == "/tmp/s"


async def test_failures_are_limited_per_peer_without_verifying_and_good_keys_keep_working(gateway):
    channel, gw = gateway
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    authenticator = gw.authenticator
    calls = {"verify": 0}
    real_verify = authenticator.store.verify

    def counting_verify(token, now=None):
        calls["verify"] += 1
        return real_verify(token, now)

    authenticator.store.verify = counting_verify
    await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN))  # a good key, known now
    authenticator._cache.clear()  # its next call is verified again, as after key_cache_seconds
    codes = []
    for i in range(40):  # different made-up key ids: only the peer limit applies
        token = tokens.format_token(f"nokey{i}", "w" * 32)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(token))
        codes.append((err.value.code(), error_reason(err.value)))
    assert codes[:BURST] == [(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")] * BURST
    assert set(codes[BURST:]) == {(grpc.StatusCode.RESOURCE_EXHAUSTED, "AUTH_RATE_LIMITED")}
    assert calls["verify"] == 1 + BURST  # the refused ones never reached the database
    # a key verified before is never held back: same address, cache expired, still served
    me = await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN))
    assert me.key.id == tokens.parse_token(ADMIN_TOKEN)[0] and calls["verify"] == 2 + BURST
    # no token at all counts too (a flood of anonymous calls from the same address)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await auth.WhoAmI(auth_service_pb2.WhoAmIRequest())
    assert error_reason(err.value) == "AUTH_RATE_LIMITED" and "retry in" in err.value.details()


async def test_failures_for_one_key_id_are_limited_across_addresses(gateway):
    _, gw = gateway
    authenticator = gw.authenticator
    key_id = tokens.parse_token(ADMIN_TOKEN)[0]
    wrong = tokens.format_token(key_id, "x" * 32)
    owner = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    await authenticator.authenticate(owner, "ipv4:10.9.9.9:1")  # the owner's token, verified once: known
    outcomes = []
    for i in range(BURST + 3):  # each guess from another address
        peer = f"ipv4:10.1.{i // 250}.{i % 250}:4000"
        try:
            await authenticator.authenticate({"authorization": f"Bearer {wrong}"}, peer)
        except Unauthenticated:
            outcomes.append("unauthenticated")
        except LimitExceeded as exc:
            outcomes.append(exc.reason)
            assert key_id in exc.message and exc.retry_after > 0
    assert outcomes == ["unauthenticated"] * BURST + ["AUTH_RATE_LIMITED"] * 3
    # the key's owner is served even though its key id is being guessed at (verified again: cache expired)
    authenticator._cache.clear()
    info = await authenticator.authenticate(owner, "ipv4:10.9.9.9:2")
    assert info.id == key_id
    # a token never verified here, for that key id, waits with the guesses (a new replica during an attack)
    with pytest.raises(LimitExceeded):
        await authenticator.authenticate({"authorization": f"Bearer {ADMIN_TOKEN}x"}, "ipv4:10.9.9.9:3")


async def test_a_refusal_is_held_before_it_is_answered(database_url):
    """A flooding client that waits for its answers is slowed to about one call per refusal delay."""
    import time

    gw = await start(
        GatewaySettings(
            listen="127.0.0.1:0",
            database_url=database_url,
            bootstrap_token=ADMIN_TOKEN,
            auth_failures_per_minute=0.06,
            auth_failure_burst=1,
            auth_refusal_delay_seconds=0.3,
        )
    )
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            auth = auth_service_pb2_grpc.AuthServiceStub(channel)
            await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN))  # known from now
            bad = bearer(tokens.format_token("nokey", "w" * 32))
            with pytest.raises(grpc.aio.AioRpcError):
                await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bad)  # the one failure allowed
            began = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bad)
            assert error_reason(err.value) == "AUTH_RATE_LIMITED" and time.monotonic() - began >= 0.3
            me = await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN))
            assert me.key.id == tokens.parse_token(ADMIN_TOKEN)[0]
    finally:
        await gw.stop()
