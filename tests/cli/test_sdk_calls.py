"""Every SDK call against the whole platform in-process, with the RPCs it makes recorded by a client
interceptor: the last tests enumerate the services' descriptors, so an RPC without an SDK call (or one
this module never exercised) fails."""

from __future__ import annotations

import importlib
import itertools
import time
from pathlib import Path

import grpc
import pytest
from inprocess import InProcessPlatform
from test_sdk import platform_settings

from kernel import objectstore
from services.dataset.samples import make_classification_archive
from trainyard import client as sdk
from trainyard.client import Client, enum_name, to_dict
from trainyard.common.v1 import common_pb2, options_pb2
from trainyard.training.v1 import training_pb2

pytestmark = [pytest.mark.integration]

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"
SERVICE_MODULES = [
    "trainyard.auth.v1.auth_service_pb2",
    "trainyard.dataset.v1.dataset_service_pb2",
    "trainyard.inference.v1.inference_service_pb2",
    "trainyard.modelzoo.v1.modelzoo_service_pb2",
    "trainyard.recommend.v1.recommend_service_pb2",
    "trainyard.training.v1.training_service_pb2",
]
CALLED: list[str] = []  # full method names of the RPCs this module's clients made


def public_rpcs() -> list[str]:
    """Every RPC of the API a client may call (the gateway refuses METHOD_ACCESS_INTERNAL ones to every key)."""
    out = []
    for name in SERVICE_MODULES:
        for service in importlib.import_module(name).DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if options.Extensions[options_pb2.access] == options_pb2.METHOD_ACCESS_INTERNAL:
                    continue
                out.append(f"{service.full_name}/{method.name}")
    return sorted(out)


class Recorder(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def _record(self, details):
        CALLED.append(details.method.lstrip("/"))

    def intercept_unary_unary(self, continuation, details, request):
        self._record(details)
        return continuation(details, request)

    def intercept_unary_stream(self, continuation, details, request):
        self._record(details)
        return continuation(details, request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        self._record(details)
        return continuation(details, request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        self._record(details)
        return continuation(details, request_iterator)


@pytest.fixture(scope="module")
def platform(nats_server, s3_server, tmp_path_factory, catalog_path):
    home = tmp_path_factory.mktemp("sdkcalls")
    # links handed to clients (exports) are signed for the public endpoint: here the same server by another name
    public = s3_server.endpoint.replace("127.0.0.1", "localhost")
    settings = platform_settings(nats_server, s3_server, home).model_copy(update={"s3_public_endpoint": public})
    with InProcessPlatform(settings, catalog_path) as p:
        p.settings = settings
        yield p


@pytest.fixture
def ty(platform):
    with Client(platform.gateway_address, platform.admin_token, interceptors=[Recorder()]) as client:
        yield client


@pytest.fixture(scope="module")
def shapes(platform, tmp_path_factory):
    archive = tmp_path_factory.mktemp("data") / "shapes.zip"
    archive.write_bytes(make_classification_archive(classes=("circle", "square"), per_class=8, size=32, seed=3))
    with Client(platform.gateway_address, platform.admin_token, interceptors=[Recorder()]) as ty:
        ds = ty.datasets.upload(archive, name="calls-shapes", val_fraction=0.25, test_fraction=0.25)
        ty.models.import_weights(MOBILENET)
    return ds, archive


def calls_of(rpc: str) -> int:
    return sum(1 for c in CALLED if c.endswith("/" + rpc))


def test_datasets(ty, shapes, platform, tmp_path):
    ds, archive = shapes
    assert ty.datasets.get(ds.id).name == "calls-shapes"
    assert ds.id in [d.id for d in ty.datasets.iter("classification")]
    version = ty.datasets.version(ds.latest_version.id)
    assert version.case_count == 16 and enum_name(version, "annotation_types") == ["label"]
    cases = ty.datasets.preview(ds.id, count=4)
    assert len(cases) == 4 and enum_name(cases[0], "split") in ("train", "val", "test")
    # a taken name is refused before the archive is sent: no CreateDataset call is made at all
    before = calls_of("CreateDataset")
    with pytest.raises(sdk.AlreadyExistsError) as err:
        ty.datasets.upload(archive, name="calls-shapes")
    assert ds.id in err.value.message and calls_of("CreateDataset") == before
    with pytest.raises(sdk.InvalidArgumentError):
        ty.datasets.upload(archive, name="bad\u202ename")
    assert calls_of("CreateDataset") == before
    # a second version from the same archive (every case replaced by itself), its import report
    v2 = ty.datasets.add_version(ds.id, archive, val_fraction=0.25)
    assert v2.number == 2 and v2.case_count == 16
    report = ty.datasets.report(v2.import_id)
    assert enum_name(report.status, "state") == "succeeded"
    with pytest.raises(sdk.NotFoundError):  # an unknown dataset fails before the upload
        ty.datasets.add_version("ds-nope", archive)
    # import from the upload bucket, watched to its end
    s3 = objectstore.make_client(platform.settings)
    objectstore.put_bytes(s3, objectstore.UPLOADS_BUCKET, "calls/shapes.zip", archive.read_bytes())
    started = ty.datasets.import_object("calls/shapes.zip", name="calls-from-bucket")
    statuses = list(ty.datasets.watch_import(started.id))
    assert enum_name(statuses[-1], "state") == "succeeded" and statuses[-1].dataset_id
    assert ty.datasets.wait_import(started.id).version_id == statuses[-1].version_id
    # export, downloaded and checked
    out = tmp_path / "export.zip"
    response = ty.datasets.export(ds.latest_version.id, "image_folder", out=out)
    assert out.is_file() and out.stat().st_size == response.archive.size_bytes
    ty.datasets.delete(statuses[-1].dataset_id)
    with pytest.raises(sdk.NotFoundError):
        ty.datasets.get(statuses[-1].dataset_id)


def test_zoo_presets_and_weights(ty, tmp_path):
    families = ty.models.families("classification")
    assert any(f.name == "mobilenet_v2" for f in families)
    first = list(itertools.islice(ty.models.iter("classification"), 3))  # lazily: one page asked for
    assert len(first) == 3 and ty.models.count("classification") > 3
    lazily = list(itertools.islice(ty.iterate("ListModels", task_type="classification", family="resnet"), 2))
    assert [m.family for m in lazily] == ["resnet", "resnet"]
    model = ty.models.get(MOBILENET)
    assert enum_name(model, "weight_status") == "in_store" and to_dict(model)["weight_status"] == "in_store"
    pulled = ty.models.pull([MOBILENET])
    assert [enum_name(p, "state") for p in pulled] == ["already_in_store"]
    presets = ty.models.presets("classification")
    assert presets and ty.models.preset(presets[0].id).id == presets[0].id
    assert enum_name(presets[0], "weight_status") in ("in_store", "importable", "unavailable")
    bundle = tmp_path / "weights.tar"
    manifest = ty.weights.bundle(bundle, [MOBILENET])
    assert manifest["weights"][0]["model_id"] == MOBILENET
    # the same file uploaded as this project's own weights; an unknown model fails before anything is sent
    before = calls_of("UploadWeights")
    with pytest.raises(sdk.NotFoundError):
        ty.models.upload_weights(bundle, "tv/no-such-model")
    assert calls_of("UploadWeights") == before
    results = ty.weights.import_bundle(bundle)  # already in store: nothing sent
    assert results[0].outcome == "already in store"
    import tarfile

    with tarfile.open(bundle) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("weights/"))
        mine = ty.models.upload_weights(tar.extractfile(member), MOBILENET, sha256=manifest["weights"][0]["sha256"],
                                        size_bytes=member.size)  # fmt: skip
    assert enum_name(mine, "weights_scope") == "project"


def test_suggestion_is_used_whole_and_the_training_calls(ty, shapes, tmp_path):
    """The suggestion-kept test: the chosen suggestion's transfer strategy and hyperparameters (not the
    balanced recipe of a hand-picked model) are the task's, and the task says which suggestion it was."""
    ds, _ = shapes
    response = ty.recommendation("classification", ds.id, data_type="medical", preference="fastest")
    assert response.dataset_factors and [s.rank for s in response.suggestions][:2] == [1, 2]
    chosen = response.suggestions[0]
    assert chosen.model_id == MOBILENET and enum_name(chosen, "preference") == "fastest"
    plan = ty.training.plan("calls-plan", "classification", ds.id, suggestion=chosen)
    assert not plan.id and plan.state == training_pb2.TASK_STATE_UNSPECIFIED
    assert plan.hyperparameters.epochs == chosen.hyperparameters.epochs
    # chosen by hand, the same model would train with another recipe: the test tells them apart
    by_hand = ty.training.plan("calls-plan", "classification", ds.id, MOBILENET)
    assert by_hand.hyperparameters != plan.hyperparameters
    assert "calls-plan" not in [t.name for t in ty.training.list()]  # nothing was created
    task = ty.training.create(
        "calls-task", "classification", ds.id, suggestion=chosen, hyperparameters={"epochs": 1, "image_size": 32}
    )
    assert task.transfer_strategy == chosen.transfer_strategy
    want = common_pb2.Hyperparameters()
    want.CopyFrom(chosen.hyperparameters)
    want.epochs, want.image_size = 1, 32
    for field in want.DESCRIPTOR.fields:
        if want.HasField(field.name) if field.has_presence else getattr(want, field.name):
            assert getattr(task.hyperparameters, field.name) == getattr(want, field.name), field.name
    assert task.suggestion == chosen and enum_name(task, "data_type") == "medical"
    assert "Deciding factors" in task.selection_rationale
    schema = ty.training.hyperparameter_schema(MOBILENET, "classification")
    assert {p.name for p in schema.parameters} >= {"epochs", "optimizer", "early_stopping_patience"}
    events = list(ty.training.watch(task.id))
    assert enum_name(events[-1].task, "state") == "succeeded"
    done = ty.training.get(task.id)
    assert to_dict(done)["state"] == "succeeded" and to_dict(done)["task_type"] == "classification"
    assert ty.training.trials(task.id) == []  # not a search
    assert [t.id for t in ty.training.iter(model_id=MOBILENET)][:1] == [task.id]
    links = ty.training.artifacts(task.id)
    assert {link.name for link in links} >= {"model.onnx", "model.pt"}
    files = ty.training.download(task.id, tmp_path / "model", ["model.onnx"])
    assert files[0].stat().st_size > 1000
    # inference on the trained model
    info = ty.model_info(f"trained/{task.id}")
    assert list(info.class_names) == ["circle", "square"]
    cases = ty.datasets.preview(ds.id, count=1)
    predicted = ty.predict(f"trained/{task.id}", [(ds.latest_version.id, cases[0].id)])
    assert predicted.predictions[0].classes
    # its automatic evaluation, per-case results and label errors, then an evaluation of our own
    evaluation = ty.evaluations.of_task(task.id)
    assert enum_name(evaluation, "state") == "succeeded"
    assert ty.evaluations.cases(evaluation.id, limit=5)
    assert isinstance(ty.evaluations.label_errors(evaluation.id), list)
    assert evaluation.id in [e.id for e in ty.evaluations.list(f"trained/{task.id}")]
    mine = ty.evaluations.create(f"trained/{task.id}", ds.id)
    cancelled = ty.evaluations.cancel(mine.id)
    assert enum_name(cancelled, "state") == "cancelled"
    assert list(ty.evaluations.watch(mine.id))
    # train on for one more epoch from the last checkpoint
    more = ty.training.continue_task(task.id, 1)
    assert more.hyperparameters.epochs == 2
    assert enum_name(ty.training.wait(task.id), "state") == "succeeded"
    # and clean up: the trained model leaves the zoo first, then the task with its artifacts
    ty.models.delete(f"trained/{task.id}")
    deleted = ty.training.delete(task.id)
    assert deleted.deleted_task_ids == [task.id]
    other = ty.training.create("calls-cancel", "classification", ds.id, MOBILENET, hyperparameters={"epochs": 1})
    assert enum_name(ty.training.cancel(other.id), "state") == "cancelled"


def test_auth_calls(ty, platform):
    me = ty.whoami()
    assert enum_name(me, "role") == "admin"
    key = ty.keys.create("calls-viewer", "viewer")
    assert key.key.id in [k.id for k in ty.keys.list()]
    short = ty.create_token(ttl_seconds=60, role="viewer")
    assert short.token
    assert ty.keys.revoke(key.key.id).revoked
    made = ty.projects.create(f"calls-{int(time.time())}")
    assert made.project.id in [p.id for p in ty.projects.list()]
    ty.projects.add_member("dana@example.com", "viewer")
    assert "dana@example.com" in [m.member for m in ty.projects.members()]
    assert ty.projects.remove_member("dana@example.com") == []
    assert ty.audit(method_contains="RevokeApiKey")


@pytest.mark.parametrize("rpc", public_rpcs())
def test_every_rpc_has_an_sdk_call(rpc):
    assert rpc in sdk.SDK_CALLS, f"{rpc} has no SDK call: add one to trainyard/client.py (marked with @_rpc)"


@pytest.mark.parametrize("rpc", public_rpcs())
def test_every_rpc_was_called_through_the_sdk(rpc):
    """Runs after the tests above (in file order): each RPC was made by at least one SDK call here."""
    assert rpc in CALLED, f"no test in {Path(__file__).name} calls {sdk.SDK_CALLS.get(rpc, rpc)}"
