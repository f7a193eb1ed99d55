"""Train and evaluate loops (torchvision-references style) and the epoch loop with checkpoints.

`fit` resumes from a checkpoint dict when given one; resume is the normal path. It calls the
hooks for progress, per-epoch metrics, checkpoints and stop checks, so the same loop runs in a
unit test and on a trainer node.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from trainer.models import BuiltModel, param_groups, set_trainable, unfreeze_epoch

OPTIMIZER_SGD, OPTIMIZER_ADAM, OPTIMIZER_ADAMW = 1, 2, 3


@dataclass
class FitConfig:
    epochs: int
    num_classes: int
    learning_rate: float = 1e-3
    backbone_lr_multiplier: float = 1.0
    weight_decay: float = 1e-4
    optimizer: int = OPTIMIZER_ADAMW
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    strategy: int = 1
    seed: int = 42
    class_names: list[str] = field(default_factory=list)


@dataclass
class Hooks:
    """Callbacks of the epoch loop; every one is optional."""

    progress: Callable[[int, int, int, int, float, float], None] | None = None  # epoch, epochs, step, steps, img/s, eta
    epoch_end: Callable[[int, dict[str, float]], None] | None = None
    save_checkpoint: Callable[[dict], None] | None = None
    check_stop: Callable[[], None] | None = None  # raises to stop at the next step
    log: Callable[[str], None] | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def make_optimizer(built: BuiltModel, cfg: FitConfig) -> torch.optim.Optimizer:
    groups = param_groups(built, cfg.learning_rate, cfg.backbone_lr_multiplier, cfg.weight_decay)
    if cfg.optimizer == OPTIMIZER_SGD:
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=0.9, nesterov=True)
    if cfg.optimizer == OPTIMIZER_ADAM:
        return torch.optim.Adam(groups, lr=cfg.learning_rate)
    return torch.optim.AdamW(groups, lr=cfg.learning_rate)


def make_scheduler(optimizer: torch.optim.Optimizer, steps_per_epoch: int, cfg: FitConfig):
    """Linear warm-up over warmup_epochs, then cosine decay to zero, stepped per batch."""
    total = max(1, steps_per_epoch * cfg.epochs)
    warmup = steps_per_epoch * cfg.warmup_epochs

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast("cpu", enabled=False)


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    loader: DataLoader,
    device: torch.device,
    scaler: torch.amp.GradScaler | None,
    on_step: Callable[[int, int, int], None] | None = None,
) -> float:
    """One pass over loader; returns the mean training loss. on_step(step, steps, images)."""
    model.train()
    total_loss, seen = 0.0, 0
    steps = len(loader)
    channels_last = device.type == "cuda"
    for step, (images, targets) in enumerate(loader, start=1):
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device):
            loss = criterion(model(images), targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()}; lower the learning_rate")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        total_loss += loss.item() * images.shape[0]
        seen += images.shape[0]
        if on_step is not None:
            on_step(step, steps, images.shape[0])
    return total_loss / max(seen, 1)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    criterion: nn.Module,
    loader: DataLoader,
    device: torch.device,
    num_classes: int,
    full: bool = False,
) -> dict:
    """Validation metrics; with full=True also per-class precision/recall and the confusion matrix."""
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassConfusionMatrix,
        MulticlassF1Score,
        MulticlassPrecision,
        MulticlassRecall,
    )

    model.eval()
    metrics = {
        "val_top1": MulticlassAccuracy(num_classes=num_classes, top_k=1, average="micro"),
        "val_f1_macro": MulticlassF1Score(num_classes=num_classes, average="macro"),
    }
    if num_classes >= 5:
        metrics["val_top5"] = MulticlassAccuracy(num_classes=num_classes, top_k=5, average="micro")
    per_class = {}
    if full:
        per_class = {
            "precision": MulticlassPrecision(num_classes=num_classes, average=None),
            "recall": MulticlassRecall(num_classes=num_classes, average=None),
            "confusion_matrix": MulticlassConfusionMatrix(num_classes=num_classes),
        }
    total_loss, seen = 0.0, 0
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device):
            logits = model(images)
        logits = logits.float()
        total_loss += criterion(logits, targets).item() * images.shape[0]
        seen += images.shape[0]
        logits, targets = logits.cpu(), targets.cpu()
        for metric in (*metrics.values(), *per_class.values()):
            metric.update(logits, targets)
    out: dict = {"val_loss": total_loss / max(seen, 1)}
    if seen:
        out.update({name: float(m.compute()) for name, m in metrics.items()})
        for name, m in per_class.items():
            out[name] = m.compute().tolist()
    return out


def fit(
    built: BuiltModel,
    train_loader: DataLoader,
    val_loader: DataLoader,
    cfg: FitConfig,
    device: torch.device,
    hooks: Hooks | None = None,
    resume: dict | None = None,
    progress_interval_s: float = 1.0,
) -> dict:
    """Train for cfg.epochs (from the checkpoint's epoch when resuming); returns the final evaluation."""
    hooks = hooks or Hooks()
    model = built.model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(built, cfg)
    steps = max(1, len(train_loader))
    scheduler = make_scheduler(optimizer, steps, cfg)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    eval_criterion = nn.CrossEntropyLoss()
    start_epoch, history = 0, []
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        if scaler is not None and resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        start_epoch = int(resume["epoch"])
        history = list(resume.get("history", []))
    started = time.monotonic()
    images_done = 0
    for epoch in range(start_epoch, cfg.epochs):
        seed_everything(cfg.seed + epoch)
        backbone = set_trainable(built, cfg.strategy, epoch, cfg.epochs)
        if hooks.log is not None and (epoch == start_epoch or backbone != _trains(cfg, epoch - 1)):
            hooks.log(
                f"epoch {epoch + 1}/{cfg.epochs}: {'training all layers' if backbone else 'training the head only'}"
            )
        window = {"t": time.monotonic(), "images": 0, "last_emit": 0.0}

        def on_step(step: int, total_steps: int, n: int, epoch: int = epoch, window: dict = window) -> None:
            nonlocal images_done
            images_done += n
            window["images"] += n
            if hooks.check_stop is not None:
                hooks.check_stop()
            now = time.monotonic()
            if hooks.progress is None or (now - window["last_emit"] < progress_interval_s and step != total_steps):
                return
            rate = window["images"] / max(now - window["t"], 1e-6)
            done_steps = (epoch - start_epoch) * total_steps + step
            left_steps = (cfg.epochs - epoch) * total_steps - step
            eta = (now - started) / max(done_steps, 1) * left_steps
            hooks.progress(epoch + 1, cfg.epochs, step, total_steps, rate, eta)
            window.update(t=now, images=0, last_emit=now)

        if hooks.check_stop is not None:
            hooks.check_stop()
        train_loss = train_one_epoch(model, criterion, optimizer, scheduler, train_loader, device, scaler, on_step)
        values = {"train_loss": train_loss, "lr": optimizer.param_groups[-1]["lr"]}
        values.update({k: v for k, v in evaluate(model, eval_criterion, val_loader, device, cfg.num_classes).items()})
        history.append({"epoch": epoch + 1, "values": values})
        if hooks.save_checkpoint is not None:
            hooks.save_checkpoint(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "config": asdict(cfg),
                    "epoch": epoch + 1,
                    "history": history,
                }
            )
        if hooks.epoch_end is not None:
            hooks.epoch_end(epoch + 1, values)
    final = evaluate(model, eval_criterion, val_loader, device, cfg.num_classes, full=True)
    final["history"] = history
    if history:
        final["train_loss"] = history[-1]["values"]["train_loss"]
    return final


def _trains(cfg: FitConfig, epoch: int) -> bool:
    first = unfreeze_epoch(cfg.strategy, cfg.epochs)
    return first is not None and epoch >= first
