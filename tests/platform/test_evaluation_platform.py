"""Evaluate, browse errors, predict and download through the gateway, on the whole platform in-process (real
NATS, S3, SQL, every service, the gateway, a trainer): the SDK and the CLI, and the bad input of issue 17."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
from inprocess import InProcessPlatform
from PIL import Image

from kernel.settings import Settings
from services.dataset.samples import make_detection_archive
from trainyard import cli
from trainyard.client import Client, FailedPreconditionError, InvalidArgumentError, NotFoundError
from trainyard.common.v1 import common_pb2
from trainyard.training.v1 import evaluation_pb2, training_pb2

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"
COLOURS = {"red": (200, 40, 40), "green": (40, 190, 40), "blue": (40, 40, 210), "purple": (150, 40, 160)}


def png(colour, rng) -> bytes:
    arr = np.clip(np.array(colour) * rng.uniform(0.75, 1.1) + rng.normal(0, 20, (32, 32, 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(arr.astype("uint8")).save(buf, "PNG")
    return buf.getvalue()


def colour_archive(path, classes, counts: dict[str, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as zf:
        for split, n in counts.items():
            for name in classes:
                for i in range(n):
                    zf.writestr(f"{split}/{name}/{name}{i}.png", png(COLOURS[name], rng))


@pytest.fixture(scope="module")
def platform(nats_server, s3_server, tmp_path_factory, catalog_path):
    home = tmp_path_factory.mktemp("evalplatform")
    settings = Settings(
        listen="127.0.0.1:0",
        DATABASE_URL=f"sqlite:///{home / 'platform.db'}",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        nats_url=nats_server.url,
        log_format="console",
        home=home,
    )
    with InProcessPlatform(settings, catalog_path) as p:
        yield p


@pytest.fixture(scope="module")
def trained(platform, tmp_path_factory):
    """A colour classifier trained on a dataset with a test split."""
    folder = tmp_path_factory.mktemp("evaldata")
    colour_archive(folder / "colours.zip", ["red", "green", "blue"], {"train": 14, "val": 4, "test": 6}, seed=1)
    with Client(platform.gateway_address, platform.admin_token) as ty:
        ty.models.import_weights(MOBILENET)
        ds = ty.datasets.upload(folder / "colours.zip", name="colours")
        task = ty.training.create(
            "colours-v1", "classification", ds.id, MOBILENET,
            hyperparameters={"epochs": 4, "batch_size": 16, "image_size": 32, "learning_rate": 2e-3},
        )  # fmt: skip
        task = ty.training.wait(task.id)
    assert task.state == training_pb2.TASK_STATE_SUCCEEDED, task.failure_reason
    return ds, task


def run_cli(platform, capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(
        ["--home", "/nonexistent", *argv, "--address", platform.gateway_address, "--token", platform.admin_token]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_task_is_evaluated_on_its_test_split_and_its_errors_browsed(platform, trained, capsys, tmp_path):
    ds, task = trained
    s = task.evaluation
    assert task.evaluation_id.startswith("ev") and s.split == common_pb2.SPLIT_TEST and s.case_count == 18
    assert s.headline_metric == "top1" and [c.name for c in s.classes] == ["blue", "green", "red"]
    code, out, _ = run_cli(platform, capsys, "train", "show", task.id)
    assert code == 0 and "test split" in out and "confusion matrix" in out and "confidence threshold" in out

    with Client(platform.gateway_address, platform.admin_token) as ty:
        evaluation = ty.evaluations.of_task(task.id)
        assert evaluation.automatic and evaluation.state == evaluation_pb2.EVALUATION_STATE_SUCCEEDED
        cases = ty.evaluations.cases(evaluation.id, previews=True, limit=None)
        assert len(cases) == 18 and [c.error_score for c in cases] == sorted(
            (c.error_score for c in cases), reverse=True
        )
        assert all(c.preview_jpeg.startswith(b"\xff\xd8") for c in cases)
        only_red = ty.evaluations.cases(evaluation.id, class_name="red", limit=None)
        assert only_red and all("red" in c.true_classes or c.predictions[0].class_name == "red" for c in only_red)
        wrong = ty.evaluations.cases(evaluation.id, kind="misclassified", limit=None)
        assert len(wrong) == s.error_case_count
        with pytest.raises(InvalidArgumentError) as err:
            ty.evaluations.cases(evaluation.id, class_name="zebra")
        assert "class_name" in err.value.violations and "zebra" in err.value.message
    sheet = tmp_path / "sheet.png"
    code, out, err_text = run_cli(platform, capsys, "eval", "cases", task.id, "--out", str(sheet), "--limit", "6")
    assert code == 0 and Image.open(sheet).size[0] > 100, err_text
    code, out, _ = run_cli(platform, capsys, "eval", "label-errors", task.id, "--output", "json")
    assert code == 0 and isinstance(json.loads(out), list)


def test_predict_through_the_gateway_with_bad_input_refused(platform, trained, capsys, tmp_path):
    ds, task = trained
    model = f"trained/{task.id}"
    red = tmp_path / "red.png"
    red.write_bytes(png(COLOURS["red"], np.random.default_rng(5)))
    (tmp_path / "cut.png").write_bytes(red.read_bytes()[:80])
    code, out, err_text = run_cli(platform, capsys, "predict", model, str(red), "--out", str(tmp_path / "drawn"))
    assert code == 0 and "red" in out, err_text
    assert (tmp_path / "drawn" / "red.predicted.jpg").is_file()
    with Client(platform.gateway_address, platform.admin_token) as ty:
        info = ty.model_info(model)
        assert info.task_type == "classification" and list(info.class_names) == ["blue", "green", "red"]
        assert info.input_size == 32 and info.threshold == pytest.approx(task.evaluation.default_threshold)
        # a dataset case by id: the model says what its evaluation said about it
        version = ty.datasets.get(ds.id).latest_version.id
        cases = ty.evaluations.cases(task.evaluation_id, limit=None)
        response = ty.predict(model, [(version, c.case_id) for c in cases], threshold=0.0, top_k=1)
        said = [c.predictions[0].class_name for c in cases]
        predicted = [p.classes[0].class_name for p in response.predictions]
        assert [p.name for p in response.predictions] == [c.case_id for c in cases]
        assert sum(a == b for a, b in zip(said, predicted, strict=True)) >= len(cases) - 1, (said, predicted)
        # where they agree, onnxruntime on the ONNX file (PIL resize) gives the scores PyTorch gave
        evaluated = {c.case_id: c.predictions[0] for c in cases}
        gaps = [
            abs(p.classes[0].score - evaluated[p.name].score)
            for p in response.predictions
            if p.classes[0].class_name == evaluated[p.name].class_name
        ]
        assert gaps and max(gaps) < 0.05, gaps
        with pytest.raises(InvalidArgumentError) as err:  # a truncated PNG, named by its file name
            ty.predict(model, [red, (tmp_path / "cut.png")])
        assert "images[1]" in err.value.violations and "cut.png: cannot be decoded" in err.value.message
        with pytest.raises(InvalidArgumentError) as err:
            ty.predict(model, [b"not an image at all"])
        assert "not a recognised image format" in err.value.violations["images[0]"]
        with pytest.raises(InvalidArgumentError) as err:
            ty.predict(model, [red.read_bytes()] * 65)
        assert "at most 64 images" in err.value.violations["images"]
        with pytest.raises(InvalidArgumentError) as err:
            ty.predict(model, [red], threshold=1.5)
        assert "threshold" in err.value.violations
        with pytest.raises(NotFoundError):
            ty.predict("trained/tt-nope", [red])
        with pytest.raises(FailedPreconditionError) as err:
            ty.predict(MOBILENET, [red])
        assert "without an ONNX export" in err.value.message
        # another project cannot use this project's model
        other = ty.projects.create("evalother").admin_token
    with Client(platform.gateway_address, other) as stranger, pytest.raises(NotFoundError):
        stranger.predict(model, [red])


def test_artifacts_download_through_the_platform(platform, trained, capsys, tmp_path):
    _ds, task = trained
    code, out, err_text = run_cli(
        platform, capsys, "train", "download", task.id, "--out", str(tmp_path), "--name", "model.onnx"
    )
    assert code == 0, err_text
    onnx_ref = next(a.object for a in task.artifacts if a.name == "model.onnx")
    assert hashlib.sha256((tmp_path / "model.onnx").read_bytes()).hexdigest() == onnx_ref.sha256
    with Client(platform.gateway_address, platform.admin_token) as ty:
        links = ty.training.artifacts(task.id)
        assert {link.name for link in links} >= {"model.onnx", "evaluation.json"}
        assert all(link.url == "" for link in links)  # no public endpoint configured: never the internal one
        with pytest.raises(NotFoundError) as err:
            ty.training.download(task.id, tmp_path, ["nope.bin"])
        assert "nope.bin" in err.value.message


def test_an_evaluation_of_the_model_on_another_dataset(platform, trained, tmp_path):
    _ds, task = trained
    model = f"trained/{task.id}"
    colour_archive(tmp_path / "two.zip", ["red", "green"], {"train": 3, "val": 5}, seed=9)
    colour_archive(tmp_path / "purple.zip", ["red", "purple"], {"train": 3, "val": 3}, seed=4)
    (tmp_path / "boxes.zip").write_bytes(make_detection_archive(n=6, size=48, seed=1))
    with Client(platform.gateway_address, platform.admin_token) as ty:
        two = ty.datasets.upload(tmp_path / "two.zip", name="two-colours")
        evaluation = ty.evaluations.create(model, two.id, splits=["val"])
        assert evaluation.state == evaluation_pb2.EVALUATION_STATE_QUEUED and not evaluation.automatic
        states = [c.evaluation.state for c in ty.evaluations.watch(evaluation.id) if c.HasField("evaluation")]
        done = ty.evaluations.get(evaluation.id)
        assert done.state == evaluation_pb2.EVALUATION_STATE_SUCCEEDED, done.failure_reason
        assert states[-1] == evaluation_pb2.EVALUATION_STATE_SUCCEEDED
        s = done.summary
        assert (
            s.split == common_pb2.SPLIT_VAL and s.case_count == 10 and [c.name for c in s.classes] == ["green", "red"]
        )
        # the model's extra class is a prediction column of its own
        assert list(s.confusion_matrix.column_labels) == ["green", "red", "blue"]
        assert len(ty.evaluations.cases(done.id, limit=None)) == 10
        assert done.id in [e.id for e in ty.evaluations.list(model)]

        purple = ty.datasets.upload(tmp_path / "purple.zip", name="purple")
        with pytest.raises(FailedPreconditionError) as err:
            ty.evaluations.create(model, purple.id)
        assert "'purple'" in err.value.message and err.value.reason == "CLASS_NOT_IN_MODEL"
        boxes = ty.datasets.upload(tmp_path / "boxes.zip", name="boxes")
        with pytest.raises(FailedPreconditionError) as err:
            ty.evaluations.create(model, boxes.id)
        assert err.value.reason == "DATASET_WRONG_TASK_TYPE"
        with pytest.raises(FailedPreconditionError) as err:
            ty.evaluations.create(model, two.id, splits=["test"])
        assert "test split" in err.value.message
        with pytest.raises(NotFoundError):
            ty.evaluations.create("trained/tt-missing", two.id)
        with pytest.raises(InvalidArgumentError):
            ty.evaluations.create(model, "")
