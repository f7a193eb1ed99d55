"""Evaluate a trained model on cases it did not train on: metrics (torchmetrics, pycocotools' COCOeval),
per-case results worst first, a confidence-threshold table with the F1-best threshold, and suspected
label errors by confident learning (cleanlab) over the model's out-of-sample predictions.

Used after every training (trainer.job, on the test split, or val) and by evaluation jobs (any model of
the project on any dataset version of its task type: trainer.evaluation_job). The model's classes and the
dataset's are matched by name (ClassMap): a dataset class the model does not know is refused before
anything runs; classes only the model knows are extra prediction columns, always wrong.

The results are three things: an EvaluationSummary proto (what the task and the Evaluation show), a
report dict (evaluation.json: the same with the full confusion matrix) and the per-case records
(evaluation_cases.json: ground truth, predictions, error kinds, label errors) that the training service
pages through and draws.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler

from kernel import onnxmeta
from trainer import tasks
from trainer.errors import PermanentJobError
from trainyard.common.v1 import common_pb2
from trainyard.training.v1 import evaluation_pb2

log = logging.getLogger(__name__)

SPLITS = {"train": common_pb2.SPLIT_TRAIN, "val": common_pb2.SPLIT_VAL, "test": common_pb2.SPLIT_TEST}
SPLIT_NAMES = {v: k for k, v in SPLITS.items()}
HEADLINE = {
    tasks.CLASSIFICATION: "top1",
    tasks.DETECTION: "map",
    tasks.SEGMENTATION: "miou",
    tasks.INSTANCE_SEGMENTATION: "mask_map",
}
THRESHOLDS = [round(0.05 * i, 2) for i in range(20)]  # 0.0 .. 0.95
MAX_MATRIX_CLASSES = 100  # a bigger confusion matrix stays in the report artifact only
MATCH_IOU = 0.5  # detection: a prediction finds an object at this IoU (COCO's AP50 matching)
LOW_IOU = 0.5  # segmentation: a case below this mean IoU is a LOW_IOU error
KIND = evaluation_pb2.CaseErrorKind
NO_OBJECT, NOT_FOUND = "(no object)", "(not found)"
# Detection label errors: a prediction is confident when it scores at least this quantile of its class's
# correct detections (the confident-learning idea: each class's own threshold from the model's scores).
CONFIDENT_QUANTILE = 0.1
TOUCH_IOU = 0.1  # a labelled object no prediction overlaps even this much went unseen by the model
# Segmentation label errors: cleanlab over probabilities pooled to SEG_PROB_SIDE x SEG_PROB_SIDE cells; a case
# is suspected when at least SEG_MIN_SHARE of its labelled cells are issues.
SEG_PROB_SIDE = 32
SEG_MIN_SHARE = 0.05


# -- what is evaluated ---------------------------------------------------------------------------


def choose_splits(manifest: dict, requested: Sequence[int] = ()) -> tuple[list[str], str]:
    """The split names to evaluate and the note that says which and why: the requested ones, else
    test, else val (the version has no test split), else train (said plainly: the model saw them)."""
    present = {c.get("split") for c in manifest.get("cases", [])}
    if requested:
        names = [SPLIT_NAMES[s] for s in requested if s in SPLIT_NAMES]
        missing = [n for n in names if n not in present]
        if missing:
            raise PermanentJobError(f"the dataset version has no {', '.join(missing)} split")
        return names, " and ".join(names) + (" split" if len(names) == 1 else " splits")
    if "test" in present:
        return ["test"], "test split"
    if "val" in present:
        return ["val"], "val split (the version has no test split)"
    return ["train"], "train split (the version has neither a test nor a val split; the model may have trained on it)"


@dataclass
class ClassMap:
    """The dataset's classes against the model's outputs, matched by name."""

    classes: list[str]  # the dataset's, in its order
    model_classes: list[str]  # the model's outputs, in order
    to_model: list[int] = field(init=False)  # dataset index -> model index
    columns: list[str] = field(init=False)  # dataset classes, then the model's extra classes
    column_of_model: list[int] = field(init=False)  # model index -> column

    def __post_init__(self) -> None:
        unknown = [c for c in self.classes if c not in self.model_classes]
        if unknown:
            raise PermanentJobError(
                f"the model does not know the dataset's class(es) {unknown}; it knows {self.model_classes}"
            )
        self.to_model = [self.model_classes.index(c) for c in self.classes]
        extra = [c for c in self.model_classes if c not in self.classes]
        self.columns = [*self.classes, *extra]
        self.column_of_model = [self.columns.index(c) for c in self.model_classes]

    @property
    def k(self) -> int:
        return len(self.classes)


@dataclass
class Evaluated:
    summary: evaluation_pb2.EvaluationSummary
    report: dict
    cases: list[dict]
    label_errors: list[dict]
    masks: dict[str, bytes] = field(default_factory=dict)  # segmentation: case id -> predicted mask PNG

    def cases_document(self, task: str, class_map: ClassMap, images_bucket: str, threshold: float) -> dict:
        return {
            "schema": "trainyard.evaluation.cases/v1",
            "task": task,
            "classes": class_map.classes,
            "model_classes": class_map.model_classes,
            "images_bucket": images_bucket,
            "threshold": threshold,
            "cases": self.cases,
            "label_errors": self.label_errors,
            "label_error_method": self.summary.label_error_method,
        }


class _Indexed(Dataset):
    """The wrapped dataset's items with their index, so results map back to cases."""

    def __init__(self, inner: Dataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        image, target = self.inner[i]
        return image, target, i


def _collate(batch):
    images, targets, index = zip(*batch, strict=True)
    if isinstance(images[0], torch.Tensor) and all(i.shape == images[0].shape for i in images):
        images = torch.stack(images)
    if isinstance(targets[0], torch.Tensor):
        targets = torch.stack(targets)
    elif isinstance(targets[0], int):
        targets = torch.tensor(targets)
    return images, list(targets) if isinstance(targets, tuple) else targets, list(index)


def eval_dataset(task: str, items: Sequence, image_size: int | tuple[int, int], mean, std) -> Dataset:
    """The evaluation transform of each task type (the same as the trainer's validation); image_size is
    (height, width) for a segmentation model trained at that shape (tasks.input_size)."""
    if task == tasks.CLASSIFICATION:
        return tasks.ClassificationDataset(
            items, tasks.classification_transform(image_size, mean, std, False), image_size
        )
    if task == tasks.SEGMENTATION:
        side = min(image_size) if isinstance(image_size, tuple) else image_size
        return tasks.SegmentationDataset(items, tasks.dense_transform(image_size, False, normalize=(mean, std)), side)
    return tasks.DetectionDataset(
        items,
        tasks.dense_transform(image_size, False, keep_aspect=True),
        task == tasks.INSTANCE_SEGMENTATION,
        image_size,
    )


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Progress:
    """Callbacks of an evaluation run; every one optional."""

    step: Callable[[int, int, float, float], None] | None = None  # step, steps, images/s, eta
    check_stop: Callable[[], None] | None = None


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    task: str,
    dataset: Dataset,
    device: torch.device,
    batch_size: int,
    num_workers: int = 0,
    progress: Progress | None = None,
    progress_interval_s: float = 1.0,
) -> tuple[list, list]:
    """The model's outputs for every item, in item order: (outputs, targets). Classification: softmax
    probabilities [M]; segmentation: (the model's class per pixel [S,S], probabilities pooled [M,s,s]);
    detectors: their output dict on the CPU."""
    progress = progress or Progress()
    model.eval().to(device)
    loader = DataLoader(
        _Indexed(dataset),
        batch_size=max(1, batch_size),
        sampler=SequentialSampler(dataset),
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    outputs: list = [None] * len(dataset)
    targets: list = [None] * len(dataset)
    steps, started, last = len(loader), time.monotonic(), 0.0
    seen = 0
    for step, (images, target, index) in enumerate(loader, start=1):
        if progress.check_stop is not None:
            progress.check_stop()
        with tasks._autocast(device):
            if task in (tasks.DETECTION, tasks.INSTANCE_SEGMENTATION):
                out = model([i.to(device, non_blocking=True) for i in images])
                out = [{k: v.float().cpu() if v.is_floating_point() else v.cpu() for k, v in o.items()} for o in out]
            else:
                logits = model(images.to(device, non_blocking=True))
                logits = (logits["out"] if isinstance(logits, dict) else logits).float()
                if task == tasks.SEGMENTATION and logits.shape[-2:] != target.shape[-2:]:
                    logits = torch.nn.functional.interpolate(
                        logits, size=target.shape[-2:], mode="bilinear", align_corners=False
                    )
                if task == tasks.SEGMENTATION:
                    # the class per pixel, and the probabilities pooled to a small grid for the label-error
                    # search (full-size softmaxes of a whole split would not fit in memory)
                    side = SEG_PROB_SIDE if logits.shape[1] <= 50 else SEG_PROB_SIDE // 2
                    small = torch.nn.functional.adaptive_avg_pool2d(torch.softmax(logits, 1), side)
                    out = list(zip(logits.argmax(1).to(torch.int16).cpu(), small.to(torch.float16).cpu(), strict=True))
                else:
                    out = list(torch.softmax(logits, 1).cpu())
        for i, o, t in zip(index, out, target, strict=True):
            outputs[i], targets[i] = o, t
        seen += len(index)
        now = time.monotonic()
        if progress.step is not None and (now - last >= progress_interval_s or step == steps):
            rate = seen / max(now - started, 1e-6)
            progress.step(step, steps, rate, (len(dataset) - seen) / max(rate, 1e-6))
            last = now
    return outputs, targets


def evaluate(
    model: torch.nn.Module,
    task: str,
    class_map: ClassMap,
    cases: Sequence[dict],
    items: Sequence,
    *,
    image_size: int | tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device,
    batch_size: int,
    split: int,
    split_note: str,
    in_sample: set[str] = frozenset(),
    threshold: float | None = None,
    ignore_index: int = 255,
    num_workers: int = 0,
    progress: Progress | None = None,
    progress_interval_s: float = 1.0,
) -> Evaluated:
    """Run the model over the cases (item i is case i) and judge it; `in_sample` holds the sha256 of the
    images it trained on (left out of the label-error search); `threshold` None picks the F1-best one."""
    if not cases:
        raise PermanentJobError(f"there are no cases to evaluate in the {split_note}")
    dataset = eval_dataset(task, items, image_size, mean, std)
    outputs, targets = predict(model, task, dataset, device, batch_size, num_workers, progress, progress_interval_s)
    judge = {
        tasks.CLASSIFICATION: _classification,
        tasks.SEGMENTATION: _segmentation,
        tasks.DETECTION: _detection,
        tasks.INSTANCE_SEGMENTATION: _detection,
    }[task]
    evaluated = judge(
        task=task,
        class_map=class_map,
        cases=list(cases),
        outputs=outputs,
        targets=targets,
        image_size=image_size,
        in_sample=in_sample,
        threshold=threshold,
        ignore_index=ignore_index,
    )
    s = evaluated.summary
    s.split, s.split_note, s.case_count = split, split_note, len(cases)
    s.headline_metric = HEADLINE[task]
    s.headline_value = s.metrics[s.headline_metric]
    s.error_case_count = sum(1 for c in evaluated.cases if c["kinds"] != ["CORRECT"])
    s.label_error_count = len({e["case_id"] for e in evaluated.label_errors})
    s.in_sample_case_count = sum(1 for c in cases if c.get("sha256") in in_sample)
    evaluated.cases.sort(key=lambda c: -c["error_score"])  # worst first
    evaluated.label_errors.sort(key=lambda e: -e["score"])
    evaluated.report = summary_report(s, evaluated.report)
    return evaluated


def summary_report(summary: evaluation_pb2.EvaluationSummary, extra: dict) -> dict:
    from google.protobuf.json_format import MessageToDict

    return {**MessageToDict(summary, preserving_proto_field_name=True), **extra}


def _set_matrix(summary, rows: list[str], columns: list[str], counts: np.ndarray, unit: str) -> dict:
    matrix = {"row_labels": rows, "column_labels": columns, "counts": counts.astype(int).tolist(), "unit": unit}
    if len(columns) <= MAX_MATRIX_CLASSES + 2:
        summary.confusion_matrix.CopyFrom(
            evaluation_pb2.ConfusionMatrix(
                row_labels=rows, column_labels=columns, counts=counts.astype(int).reshape(-1).tolist(), unit=unit
            )
        )
    return matrix


def _best(rows: list[dict]) -> float:
    """The F1-best threshold (the lowest one among ties: it keeps the most predictions)."""
    best = max(rows, key=lambda r: (round(r["f1"], 6), -r["threshold"]))
    return best["threshold"]


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _base_case(case: dict) -> dict:
    split = case.get("split", "")
    return {
        "id": case["id"],
        "source_path": case.get("source_path", ""),
        "split": split,
        "image_key": case["image_key"],
        "width": case.get("width", 0),
        "height": case.get("height", 0),
    }


# -- classification ------------------------------------------------------------------------------


def _classification(*, class_map: ClassMap, cases, outputs, targets, in_sample, threshold, **_) -> Evaluated:
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    k, columns = class_map.k, class_map.columns
    probs_model = torch.stack(outputs)  # [N, M] over the model's outputs
    probs = probs_model[:, torch.tensor(class_map.column_of_model).argsort()]  # [N, columns]
    labels = torch.tensor([int(c["label"]) for c in cases])
    n_cols = len(columns)
    preds = probs.argmax(1)
    metrics = {
        "top1": float(multiclass_accuracy(preds, labels, num_classes=n_cols, average="micro")),
    }
    if n_cols >= 5:
        metrics["top5"] = float(multiclass_accuracy(probs, labels, num_classes=n_cols, top_k=5, average="micro"))
    precision = multiclass_precision(preds, labels, num_classes=n_cols, average=None)[:k].tolist()
    recall = multiclass_recall(preds, labels, num_classes=n_cols, average=None)[:k].tolist()
    f1 = multiclass_f1_score(preds, labels, num_classes=n_cols, average=None)[:k].tolist()
    metrics["f1_macro"] = float(np.mean(f1))
    matrix = multiclass_confusion_matrix(preds, labels, num_classes=n_cols)[:k].numpy()
    summary = evaluation_pb2.EvaluationSummary(metrics=metrics)
    support = np.bincount(labels.numpy(), minlength=k)
    for i, name in enumerate(class_map.classes):
        summary.classes.add(name=name, support=int(support[i]), precision=precision[i], recall=recall[i], f1=f1[i])
    report = {"confusion_matrix": _set_matrix(summary, class_map.classes, columns, matrix, "cases")}

    # Threshold table: an answer below the threshold is withheld (precision over answers, recall over all).
    top, correct = probs.max(1).values.numpy(), (preds == labels).numpy()
    rows = []
    for t in THRESHOLDS:
        kept = top >= t
        tp = float((correct & kept).sum())
        p, r, f = _prf(tp, float(kept.sum()) - tp, float(len(cases)) - tp)
        rows.append({"threshold": t, "precision": p, "recall": r, "f1": f})
    default = _best(rows) if threshold is None else float(threshold)
    summary.thresholds.extend(evaluation_pb2.ThresholdRow(**r) for r in rows)
    summary.default_threshold = default
    at_default = [r for r in rows if r["threshold"] >= default - 1e-9] or rows[-1:]
    metrics["precision"], metrics["recall"], metrics["f1"] = (
        at_default[0]["precision"],
        at_default[0]["recall"],
        at_default[0]["f1"],
    )
    summary.metrics.update(metrics)

    records = []
    for i, case in enumerate(cases):
        true, pred = int(labels[i]), int(preds[i])
        order = probs[i].argsort(descending=True)[:3].tolist()
        record = _base_case(case) | {
            "label": true,
            "true_classes": [columns[true]],
            "predictions": [
                {
                    "class_name": columns[j],
                    "class_index": class_map.model_classes.index(columns[j]),
                    "score": float(probs[i, j]),
                }
                for j in order
            ],
            "error_score": 1.0 - float(probs[i, true]),
        }
        if pred == true:
            record |= {
                "kinds": ["CORRECT"],
                "predicted_classes": [],
                "summary": f"{columns[true]} ({probs[i, true]:.2f})",
            }
        else:
            record |= {
                "kinds": ["MISCLASSIFIED"],
                "predicted_classes": [columns[pred]],
                "summary": f"{columns[true]} predicted as {columns[pred]} ({probs[i, pred]:.2f}; "
                f"{columns[true]} {probs[i, true]:.2f})",
            }
        records.append(record)

    label_errors, method = _classification_label_errors(
        cases, labels.numpy(), probs[:, :k].numpy(), class_map, in_sample
    )
    summary.label_error_method = method
    return Evaluated(summary, report, records, label_errors)


def _classification_label_errors(cases, labels: np.ndarray, probs: np.ndarray, class_map: ClassMap, in_sample):
    """Confident learning (cleanlab.filter.find_label_issues: the confident joint, pruned by noise rate)
    over the out-of-sample cases; the score is 1 - the label's self-confidence."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    keep = np.array([c.get("sha256") not in in_sample for c in cases])
    left_out = int((~keep).sum())
    note = f"; {left_out} case(s) the model trained on were left out" if left_out else ""
    idx = np.flatnonzero(keep)
    present = np.unique(labels[idx]) if len(idx) else np.array([])
    if len(idx) < 2 * max(2, len(present)) or len(present) < 2:
        return [], f"not searched: too few out-of-sample cases ({len(idx)}) or classes ({len(present)}){note}"
    sub_probs = probs[idx] / np.clip(probs[idx].sum(1, keepdims=True), 1e-12, None)
    # cleanlab wants every class of pred_probs among the labels: keep the classes that occur
    cols = present
    remap = {int(c): i for i, c in enumerate(cols)}
    sub_labels = np.array([remap[int(v)] for v in labels[idx]])
    sub_probs = sub_probs[:, cols]
    sub_probs = sub_probs / np.clip(sub_probs.sum(1, keepdims=True), 1e-12, None)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        issues = find_label_issues(sub_labels, sub_probs, filter_by="prune_by_noise_rate", n_jobs=1)
        quality = get_label_quality_scores(sub_labels, sub_probs, method="self_confidence")
    out = []
    for j in np.flatnonzero(issues):
        i = int(idx[j])
        given = int(labels[i])
        suggested = int(cols[int(sub_probs[j].argmax())])
        out.append(
            {
                "case_id": cases[i]["id"],
                "source_path": cases[i].get("source_path", ""),
                "kind": "wrong_label",
                "given_label": class_map.classes[given],
                "suggested_label": class_map.classes[suggested],
                "score": float(1.0 - quality[j]),
                "evidence": f"the model gives the label {class_map.classes[given]!r} p={probs[i, given]:.3f} "
                f"and {class_map.classes[suggested]!r} p={probs[i, suggested]:.3f}",
                "box": [],
            }
        )
    method = (
        f"confident learning (cleanlab find_label_issues, prune_by_noise_rate) over {len(idx)} out-of-sample "
        f"case(s){note}"
    )
    return out, method


# -- semantic segmentation -------------------------------------------------------------------------


def _segmentation(*, class_map: ClassMap, cases, outputs, targets, ignore_index, in_sample, **_) -> Evaluated:
    from PIL import Image
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    k, columns = class_map.k, class_map.columns
    n_cols = len(columns)
    col_of_model = torch.tensor(class_map.column_of_model)
    total = torch.zeros((n_cols, n_cols), dtype=torch.int64)
    records, masks = [], {}
    for case, (classes, _small), mask in zip(cases, outputs, targets, strict=True):
        pred = col_of_model[classes.long()]  # [S,S] in columns
        mask = mask.clone()
        mask[(mask >= k) | (mask < 0)] = ignore_index
        cm = multiclass_confusion_matrix(
            pred.reshape(-1), mask.reshape(-1), num_classes=n_cols, ignore_index=ignore_index
        )
        total += cm
        inter = cm.diag().double()
        union = cm.sum(0).double() + cm.sum(1).double() - inter
        present = union > 0
        iou = float((inter[present] / union[present]).mean()) if present.any() else 1.0
        true_classes = [columns[i] for i in range(k) if cm[i].sum() > 0]
        wrong = [
            columns[j] for j in range(n_cols) if cm[:, j].sum() > 0 and (j >= k or cm[j, j] == 0 or cm[j].sum() == 0)
        ]
        png = io.BytesIO()
        Image.fromarray(pred.numpy().astype(np.uint8)).save(png, "PNG")
        masks[case["id"]] = png.getvalue()
        low = iou < LOW_IOU
        records.append(
            _base_case(case)
            | {
                "mask_key": case.get("mask_key", ""),
                "true_classes": true_classes,
                "predictions": [
                    {"class_name": columns[j], "class_index": j, "score": float(cm[:, j].sum()) / max(1, int(cm.sum()))}
                    for j in range(n_cols)
                    if cm[:, j].sum() > 0
                ],
                "predicted_classes": wrong,
                "iou": iou,
                "kinds": ["LOW_IOU"] if low else ["CORRECT"],
                "error_score": 1.0 - iou,
                "summary": f"mean IoU {iou:.2f}" + (f"; predicted {', '.join(wrong)} where absent" if wrong else ""),
            }
        )
    inter = total.diag().double()
    union = total.sum(0).double() + total.sum(1).double() - inter
    summary = evaluation_pb2.EvaluationSummary()
    ious = []
    for i, name in enumerate(class_map.classes):
        tp, fp, fn = float(total[i, i]), float(total[:, i].sum() - total[i, i]), float(total[i].sum() - total[i, i])
        p, r, f = _prf(tp, fp, fn)
        entry = summary.classes.add(name=name, support=int(total[i].sum()), precision=p, recall=r, f1=f)
        if union[i] > 0:
            entry.iou = float(inter[i] / union[i])
            ious.append(entry.iou)
    labelled = float(total[:k].sum())
    summary.metrics.update(
        {"miou": float(np.mean(ious)) if ious else 0.0, "pixel_acc": float(total[:k].diag().sum()) / max(labelled, 1.0)}
    )
    report = {"confusion_matrix": _set_matrix(summary, class_map.classes, columns, total[:k].numpy(), "pixels")}
    label_errors, method = _segmentation_label_errors(cases, outputs, targets, class_map, in_sample, ignore_index)
    summary.label_error_method = method
    return Evaluated(summary, report, records, label_errors, masks)


def _segmentation_label_errors(cases, outputs, targets, class_map: ClassMap, in_sample, ignore_index: int):
    """Confident learning per pixel (cleanlab.segmentation: find_label_issues and get_label_quality_scores)
    over the out-of-sample cases, at the pooled resolution; a case is suspected when SEG_MIN_SHARE of its
    labelled cells are issues. The evidence names the commonest given -> predicted pair among them."""
    from cleanlab.segmentation.filter import find_label_issues
    from cleanlab.segmentation.rank import get_label_quality_scores

    k = class_map.k
    idx = [i for i, c in enumerate(cases) if c.get("sha256") not in in_sample]
    left_out = len(cases) - len(idx)
    note = f"; {left_out} case(s) the model trained on were left out" if left_out else ""
    if len(idx) < 2:
        return [], f"not searched: too few out-of-sample cases ({len(idx)}){note}"
    model_of_column = torch.tensor(class_map.column_of_model).argsort()
    probs = torch.stack([outputs[i][1].float()[model_of_column[:k]] for i in idx])  # [N,K,s,s], dataset classes
    probs = probs / probs.sum(1, keepdim=True).clamp_min(1e-12)
    side = probs.shape[-1]
    masks = torch.stack([targets[i] for i in idx]).float()[:, None]
    labels = torch.nn.functional.interpolate(masks, size=(side, side), mode="nearest")[:, 0].long()
    ignored = (labels < 0) | (labels >= k) | (labels == ignore_index)
    predicted = probs.argmax(1)
    labels = torch.where(ignored, predicted, labels)  # unlabelled cells: never an issue
    present = sorted(set(labels.unique().tolist()) | set(predicted.unique().tolist()))
    if len(present) < 2:
        return [], f"not searched: fewer than 2 classes in the out-of-sample cases{note}"
    remap = torch.full((k,), -1, dtype=torch.long)
    remap[present] = torch.arange(len(present))
    lab = remap[labels].numpy()
    pp = probs[:, present]
    pp = (pp / pp.sum(1, keepdim=True).clamp_min(1e-12)).numpy()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        issues = find_label_issues(lab, pp, n_jobs=1, verbose=False)
        scores, _ = get_label_quality_scores(lab, pp, n_jobs=1, verbose=False)
    issues &= ~ignored.numpy()
    out = []
    for n, i in enumerate(idx):
        labelled = int((~ignored[n]).sum())
        hits = int(issues[n].sum())
        if not labelled or hits / labelled < SEG_MIN_SHARE:
            continue
        given = labels[n][torch.from_numpy(issues[n])]
        said = predicted[n][torch.from_numpy(issues[n])]
        pairs = torch.stack([given, said], 1).unique(dim=0, return_counts=True)
        (g, p), count = pairs[0][pairs[1].argmax()].tolist(), int(pairs[1].max())
        case = cases[i]
        out.append(
            {
                "case_id": case["id"],
                "source_path": case.get("source_path", ""),
                "kind": "wrong_mask_region",
                "given_label": class_map.classes[g],
                "suggested_label": class_map.classes[p],
                "score": float(1.0 - scores[n]),
                "evidence": f"{hits / labelled:.0%} of its labelled area the model confidently sees otherwise, mostly "
                f"{class_map.classes[p]!r} where the mask says {class_map.classes[g]!r} ({count} of {hits} cells)",
                "box": [],
            }
        )
    method = (
        f"confident learning per pixel (cleanlab.segmentation, probabilities pooled to {side}x{side}) over "
        f"{len(idx)} out-of-sample case(s); a case is suspected from {SEG_MIN_SHARE:.0%} of its labelled area{note}"
    )
    return out, method


# -- detection and instance segmentation ------------------------------------------------------------


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode()}


def _coco_eval(gt: dict, dt: list[dict], iou_type: str):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dt) if dt else COCO()
        if not dt:
            coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _ap_per_class(ev, k: int) -> list[float | None]:
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    out = []
    for c in range(k):
        p = precision[:, :, c, 0, -1]
        p = p[p > -1]
        out.append(float(p.mean()) if p.size else None)
    return out


def _to_case(case: dict, image_size: int) -> tuple[float, float]:
    """Factors from the detector's input frame (the shorter side at image_size, tasks.dense_transform's
    keep_aspect) back to the case's own pixels."""
    width, height = case.get("width") or image_size, case.get("height") or image_size
    w, h = onnxmeta.resized(width, height, image_size, onnxmeta.SHORTER_SIDE)
    return width / w, height / h


def _detection(
    *, task, class_map: ClassMap, cases, outputs, targets, image_size, in_sample, threshold, **_
) -> Evaluated:
    from torchvision.ops import box_iou

    masks = task == tasks.INSTANCE_SEGMENTATION
    k, columns = class_map.k, class_map.columns
    cats = [{"id": j + 1, "name": name} for j, name in enumerate(columns)]
    images, gt_anns, dts = [], [], []
    col_of_model = class_map.column_of_model
    preds: list[dict] = []
    for i, (out, target) in enumerate(zip(outputs, targets, strict=True)):
        images.append({"id": i + 1, "width": image_size, "height": image_size})
        for j, (box, label) in enumerate(zip(target["boxes"].tolist(), target["labels"].tolist(), strict=True)):
            x0, y0, x1, y1 = box
            ann = {
                "id": len(gt_anns) + 1,
                "image_id": i + 1,
                "category_id": int(label),  # dataset index + 1
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": max(0.0, (x1 - x0) * (y1 - y0)),
                "iscrowd": 0,
                "_index": j,
            }
            if masks:
                ann["segmentation"] = _rle(target["masks"][j].numpy())
                ann["area"] = float(target["masks"][j].sum())
            gt_anns.append(ann)
        labels = [col_of_model[int(v) - 1] for v in out["labels"].tolist()]
        pred = {"boxes": out["boxes"].tolist(), "cols": labels, "scores": out["scores"].tolist(), "dt_ids": []}
        for j, (box, col, score) in enumerate(zip(pred["boxes"], labels, pred["scores"], strict=True)):
            x0, y0, x1, y1 = box
            dt = {"image_id": i + 1, "category_id": col + 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score}
            if masks:
                dt["segmentation"] = _rle((out["masks"][j, 0] > 0.5).numpy())
            dts.append(dt)
            pred["dt_ids"].append(len(dts))  # loadRes numbers annotations from 1 in order
        preds.append(pred)
    gt = {"images": images, "annotations": gt_anns, "categories": cats}
    ev = _coco_eval(gt, dts, "bbox")
    metrics = {
        "map": max(0.0, float(ev.stats[0])),
        "map_50": max(0.0, float(ev.stats[1])),
        "map_75": max(0.0, float(ev.stats[2])),
        "mar_100": max(0.0, float(ev.stats[8])),
    }
    ap = _ap_per_class(ev, k)
    mask_ap: list[float | None] = [None] * k
    if masks:
        ev_segm = _coco_eval(gt, dts, "segm")
        metrics |= {
            "mask_map": max(0.0, float(ev_segm.stats[0])),
            "mask_map_50": max(0.0, float(ev_segm.stats[1])),
            "mask_map_75": max(0.0, float(ev_segm.stats[2])),
        }
        mask_ap = _ap_per_class(ev_segm, k)

    # Matches at IoU 0.5 from COCOeval (per image and class, greedy by score): dt id -> matched gt id.
    matched_dt: dict[int, int] = {}
    gt_ignored: set[int] = set()
    t50 = int(np.argmin(np.abs(ev.params.iouThrs - MATCH_IOU)))
    for e in ev.evalImgs:
        if e is None or e["aRng"] != ev.params.areaRng[0]:
            continue
        for d, m in zip(e["dtIds"], e["dtMatches"][t50], strict=True):
            if m > 0:
                matched_dt[int(d)] = int(m)
        gt_ignored.update(int(g) for g, ig in zip(e["gtIds"], e["gtIgnore"], strict=True) if ig)
    scores = np.array([d["score"] for d in dts]) if dts else np.zeros(0)
    dt_cat = np.array([d["category_id"] - 1 for d in dts], dtype=int) if dts else np.zeros(0, int)
    is_tp = np.array([j + 1 in matched_dt for j in range(len(dts))], dtype=bool)
    n_gt = len([a for a in gt_anns if a["id"] not in gt_ignored])
    gt_cat = np.array([a["category_id"] - 1 for a in gt_anns], dtype=int)
    rows = []
    for t in THRESHOLDS:
        kept = scores >= t
        tp = float((is_tp & kept).sum())
        p, r, f = _prf(tp, float(kept.sum()) - tp, n_gt - tp)
        rows.append({"threshold": t, "precision": p, "recall": r, "f1": f})
    default = _best(rows) if threshold is None else float(threshold)
    kept = scores >= default
    summary = evaluation_pb2.EvaluationSummary(metrics=metrics)
    for c, name in enumerate(class_map.classes):
        tp = float((is_tp & kept & (dt_cat == c)).sum())
        fp = float((~is_tp & kept & (dt_cat == c)).sum())
        support = int((gt_cat == c).sum())
        p, r, f = _prf(tp, fp, support - tp)
        entry = summary.classes.add(name=name, support=support, precision=p, recall=r, f1=f)
        if ap[c] is not None:
            entry.ap = ap[c]
        if mask_ap[c] is not None:
            entry.mask_ap = mask_ap[c]
    tp_all = float((is_tp & kept).sum())
    metrics["precision"], metrics["recall"], metrics["f1"] = _prf(tp_all, float(kept.sum()) - tp_all, n_gt - tp_all)
    summary.metrics.update(metrics)
    summary.thresholds.extend(evaluation_pb2.ThresholdRow(**r) for r in rows)
    summary.default_threshold = default

    # Each class's confidence threshold for label errors: the score most of its correct detections reach.
    confident = []
    for c in range(len(columns)):
        tp_scores = scores[is_tp & (dt_cat == c)]
        q = float(np.quantile(tp_scores, CONFIDENT_QUANTILE)) if tp_scores.size else 1.0
        confident.append(max(q, default))
    recall_of = {c.name: c.recall for c in summary.classes}
    label_errors: list[dict] = []

    # Per case at the default threshold: matched, misclassified (an unmatched prediction on an unmatched
    # object of another class), false positives and missed objects; the confusion matrix counts them.
    matrix = np.zeros((k + 1, len(columns) + 1), dtype=np.int64)
    by_image: dict[int, list[dict]] = {}
    for a in gt_anns:
        by_image.setdefault(a["image_id"], []).append(a)
    records = []
    for i, (case, pred) in enumerate(zip(cases, preds, strict=True)):
        anns = by_image.get(i + 1, [])
        keep = [j for j, s in enumerate(pred["scores"]) if s >= default]
        matched_gt = {matched_dt[pred["dt_ids"][j]] for j in keep if pred["dt_ids"][j] in matched_dt}
        hits = [j for j in keep if pred["dt_ids"][j] in matched_dt]
        for j in hits:
            matrix[pred["cols"][j], pred["cols"][j]] += 1
        free_dt = [j for j in keep if pred["dt_ids"][j] not in matched_dt]
        free_gt = [a for a in anns if a["id"] not in matched_gt and a["id"] not in gt_ignored]
        swapped: list[tuple[int, dict]] = []
        if free_dt and free_gt:
            ious = box_iou(
                torch.tensor([pred["boxes"][j] for j in free_dt]),
                torch.tensor(
                    [
                        [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                        for a in free_gt
                    ]
                ),
            )
            used: set[int] = set()
            for r in sorted(range(len(free_dt)), key=lambda r: -pred["scores"][free_dt[r]]):
                col = int(ious[r].argmax())
                if ious[r, col] >= MATCH_IOU and col not in used:
                    used.add(col)
                    swapped.append((free_dt[r], free_gt[col]))
            taken = {j for j, _ in swapped}
            free_dt = [j for j in free_dt if j not in taken]
            free_gt = [a for a in free_gt if all(a is not g for _, g in swapped)]
        sx_, sy_ = _to_case(case, image_size)
        for j, a in swapped:
            matrix[a["category_id"] - 1, pred["cols"][j]] += 1
        for a in free_gt:
            matrix[a["category_id"] - 1, len(columns)] += 1
        for j in free_dt:
            matrix[k, pred["cols"][j]] += 1
        if case.get("sha256") not in in_sample:
            label_errors += _detection_label_errors(
                case, pred, anns, swapped, free_dt, free_gt, columns, confident, recall_of, (sx_, sy_)
            )
        kinds = []
        if swapped:
            kinds.append("MISCLASSIFIED")
        if free_dt:
            kinds.append("FALSE_POSITIVE")
        if free_gt:
            kinds.append("MISSED_OBJECT")
        n_objects = len([a for a in anns if a["id"] not in gt_ignored])
        wrong = len(swapped) + len(free_dt) + len(free_gt)
        sx, sy = _to_case(case, image_size)
        parts = [f"{len(hits)} of {n_objects} object(s) found"]
        if swapped:
            parts.append(
                "; ".join(
                    f"{columns[a['category_id'] - 1]} predicted as {columns[pred['cols'][j]]}" for j, a in swapped
                )
            )
        if free_dt:
            parts.append(
                f"{len(free_dt)} false positive(s): "
                + ", ".join(f"{columns[pred['cols'][j]]} {pred['scores'][j]:.2f}" for j in free_dt[:5])
            )
        if free_gt:
            parts.append(f"{len(free_gt)} missed: " + ", ".join(columns[a["category_id"] - 1] for a in free_gt[:5]))
        records.append(
            _base_case(case)
            | {
                "boxes": case.get("boxes", []),
                "true_classes": sorted({columns[a["category_id"] - 1] for a in anns}),
                "predictions": [
                    {
                        "class_name": columns[pred["cols"][j]],
                        "class_index": class_map.model_classes.index(columns[pred["cols"][j]]),
                        "score": pred["scores"][j],
                        "box": [b * s for b, s in zip(pred["boxes"][j], (sx, sy, sx, sy), strict=True)],
                        **({"rle": dts[pred["dt_ids"][j] - 1]["segmentation"]} if masks else {}),
                    }
                    for j in keep[:100]
                ],
                "predicted_classes": sorted(
                    {columns[pred["cols"][j]] for j, _ in swapped} | {columns[pred["cols"][j]] for j in free_dt}
                ),
                "kinds": kinds or ["CORRECT"],
                "error_score": wrong / max(1, n_objects + len(free_dt)),
                "summary": "; ".join(parts),
            }
        )
    report = {
        "confusion_matrix": _set_matrix(
            summary, [*class_map.classes, NO_OBJECT], [*columns, NOT_FOUND], matrix, "objects"
        )
    }
    left_out = sum(1 for c in cases if c.get("sha256") in in_sample)
    summary.label_error_method = (
        "confident unmatched predictions (a box no label covers: missing_box; a labelled box the model sees as "
        "another class: wrong_box_class) and confidently missed objects (a labelled box no prediction touches, "
        "of a class the model usually finds: spurious_box); confident = at least each class's "
        f"{CONFIDENT_QUANTILE:.0%} quantile of its correct detections' scores and the default threshold"
        + (f"; {left_out} image(s) the model trained on were left out" if left_out else "")
    )
    return Evaluated(summary, report, records, label_errors)


def _xyxy(ann: dict) -> list[float]:
    x, y, w, h = ann["bbox"]
    return [x, y, x + w, y + h]


def _detection_label_errors(case, pred, anns, swapped, free_dt, free_gt, columns, confident, recall_of, scale):
    """One image's suspected label errors from its matching at IoU 0.5 (boxes back in the image's pixels)."""
    from torchvision.ops import box_iou

    sx, sy = scale
    out = []

    def entry(kind, given, suggested, score, box, evidence):
        out.append(
            {
                "case_id": case["id"],
                "source_path": case.get("source_path", ""),
                "kind": kind,
                "given_label": given,
                "suggested_label": suggested,
                "score": float(min(1.0, max(0.0, score))),
                "evidence": evidence,
                "box": [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy],
            }
        )

    gt_boxes = torch.tensor([_xyxy(a) for a in anns], dtype=torch.float32).reshape(-1, 4)
    for j, a in swapped:
        c, score = pred["cols"][j], pred["scores"][j]
        if score >= confident[c]:
            given = columns[a["category_id"] - 1]
            entry("wrong_box_class", given, columns[c], score, pred["boxes"][j],
                  f"the model sees a {columns[c]!r} (score {score:.2f}) on this box labelled {given!r}")  # fmt: skip
    for j in free_dt:
        c, score = pred["cols"][j], pred["scores"][j]
        if score < confident[c]:
            continue
        if len(gt_boxes) and float(box_iou(torch.tensor([pred["boxes"][j]]), gt_boxes).max()) >= MATCH_IOU:
            continue  # a second box on a labelled object: the model's error, not the label's
        entry("missing_box", "", columns[c], score, pred["boxes"][j],
              f"the model finds a {columns[c]!r} (score {score:.2f}) that no label covers")  # fmt: skip
    all_boxes = torch.tensor(pred["boxes"], dtype=torch.float32).reshape(-1, 4)
    for a in free_gt:
        given = columns[a["category_id"] - 1]
        touch = box_iou(torch.tensor([_xyxy(a)]), all_boxes)[0] if len(all_boxes) else torch.zeros(0)
        seen = max((pred["scores"][k] for k in range(len(touch)) if touch[k] >= TOUCH_IOU), default=0.0)
        score = recall_of.get(given, 0.0) * (1.0 - seen)
        if score >= 0.5:
            entry("spurious_box", given, "", score, _xyxy(a),
                  f"the model finds {recall_of.get(given, 0.0):.0%} of the {given!r} objects but nothing here "
                  f"(best overlapping score {seen:.2f})")  # fmt: skip
    return out
