"""The epoch loop (torchvision-references style) with checkpoints, schedules and early stopping.

`fit` resumes from a checkpoint dict when given one; resume is the normal path. What differs
between task types (batches, loss, metrics) lives in a trainer.tasks.Adapter. It calls the hooks
for progress, per-epoch metrics, checkpoints and stop checks, so the same loop runs in a unit test
and on a trainer node.
"""

from __future__ import annotations

import gc
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from trainer import probe
from trainer.memory import release_free_memory
from trainer.models import BuiltModel, param_groups, set_trainable, unfreeze_epoch
from trainer.tasks import Adapter, ClassificationAdapter, grad_scaler, lower_is_better
from trainyard.common.v1 import common_pb2 as C

CHECK_EVERY = 20  # steps between reads of the training loss on a GPU (a read waits for the GPU)


@dataclass(kw_only=True)
class FitConfig:
    """A run's settings, from the job's resolved hyperparameters (the training service fills every default;
    enums are trainyard.common.v1's)."""

    epochs: int
    num_classes: int
    learning_rate: float
    backbone_lr_multiplier: float
    weight_decay: float
    optimizer: int  # common.v1.Optimizer
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    strategy: int  # common.v1.TransferStrategy
    seed: int
    class_names: list[str] = field(default_factory=list)
    schedule: int  # common.v1.LrSchedule
    step_epochs: int = 0  # step schedule: decay every step_epochs (0: a third of the epochs)
    step_gamma: float
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0: never
    early_stopping_metric: str = ""  # default: the task's primary metric
    task: str = "classification"
    # Fit the head on frozen features before the first epoch (trainer.probe); reported as epoch 0.
    probe_first: bool = False
    # Seconds the run may take (probe, epochs and validation, over every attempt); 0: no limit. The epochs
    # that fit are planned from the time the epochs so far took (see _plan_for_budget).
    time_budget_s: float = 0.0


@dataclass
class Hooks:
    """Callbacks of the epoch loop; every one is optional."""

    progress: Callable[[int, int, int, int, float, float], None] | None = None  # epoch, epochs, step, steps, img/s, eta
    # epoch_end: called after the epoch's checkpoint, and again on resume for every epoch of the
    # checkpoint's history, so a consumer may see an epoch twice and must apply it by epoch
    epoch_end: Callable[[int, dict[str, float]], None] | None = None
    save_checkpoint: Callable[[dict], None] | None = None
    save_best: Callable[[dict, str, float], None] | None = None  # (model state + metadata, metric, value)
    check_stop: Callable[[], None] | None = None  # raises to stop at the next step
    log: Callable[[str], None] | None = None
    # Data-parallel runs (trainer.distributed): wrap(model) -> the module that trains (DDP), called again
    # when the trainable parameters change; reduce(values) -> the epoch's values averaged over the
    # processes, so every process takes the same early-stopping and best-checkpoint decisions.
    wrap: Callable[[nn.Module], nn.Module] | None = None
    reduce: Callable[[dict[str, float]], dict[str, float]] | None = None
    # The process's rank: its random draws (augmentations, dropout) differ from the other processes'.
    seed_offset: int = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def make_optimizer(built: BuiltModel, cfg: FitConfig) -> torch.optim.Optimizer:
    groups = param_groups(built, cfg.learning_rate, cfg.backbone_lr_multiplier, cfg.weight_decay)
    if cfg.optimizer == C.OPTIMIZER_SGD:
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=0.9, nesterov=True)
    # On a GPU, the fused kernels update every parameter of a group in one launch: a step of a small
    # network is bound by kernel launches, and the default path launches a dozen per group.
    fused = next(built.model.parameters()).is_cuda
    if cfg.optimizer == C.OPTIMIZER_ADAM:
        return torch.optim.Adam(groups, lr=cfg.learning_rate, fused=fused or None)
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=fused or None)


# How an optimizer runs its step, not what it learned: a checkpoint from a GPU node resumes on a CPU one.
_IMPLEMENTATION = ("fused", "foreach", "capturable")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a checkpoint's optimizer state, keeping this optimizer's implementation flags."""
    keep = [{k: group[k] for k in _IMPLEMENTATION if k in group} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, flags in zip(optimizer.param_groups, keep, strict=True):
        group.update(flags)


def lr_factor(step: int, steps_per_epoch: int, cfg: FitConfig) -> float:
    """The learning-rate multiplier at a 0-based global step: warm-up, then the schedule."""
    total = max(1, steps_per_epoch * cfg.epochs)
    if cfg.schedule == C.LR_SCHEDULE_ONE_CYCLE:
        # rise over the warm-up (default 30% of the steps) from lr/25, then cosine anneal to lr/1e4
        up = steps_per_epoch * cfg.warmup_epochs or max(1, int(0.3 * total))
        if step < up:
            return 1 / 25 + (1 - 1 / 25) * (step + 1) / up
        progress = min((step - up) / max(1, total - up), 1.0)
        return 1e-4 + (1 - 1e-4) * 0.5 * (1.0 + math.cos(math.pi * progress))
    warmup = steps_per_epoch * cfg.warmup_epochs
    if warmup and step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == C.LR_SCHEDULE_CONSTANT:
        return 1.0
    if cfg.schedule == C.LR_SCHEDULE_STEP:
        every = max(1, cfg.step_epochs or math.ceil(cfg.epochs / 3)) * steps_per_epoch
        return cfg.step_gamma ** ((step - warmup) // every) if step >= warmup else 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def make_scheduler(optimizer: torch.optim.Optimizer, steps_per_epoch: int, cfg: FitConfig):
    """Stepped per batch; the factor is a pure function of the step, so a resume with more epochs
    (continue) follows the new schedule from where it stopped."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, steps_per_epoch, cfg))


def train_one_epoch(
    model: nn.Module,
    adapter: Adapter,
    optimizer: torch.optim.Optimizer,
    scheduler,
    loader: DataLoader,
    device: torch.device,
    scaler: torch.amp.GradScaler | None,
    on_step: Callable[[int, int, int], None] | None = None,
) -> float:
    """One pass over loader; returns the mean training loss. on_step(step, steps, images)."""
    model.train()
    # Summed on the device: reading the loss every step would make the CPU wait for the GPU each step.
    # A NaN stays in the sum, so checking it every CHECK_EVERY steps (every step on CPU) still catches it.
    total_loss, seen = torch.zeros((), device=device), 0
    steps = len(loader)
    check_every = CHECK_EVERY if device.type == "cuda" else 1
    for step, (images, targets) in enumerate(loader, start=1):
        loss, n = adapter.loss(model, images, targets, device)
        total_loss += loss.detach().float() * n
        if (step % check_every == 0 or step == steps) and not torch.isfinite(total_loss):
            raise FloatingPointError(f"the training loss became {total_loss.item()}; lower the learning_rate")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        release_free_memory()
        seen += n
        if on_step is not None:
            on_step(step, steps, n)
    return total_loss.item() / max(seen, 1)


def evaluate(model, adapter: Adapter, loader, device, full: bool = False) -> dict:
    return adapter.evaluate(model, loader, device, full)


def _better(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if lower_is_better(metric) else value > best


def fit(
    built: BuiltModel,
    train_loader: DataLoader,
    val_loader: DataLoader,
    cfg: FitConfig,
    device: torch.device,
    hooks: Hooks | None = None,
    resume: dict | None = None,
    progress_interval_s: float = 1.0,
    adapter: Adapter | None = None,
    probe_loader: DataLoader | None = None,
) -> dict:
    """Train for cfg.epochs (from the checkpoint's epoch when resuming); returns the final evaluation of
    the best epoch's model. With cfg.probe_first, probe_loader (the train images as validation sees
    them) feeds a linear probe of the head before the first epoch."""
    hooks = hooks or Hooks()
    adapter = adapter or ClassificationAdapter(
        num_classes=cfg.num_classes, class_names=cfg.class_names, label_smoothing=cfg.label_smoothing
    )
    model = built.model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = adapter.fixed_input_size
    if adapter.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(built, cfg)
    steps = max(1, len(train_loader))
    scheduler = make_scheduler(optimizer, steps, cfg)
    scaler = grad_scaler(device)
    watch = cfg.early_stopping_metric or adapter.primary_metric
    start_epoch, history = 0, []
    best: dict = {"value": None, "epoch": 0}
    best_state: dict | None = None  # the best epoch's weights: the model the task reports and exports
    if resume is not None:
        model.load_state_dict(resume["model"])
        load_optimizer_state(optimizer, resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        if scaler is not None and resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        start_epoch = int(resume["epoch"])
        history = list(resume.get("history", []))
        best = dict(resume.get("best") or best)
        best_state = resume.get("best_model")  # the best checkpoint's weights (job.py reads them back)
        # The metrics event of an epoch can be lost when a trainer dies right after its checkpoint;
        # publish the checkpoint's history again (consumers apply epoch metrics by epoch).
        if hooks.epoch_end is not None:
            for entry in history:
                hooks.epoch_end(int(entry["epoch"]), dict(entry["values"]))
        if resume.get("stopped_early") and int(resume.get("config", {}).get("epochs", 0)) == cfg.epochs:
            start_epoch = cfg.epochs  # it stopped early; a redelivery only finishes the job
        if resume.get("stopped_by") == STOPPED_BY_BUDGET and cfg.time_budget_s:
            start_epoch = cfg.epochs  # its time was up; a redelivery only finishes the job
    # the time budget counts every attempt: what earlier ones spent comes with the checkpoint
    clock = _RunClock(float((resume or {}).get("seconds", 0.0)), list((resume or {}).get("epoch_seconds", [])))
    if cfg.probe_first and resume is None and probe_loader is not None and probe.can_probe(built.head):
        values = _linear_probe(built, model, adapter, probe_loader, val_loader, device, hooks)
        history.append({"epoch": 0, "values": values})
        value = values.get(watch)
        if value is not None:
            best = {"value": value, "epoch": 0, "metric": watch}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if hooks.save_best is not None:
                hooks.save_best({"model": model.state_dict(), "epoch": 0}, watch, value)
        if hooks.epoch_end is not None:
            hooks.epoch_end(0, values)
    started = time.monotonic()
    images_done = 0
    stopped_early = False
    stopped_by = ""
    train_model, wrapped_for = model, None
    epoch = start_epoch
    while epoch < cfg.epochs:  # the time budget may plan fewer epochs (or more again, up to those asked for)
        if cfg.time_budget_s and not _plan_for_budget(cfg, clock, epoch, hooks):
            stopped_by = STOPPED_BY_BUDGET
            break
        epoch_started = time.monotonic()
        seed_everything(cfg.seed + epoch + 1009 * hooks.seed_offset)  # epochs are at most 1000
        if hasattr(train_loader.sampler, "set_epoch"):  # a new order per epoch, the same on every process
            train_loader.sampler.set_epoch(epoch)
        backbone = set_trainable(built, cfg.strategy, epoch, cfg.epochs)
        if hooks.wrap is not None and wrapped_for != backbone:
            # DDP syncs the parameters that train when it is built: build it again when that set changes
            train_model = model
            gc.collect()  # the old wrapper's gradient hooks go with it
            train_model, wrapped_for = hooks.wrap(model), backbone
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
        train_loss = train_one_epoch(train_model, adapter, optimizer, scheduler, train_loader, device, scaler, on_step)
        values = {"train_loss": train_loss, "lr": optimizer.param_groups[-1]["lr"]}
        values.update(
            {k: v for k, v in evaluate(model, adapter, val_loader, device).items() if isinstance(v, int | float)}
        )
        release_free_memory()
        # timed here and averaged with the other processes' below, so every process plans the same epochs
        values["epoch_seconds"] = time.monotonic() - epoch_started
        values["run_seconds"] = clock.elapsed()
        if hooks.reduce is not None:
            values = hooks.reduce(values)
        clock.epochs.append(values["epoch_seconds"])
        clock.synced = values["run_seconds"]
        history.append({"epoch": epoch + 1, "values": values})
        value = values.get(watch)
        if value is not None and _better(value, best["value"], watch):
            best = {"value": value, "epoch": epoch + 1, "metric": watch}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if hooks.save_best is not None:
                hooks.save_best({"model": model.state_dict(), "epoch": epoch + 1}, watch, value)
        patience = cfg.early_stopping_patience
        stopped_early = bool(patience and value is not None and epoch + 1 - best["epoch"] >= patience)
        if stopped_early:
            stopped_by = STOPPED_BY_PATIENCE
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
                    "best": best,
                    "stopped_early": stopped_early,
                    "stopped_by": stopped_by,
                    "seconds": clock.synced,
                    "epoch_seconds": clock.epochs,
                }
            )
        if hooks.epoch_end is not None:  # after the checkpoint: a reported epoch is never trained again
            hooks.epoch_end(epoch + 1, values)
        if stopped_early:
            if hooks.log is not None:
                hooks.log(
                    f"early stopping after epoch {epoch + 1}: {watch} has not improved for {patience} epoch(s) "
                    f"(best {best['value']:.4f} at epoch {best['epoch']})"
                )
            break
        epoch += 1
    if history and best_state is not None and best["epoch"] != history[-1]["epoch"]:
        # the user gets the best epoch's model, and its metrics, not the last epoch's
        model.load_state_dict(best_state)
        if hooks.log is not None:
            hooks.log(f"the model of epoch {best['epoch']} ({watch} {best['value']:.4f}) is the result")
    final = evaluate(model, adapter, val_loader, device, full=True)
    final["history"] = history
    final["best"] = best
    final["stopped_early"] = stopped_early
    final["stopped_by"] = stopped_by
    final["training_seconds"] = clock.elapsed()
    if history:
        if "train_loss" in history[-1]["values"]:  # not after a linear probe alone (epoch 0)
            final["train_loss"] = history[-1]["values"]["train_loss"]
        final["epochs_trained"] = history[-1]["epoch"]
    return final


def _linear_probe(built, model, adapter, probe_loader, val_loader, device, hooks: Hooks) -> dict[str, float]:
    """The head fitted on frozen features (trainer.probe); the val metrics of the probed model."""
    started = time.monotonic()
    train = probe.head_inputs(model, built.head, probe_loader, device, adapter.channels_last)
    val = probe.head_inputs(model, built.head, val_loader, device, adapter.channels_last)
    l2 = probe.fit_head(built.head, train, val, adapter.class_weights)
    with torch.no_grad():
        logits = val[0].to(built.head.weight.device) @ built.head.weight.T
        if built.head.bias is not None:
            logits = logits + built.head.bias
    values = {k: v for k, v in adapter.scores(logits.float().cpu(), val[1]).items() if isinstance(v, float)}
    if hooks.log is not None:
        hooks.log(
            f"linear probe on frozen features: {len(train[1])} train images, L2 {l2:g}, "
            f"{adapter.primary_metric} {values.get(adapter.primary_metric, float('nan')):.4f} "
            f"in {time.monotonic() - started:.1f} s"
        )
    return values


STOPPED_BY_PATIENCE, STOPPED_BY_BUDGET = "early_stopping", "time_budget"


class _RunClock:
    """Seconds a run has trained, over every attempt, and how long each epoch took (with validation)."""

    def __init__(self, spent: float = 0.0, epochs: list[float] | None = None) -> None:
        self.spent, self.epochs, self.started = spent, list(epochs or []), time.monotonic()
        self.asked = 0  # the epochs asked for, before the budget planned fewer
        self.synced = spent  # run seconds at the end of the last epoch, the same in every process

    def elapsed(self) -> float:
        return self.spent + time.monotonic() - self.started


def _plan_for_budget(cfg: FitConfig, clock: _RunClock, epoch: int, hooks: Hooks) -> bool:
    """Before a 0-based epoch: whether it still fits the time budget, and how many of the asked-for epochs
    fit, which the plan (and with it the learning-rate schedule and the ETA) then ends at. The first epoch
    always runs: nothing is known about its length before it; later ones are measured without it once
    there are others (it pays for warming up)."""
    if not clock.epochs:
        return True
    clock.asked = clock.asked or cfg.epochs
    recent = (clock.epochs[1:] or clock.epochs)[-3:]
    per_epoch = sorted(recent)[len(recent) // 2]
    left = cfg.time_budget_s - clock.synced
    fits = int(left // per_epoch)
    if fits < 1:
        if hooks.log is not None:
            hooks.log(
                f"time budget {cfg.time_budget_s:.0f} s: {left:.0f} s left, an epoch takes {per_epoch:.0f} s; "
                f"stopping after epoch {epoch}"
            )
        return False
    planned = min(clock.asked, epoch + fits)
    if planned != cfg.epochs:
        if hooks.log is not None:
            hooks.log(
                f"time budget {cfg.time_budget_s:.0f} s: an epoch takes {per_epoch:.1f} s, so {planned} of "
                f"{clock.asked} epochs fit; the learning-rate schedule now ends at epoch {planned}"
            )
        cfg.epochs = planned
    return True


def _trains(cfg: FitConfig, epoch: int) -> bool:
    first = unfreeze_epoch(cfg.strategy, cfg.epochs)
    return first is not None and epoch >= first
