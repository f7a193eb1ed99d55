"""Run one TrainingJob end to end (synchronously, in a worker thread): data, weights, model,
resume, epochs with checkpoints, final artifacts. Talks only to the object store; reports
through a Reporter and stops when its stop check raises."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from google.protobuf.json_format import MessageToDict
from torch.utils.data import DataLoader, Dataset, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from kernel import contract, onnxmeta
from kernel.onnxmeta import OnnxMetadata
from trainer import artifacts as art
from trainer import data, distributed, engine, tasks
from trainer.errors import PermanentJobError, is_out_of_memory, out_of_memory_reason
from trainer.models import FROM_SCRATCH, LINEAR_PROBE, PROBE_THEN_FINE_TUNE, BuiltModel, build_model
from trainer.storage import ObjectStore
from trainyard.common.v1 import common_pb2 as C
from trainyard.events.v1 import events_pb2

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/last.pt"
BEST_CHECKPOINT = "checkpoints/best.pt"
CLASS_WEIGHTING_INVERSE, CLASS_WEIGHTING_SQRT = (
    C.CLASS_WEIGHTING_INVERSE_FREQUENCY,
    C.CLASS_WEIGHTING_SQRT_INVERSE_FREQUENCY,
)


class Reporter(Protocol):
    def progress(self, epoch: int, total_epochs: int, step: int, total_steps: int, ips: float, eta: float) -> None: ...

    def epoch_metrics(self, epoch: int, values: dict[str, float]) -> None: ...

    def log(self, text: str) -> None: ...


class NullReporter:
    def progress(self, *args) -> None:
        pass

    def epoch_metrics(self, epoch: int, values: dict[str, float]) -> None:
        pass

    def log(self, text: str) -> None:
        log.info(text)


@dataclass
class Artifact:
    name: str
    bucket: str
    key: str
    sha256: str
    size_bytes: int


@dataclass
class JobResult:
    metrics: dict[str, float]
    artifacts: list[Artifact] = field(default_factory=list)
    resumed_from_epoch: int = 0
    evaluation: object | None = None  # trainyard.training.v1.EvaluationSummary of the model's evaluation


def unresolved_fields(job: events_pb2.TrainingJob) -> list[str]:
    """The one check of a job's values: the fields the training service should have resolved and did not
    (the trainer has no defaults of its own)."""
    hp, spec = job.hyperparameters, job.model
    checks = {
        "hyperparameters.epochs": hp.epochs >= 1,
        "hyperparameters.batch_size": hp.batch_size >= 1,
        "hyperparameters.image_size": hp.image_size >= 16,
        "hyperparameters.learning_rate": hp.learning_rate > 0,
        "hyperparameters.backbone_lr_multiplier": hp.backbone_lr_multiplier >= 0,
        "hyperparameters.optimizer": hp.optimizer in C.Optimizer.values() and hp.optimizer != 0,
        "hyperparameters.lr_schedule": hp.lr_schedule in C.LrSchedule.values() and hp.lr_schedule != 0,
        "hyperparameters.lr_step_gamma": 0 < hp.lr_step_gamma <= 1,
        "hyperparameters.augmentation": hp.augmentation in contract.AUGMENTATION_PRESETS,
        "transfer_strategy": job.transfer_strategy in C.TransferStrategy.values() and job.transfer_strategy != 0,
        "model.mean": len(spec.mean) == 3,
        "model.std": len(spec.std) == 3 and all(v > 0 for v in spec.std),
    }
    return [name for name, ok in checks.items() if not ok]


def resolve_device(setting: str = "auto") -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PermanentJobError(f"device {setting!r} was requested but CUDA is not available on this node")
    return device


def _put(store: ObjectStore, bucket: str, key: str, payload: bytes, name: str, content_type: str) -> Artifact:
    digest = store.put_bytes(bucket, key, payload, content_type)
    return Artifact(name, bucket, key, digest, len(payload))


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def load_checkpoint(store: ObjectStore, bucket: str, key: str) -> dict | None:
    if not store.exists(bucket, key):
        return None
    try:
        return torch.load(io.BytesIO(store.get_bytes(bucket, key)), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable checkpoint means a fresh start
        log.warning("ignoring an unreadable checkpoint", extra={"key": key, "error": str(exc)})
        return None


def class_weights(cases: list[dict], task: str, num_classes: int, mode: int) -> list[float] | None:
    """Loss weights per class from the train split's label counts (classification; other tasks
    count box classes), normalised to mean 1; None without weighting."""
    if mode not in (CLASS_WEIGHTING_INVERSE, CLASS_WEIGHTING_SQRT):
        return None
    counts = [0] * num_classes
    for case in cases:
        if task == "classification":
            counts[int(case["label"])] += 1
        else:
            for box in case.get("boxes", []) or []:
                counts[int(box["class"])] += 1
    power = 1.0 if mode == CLASS_WEIGHTING_INVERSE else 0.5
    raw = [(1.0 / c) ** power if c else 0.0 for c in counts]
    present = [w for w in raw if w]
    mean = sum(present) / len(present) if present else 1.0
    return [w / mean if w else 1.0 for w in raw]


def kept_head_rows(old_classes: list[str], classes: list[str]) -> tuple[int | None, str]:
    """Retraining a model trained here: how many of its head's class rows to keep (its classes first in the
    dataset's, in order), or None when the dataset has other classes: its features carry over and its head
    starts anew. With what to log."""
    if not old_classes:
        return None, ""
    if classes[: len(old_classes)] != old_classes:
        return None, (
            f"the trained model's classes {old_classes} are not the first of this dataset's {classes}: its "
            "features are kept and its head starts anew"
        )
    if len(classes) > len(old_classes):
        return len(old_classes), f"new classes {classes[len(old_classes) :]} get new head rows; the old keep theirs"
    return len(old_classes), ""


@dataclass
class Prepared:
    """Everything a training process needs, on local disk and picklable: a data-parallel rank builds
    its model and datasets from it (trainer.distributed) exactly as the single process does."""

    job: events_pb2.TrainingJob
    task: str
    classes: list[str]
    augmentation: str
    train_items: list
    val_items: list
    weights_path: Path | None
    backbone_path: Path | None
    weights_num_classes: int | None
    class_weights: list[float] | None
    ignore_index: int


@dataclass
class Training:
    built: BuiltModel
    train_ds: Dataset
    val_ds: Dataset
    probe_ds: Dataset | None  # the train images as validation sees them, for the linear probe
    adapter: tasks.Adapter
    cfg: engine.FitConfig
    mean: list[float]
    std: list[float]


def build_training(prep: Prepared) -> Training:
    """The network (seeded first, so every process of a run builds the same one), datasets, adapter, config."""
    job, task, classes = prep.job, prep.task, prep.classes
    hp, spec = job.hyperparameters, job.model
    engine.seed_everything(hp.seed)
    probe_ds = None
    built = build_model(
        spec.library,
        spec.architecture,
        len(classes),
        prep.weights_path,
        spec.pretrained_num_classes,
        task=task,
        image_size=hp.image_size,
        backbone_weights_path=prep.backbone_path,
        weights_num_classes=prep.weights_num_classes,
    )
    mean, std = list(spec.mean), list(spec.std)
    augmentation, train_items, val_items = prep.augmentation, prep.train_items, prep.val_items
    if task == "classification":
        train_ds = tasks.ClassificationDataset(
            train_items, tasks.classification_transform(hp.image_size, mean, std, True, augmentation), hp.image_size
        )
        val_ds = tasks.ClassificationDataset(
            val_items, tasks.classification_transform(hp.image_size, mean, std, False), hp.image_size
        )
        probe = job.transfer_strategy in (PROBE_THEN_FINE_TUNE, LINEAR_PROBE) and prep.weights_path is not None
        if probe:
            probe_ds = tasks.ClassificationDataset(train_items, val_ds.transform, hp.image_size)
    elif task == "segmentation":
        # dense datasets decode a big JPEG reduced to no less than what the transform resizes to
        size = tasks.input_size(hp.image_size, hp.image_width)
        side = min(hp.image_size, hp.image_width or hp.image_size)
        train_ds = tasks.SegmentationDataset(
            train_items, tasks.dense_transform(size, True, augmentation, (mean, std)), side
        )
        val_ds = tasks.SegmentationDataset(
            val_items, tasks.dense_transform(size, False, normalize=(mean, std)), side, full_masks=True
        )
    else:  # detectors normalise inside (their GeneralizedRCNNTransform)
        masks = task == "instance_segmentation"
        train_ds = tasks.DetectionDataset(
            train_items,
            tasks.dense_transform(hp.image_size, True, augmentation, keep_aspect=True),
            masks,
            hp.image_size,
        )
        val_ds = tasks.DetectionDataset(
            val_items, tasks.dense_transform(hp.image_size, False, keep_aspect=True), masks, hp.image_size
        )
    adapter = tasks.make_adapter(
        task,
        len(classes),
        classes,
        class_weights=prep.class_weights,
        label_smoothing=hp.label_smoothing if task == "classification" else 0.0,
        ignore_index=prep.ignore_index,
    )
    cfg = engine.FitConfig(
        epochs=hp.epochs,
        num_classes=len(classes),
        learning_rate=hp.learning_rate,
        backbone_lr_multiplier=hp.backbone_lr_multiplier,
        weight_decay=hp.weight_decay,
        optimizer=hp.optimizer,
        warmup_epochs=hp.warmup_epochs,
        label_smoothing=hp.label_smoothing,
        strategy=job.transfer_strategy,
        seed=hp.seed,
        class_names=classes,
        schedule=hp.lr_schedule,
        step_epochs=hp.lr_step_epochs,
        step_gamma=hp.lr_step_gamma,
        early_stopping_patience=hp.early_stopping_patience,
        early_stopping_metric=hp.early_stopping_metric,
        task=task,
        time_budget_s=float(hp.time_budget_seconds),
        probe_first=probe_ds is not None,
    )
    return Training(built, train_ds, val_ds, probe_ds, adapter, cfg, mean, std)


def _loaders(
    training: Training, hp, device: torch.device, workers: int, prefetch: data.Prefetcher | None = None
) -> tuple[DataLoader, DataLoader, DataLoader | None]:
    """One process: the whole batch per step, in the per-epoch order (seed + epoch) that an N-process run
    shards (a DistributedSampler of one replica), so both runs see the same batches. With a prefetcher,
    each epoch's order is streamed into the cache ahead of the reads."""
    train_ds, val_ds, adapter = training.train_ds, training.val_ds, training.adapter
    batch = min(hp.batch_size, len(train_ds))
    train_sampler = DistributedSampler(train_ds, num_replicas=1, rank=0, shuffle=True, seed=hp.seed)
    val_sampler = SequentialSampler(val_ds)
    if prefetch is not None:
        train_sampler = prefetch.sampler(train_sampler, train_ds.items)
        val_sampler = prefetch.sampler(val_sampler, val_ds.items)
    train_loader = DataLoader(
        train_ds,
        batch_size=batch,
        sampler=train_sampler,
        drop_last=len(train_ds) > batch,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        collate_fn=adapter.collate,
    )
    val_loader = DataLoader(
        val_ds,
        batch_size=batch,
        sampler=val_sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        collate_fn=adapter.collate,
    )
    probe_loader = None
    if training.probe_ds is not None:
        probe_sampler = SequentialSampler(training.probe_ds)
        if prefetch is not None:
            probe_sampler = prefetch.sampler(probe_sampler, training.probe_ds.items)
        probe_loader = DataLoader(
            training.probe_ds, batch_size=batch, sampler=probe_sampler, num_workers=workers, collate_fn=adapter.collate
        )
    return train_loader, val_loader, probe_loader


def run_job(
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
    export: bool = True,
    evaluate: bool = True,
    placement: distributed.Placement | None = None,
    on_ranks: Callable[[list[int]], None] | None = None,
    distributed_timeout_s: float = 600.0,
) -> JobResult:
    """Train the job; with job.resources asking for several processes, as a data-parallel run
    (trainer.distributed) of which this trainer is node placement.node_rank (node 0 when None).
    A member node (node_rank > 0) trains its share and returns an empty JobResult: node 0 reports,
    writes the checkpoints and the artifacts. on_ranks(pids) gets the local rank processes' ids.
    With `evaluate`, the trained model is then evaluated on the test split (val when there is none):
    trainer.evaluation_job.after_training; its F1-best threshold goes into the ONNX export."""
    reporter = reporter or NullReporter()
    hp = job.hyperparameters
    task = contract.TASK_NAMES.get(job.task_type)
    if task is None:
        raise PermanentJobError(f"the job has an unknown task type {job.task_type}")
    classes = list(job.dataset.class_names)
    min_classes = 2 if task == "classification" else 1
    if len(classes) < min_classes:
        raise PermanentJobError(f"the job names {len(classes)} class(es); {task} needs at least {min_classes}")
    unresolved = unresolved_fields(job)
    if unresolved:
        raise PermanentJobError(
            "the job is not resolved (the training service fills every value before it queues a job): "
            + ", ".join(unresolved)
        )
    augmentation = hp.augmentation
    bucket, prefix = job.output_bucket, job.output_prefix
    ckpt_key = prefix + CHECKPOINT
    member = placement is not None and placement.node_rank > 0
    resume = None if member else load_checkpoint(store, bucket, ckpt_key)  # node 0's rank 0 hands it out
    if resume is not None:
        saved = resume.get("config", {})
        if saved.get("num_classes") != len(classes) or saved.get("task", "classification") != task:
            reporter.log("the stored checkpoint belongs to another configuration; starting fresh")
            resume = None
        elif saved.get("epochs") != hp.epochs:
            reporter.log(f"continuing from epoch {resume['epoch']} to {hp.epochs} epochs")
    if resume is not None and (resume.get("best") or {}).get("epoch"):
        best_ckpt = load_checkpoint(store, bucket, prefix + BEST_CHECKPOINT)
        if best_ckpt is not None and best_ckpt.get("epoch") == resume["best"]["epoch"]:
            resume["best_model"] = best_ckpt["model"]
    resumed_from = int(resume["epoch"]) if resume else 0
    if on_resume is not None:
        on_resume(resumed_from)
    if resumed_from:
        reporter.log(f"resuming from the checkpoint of epoch {resumed_from}")
    ref = job.dataset.manifest
    manifest = data.load_manifest(store, ref.bucket, ref.key, ref.sha256)
    train_cases = data.task_cases(manifest, "train", task, len(classes))
    val_cases = data.task_cases(manifest, "val", task, len(classes))
    if not train_cases:
        raise PermanentJobError(f"dataset version {job.dataset.version_id} has no train cases")
    if not val_cases:
        reporter.log("the dataset has no val split; evaluating on the train split")
        val_cases = train_cases
    images_bucket = manifest.get("images_bucket") or ref.bucket
    ignore_index = int(manifest.get("ignore_index", 255))
    world = contract.world_size(job.resources)
    prefetch = None
    if world > 1:  # the data-parallel processes get plain files, fetched before they start
        reporter.log(f"fetching {len(train_cases) + len(val_cases)} images")
        train_items = data.fetch_items(cache, store, images_bucket, train_cases)
        val_items = data.fetch_items(cache, store, images_bucket, val_cases)
    else:  # images stream into the cache ahead of the loaders' samplers: training starts at once
        prefetch = data.Prefetcher(cache, store, images_bucket)
        train_items = prefetch.items(train_cases)
        val_items = prefetch.items(val_cases)
        reporter.log(f"streaming {len(train_cases) + len(val_cases)} images into the cache")

    spec = job.model
    weights_path = backbone_path = None
    if job.transfer_strategy != FROM_SCRATCH:
        for ref_, kind in ((spec.weights, "weights"), (spec.backbone_weights, "backbone weights")):
            if not ref_.key:
                continue
            if not ref_.sha256:
                raise PermanentJobError(f"the {kind} of {spec.model_id} come without a sha256; re-import them")
            path = cache.fetch(store, ref_.bucket, ref_.key, ref_.sha256, kind)
            if kind == "weights":
                weights_path = path
            else:
                backbone_path = path
        if weights_path is None and backbone_path is None:  # never a silent start from random weights
            raise PermanentJobError(
                f"the job for {spec.model_id} carries no pre-trained weights and its transfer strategy is not "
                "FROM_SCRATCH; the training service sends weights or an explicit from-scratch strategy"
            )
    keep = data.cache_names([*train_items, *val_items])
    keep |= {p.name for p in (weights_path, backbone_path) if p}
    cache.prune(keep)

    weights_num_classes = None
    if weights_path is not None:
        weights_num_classes, note = kept_head_rows(list(spec.weights_class_names), classes)
        if note:
            reporter.log(note)
    prep = Prepared(
        job=job,
        task=task,
        classes=classes,
        augmentation=augmentation,
        train_items=train_items,
        val_items=val_items,
        weights_path=weights_path,
        backbone_path=backbone_path,
        weights_num_classes=weights_num_classes,
        class_weights=class_weights(train_cases, task, len(classes), hp.class_weighting)
        if task in ("classification", "segmentation")
        else None,
        ignore_index=ignore_index,
    )
    workers = num_workers if num_workers >= 0 else (min(4, os.cpu_count() or 1) if device.type == "cuda" else 0)
    ckpt_artifact: list[Artifact] = []
    best_artifact: list[Artifact] = []

    def save_checkpoint(state: dict) -> None:
        ckpt_artifact[:] = [
            _put(store, bucket, ckpt_key, _torch_bytes(state), "checkpoint", "application/octet-stream")
        ]

    def save_best(state: dict, metric: str, value: float) -> None:
        state = {**state, "metric": metric, "value": value, "class_names": classes}
        best_artifact[:] = [
            _put(
                store,
                bucket,
                prefix + BEST_CHECKPOINT,
                _torch_bytes(state),
                "best_checkpoint",
                "application/octet-stream",
            )
        ]

    hooks = engine.Hooks(
        progress=reporter.progress,
        epoch_end=reporter.epoch_metrics,
        save_checkpoint=save_checkpoint,
        save_best=save_best,
        check_stop=check_stop,
        log=reporter.log,
    )
    try:
        if world > 1:
            state = distributed.fit_data_parallel(
                build_training,
                prep,
                hooks=hooks,
                resume=resume,
                device=device,
                processes_per_node=contract.processes_per_node(job.resources),
                placement=placement,
                global_batch=hp.batch_size,
                seed=hp.seed,
                num_workers=workers,
                progress_interval_s=progress_interval_s,
                on_ranks=on_ranks,
                timeout_s=distributed_timeout_s,
            )
            if state is None:  # a member node: node 0 reports and stores everything
                return JobResult(metrics={})
            training = build_training(prep)
            training.built.model.load_state_dict(state["model"])
            final = state["final"]
        else:
            training = build_training(prep)
            train_loader, val_loader, probe_loader = _loaders(training, hp, device, workers, prefetch)
            final = engine.fit(
                training.built,
                train_loader,
                val_loader,
                training.cfg,
                device,
                hooks,
                resume,
                progress_interval_s,
                training.adapter,
                probe_loader,
            )
    except FloatingPointError as exc:
        raise PermanentJobError(str(exc)) from exc
    except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if is_out_of_memory(exc):
            reason = out_of_memory_reason(spec.architecture, hp.batch_size, hp.image_size, device.type == "cuda")
            raise PermanentJobError(reason) from exc
        raise
    finally:
        if prefetch is not None:
            prefetch.close()  # a stopped or failed job downloads no more
    built, adapter, cfg, mean, std = training.built, training.adapter, training.cfg, training.mean, training.std
    for key, target, name in (
        (ckpt_key, ckpt_artifact, "checkpoint"),
        (prefix + BEST_CHECKPOINT, best_artifact, "best_checkpoint"),
    ):
        if not target and store.exists(bucket, key):  # resumed after the last epoch
            payload = store.get_bytes(bucket, key)
            target[:] = [Artifact(name, bucket, key, hashlib.sha256(payload).hexdigest(), len(payload))]

    hp_dict = MessageToDict(hp, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    model_blob = _torch_bytes(
        {
            "state_dict": built.model.state_dict(),
            "model_id": spec.model_id,
            "library": spec.library,
            "architecture": spec.architecture,
            "task": task,
            "num_classes": len(classes),
            "class_names": classes,
            "image_size": hp.image_size,
            "image_width": hp.image_width,
            "mean": mean,
            "std": std,
            "transfer_strategy": int(job.transfer_strategy),
            "task_id": job.task_id,
        }
    )
    scalars = {k: float(v) for k, v in final.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    scalars["epochs"] = float(hp.epochs)
    best = final.get("best") or {}
    if best.get("value") is not None:
        scalars["best_epoch"] = float(best["epoch"])
    per_class: list[dict] = []
    if task == "classification":
        per_class = [
            {"class": name, "precision": p, "recall": r, "f1": f}
            for name, p, r, f in zip(
                classes, final.get("precision", []), final.get("recall", []), final.get("f1", []), strict=False
            )
        ]
    elif task == "segmentation":
        per_class = [{"class": n, "iou": v} for n, v in (final.get("iou_per_class") or {}).items()]
    else:
        box_ap, mask_ap = final.get("ap_per_class") or {}, final.get("mask_ap_per_class") or {}
        per_class = [
            {"class": n, "ap": box_ap.get(n), **({"mask_ap": mask_ap.get(n)} if mask_ap else {})} for n in classes
        ]
    config = {
        "task_id": job.task_id,
        "task": task,
        "model": MessageToDict(spec, preserving_proto_field_name=True),
        "dataset": MessageToDict(job.dataset, preserving_proto_field_name=True),
        "hyperparameters": hp_dict,
        "augmentation": augmentation,
        "transfer_strategy": int(job.transfer_strategy),
        "fit": {k: v for k, v in cfg.__dict__.items()},
        "class_weights": adapter.class_weights,
        "ignore_index": ignore_index if task == "segmentation" else None,
        "device": str(device),
    }
    report = {
        "task_id": job.task_id,
        "task": task,
        "model_id": spec.model_id,
        "dataset_id": job.dataset.dataset_id,
        "dataset_version_id": job.dataset.version_id,
        "class_names": classes,
        "metrics": scalars,
        "per_class": per_class,
        "confusion_matrix": final.get("confusion_matrix", []),
        "history": final.get("history", []),
        "best": best,
        "stopped_early": bool(final.get("stopped_early")),
        "stopped_by": final.get("stopped_by", ""),
        "training_seconds": final.get("training_seconds"),
        "hyperparameters": hp_dict,
        "transfer_strategy": int(job.transfer_strategy),
        "device": str(device),
        "exports": {},
    }
    artifacts = [*ckpt_artifact, *best_artifact]
    artifacts.append(_put(store, bucket, prefix + "model.pt", model_blob, "model.pt", "application/octet-stream"))
    history = final.get("history", [])
    if history:
        artifacts.append(_put(store, bucket, prefix + "curves.png", art.curves_png(history), "curves.png", "image/png"))
    if final.get("confusion_matrix"):
        png = art.confusion_matrix_png(final["confusion_matrix"], classes)
        artifacts.append(_put(store, bucket, prefix + "confusion_matrix.png", png, "confusion_matrix.png", "image/png"))
    evaluated = None
    if evaluate:
        from trainer.evaluation_job import after_training

        evaluated, evaluation_artifacts = after_training(
            model=built.model,
            task=task,
            classes=classes,
            manifest=manifest,
            train_cases=train_cases,
            images_bucket=images_bucket,
            store=store,
            cache=cache,
            bucket=bucket,
            prefix=prefix,
            device=device,
            image_size=tasks.input_size(hp.image_size, hp.image_width),
            mean=mean,
            std=std,
            batch_size=hp.batch_size,
            ignore_index=ignore_index,
            reporter=reporter,
            check_stop=check_stop,
            num_workers=workers,
        )
        artifacts += evaluation_artifacts
        report["evaluation"] = evaluated.report
    if export:
        # detectors are checked on a real val image (random noise gives them nothing to detect)
        example = (
            training.val_ds[0][0]
            if task in art.DETECTION_TASKS
            else torch.rand(2, 3, hp.image_size, hp.image_width or hp.image_size)
        )
        metadata = OnnxMetadata(
            task_type=task,
            class_names=classes,
            input_size=hp.image_size,
            resize=onnxmeta.resize_mode(task, hp.image_size, hp.image_width),
            mean=mean,
            std=std,
            threshold=evaluated.summary.default_threshold if evaluated is not None else 0.5,
            model_id=spec.model_id,
            task_id=job.task_id,
        ).props()
        artifacts += _exports(built.model, task, example, prefix, bucket, store, reporter, report["exports"], metadata)
    artifacts.append(
        _put(
            store,
            bucket,
            prefix + "config.json",
            json.dumps(config, indent=2).encode(),
            "config.json",
            "application/json",
        )
    )
    artifacts.append(
        _put(
            store,
            bucket,
            prefix + "metrics.json",
            json.dumps(report, indent=2).encode(),
            "metrics.json",
            "application/json",
        )
    )
    return JobResult(
        metrics=scalars,
        artifacts=artifacts,
        resumed_from_epoch=resumed_from,
        evaluation=evaluated.summary if evaluated is not None else None,
    )


def _exports(model, task, example, prefix, bucket, store, reporter, notes: dict, metadata=None) -> list[Artifact]:
    """TorchScript and ONNX exports (trainer.artifacts.export_model), stored next to the checkpoints."""
    out: list[Artifact] = []
    for name, payload, ctype in art.export_model(model, task, example, notes, metadata):
        out.append(_put(store, bucket, prefix + name, payload, name, ctype))
    for name, note in notes.items():
        if "error" in note or "unsupported" in note:
            reporter.log(f"{name} was not exported: {note.get('error') or note.get('unsupported')}")
    return out
