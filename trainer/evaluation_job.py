"""Evaluation on a trainer node: right after a training (trainer.job calls after_training, on the test split,
or val) and as a job of its own (an evaluation job: a TrainingJob with `evaluation` set, run by the worker
like a training job). Both store the same files under the job's prefix:

    <prefix>evaluation/report.json   summary + full confusion matrix          (artifact "evaluation.json")
    <prefix>evaluation/cases.json    per-case results and label errors        (artifact "evaluation_cases.json")
    <prefix>evaluation/masks/<case id>.png   segmentation: predicted class masks
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import torch

from kernel import contract
from trainer import data, evaluation, tasks
from trainer.errors import PermanentJobError
from trainer.job import Artifact, JobResult, NullReporter, Reporter, _put
from trainer.models import build_model
from trainer.storage import ObjectStore
from trainyard.events.v1 import events_pb2

REPORT, CASES = "evaluation/report.json", "evaluation/cases.json"
MASKS = "evaluation/masks/"


def store_results(
    store: ObjectStore,
    bucket: str,
    prefix: str,
    evaluated: evaluation.Evaluated,
    task: str,
    class_map: evaluation.ClassMap,
    images_bucket: str,
) -> list[Artifact]:
    """The report, the per-case document (masks first: the cases point at them)."""
    for case in evaluated.cases:
        png = evaluated.masks.get(case["id"])
        if png is not None:
            case["pred_mask_key"] = f"{prefix}{MASKS}{case['id']}.png"
            store.put_bytes(bucket, case["pred_mask_key"], png, "image/png")
    document = evaluated.cases_document(task, class_map, images_bucket, evaluated.summary.default_threshold)
    document["artifacts_bucket"] = bucket
    return [
        _put(
            store,
            bucket,
            prefix + REPORT,
            json.dumps(evaluated.report, indent=1).encode(),
            "evaluation.json",
            "application/json",
        ),
        _put(store, bucket, prefix + CASES, json.dumps(document).encode(), "evaluation_cases.json", "application/json"),
    ]


def _items(cache, store, images_bucket: str, cases: list[dict]):
    return data.fetch_items(cache, store, images_bucket, cases)


def after_training(
    *,
    model: torch.nn.Module,
    task: str,
    classes: list[str],
    manifest: dict,
    train_cases: list[dict],
    images_bucket: str,
    store: ObjectStore,
    cache: data.LocalCache,
    bucket: str,
    prefix: str,
    device: torch.device,
    image_size: int,
    mean: list[float],
    std: list[float],
    batch_size: int,
    ignore_index: int,
    reporter: Reporter,
    check_stop: Callable[[], None] | None = None,
    num_workers: int = 0,
) -> tuple[evaluation.Evaluated, list[Artifact]]:
    """Evaluate a model just trained on its version's test split (val when there is none)."""
    splits, note = evaluation.choose_splits(manifest)
    cases = [c for s in splits for c in data.task_cases(manifest, s, task, len(classes))]
    reporter.log(f"evaluating the trained model on the {note}: {len(cases)} case(s)")
    class_map = evaluation.ClassMap(classes, classes)
    items = _items(cache, store, images_bucket, cases)
    evaluated = evaluation.evaluate(
        model,
        task,
        class_map,
        cases,
        items,
        image_size=image_size,
        mean=mean,
        std=std,
        device=device,
        batch_size=batch_size,
        split=evaluation.SPLITS[splits[0]] if len(splits) == 1 else 0,
        split_note=note,
        in_sample={c["sha256"] for c in train_cases},
        ignore_index=ignore_index,
        num_workers=num_workers,
        progress=evaluation.Progress(check_stop=check_stop),
    )
    s = evaluated.summary
    reporter.log(
        f"evaluation on the {note}: {s.headline_metric} {s.headline_value:.4f}, {s.error_case_count} of "
        f"{s.case_count} case(s) wrong, {s.label_error_count} suspected label error(s), "
        f"default threshold {s.default_threshold:.2f}"
    )
    return evaluated, store_results(store, bucket, prefix, evaluated, task, class_map, images_bucket)


def run_evaluation_job(
    job: events_pb2.TrainingJob,
    *,
    store: ObjectStore,
    cache: data.LocalCache,
    device: torch.device,
    reporter: Reporter | None = None,
    check_stop: Callable[[], None] | None = None,
    on_resume: Callable[[int], None] | None = None,
    num_workers: int = -1,
    progress_interval_s: float = 1.0,
    **_ignored,
) -> JobResult:
    """Evaluate a stored model (job.model.weights: a trained model.pt or a catalog state dict, with its
    classes in weights_class_names) on the dataset version (job.dataset), classes matched by name."""
    reporter = reporter or NullReporter()
    task = contract.TASK_NAMES.get(job.task_type)
    if task is None:
        raise PermanentJobError(f"the job has an unknown task type {job.task_type}")
    if on_resume is not None:
        on_resume(0)
    spec, hp = job.model, job.hyperparameters
    classes, model_classes = list(job.dataset.class_names), list(spec.weights_class_names)
    class_map = evaluation.ClassMap(classes, model_classes)
    if not spec.weights.key or not spec.weights.sha256:
        raise PermanentJobError(f"model {spec.model_id} has no stored weights (with a sha256) to evaluate")
    ref = job.dataset.manifest
    manifest = data.load_manifest(store, ref.bucket, ref.key, ref.sha256)
    splits, note = evaluation.choose_splits(manifest, list(job.evaluation.splits))
    cases = [c for s in splits for c in data.task_cases(manifest, s, task, len(classes))]
    in_sample: set[str] = set()
    trained_on = job.evaluation.trained_on.manifest
    if trained_on.key:
        try:
            seen = data.load_manifest(store, trained_on.bucket, trained_on.key, trained_on.sha256)
            in_sample = {c["sha256"] for c in seen.get("cases", []) if c.get("split") == "train"}
        except PermanentJobError as exc:
            reporter.log(f"the model's training data cannot be read ({exc}); every case counts as out-of-sample")
    images_bucket = manifest.get("images_bucket") or ref.bucket
    reporter.log(f"fetching {len(cases)} image(s) of the {note}")
    items = _items(cache, store, images_bucket, cases)
    weights = cache.fetch(store, spec.weights.bucket, spec.weights.key, spec.weights.sha256, "weights")
    built = build_model(spec.library, spec.architecture, len(model_classes), None, task=task, image_size=hp.image_size)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    try:
        built.model.load_state_dict(state)
    except RuntimeError as exc:
        raise PermanentJobError(f"the weights of {spec.model_id} do not fit {spec.architecture}: {exc}") from exc
    mean, std = list(spec.mean), list(spec.std)
    if len(mean) != 3 or len(std) != 3:
        raise PermanentJobError(f"the evaluation job of {spec.model_id} carries no normalisation (model.mean/std)")
    workers = num_workers if num_workers >= 0 else (min(4, os.cpu_count() or 1) if device.type == "cuda" else 0)

    def step(step: int, steps: int, rate: float, eta: float) -> None:
        reporter.progress(1, 1, step, steps, rate, eta)

    reporter.log(f"evaluating {spec.model_id} on {len(cases)} case(s) of the {note}")
    evaluated = evaluation.evaluate(
        built.model,
        task,
        class_map,
        cases,
        items,
        image_size=tasks.input_size(hp.image_size, hp.image_width),
        mean=mean,
        std=std,
        device=device,
        batch_size=hp.batch_size or 16,
        split=evaluation.SPLITS[splits[0]] if len(splits) == 1 else 0,
        split_note=note,
        in_sample=in_sample,
        threshold=job.evaluation.threshold or None,
        ignore_index=int(manifest.get("ignore_index", 255)),
        num_workers=workers,
        progress=evaluation.Progress(step=step, check_stop=check_stop),
        progress_interval_s=progress_interval_s,
    )
    artifacts = store_results(store, job.output_bucket, job.output_prefix, evaluated, task, class_map, images_bucket)
    s = evaluated.summary
    reporter.log(
        f"{s.headline_metric} {s.headline_value:.4f}; {s.error_case_count} of {s.case_count} case(s) wrong; "
        f"{s.label_error_count} suspected label error(s)"
    )
    return JobResult(metrics=dict(s.metrics), artifacts=artifacts, evaluation=s)
