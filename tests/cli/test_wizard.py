"""`trainyard train start` driven through a real pseudo-terminal (pexpect), one test per mode of the
product page, each to a SUCCEEDED task on a tiny generated dataset, checking what each step shows."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest
from inprocess import InProcessPlatform
from test_sdk import platform_settings

from services.dataset.samples import make_classification_archive
from trainyard.client import Client
from trainyard.common.v1 import common_pb2
from trainyard.training.v1 import training_pb2

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"
STEP = 60  # seconds any one step may take to show (a training: TRAINING)
TRAINING = 300


@pytest.fixture(scope="module")
def platform(nats_server, s3_server, tmp_path_factory, catalog_path):
    home = tmp_path_factory.mktemp("wizard")
    with InProcessPlatform(platform_settings(nats_server, s3_server, home), catalog_path) as p:
        archive = home / "shapes.zip"
        archive.write_bytes(make_classification_archive(classes=("circle", "square"), per_class=8, size=32, seed=5))
        with Client(p.gateway_address, p.admin_token) as ty:
            ty.datasets.upload(archive, name="wizard-shapes", val_fraction=0.25)
            ty.models.import_weights(MOBILENET)
        p.home = home
        yield p


@pytest.fixture
def ty(platform):
    with Client(platform.gateway_address, platform.admin_token) as client:
        yield client


def spawn(platform, *args: str) -> pexpect.spawn:
    env = {
        **os.environ,
        "TRAINYARD_GATEWAY_ADDRESS": platform.gateway_address,
        "TRAINYARD_TOKEN": platform.admin_token,
        "TRAINYARD_HOME": str(platform.home / "no-stack"),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
        "TERM": "xterm-256color",
        "COLUMNS": "200",
    }
    for name in ("TERM_PROGRAM", "KITTY_WINDOW_ID", "LC_TERMINAL"):
        env.pop(name, None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "trainyard.cli", "train", "start", *args],
        env=env,
        cwd=str(ROOT),
        encoding="utf-8",
        timeout=STEP,
        dimensions=(60, 200),
    )
    child.logfile_read = open(platform.home / "wizard-transcript.txt", "a")  # noqa: SIM115 - closed with the child
    return child


def answer(child: pexpect.spawn, prompt: str, text: str) -> str:
    """Wait for `prompt`, answer `text`; what the wizard showed before the prompt."""
    child.expect_exact(prompt)
    shown = child.before
    child.sendline(text)
    return shown


def tune(child: pexpect.spawn, *changes: str, search: tuple[str, ...] = ()) -> str:
    """The tuning step: each NAME=VALUE change, then keep; a search when `search` gives its answers (method,
    trials, parallel, parameters...). What the first screen showed."""
    shown = answer(child, "change a value", changes[0] if changes else "")
    for change in changes[1:]:
        answer(child, "change a value", change)
    if changes:
        answer(child, "change a value", "")
    answer(child, "search hyperparameters instead of training once?", "y" if search else "n")
    if search:
        method, trials, parallel, *params = search
        answer(child, "search method (# or id)", method)
        answer(child, "trials in all", trials)
        answer(child, "trials at the same time", parallel)
        for i, spec in enumerate(params):  # every spec after the first is there because the one before was refused
            seen = answer(child, "searched hyperparameters", spec)
            assert not i or "try again" in seen, seen
    return shown


def finish(child: pexpect.spawn, name: str, description: str = "") -> str:
    """Name, description, the summary, start, watch to the end; what the summary and the watch showed."""
    answer(child, "task name", name)
    answer(child, "description (optional)", description)
    summary = answer(child, "start ", "y")
    answer(child, "watch it now?", "y")
    child.expect_exact("succeeded", timeout=TRAINING)
    child.expect(pexpect.EOF, timeout=STEP)
    child.close()
    assert child.exitstatus == 0, child.before
    return summary


def task_named(ty, name: str) -> training_pb2.TrainingTask:
    return next(t for t in ty.training.list() if t.name == name)


def test_auto_select_keeps_the_suggestion_whole(platform, ty):
    child = spawn(platform)
    shown = answer(child, "task type (# or id)", "classification")
    assert "semantic segmentation: a class for every pixel" in shown and "one label per image" in shown
    shown = answer(child, "dataset (# or id)", "7")  # there are not 7: asked again
    assert "wizard-shapes" in shown and "datasets whose annotations fit classification" in shown
    child.expect_exact("there is no dataset #7")
    shown = answer(child, "dataset (# or id)", "wizard-shapes")
    shown = answer(child, "train on wizard-shapes? (y/n)", "y")
    # the preview: class and split counts, each case with its labels (not eaten as markup), the sheet
    assert "train 12, val 4, test 0" in shown and "circle" in shown
    assert "[train] square" in shown or "[val] square" in shown
    assert "contact sheet of 8 cases with their annotations" in shown
    sheet = Path(tempfile_dir()) / f"trainyard-preview-{ty.datasets.list()[0].id}.png"
    assert sheet.is_file() and sheet.stat().st_size > 1000
    shown = answer(child, "training mode (# or id)", "general")
    assert "(none for classification yet)" in shown  # no trained model to retrain yet
    answer(child, "model selection (# or id)", "auto")
    shown = answer(child, "data type (# or id)", "medical")
    assert "medical imaging, often grayscale" in shown
    answer(child, "preference (# or id)", "fastest")
    shown = answer(child, "suggestion (# or id)", "1")
    assert "12 training / 4 validation images" in shown and MOBILENET in shown
    assert "    - " in shown  # each suggestion's factors
    suggestion = ty.recommend(
        "classification", ty.datasets.list()[0].id, data_type="medical", preference="fastest", max_suggestions=5
    )[0]
    shown = tune(child, "epochs=0", "epochs=1", "image_size=32")
    assert "early_stopping_patience" in shown and "transfer_strategy" in shown  # every hyperparameter, editable
    assert f"{suggestion.hyperparameters.batch_size}" in shown
    summary = finish(child, "", "from the wizard")  # the default name
    assert "#1 of the fastest ranking" in summary and "epochs *" in summary and "medical" in summary
    task = next(t for t in ty.training.list() if t.description == "from the wizard")
    assert task.name == "wizard-shapes-mobilenet_v2"
    assert task.state == training_pb2.TASK_STATE_SUCCEEDED
    # the suggestion whole: its model, strategy and every hyperparameter but the two changed, and the task
    # says it came from it
    assert task.model_id == suggestion.model_id and task.transfer_strategy == suggestion.transfer_strategy
    assert task.suggestion.model_id == suggestion.model_id and task.suggestion.rank == 1
    assert task.data_type == common_pb2.DATA_TYPE_MEDICAL
    want = common_pb2.Hyperparameters()
    want.CopyFrom(suggestion.hyperparameters)
    want.epochs, want.image_size = 1, 32
    got = task.hyperparameters
    for field in ("batch_size", "learning_rate", "optimizer", "weight_decay", "backbone_lr_multiplier"):
        assert getattr(got, field) == getattr(want, field), field
    assert got.epochs == 1 and got.image_size == 32


def test_manual_select_pages_families_variants_and_weights(platform, ty):
    child = spawn(platform, "--task-type", "classification", "--dataset", "wizard-shapes")
    answer(child, "training mode (# or id)", "1")
    answer(child, "model selection (# or id)", "manual")
    shown = answer(child, "family (# or id)", "n")
    assert "page 1 of" in shown and "alexnet" in shown
    child.expect_exact("page 2 of")
    shown = answer(child, "family (# or id)", "mobilenet_v2")
    shown = answer(child, "variant (# or id)", "mobilenet_v2")
    shown = answer(child, "weights (# or id)", MOBILENET)
    assert "imagenet" in shown and "in store" in shown
    tune(child, "transfer_strategy=linear", "transfer_strategy=fine_tune_all", "epochs=1", "image_size=32")
    finish(child, "wizard-manual")
    task = task_named(ty, "wizard-manual")
    assert task.state == training_pb2.TASK_STATE_SUCCEEDED and task.model_id == MOBILENET
    assert task.transfer_strategy == common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL
    assert task.mode == training_pb2.TRAINING_MODE_SELECTION_GENERAL and not task.HasField("suggestion")


def test_specialized_preset_without_weights_asks_before_training_from_scratch(platform, ty):
    child = spawn(platform, "--task-type", "classification", "--dataset", "wizard-shapes")
    shown = answer(child, "training mode (# or id)", "specialized")
    shown = answer(child, "preset (# or id)", "preset/industrial-defect-classification")
    assert "Chest X-ray classification" in shown and "no weights source" in shown
    answer(child, "train from scratch (random initial weights) instead? (y/n)", "y")
    tune(child, "epochs=1", "image_size=32", "batch_size=4")
    summary = finish(child, "wizard-preset")
    assert "from scratch (asked for)" in summary and "preset/industrial-defect-classification" in summary
    task = task_named(ty, "wizard-preset")
    assert task.state == training_pb2.TASK_STATE_SUCCEEDED
    assert task.mode == training_pb2.TRAINING_MODE_SELECTION_SPECIALIZED
    assert task.preset_id == "preset/industrial-defect-classification"
    assert task.transfer_strategy == common_pb2.TRANSFER_STRATEGY_FROM_SCRATCH
    assert task.data_type == common_pb2.DATA_TYPE_INDUSTRIAL  # the preset's kind of data


def test_retraining_lists_trained_models_by_their_task_name(platform, ty):
    first = next(t for t in ty.training.list() if t.description == "from the wizard")
    child = spawn(platform, "--task-type", "classification", "--dataset", "wizard-shapes")
    answer(child, "training mode (# or id)", "retraining")
    shown = answer(child, "trained model (# or id)", "wizard-shapes-mobilenet_v2")
    assert f"trained/{first.id}" in shown and "wizard-shapes-mobilenet_v2" in shown and "val_top1" in shown
    # a search of two trials; a spec that does not read is asked again
    tune(
        child,
        "epochs=1",
        "image_size=32",
        search=("random", "2", "2", "learning_rate=1e-4:x", "learning_rate=1e-4:1e-2:log"),
    )
    summary = finish(child, "wizard-retrained")
    assert "random, 2 trials, 2 at a time" in summary
    task = task_named(ty, "wizard-retrained")
    assert task.state == training_pb2.TASK_STATE_SUCCEEDED and task.model_id == f"trained/{first.id}"
    assert len(ty.training.trials(task.id)) == 2 and task.search.parameters[0].name == "learning_rate"
    assert task.mode == training_pb2.TRAINING_MODE_SELECTION_RETRAINING
    assert task.data_type == common_pb2.DATA_TYPE_MEDICAL  # what the trained model's task said


def test_every_answer_has_a_flag(platform, ty):
    """The whole flow scripted: no prompt, every hyperparameter flag reaches the task."""
    child = spawn(
        platform,
        *("--task-type", "classification", "--dataset", "wizard-shapes", "--suggestion", "1"),
        *("--data-type", "medical", "--preference", "fastest", "--name", "wizard-flags", "--yes"),
        *("--epochs", "1", "--image-size", "32", "--optimizer", "adamw", "--lr-schedule", "constant"),
        *("--augmentation", "light", "--class-weighting", "inverse_frequency", "--early-stopping-patience", "0"),
        *("--label-smoothing", "0.05", "--seed", "7", "--transfer-strategy", "fine_tune_all"),
    )
    child.expect(pexpect.EOF, timeout=STEP)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "(# or id)" not in child.before and "(y/n)" not in child.before  # nothing asked
    task = task_named(ty, "wizard-flags")
    hp = task.hyperparameters
    assert (hp.epochs, hp.image_size, hp.optimizer, hp.lr_schedule) == (
        1,
        32,
        common_pb2.OPTIMIZER_ADAMW,
        common_pb2.LR_SCHEDULE_CONSTANT,
    )
    assert hp.augmentation == "light" and hp.class_weighting == common_pb2.CLASS_WEIGHTING_INVERSE_FREQUENCY
    assert hp.HasField("early_stopping_patience") and hp.early_stopping_patience == 0
    assert abs(hp.label_smoothing - 0.05) < 1e-9 and hp.seed == 7
    assert task.transfer_strategy == common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL and task.suggestion.rank == 1
    ty.training.cancel(task.id)


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()
