"""The `trainyard` CLI on the SDK, against the whole platform in-process: flags, env, interactive."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from inprocess import InProcessPlatform
from PIL import Image
from test_sdk import platform_settings

from services.dataset.samples import make_classification_archive
from trainyard.cli import main

pytestmark = [pytest.mark.integration]

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"


@pytest.fixture(scope="module")
def platform(nats_server, s3_server, tmp_path_factory, catalog_path):
    home = tmp_path_factory.mktemp("cli")
    catalog = catalog_path
    with InProcessPlatform(platform_settings(nats_server, s3_server, home), catalog) as p:
        yield p


@pytest.fixture
def env(platform, monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINYARD_GATEWAY_ADDRESS", platform.gateway_address)
    monkeypatch.setenv("TRAINYARD_TOKEN", platform.admin_token)
    monkeypatch.setenv("TRAINYARD_HOME", str(tmp_path / "no-stack"))
    return platform


def run_json(capsys, *argv):
    capsys.readouterr()
    assert main([*argv, "--output", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_whole_flow_with_flags(env, capsys, tmp_path):
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(make_classification_archive(classes=("circle", "square"), per_class=8, size=32, seed=4))
    imported = run_json(capsys, "datasets", "import", str(archive), "--name", "cli-shapes", "--val-fraction", "0.25")
    ds_id = imported["id"]
    assert ds_id in [d["id"] for d in run_json(capsys, "datasets", "list", "--task-type", "classification")]
    assert main(["datasets", "show", ds_id]) == 0 and "circle" in capsys.readouterr().out
    sheet = tmp_path / "sheet.png"
    assert main(["datasets", "preview", ds_id, "--count", "4", "--out", str(sheet)]) == 0
    assert Image.open(sheet).size[0] > 32
    models = run_json(capsys, "models", "list", "--task-type", "classification", "--limit", "5")
    assert len(models) == 5
    assert run_json(capsys, "models", "show", MOBILENET)["id"] == MOBILENET
    assert main(["models", "import", MOBILENET]) == 0
    suggestions = run_json(capsys, "recommend", "--task-type", "classification", "--dataset", ds_id)
    assert main(["recommend", "--task-type", "classification", "--dataset", ds_id]) == 0
    table = " ".join(capsys.readouterr().out.split())  # the table wraps long cells
    deciding = suggestions[0]["factors"][0]
    assert " ".join(deciding.split()[:3]) in table  # the top deciding factor, not the rationale's preamble
    capsys.readouterr()
    code = main(
        [
            "train",
            "start",
            "--task-type",
            "classification",
            "--dataset",
            ds_id,
            "--model",
            MOBILENET,
            "--name",
            "cli-task",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--image-size",
            "32",
            "--watch",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "succeeded" in out and "val_top1" in out
    tasks = run_json(capsys, "train", "list")
    task = next(t for t in tasks if t["name"] == "cli-task")
    assert run_json(capsys, "train", "show", task["id"])["state"] == "TASK_STATE_SUCCEEDED"
    assert main(["train", "watch", task["id"]]) == 0


def test_train_start_interactive(env, capsys, monkeypatch, tmp_path):
    archive = tmp_path / "pets.zip"
    archive.write_bytes(make_classification_archive(classes=("cat", "dog"), per_class=6, size=32, seed=8))
    ds_id = run_json(capsys, "datasets", "import", str(archive), "--name", "cli-pets", "--val-fraction", "0.25")["id"]
    datasets = run_json(capsys, "datasets", "list", "--task-type", "classification")
    number = [d["id"] for d in datasets].index(ds_id) + 1
    # task type, dataset, "train on it?", keep the tuning, no search, name, no description, start, no watch
    answers = ["classification", str(number), "y", "", "n", "interactive-task", "", "y", "n"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(answers) + "\n"))
    capsys.readouterr()
    argv = ["train", "start", "--model", MOBILENET, "--epochs", "1", "--image-size", "32", "--batch-size", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "contact sheet of" in out and "[train] " in out and "started" in out
    task = next(t for t in run_json(capsys, "train", "list") if t["name"] == "interactive-task")
    assert task["dataset_id"] == ds_id and task["model_id"] == MOBILENET
    assert main(["train", "cancel", task["id"]]) in (0, 1)


def test_keys_end_to_end_and_audit(env, capsys, monkeypatch):
    made = run_json(capsys, "keys", "create", "cli-viewer", "--role", "viewer")
    token, key_id = made["token"], made["key"]["id"]
    assert key_id in [k["id"] for k in run_json(capsys, "keys", "list")]
    # the new key works from the CLI (flag beats env) and is a viewer
    assert run_json(capsys, "whoami", "--token", token)["role"] == "ROLE_VIEWER"
    capsys.readouterr()
    assert main(["keys", "create", "nope", "--token", token]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert main(["keys", "revoke", key_id]) == 0
    capsys.readouterr()
    assert main(["whoami", "--token", token]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    entries = run_json(capsys, "audit", "--method", "ApiKey")
    assert any(e["method"].endswith("RevokeApiKey") and key_id in e["target"] for e in entries)


def test_clear_errors(env, capsys, monkeypatch, tmp_path):
    assert main(["datasets", "show", "no-such-dataset"]) == 1
    err = capsys.readouterr().err
    assert "NOT_FOUND" in err and "no-such-dataset" in err
    assert (
        main(
            [
                "train",
                "start",
                "--task-type",
                "classification",
                "--dataset",
                "x",
                "--model",
                MOBILENET,
                "--name",
                "bad",
                "--epochs",
                "-1",
            ]
        )
        == 1
    )
    assert "hyperparameters.epochs" in capsys.readouterr().err
    start = ["train", "start", "--task-type", "classification", "--dataset", "x", "--model", MOBILENET, "--name", "b"]
    assert main([*start, "--processes-per-node", "2", "--nodes", "100"]) == 1
    assert "resources.nodes" in capsys.readouterr().err
    assert main(["datasets", "import", str(tmp_path / "missing.zip"), "--name", "x"]) == 1
    assert capsys.readouterr().err.count("no such file") == 1  # the message, not again as a field line
    monkeypatch.delenv("TRAINYARD_GATEWAY_ADDRESS")
    assert main(["datasets", "list"]) == 2
    assert "TRAINYARD_GATEWAY_ADDRESS" in capsys.readouterr().err


def test_train_search_and_trials_table(env, capsys, tmp_path):
    archive = tmp_path / "search.zip"
    archive.write_bytes(make_classification_archive(classes=("circle", "square"), per_class=8, size=32, seed=5))
    ds_id = run_json(capsys, "datasets", "import", str(archive), "--name", "cli-search", "--val-fraction", "0.25")["id"]
    assert main(["models", "import", MOBILENET]) == 0
    capsys.readouterr()
    argv = ["train", "start", "--task-type", "classification", "--dataset", ds_id, "--model", MOBILENET]
    argv += ["--name", "cli-search", "--epochs", "1", "--batch-size", "8", "--image-size", "32"]
    argv += ["--search", "grid", "--param", "learning_rate=0.001,0.003", "--parallel", "2", "--watch"]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "trial 1 queued" in out and "search done (2 complete)" in out
    task = next(t for t in run_json(capsys, "train", "list") if t["name"] == "cli-search")
    assert task["search"]["method"] == "SEARCH_METHOD_GRID" and task["state"] == "TASK_STATE_SUCCEEDED"
    trials = run_json(capsys, "train", "trials", task["id"])
    assert [t["state"] for t in trials] == ["TRIAL_STATE_COMPLETE"] * 2
    assert [p["number"] for t in trials for p in t["parameters"]] == [0.001, 0.003]
    assert sum(bool(t.get("best")) for t in trials) == 1
    assert main(["train", "trials", task["id"]]) == 0
    table = capsys.readouterr().out
    assert "learning_rate" in table and "complete" in table and " *" in table
    assert main(["train", "show", task["id"]]) == 0 and "search: grid, 2 trials" in capsys.readouterr().out
    assert main(["train", "schema", "--model", MOBILENET]) == 0
    schema = run_json(capsys, "train", "schema", "--model", MOBILENET)
    specs = {p["name"]: p for p in schema["parameters"]}
    assert specs["learning_rate"]["searchable"] and specs["image_size"]["default_number"] == 224
    # a bad spec is refused with the field named
    bad = [a if a != "learning_rate=0.001,0.003" else "learning_rate=0.01:0.001" for a in argv[:-1]]
    assert main(bad) != 0
    assert "search.parameters[0].high" in capsys.readouterr().err


def test_walkthrough_rough_edges(env, capsys, monkeypatch, tmp_path):
    """What a new user tripped over: prompts on a closed stdin, cut ids, import options missing from the CLI."""
    # the interactive mode on a stdin with no answers fails naming the flag, not with an EOFError traceback
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    capsys.readouterr()
    assert main(["train", "start"]) == 2
    err = capsys.readouterr().err
    assert "no answer for 'task type'" in err and "--task-type" in err
    # ids stay whole in an 80-column table (they are what the next command needs)
    listing = ["models", "list", "--task-type", "classification", "--limit", "5"]
    ids = [m["id"] for m in run_json(capsys, *listing)]
    assert main(listing) == 0
    table = capsys.readouterr().out
    assert ids and all(i in table for i in ids), table
    # a bad case rejects the archive unless --accept-partial
    archive = tmp_path / "partial.zip"
    good = io.BytesIO(make_classification_archive(classes=("circle", "square"), per_class=6, size=32, seed=9))
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(archive, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("circle/broken.png", b"not a png")
    assert main(["datasets", "import", str(archive), "--name", "cli-partial"]) == 1
    assert "broken.png" in capsys.readouterr().err
    imported = run_json(capsys, "datasets", "import", str(archive), "--name", "cli-partial", "--accept-partial")
    assert imported["latest_version"]["case_count"] == 12
    # --task-type reaches the service: a classification archive has no boxes for detection
    assert main(["datasets", "import", str(archive), "--name", "cli-det", "--task-type", "detection"]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
    # started without --watch: says how to follow it
    assert main(["models", "import", MOBILENET]) == 0
    start = ["train", "start", "--task-type", "classification", "--dataset", imported["id"], "--model", MOBILENET]
    assert main([*start, "--name", "cli-follow", "--epochs", "1", "--image-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "trainyard train watch tt" in out
    task = next(t for t in run_json(capsys, "train", "list") if t["name"] == "cli-follow")
    assert main(["train", "cancel", task["id"]]) in (0, 1)


def test_an_import_refused_over_many_files_names_its_report_and_the_report_lists_them_all(env, capsys, tmp_path):
    from test_error_limits import _bad_masks_archive

    archive = tmp_path / "camvid.zip"
    archive.write_bytes(_bad_masks_archive(120))
    assert main(["datasets", "import", str(archive), "--name", "cli-camvid"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "INVALID_ARGUMENT" in err and "120 bad case(s)" in err and "and 95 more" in err
    import_id = err.split("every file and reason: trainyard datasets report ")[1].split()[0]
    report = run_json(capsys, "datasets", "report", import_id)
    assert report["import"]["state"] == "IMPORT_STATE_FAILED" and report["import"]["rejected_count"] == 120
    assert len(report["rejected_files"]) == 120
    assert all("has value(s) [11]" in r["reason"] for r in report["rejected_files"])
    assert main(["datasets", "report", import_id]) == 0
    assert "rejected files (120)" in capsys.readouterr().out


def test_import_takes_the_ignore_index_and_drop_duplicates(env, capsys, tmp_path):
    """A mask set whose void value is 11 imports from the CLI without a data.yaml in the archive (the option
    was in the API only), and duplicates within a split can be dropped."""
    from test_dataset_realworld import segnet_camvid_files, write_zip

    files = {
        "seg/classes.txt": "\n".join(f"c{i}" for i in range(11)),
        **{k.replace("CamVid/", "seg/").replace("annot/", "_masks/"): v for k, v in segnet_camvid_files().items()},
    }
    files["seg/train/0001TP_009.png"] = files["seg/train/0001TP_000.png"]  # an exact duplicate in train
    files["seg/train_masks/0001TP_009.png"] = files["seg/train_masks/0001TP_000.png"]
    archive = write_zip(tmp_path / "void11.zip", files)
    assert main(["datasets", "import", str(archive), "--name", "cli-void11"]) == 1
    assert "value(s) [11]" in " ".join(capsys.readouterr().err.split())
    imported = run_json(
        capsys, "datasets", "import", str(archive), "--name", "cli-void11", "--ignore-index", "11", "--drop-duplicates"
    )
    version = imported["latest_version"]
    assert version["ignore_index"] == 11 and version["case_count"] == 9 and len(version["classes"]) == 11
    assert any("dropped 1 exact duplicate" in w for w in version["import_warnings"])
