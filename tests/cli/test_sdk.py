"""The Python SDK against the whole platform in-process (real NATS, S3, SQL, services, gateway, trainer)."""

from __future__ import annotations

import pytest
from inprocess import InProcessPlatform

from kernel.settings import Settings
from services.dataset.samples import make_classification_archive
from trainyard import client as sdk
from trainyard.client import Client
from trainyard.training.v1 import training_pb2

pytestmark = [pytest.mark.integration]

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"


def platform_settings(nats_server, s3_server, home) -> Settings:
    return Settings(
        listen="127.0.0.1:0",
        DATABASE_URL=f"sqlite:///{home / 'platform.db'}",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        nats_url=nats_server.url,
        log_format="console",
        home=home,
    )


@pytest.fixture(scope="module")
def platform(nats_server, s3_server, tmp_path_factory, catalog_path):
    home = tmp_path_factory.mktemp("sdk")
    catalog = catalog_path
    overrides = {"max_streams_per_key": 2}
    with InProcessPlatform(platform_settings(nats_server, s3_server, home), catalog, gateway=overrides) as p:
        yield p


def test_whole_flow_in_a_few_lines(platform, tmp_path):
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(make_classification_archive(classes=("circle", "square"), per_class=8, size=32, seed=2))
    seen = []
    with Client(platform.gateway_address, platform.admin_token) as ty:
        ds = ty.datasets.upload(archive, name="shapes", val_fraction=0.25, progress=lambda s, t: seen.append((s, t)))
        assert seen[0] == (0, archive.stat().st_size) and seen[-1][0] == seen[-1][1]
        assert ds.id in [d.id for d in ty.datasets.list("classification")]
        assert ds.id not in [d.id for d in ty.datasets.list("detection")]
        assert ty.datasets.get(ds.id).name == "shapes"
        assert len(ty.datasets.preview(ds.id, count=3)) == 3
        assert ty.models.families("classification")
        assert ty.models.get(MOBILENET).id == MOBILENET
        assert ty.models.import_weights(MOBILENET).weights.sha256
        suggestions = ty.recommend("classification", ds.id, data_type="natural_photo", preference="fastest")
        assert suggestions and suggestions[0].model_id
        task = ty.training.create(
            "shapes-v1",
            "classification",
            ds.id,
            MOBILENET,
            hyperparameters={"epochs": 2, "batch_size": 8, "image_size": 32},
            request_id="sdk-1",
        )
        epochs = {e.epoch_metrics.epoch for e in ty.training.watch(task.id) if e.HasField("epoch_metrics")}
        assert {1, 2} <= epochs <= {0, 1, 2}  # epoch 0: a classification head probed before fine-tuning
        done = ty.training.get(task.id)
        assert done.state == training_pb2.TASK_STATE_SUCCEEDED and "val_top1" in done.metrics
        # idempotent create: the same request_id is the same task
        again = ty.training.create(
            "shapes-v1",
            "classification",
            ds.id,
            MOBILENET,
            request_id="sdk-1",
            hyperparameters={"epochs": 2, "batch_size": 8, "image_size": 32},
        )
        assert again.id == task.id
        assert task.id in [t.id for t in ty.training.list()]


def test_typed_errors_with_field_violations(platform):
    with Client(platform.gateway_address, platform.admin_token) as ty:
        with pytest.raises(sdk.NotFoundError) as err:
            ty.datasets.get("no-such-dataset")
        assert "no-such-dataset" in str(err.value)
        with pytest.raises(sdk.InvalidArgumentError) as err:
            ty.training.create("x", "classification", "whatever", MOBILENET, hyperparameters={"epochs": -1})
        assert "hyperparameters.epochs" in err.value.violations
        with pytest.raises(sdk.InvalidArgumentError) as err:  # through the gateway to the training service
            ty.training.create("x", "classification", "whatever", MOBILENET, resources={"processes_per_node": 65})
        assert "1..64" in err.value.violations["resources.processes_per_node"]
        with pytest.raises(sdk.InvalidArgumentError) as err:
            ty.datasets.list("no-such-type")
        assert "task_type" in err.value.violations
    with Client(platform.gateway_address, "ty_nobody_" + "x" * 30) as bad:
        with pytest.raises(sdk.UnauthenticatedError):
            bad.whoami()


def test_keys_roles_and_short_lived_tokens(platform):
    with Client(platform.gateway_address, platform.admin_token) as admin:
        made = admin.keys.create("ci-viewer", "viewer")
        assert made.token and made.key.id in [k.id for k in admin.keys.list()]
        short = admin.create_token(ttl_seconds=60, role="viewer")
        with Client(platform.gateway_address, short.token) as temp:
            assert temp.whoami().role == 2 - 1  # ROLE_VIEWER
            with pytest.raises(sdk.PermissionDeniedError):
                temp.keys.create("nope", "viewer")
        with Client(platform.gateway_address, made.token) as viewer:
            viewer.datasets.list()
            with pytest.raises(sdk.PermissionDeniedError):
                viewer.datasets.delete("anything")
            derived = viewer.create_token(ttl_seconds=60)
        admin.keys.revoke(made.key.id)
        for token in (made.token, derived.token):  # revoking a key ends its short-lived tokens too
            with Client(platform.gateway_address, token) as gone, pytest.raises(sdk.UnauthenticatedError):
                gone.whoami()
        # members: a key issued to a member dies with the membership
        admin.projects.add_member("carol@example.com", "editor")
        with pytest.raises(sdk.InvalidArgumentError) as err:
            admin.keys.create("too-strong", "admin", member="carol@example.com")
        assert "role" in err.value.violations
        carol = admin.keys.create("carol-laptop", "editor", member="carol@example.com")
        assert admin.projects.remove_member("carol@example.com") == [carol.key.id]
        with Client(platform.gateway_address, carol.token) as gone, pytest.raises(sdk.UnauthenticatedError):
            gone.whoami()
        entries = admin.audit(method_contains="RevokeApiKey")
        assert entries and entries[0].code == "OK" and made.key.id in entries[0].target


def test_concurrent_streams_per_key_are_limited_with_retry_info(platform):
    """Two uploads held open (the gateway allows 2 streams per key here): the third is refused."""
    import threading
    import time

    from trainyard.dataset.v1 import dataset_service_pb2 as dsr

    release = threading.Event()

    def held():
        yield dsr.CreateDatasetRequest(metadata=dsr.CreateDatasetMetadata(name="held"))
        release.wait(30)

    limiter = next(r.gateway for r in platform.running if hasattr(r, "gateway")).stream_limiter

    def until_open(count: int) -> None:
        """Poll the gateway until `count` streams of the admin key are open."""
        deadline = time.monotonic() + 30
        while limiter.open("admin") != count:
            assert time.monotonic() < deadline, f"{limiter.open('admin')} streams open, not {count}"
            time.sleep(0.02)

    with Client(platform.gateway_address, platform.admin_token) as ty:
        stub = ty._datasets
        futures = [stub.CreateDataset.future(held(), metadata=ty._metadata, timeout=30) for _ in range(2)]
        try:
            until_open(2)
            with pytest.raises(sdk.ResourceExhaustedError) as err:
                ty.datasets.upload(__file__, name="third")
            assert err.value.reason == "TOO_MANY_STREAMS"
            assert err.value.retry_after and err.value.retry_after > 0
            names = [d.name for d in ty.datasets.list()]  # unary calls are never limited by streams
            assert "held" not in names and "third" not in names
        finally:
            for future in futures:
                future.cancel()
            release.set()
        until_open(0)  # the held streams' slots are free again: a new upload gets to the service
        with pytest.raises(sdk.InvalidArgumentError):
            ty.datasets.upload(__file__, name="third")  # not an archive
