"""The shared service runtime: settings errors, error mapping with details, health and reflection."""

import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kernel.errors import error_reason, field_violations
from kernel.settings import Settings
from services.recommend.app import start
from trainyard.recommend.v1 import recommend_service_pb2, recommend_service_pb2_grpc


def test_bad_setting_names_the_variable():
    env = {"TRAINYARD_LISTEN": "nowhere", "TRAINYARD_SHUTDOWN_GRACE": "-1", "PATH": "/usr/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", "from kernel.settings import load_settings; load_settings()"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "TRAINYARD_LISTEN" in proc.stderr and "host:port" in proc.stderr
    assert "TRAINYARD_SHUTDOWN_GRACE" in proc.stderr


@pytest.fixture
async def recommend_service():
    settings = Settings(listen="127.0.0.1:0", dataset_address="127.0.0.1:9", modelzoo_address="127.0.0.1:9")
    running = await start(settings)
    yield running
    await running.stop()


async def test_errors_carry_field_violations(recommend_service):
    async with grpc.aio.insecure_channel(recommend_service.address) as channel:
        stub = recommend_service_pb2_grpc.RecommendationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Recommend(recommend_service_pb2.RecommendRequest(max_params=-1, device_class="tpu"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(err.value)
    assert set(violations) == {"task_type", "max_params", "device_class"}
    assert error_reason(err.value) == "INVALID_ARGUMENT"


async def test_unreachable_dependency_is_unavailable(recommend_service):
    async with grpc.aio.insecure_channel(recommend_service.address) as channel:
        stub = recommend_service_pb2_grpc.RecommendationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Recommend(recommend_service_pb2.RecommendRequest(task_type=1), timeout=20)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "model zoo" in err.value.details()


async def test_health_and_reflection(recommend_service):
    async with grpc.aio.insecure_channel(recommend_service.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service="trainyard.recommend.v1.RecommendationService")
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name async for r in responses for s in r.list_services_response.service]
    assert "trainyard.recommend.v1.RecommendationService" in names


async def test_internal_token_is_required_when_configured():
    settings = Settings(
        listen="127.0.0.1:0", dataset_address="127.0.0.1:9", modelzoo_address="127.0.0.1:9", internal_token="s3cret"
    )
    running = await start(settings)
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = recommend_service_pb2_grpc.RecommendationServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Recommend(recommend_service_pb2.RecommendRequest(task_type=1))
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as err:  # right token: passes auth, fails validation
                await stub.Recommend(
                    recommend_service_pb2.RecommendRequest(),
                    metadata=(("x-trainyard-internal-token", "s3cret"),),
                )
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await running.stop()


def test_concurrent_migrations_on_postgresql_take_turns(database_url):
    """Replicas starting at once (two migrate() calls on a fresh database) both succeed, schema at head."""
    import threading
    from pathlib import Path

    import sqlalchemy as sa

    from kernel import db

    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (TRAINYARD_TEST_POSTGRES_URL)")
    migrations = Path(__file__).parent.parent.parent / "services" / "training" / "migrations"
    engines = [db.make_engine(database_url) for _ in range(2)]
    start, errors = threading.Barrier(2), []

    def run(engine) -> None:
        start.wait()
        try:
            db.migrate(engine, migrations, "alembic_version_training")
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        with engines[0].connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version_training")).scalars().all()
            assert len(versions) == 1
            assert conn.execute(sa.text("SELECT count(*) FROM training_tasks")).scalar() == 0
    finally:
        for e in engines:
            e.dispose()


async def test_calls_made_for_a_caller_get_no_more_time_than_it_has_left():
    """The services' interceptor records the caller's deadline; calls on its behalf use what is left."""
    from kernel.channels import call_timeout
    from kernel.server import ServiceInterceptor

    async def time_left(request: bytes, context) -> bytes:
        return str(call_timeout(30.0)).encode()

    server = grpc.aio.server(interceptors=[ServiceInterceptor("")])
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Deadline", {"Left": grpc.unary_unary_rpc_method_handler(time_left)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/test.Deadline/Left")
            with_deadline = float(await call(b"", timeout=2.0))
            without = float(await call(b""))
    finally:
        await server.stop(None)
    assert 0.5 < with_deadline < 2.5 and without == 30.0  # the grpc-timeout header rounds up a little


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.NOT_FOUND),
        (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.PERMISSION_DENIED),
        (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.DEADLINE_EXCEEDED),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INVALID_ARGUMENT),
        (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE),
        (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE),  # the other service's bug is our outage
    ],
)
def test_a_failed_call_to_another_service_keeps_the_code_the_caller_can_act_on(code, expected):
    from kernel.errors import from_rpc_error

    exc = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="it said no")
    mapped = from_rpc_error(exc, "model zoo")
    assert mapped.code == expected and "it said no" in str(mapped.message)
