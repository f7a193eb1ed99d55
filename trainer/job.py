"""Run one TrainingJob end to end (synchronously, in a worker thread): data, weights, model,
resume, epochs with checkpoints, final artifacts. Talks only to the object store; reports
through a Reporter and stops when its stop check raises."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from google.protobuf.json_format import MessageToDict
from torch.utils.data import DataLoader

from trainer import data, engine
from trainer.errors import PermanentJobError
from trainer.models import FROM_SCRATCH, build_model
from trainer.storage import ObjectStore
from trainyard.events.v1 import events_pb2

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/last.pt"


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
) -> JobResult:
    reporter = reporter or NullReporter()
    hp = job.hyperparameters
    classes = list(job.dataset.class_names)
    if len(classes) < 2:
        raise PermanentJobError(f"the job names {len(classes)} class(es); classification needs at least 2")
    if hp.epochs < 1 or hp.batch_size < 1 or hp.image_size < 16 or hp.learning_rate <= 0:
        raise PermanentJobError("the job's hyperparameters are not resolved (epochs, batch_size, image_size, lr)")
    bucket, prefix = job.output_bucket, job.output_prefix
    ckpt_key = prefix + CHECKPOINT
    resume = load_checkpoint(store, bucket, ckpt_key)
    if resume is not None:
        saved = resume.get("config", {})
        if saved.get("num_classes") != len(classes) or saved.get("epochs") != hp.epochs:
            reporter.log("the stored checkpoint belongs to another configuration; starting fresh")
            resume = None
    resumed_from = int(resume["epoch"]) if resume else 0
    if on_resume is not None:
        on_resume(resumed_from)
    if resumed_from:
        reporter.log(f"resuming from the checkpoint of epoch {resumed_from}")
    ref = job.dataset.manifest
    manifest = data.load_manifest(store, ref.bucket, ref.key, ref.sha256)
    train_cases = data.classification_cases(manifest, "train", len(classes))
    val_cases = data.classification_cases(manifest, "val", len(classes))
    if not train_cases:
        raise PermanentJobError(f"dataset version {job.dataset.version_id} has no train cases")
    if not val_cases:
        reporter.log("the dataset has no val split; evaluating on the train split")
        val_cases = train_cases
    images_bucket = manifest.get("images_bucket") or ref.bucket
    reporter.log(f"fetching {len(train_cases) + len(val_cases)} images")
    train_items = data.fetch_images(cache, store, images_bucket, train_cases)
    val_items = data.fetch_images(cache, store, images_bucket, val_cases)

    weights_path = None
    spec = job.model
    if job.transfer_strategy != FROM_SCRATCH and spec.weights.key:
        if not spec.weights.sha256:
            raise PermanentJobError(f"the weights of {spec.model_id} come without a sha256; re-import them")
        weights_path = cache.fetch(store, spec.weights.bucket, spec.weights.key, spec.weights.sha256, "weights")
    keep = {c.path.name for c in (*train_items, *val_items)} | ({weights_path.name} if weights_path else set())
    cache.prune(keep)

    built = build_model(spec.library, spec.architecture, len(classes), weights_path, spec.pretrained_num_classes)
    mean, std = list(spec.mean) or [0.485, 0.456, 0.406], list(spec.std) or [0.229, 0.224, 0.225]
    train_ds = data.ClassificationDataset(train_items, data.build_transforms(hp.image_size, mean, std, train=True))
    val_ds = data.ClassificationDataset(val_items, data.build_transforms(hp.image_size, mean, std, train=False))
    workers = num_workers if num_workers >= 0 else (min(4, os.cpu_count() or 1) if device.type == "cuda" else 0)
    batch = min(hp.batch_size, len(train_ds))
    generator = torch.Generator().manual_seed(hp.seed)
    train_loader = DataLoader(
        train_ds,
        batch_size=batch,
        shuffle=True,
        drop_last=len(train_ds) > batch,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=generator,
    )
    val_loader = DataLoader(
        val_ds, batch_size=batch, shuffle=False, num_workers=workers, pin_memory=device.type == "cuda"
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
        strategy=job.transfer_strategy or 1,
        seed=hp.seed,
        class_names=classes,
    )
    ckpt_artifact: list[Artifact] = []

    def save_checkpoint(state: dict) -> None:
        ckpt_artifact[:] = [
            _put(store, bucket, ckpt_key, _torch_bytes(state), "checkpoint", "application/octet-stream")
        ]

    engine.seed_everything(hp.seed)
    hooks = engine.Hooks(
        progress=reporter.progress,
        epoch_end=reporter.epoch_metrics,
        save_checkpoint=save_checkpoint,
        check_stop=check_stop,
        log=reporter.log,
    )
    try:
        final = engine.fit(built, train_loader, val_loader, cfg, device, hooks, resume, progress_interval_s)
    except torch.cuda.OutOfMemoryError as exc:
        raise PermanentJobError(
            f"CUDA ran out of memory training {spec.architecture} at batch_size {hp.batch_size} and image_size "
            f"{hp.image_size}; use a smaller batch_size (for example {max(1, hp.batch_size // 2)}) or image_size"
        ) from exc
    except FloatingPointError as exc:
        raise PermanentJobError(str(exc)) from exc
    if not ckpt_artifact and store.exists(bucket, ckpt_key):  # resumed after the last epoch
        payload = store.get_bytes(bucket, ckpt_key)
        import hashlib

        ckpt_artifact = [Artifact("checkpoint", bucket, ckpt_key, hashlib.sha256(payload).hexdigest(), len(payload))]

    hp_dict = MessageToDict(hp, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    model_blob = _torch_bytes(
        {
            "state_dict": built.model.state_dict(),
            "model_id": spec.model_id,
            "library": spec.library,
            "architecture": spec.architecture,
            "num_classes": len(classes),
            "class_names": classes,
            "image_size": hp.image_size,
            "mean": mean,
            "std": std,
            "transfer_strategy": int(job.transfer_strategy),
            "task_id": job.task_id,
        }
    )
    scalars = {k: float(v) for k, v in final.items() if isinstance(v, int | float)}
    scalars["epochs"] = float(hp.epochs)
    per_class = [
        {"class": name, "precision": p, "recall": r}
        for name, p, r in zip(classes, final.get("precision", []), final.get("recall", []), strict=False)
    ]
    report = {
        "task_id": job.task_id,
        "model_id": spec.model_id,
        "dataset_id": job.dataset.dataset_id,
        "dataset_version_id": job.dataset.version_id,
        "class_names": classes,
        "metrics": scalars,
        "per_class": per_class,
        "confusion_matrix": final.get("confusion_matrix", []),
        "history": final.get("history", []),
        "hyperparameters": hp_dict,
        "transfer_strategy": int(job.transfer_strategy),
        "device": str(device),
    }
    artifacts = [
        *ckpt_artifact,
        _put(store, bucket, prefix + "model.pt", model_blob, "model.pt", "application/octet-stream"),
        _put(
            store,
            bucket,
            prefix + "metrics.json",
            json.dumps(report, indent=2).encode(),
            "metrics.json",
            "application/json",
        ),
    ]
    return JobResult(metrics=scalars, artifacts=artifacts, resumed_from_epoch=resumed_from)
