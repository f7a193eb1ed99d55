"""The gateway against real grpc.aio backends (test servicers behind kernel.server.serve) and real SQL."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from gateway.app import start
from gateway.auth import Authenticator
from gateway.keys import KeyStore
from gateway.proxy import Gateway
from gateway.routes import Route
from gateway.servicer import AuthServicer
from gateway.settings import GatewaySettings
from kernel import identity
from kernel.db import make_engine
from kernel.errors import InvalidArgument, NotFound, error_reason, field_violations
from kernel.server import serve
from kernel.settings import Settings
from trainyard.auth.v1 import auth_pb2, auth_service_pb2, auth_service_pb2_grpc
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2, dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc
from trainyard.recommend.v1 import recommend_service_pb2, recommend_service_pb2_grpc
from trainyard.training.v1 import training_pb2, training_service_pb2, training_service_pb2_grpc

pytestmark = pytest.mark.integration

INTERNAL_TOKEN = "internal-test-token"
ADMIN_TOKEN = "ty_bootstrap1_" + "a" * 43


@dataclass
class Seen:
    """What the test backends observed."""

    metadata: list[dict[str, str]] = field(default_factory=list)
    identities: list[identity.Identity] = field(default_factory=list)
    time_remaining: list[float | None] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, context) -> None:
        self.metadata.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})
        self.identities.append(identity.current())
        self.time_remaining.append(context.time_remaining())


class ZooBackend(modelzoo_service_pb2_grpc.ModelZooServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def ListModels(self, request, context):
        self.seen.record(context)
        await context.send_initial_metadata((("x-backend", "zoo"),))
        who = identity.current()
        return modelzoo_service_pb2.ListModelsResponse(
            models=[modelzoo_pb2.Model(id=f"tv/{request.query}")], next_page_token=who.project, total_size=1
        )

    async def GetModel(self, request, context):
        self.seen.record(context)
        raise InvalidArgument({"model_id": f"unknown model {request.model_id!r}"})

    async def ListModelFamilies(self, request, context):
        self.seen.record(context)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.seen.cancelled.set()
            raise
        return modelzoo_service_pb2.ListModelFamiliesResponse()

    async def ImportWeights(self, request, context):
        self.seen.record(context)
        return modelzoo_service_pb2.ImportWeightsResponse(model=modelzoo_pb2.Model(id=request.model_id))


class DatasetBackend(dataset_service_pb2_grpc.DatasetServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def CreateDataset(self, request_iterator, context):
        self.seen.record(context)
        name, chunks, size = "", 0, 0
        async for message in request_iterator:
            if message.HasField("metadata"):
                name = message.metadata.name
            else:
                chunks += 1
                size += len(message.chunk)
        return dataset_service_pb2.CreateDatasetResponse(
            dataset=dataset_pb2.Dataset(
                id="ds1", project=identity.current().project, name=name, description=f"{chunks}:{size}"
            )
        )


class TrainingBackend(training_service_pb2_grpc.TrainingServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def WatchTrainingTask(self, request, context):
        self.seen.record(context)
        if request.task_id == "gone":  # fails mid-stream
            yield training_service_pb2.WatchTrainingTaskResponse(event=training_pb2.TaskEvent(sequence=1))
            raise NotFound("training task 'gone' was deleted", metadata={"task_id": "gone"})
        for sequence in (1, 2, 3):
            yield training_service_pb2.WatchTrainingTaskResponse(
                event=training_pb2.TaskEvent(sequence=sequence, log=f"{request.task_id}:{sequence}")
            )
        if request.from_start:  # then stay open until the client goes away
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.seen.cancelled.set()
                raise


def _dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@dataclass
class Stack:
    address: str
    seen: Seen
    settings: GatewaySettings
    channel: grpc.aio.Channel

    @property
    def zoo(self):
        return modelzoo_service_pb2_grpc.ModelZooServiceStub(self.channel)

    @property
    def auth(self):
        return auth_service_pb2_grpc.AuthServiceStub(self.channel)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def stack(database_url):
    seen = Seen()
    backend_server, backend_port = await serve(
        Settings(listen="127.0.0.1:0", internal_token=INTERNAL_TOKEN),
        [
            (
                modelzoo_service_pb2_grpc.add_ModelZooServiceServicer_to_server,
                ZooBackend(seen),
                "trainyard.modelzoo.v1.ModelZooService",
            ),
            (
                dataset_service_pb2_grpc.add_DatasetServiceServicer_to_server,
                DatasetBackend(seen),
                "trainyard.dataset.v1.DatasetService",
            ),
            (
                training_service_pb2_grpc.add_TrainingServiceServicer_to_server,
                TrainingBackend(seen),
                "trainyard.training.v1.TrainingService",
            ),
        ],
    )
    backend = f"127.0.0.1:{backend_port}"
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url=database_url,
        internal_token=INTERNAL_TOKEN,
        modelzoo_address=backend,
        dataset_address=backend,
        training_address=backend,
        recommend_address=_dead_address(),
        bootstrap_token=ADMIN_TOKEN,
        default_deadline_seconds=20,
    )
    gateway = await start(settings)
    channel = grpc.aio.insecure_channel(gateway.address)
    try:
        yield Stack(gateway.address, seen, settings, channel)
    finally:
        await channel.close()
        await gateway.stop()
        await backend_server.stop(0)


async def _new_key(stack: Stack, role: int, name: str = "k", **kw) -> str:
    response = await stack.auth.CreateApiKey(
        auth_service_pb2.CreateApiKeyRequest(name=name, role=role, **kw), metadata=bearer(ADMIN_TOKEN)
    )
    return response.token


async def test_unary_routed_with_verified_identity_and_forged_headers_replaced(stack):
    forged = (
        ("x-trainyard-project", "someone-else"),
        ("x-trainyard-role", "admin"),
        ("x-trainyard-principal", "root"),
        ("x-trainyard-internal-token", "guess"),
        ("x-request-id", "r-1"),
    )
    call = stack.zoo.ListModels(
        modelzoo_service_pb2.ListModelsRequest(query="resnet18"), metadata=bearer(ADMIN_TOKEN) + forged
    )
    response = await call
    assert response.models[0].id == "tv/resnet18"
    assert response.next_page_token == "default"  # the project the backend saw
    assert ("x-backend", "zoo") in tuple(await call.initial_metadata())
    md = stack.seen.metadata[-1]
    assert md["x-trainyard-project"] == "default"
    assert md["x-trainyard-role"] == "admin"
    assert md["x-trainyard-principal"] == "apikey:bootstrap1"
    assert md["x-trainyard-internal-token"] == INTERNAL_TOKEN
    assert md["x-request-id"] == "r-1"  # ordinary client metadata still travels
    assert "authorization" not in md
    # the bootstrap key is the platform operator's; an ordinary key's forged operator header is dropped
    assert stack.seen.identities[-1] == identity.Identity("default", "apikey:bootstrap1", "admin", operator=True)
    editor = await _new_key(stack, auth_pb2.ROLE_EDITOR, name="forger")
    await stack.zoo.ListModels(
        modelzoo_service_pb2.ListModelsRequest(query="resnet18"),
        metadata=bearer(editor) + (("x-trainyard-platform-operator", "1"),),
    )
    assert stack.seen.identities[-1].operator is False
    assert "x-trainyard-platform-operator" not in stack.seen.metadata[-1]
    # No client deadline: the gateway's default bounds the backend call.
    assert 0 < stack.seen.time_remaining[-1] <= 20.5  # the deadline is re-derived on each hop: allow clock slack


async def test_client_deadline_reaches_backend_and_expiry_cancels_it(stack):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.zoo.ListModelFamilies(
            modelzoo_service_pb2.ListModelFamiliesRequest(), metadata=bearer(ADMIN_TOKEN), timeout=1.0
        )
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 0 < stack.seen.time_remaining[-1] <= 1.05  # re-derived on each hop: allow clock slack
    await asyncio.wait_for(stack.seen.cancelled.wait(), 5)


async def test_client_cancel_reaches_backend(stack):
    call = stack.zoo.ListModelFamilies(modelzoo_service_pb2.ListModelFamiliesRequest(), metadata=bearer(ADMIN_TOKEN))
    for _ in range(100):
        if stack.seen.metadata:
            break
        await asyncio.sleep(0.02)
    call.cancel()
    await asyncio.wait_for(stack.seen.cancelled.wait(), 5)


async def test_client_streaming_upload_passes_through(stack):
    async def upload():
        yield dataset_service_pb2.CreateDatasetRequest(
            metadata=dataset_service_pb2.CreateDatasetMetadata(name="pets", request_id="r1")
        )
        for size in (1000, 200_000, 5):
            yield dataset_service_pb2.CreateDatasetRequest(chunk=b"x" * size)

    stub = dataset_service_pb2_grpc.DatasetServiceStub(stack.channel)
    response = await stub.CreateDataset(upload(), metadata=bearer(ADMIN_TOKEN))
    assert (response.dataset.name, response.dataset.description) == ("pets", "3:201005")
    assert response.dataset.project == "default"
    assert stack.seen.time_remaining[-1] is None  # uploads get no default deadline


async def test_server_streaming_passes_through_and_cancel_reaches_backend(stack):
    stub = training_service_pb2_grpc.TrainingServiceStub(stack.channel)
    events = [
        r.event.log
        async for r in stub.WatchTrainingTask(
            training_service_pb2.WatchTrainingTaskRequest(task_id="t1"), metadata=bearer(ADMIN_TOKEN)
        )
    ]
    assert events == ["t1:1", "t1:2", "t1:3"]

    call = stub.WatchTrainingTask(
        training_service_pb2.WatchTrainingTaskRequest(task_id="t2", from_start=True), metadata=bearer(ADMIN_TOKEN)
    )
    got = [(await call.read()).event.sequence for _ in range(3)]
    assert got == [1, 2, 3]
    call.cancel()
    await asyncio.wait_for(stack.seen.cancelled.wait(), 5)

    # An error after some messages: the messages, then the backend's status.
    call = stub.WatchTrainingTask(
        training_service_pb2.WatchTrainingTaskRequest(task_id="gone"), metadata=bearer(ADMIN_TOKEN)
    )
    assert (await call.read()).event.sequence == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "training task 'gone' was deleted"
    assert error_reason(err.value) == "NOT_FOUND"


async def test_backend_error_details_reach_client_unchanged(stack):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.zoo.GetModel(modelzoo_service_pb2.GetModelRequest(model_id="nope"), metadata=bearer(ADMIN_TOKEN))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == {"model_id": "unknown model 'nope'"}
    assert error_reason(err.value) == "INVALID_ARGUMENT"
    assert "model_id" in err.value.details()


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "Bearer "),),
        (("authorization", "Bearer not-a-token"),),
        bearer("ty_bootstrap1_" + "b" * 43),  # right key, wrong secret
        bearer("ty_nosuchkey_" + "a" * 43),  # unknown key
    ],
    ids=["missing", "not-bearer", "empty", "malformed", "wrong-secret", "unknown-key"],
)
async def test_bad_credentials_are_unauthenticated_alike(stack, metadata):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.zoo.ListModels(modelzoo_service_pb2.ListModelsRequest(), metadata=metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "missing or invalid credentials: send 'authorization: Bearer <api token>'"
    assert not stack.seen.metadata  # never reached the backend


async def test_revoked_key_stops_working_at_once(stack):
    token = await _new_key(stack, auth_pb2.ROLE_EDITOR, "ci")
    await stack.zoo.ListModels(modelzoo_service_pb2.ListModelsRequest(), metadata=bearer(token))  # now cached
    key_id = token.split("_")[1]
    revoked = await stack.auth.RevokeApiKey(
        auth_service_pb2.RevokeApiKeyRequest(key_id=key_id), metadata=bearer(ADMIN_TOKEN)
    )
    assert revoked.key.revoked
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.zoo.ListModels(modelzoo_service_pb2.ListModelsRequest(), metadata=bearer(token))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_expired_key_is_unauthenticated(stack):
    request = auth_service_pb2.CreateApiKeyRequest(name="short", role=auth_pb2.ROLE_VIEWER)
    request.expire_time.FromSeconds(int(time.time()) + 2)
    token = (await stack.auth.CreateApiKey(request, metadata=bearer(ADMIN_TOKEN))).token
    await stack.zoo.ListModels(modelzoo_service_pb2.ListModelsRequest(), metadata=bearer(token))
    await asyncio.sleep(max(0.0, request.expire_time.seconds - time.time()) + 0.1)
    with pytest.raises(grpc.aio.AioRpcError) as err:  # cached or not, an expired key fails
        await stack.zoo.ListModels(modelzoo_service_pb2.ListModelsRequest(), metadata=bearer(token))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_roles(stack):
    viewer = await _new_key(stack, auth_pb2.ROLE_VIEWER, "viewer")
    editor = await _new_key(stack, auth_pb2.ROLE_EDITOR, "editor")
    # viewer: reads yes, mutations no (and the backend never sees the call)
    await stack.zoo.ListModels(modelzoo_service_pb2.ListModelsRequest(), metadata=bearer(viewer))
    assert stack.seen.identities[-1].role == "viewer"
    calls = len(stack.seen.metadata)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.zoo.ImportWeights(modelzoo_service_pb2.ImportWeightsRequest(model_id="m"), metadata=bearer(viewer))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "ImportWeights" in err.value.details()
    assert len(stack.seen.metadata) == calls
    # editor: mutations yes, key management no
    response = await stack.zoo.ImportWeights(
        modelzoo_service_pb2.ImportWeightsRequest(model_id="m"), metadata=bearer(editor)
    )
    assert response.model.id == "m"
    for token in (viewer, editor):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.auth.ListApiKeys(auth_service_pb2.ListApiKeysRequest(), metadata=bearer(token))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        me = await stack.auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(token))
        assert me.key.id == token.split("_")[1]


async def test_unknown_service_or_method_is_unimplemented(stack):
    for path in ("/trainyard.modelzoo.v1.ModelZooService/DropTables", "/trainyard.nope.v1.NopeService/Get"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.channel.unary_unary(path)(b"", metadata=bearer(ADMIN_TOKEN))
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_backend_down_is_unavailable_naming_the_service(stack):
    stub = recommend_service_pb2_grpc.RecommendationServiceStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Recommend(recommend_service_pb2.RecommendRequest(), metadata=bearer(ADMIN_TOKEN), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "RecommendationService" in err.value.details()
    assert stack.settings.recommend_address in err.value.details()


async def test_unconfigured_backend_is_unavailable(database_url):
    gateway = await start(GatewaySettings(listen="127.0.0.1:0", database_url=database_url, bootstrap_token=ADMIN_TOKEN))
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = training_service_pb2_grpc.TrainingServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetTrainingTask(training_service_pb2.GetTrainingTaskRequest(), metadata=bearer(ADMIN_TOKEN))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "TRAINYARD_TRAINING_ADDRESS" in err.value.details()
    finally:
        await gateway.stop()


async def test_health_and_reflection_without_token_and_reflective_call(stack):
    health = health_pb2_grpc.HealthStub(stack.channel)
    for name in ("", "trainyard.modelzoo.v1.ModelZooService", "trainyard.auth.v1.AuthService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    def reflect() -> tuple[set[str], bytes]:
        # A generic reflection client (sync API, as grpcurl would do it): list, resolve, call.
        with grpc.insecure_channel(stack.address) as channel:
            db = ProtoReflectionDescriptorDatabase(channel)
            services = set(db.get_services())
            pool = descriptor_pool.DescriptorPool(db)
            service = pool.FindServiceByName("trainyard.modelzoo.v1.ModelZooService")
            method = service.methods_by_name["ListModels"]
            request_cls = message_factory.GetMessageClass(method.input_type)
            response_cls = message_factory.GetMessageClass(method.output_type)
            call = channel.unary_unary(
                "/trainyard.modelzoo.v1.ModelZooService/ListModels",
                request_serializer=request_cls.SerializeToString,
                response_deserializer=response_cls.FromString,
            )
            response = call(request_cls(query="vit"), metadata=bearer(ADMIN_TOKEN), timeout=10)
            return services, response.models[0].id

    services, model_id = await asyncio.to_thread(reflect)
    assert {
        "trainyard.dataset.v1.DatasetService",
        "trainyard.modelzoo.v1.ModelZooService",
        "trainyard.recommend.v1.RecommendationService",
        "trainyard.training.v1.TrainingService",
        "trainyard.auth.v1.AuthService",
        "grpc.health.v1.Health",
    } <= services
    assert model_id == "tv/vit"


async def test_auth_service_create_list_revoke(stack):
    admin = bearer(ADMIN_TOKEN)
    me = await stack.auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=admin)
    assert (me.key.id, me.key.project, me.key.role) == ("bootstrap1", "default", auth_pb2.ROLE_ADMIN)

    first = await stack.auth.CreateApiKey(
        auth_service_pb2.CreateApiKeyRequest(name="ci", role=auth_pb2.ROLE_EDITOR, request_id="req-1"), metadata=admin
    )
    assert first.token.startswith(f"ty_{first.key.id}_")
    assert (first.key.project, first.key.role, first.key.revoked) == ("default", auth_pb2.ROLE_EDITOR, False)
    # A retry returns the same key with a fresh token, which works.
    retry = await stack.auth.CreateApiKey(
        auth_service_pb2.CreateApiKeyRequest(name="ci", role=auth_pb2.ROLE_EDITOR, request_id="req-1"), metadata=admin
    )
    assert retry.key.id == first.key.id
    me = await stack.auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(retry.token))
    assert me.key.id == first.key.id and me.key.name == "ci"

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.auth.CreateApiKey(auth_service_pb2.CreateApiKeyRequest(name="", role=0), metadata=admin)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(err.value)) == {"name", "role"}

    await _new_key(stack, auth_pb2.ROLE_VIEWER, "third")
    ids, page_token = [], ""
    while True:
        page = await stack.auth.ListApiKeys(
            auth_service_pb2.ListApiKeysRequest(page_size=2, page_token=page_token), metadata=admin
        )
        assert len(page.keys) <= 2
        ids += [k.id for k in page.keys]
        page_token = page.next_page_token
        if not page_token:
            break
    assert len(ids) == 3 and len(set(ids)) == 3 and {"bootstrap1", first.key.id} <= set(ids)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.auth.ListApiKeys(auth_service_pb2.ListApiKeysRequest(page_token="garbage"), metadata=admin)
    assert field_violations(err.value).keys() == {"page_token"}

    revoked = await stack.auth.RevokeApiKey(auth_service_pb2.RevokeApiKeyRequest(key_id=first.key.id), metadata=admin)
    assert revoked.key.revoked
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(retry.token))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.auth.RevokeApiKey(auth_service_pb2.RevokeApiKeyRequest(key_id="nope"), metadata=admin)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_projects_are_isolated(stack):
    # An admin of another project (made directly in the store, as an operator would).
    engine = make_engine(stack.settings.database_url)
    other_key, other_token = KeyStore(engine).create(project="other", name="other-admin", role="admin")
    engine.dispose()
    listed = await stack.auth.ListApiKeys(auth_service_pb2.ListApiKeysRequest(), metadata=bearer(other_token))
    assert [k.id for k in listed.keys] == [other_key.id]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.auth.RevokeApiKey(
            auth_service_pb2.RevokeApiKeyRequest(key_id="bootstrap1"), metadata=bearer(other_token)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    response = await stack.zoo.ListModels(modelzoo_service_pb2.ListModelsRequest(), metadata=bearer(other_token))
    assert response.next_page_token == "other"
    assert stack.seen.metadata[-1]["x-trainyard-project"] == "other"


async def test_bidi_stream_passes_through(stack, database_url):
    """No trainyard RPC is bidi yet; route the backend's own bidi reflection stream through a Gateway."""
    service = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
    method = service.methods_by_name["ServerReflectionInfo"]
    route = Route(
        path=f"/{service.full_name}/{method.name}",
        service=service.full_name,
        name=method.name,
        backend="modelzoo",
        client_streaming=True,
        server_streaming=True,
        read_only=True,
        min_role="viewer",
        descriptor=method,
    )
    engine = make_engine(database_url)
    store = KeyStore(engine)  # the stack's database, migrated and bootstrapped
    authenticator = Authenticator(store)
    backend = grpc.aio.insecure_channel(stack.settings.modelzoo_address)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            Gateway(
                channels={"modelzoo": backend},
                addresses={"modelzoo": stack.settings.modelzoo_address},
                authenticator=authenticator,
                auth_servicer=AuthServicer(store, authenticator),
                internal_token=INTERNAL_TOKEN,
                default_deadline=10,
                routes={route.path: route},
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(metadata=bearer(ADMIN_TOKEN))
            # Interleaved: each answer arrives before the next question is sent.
            await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            listed = await call.read()
            assert "trainyard.modelzoo.v1.ModelZooService" in {s.name for s in listed.list_services_response.service}
            await call.write(
                reflection_pb2.ServerReflectionRequest(file_containing_symbol="trainyard.modelzoo.v1.ModelZooService")
            )
            files = await call.read()
            assert files.file_descriptor_response.file_descriptor_proto
            await call.done_writing()
            assert await call.read() == grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK
    finally:
        await server.stop(0)
        await backend.close()
        engine.dispose()


async def test_message_size_limit(database_url):
    settings = GatewaySettings(
        listen="127.0.0.1:0", database_url=database_url, bootstrap_token=ADMIN_TOKEN, max_message_bytes=64 * 1024
    )
    gateway = await start(settings)
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListModels(
                    modelzoo_service_pb2.ListModelsRequest(query="q" * 100_000), metadata=bearer(ADMIN_TOKEN)
                )
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await gateway.stop()


async def test_tls(tmp_path, database_url):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url=database_url,
        bootstrap_token=ADMIN_TOKEN,
        tls_cert_file=cert,
        tls_key_file=key,
    )
    gateway = await start(settings)
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with grpc.aio.secure_channel(gateway.address, credentials) as channel:
            me = await auth_service_pb2_grpc.AuthServiceStub(channel).WhoAmI(
                auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN), timeout=10
            )
            assert me.key.id == "bootstrap1"
        async with grpc.aio.insecure_channel(gateway.address) as plain:  # plaintext is refused
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await auth_service_pb2_grpc.AuthServiceStub(plain).WhoAmI(
                    auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN), timeout=5
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await gateway.stop()


async def test_python_dash_m_gateway(tmp_path):
    """The process entry point: env configuration, bootstrap key, serving, clean SIGTERM."""
    env = {
        **os.environ,
        "TRAINYARD_LISTEN": "127.0.0.1:0",
        "DATABASE_URL": f"sqlite:///{tmp_path}/gw.db",
        "TRAINYARD_BOOTSTRAP_TOKEN": ADMIN_TOKEN,
        "TRAINYARD_BOOTSTRAP_PROJECT": "team-a",
        "TRAINYARD_LOG_FORMAT": "json",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        env=env,
        stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent.parent,
    )
    try:
        address = None
        async with asyncio.timeout(60):
            while address is None:
                line = await proc.stderr.readline()
                assert line, "gateway exited before listening"
                entry = json.loads(line)
                if entry["msg"] == "gateway listening":
                    address = entry["address"]
        async with grpc.aio.insecure_channel(address) as channel:
            me = await auth_service_pb2_grpc.AuthServiceStub(channel).WhoAmI(
                auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN), timeout=10
            )
            assert (me.key.project, me.key.role) == ("team-a", auth_pb2.ROLE_ADMIN)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_bad_bootstrap_token_is_a_configuration_error(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/gw.db", "TRAINYARD_BOOTSTRAP_TOKEN": "letmein"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway"], env=env, capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).parent.parent.parent,
    )  # fmt: skip
    assert result.returncode == 2
    assert "TRAINYARD_BOOTSTRAP_TOKEN" in result.stderr


async def test_rate_limit_per_key(database_url):
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url=database_url,
        bootstrap_token=ADMIN_TOKEN,
        rate_limit_per_second=0.5,
        rate_limit_burst=2,
    )
    gateway = await start(settings)
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            auth = auth_service_pb2_grpc.AuthServiceStub(channel)
            other = await auth.CreateApiKey(  # call 1 of the admin key
                auth_service_pb2.CreateApiKeyRequest(name="other", role=auth_pb2.ROLE_VIEWER),
                metadata=bearer(ADMIN_TOKEN),
            )
            await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN))  # call 2
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(ADMIN_TOKEN))
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_reason(err.value) == "RATE_LIMITED"
            # Each key has its own bucket.
            await auth.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=bearer(other.token))
    finally:
        await gateway.stop()


async def test_real_modelzoo_through_the_gateway(settings, catalog_path, tmp_path):
    from services.modelzoo.app import start as start_modelzoo

    internal = settings.model_copy(update={"internal_token": INTERNAL_TOKEN})
    zoo = await start_modelzoo(
        internal.model_copy(update={"modelzoo_catalog": str(catalog_path), "modelzoo_offline_weights_dir": ""})
    )
    gateway = await start(internal.model_copy(update={"modelzoo_address": zoo.address, "bootstrap_token": ADMIN_TOKEN}))
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            auth = auth_service_pb2_grpc.AuthServiceStub(channel)
            viewer = (
                await auth.CreateApiKey(
                    auth_service_pb2.CreateApiKeyRequest(name="viewer", role=auth_pb2.ROLE_VIEWER),
                    metadata=bearer(ADMIN_TOKEN),
                )
            ).token
            stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
            listed = await stub.ListModels(
                modelzoo_service_pb2.ListModelsRequest(query="mobilenet_v2", page_size=500), metadata=bearer(viewer)
            )
            assert "tv/mobilenet_v2.imagenet1k_v1" in [m.id for m in listed.models]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetModel(modelzoo_service_pb2.GetModelRequest(model_id="tv/nope"), metadata=bearer(viewer))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND and "tv/nope" in err.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ImportWeights(
                    modelzoo_service_pb2.ImportWeightsRequest(model_id="tv/mobilenet_v2.imagenet1k_v1"),
                    metadata=bearer(viewer),
                )
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # The service itself refuses callers without the gateway's internal token.
        async with grpc.aio.insecure_channel(zoo.address) as direct:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await modelzoo_service_pb2_grpc.ModelZooServiceStub(direct).ListModels(
                    modelzoo_service_pb2.ListModelsRequest(), metadata=(("x-trainyard-project", "default"),)
                )
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await gateway.stop()
        await zoo.stop()
