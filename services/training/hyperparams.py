"""Hyperparameter ranges and the resolution of a job's hyperparameters (trainyard.common.v1.Hyperparameters):
the one place they are checked and completed before a job is queued; the trainer takes them as they are.

Zero values mean "use the default". `request_violations` checks what a request brings (its own values over
a suggestion's, each bad value named by the message it came from) once, before anything is looked up;
`resolve` completes them: each zero field from the model's recipe on the dataset (kernel.recipes, the owner
of training defaults), then from the defaults below for what a recipe leaves open.
"""

from __future__ import annotations

import math
import re

from kernel import contract, recipes
from trainyard.common.v1 import common_pb2

# What a recipe leaves open; the recipe owns epochs, batch size, learning rate, weight decay, optimizer and sizes.
DEFAULT_BACKBONE_LR_MULTIPLIER = 1.0
DEFAULT_SEED = 42
DEFAULT_LR_SCHEDULE = common_pb2.LR_SCHEDULE_COSINE
DEFAULT_LR_STEP_GAMMA = 0.1
DEFAULT_AUGMENTATION = "standard"
DEFAULT_CLASS_WEIGHTING = common_pb2.CLASS_WEIGHTING_NONE
DEFAULT_IMAGE_SIZE = 224  # a model whose catalog entry names no input size
MAX_TIME_BUDGET_S = 7 * 24 * 3600
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Metrics each task type reports per epoch (early stopping can watch any of them).
TASK_METRICS = {
    common_pb2.TASK_TYPE_CLASSIFICATION: ("val_top1", "val_top5", "val_f1_macro", "val_loss", "train_loss"),
    common_pb2.TASK_TYPE_DETECTION: ("val_map", "val_map_50", "val_map_75", "val_mar_100", "train_loss"),
    common_pb2.TASK_TYPE_SEGMENTATION: ("val_miou", "val_pixel_acc", "val_loss", "train_loss"),
    common_pb2.TASK_TYPE_INSTANCE_SEGMENTATION: (
        "val_mask_map",
        "val_mask_map_50",
        "val_map",
        "val_map_50",
        "train_loss",
    ),
}


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def violations(hp: common_pb2.Hyperparameters, prefix: str = "hyperparameters") -> dict[str, str]:
    """Every out-of-range field of hp (zero values are fine: they take the default)."""
    bad: dict[str, str] = {}

    def add(field: str, reason: str) -> None:
        bad[f"{prefix}.{field}"] = reason

    if not 0 <= hp.epochs <= 1000:
        add("epochs", f"must be in 1..1000 (0 for the model's recipe), got {hp.epochs}")
    if not 0 <= hp.batch_size <= 4096:
        add("batch_size", f"must be in 1..4096 (0 for the model's recipe), got {hp.batch_size}")
    if not _finite(hp.learning_rate) or not 0 <= hp.learning_rate <= 10:
        add("learning_rate", f"must be in (0, 10] (0 for the model's recipe), got {hp.learning_rate}")
    if not _finite(hp.backbone_lr_multiplier) or not 0 <= hp.backbone_lr_multiplier <= 10:
        add("backbone_lr_multiplier", f"must be in [0, 10], got {hp.backbone_lr_multiplier}")
    if not _finite(hp.weight_decay) or not 0 <= hp.weight_decay <= 1:
        add("weight_decay", f"must be in [0, 1], got {hp.weight_decay}")
    if hp.image_size != 0 and not 16 <= hp.image_size <= 2048:
        add("image_size", f"must be in 16..2048 (0 for the model's default input size), got {hp.image_size}")
    if hp.optimizer not in common_pb2.Optimizer.values():
        add("optimizer", f"unknown optimizer {hp.optimizer}")
    if hp.warmup_epochs < 0 or (1 <= hp.epochs <= 1000 and hp.warmup_epochs > hp.epochs):
        add("warmup_epochs", f"must be in 0..epochs ({hp.epochs or 'the recipe'}), got {hp.warmup_epochs}")
    if not _finite(hp.label_smoothing) or not 0 <= hp.label_smoothing < 1:
        add("label_smoothing", f"must be in [0, 1), got {hp.label_smoothing}")
    if hp.lr_schedule not in common_pb2.LrSchedule.values():
        add("lr_schedule", f"unknown schedule {hp.lr_schedule}")
    if not 0 <= hp.lr_step_epochs <= 1000:
        add("lr_step_epochs", f"must be in 0..1000, got {hp.lr_step_epochs}")
    if not _finite(hp.lr_step_gamma) or not 0 <= hp.lr_step_gamma <= 1:
        add("lr_step_gamma", f"must be in (0, 1] (0 for the default {DEFAULT_LR_STEP_GAMMA}), got {hp.lr_step_gamma}")
    if not 0 <= hp.time_budget_seconds <= MAX_TIME_BUDGET_S:
        add("time_budget_seconds", f"must be in 0..{MAX_TIME_BUDGET_S} (0: no limit), got {hp.time_budget_seconds}")
    if hp.augmentation and hp.augmentation not in contract.AUGMENTATION_PRESETS:
        add(
            "augmentation",
            f"must be one of {', '.join(contract.AUGMENTATION_PRESETS)} (empty for {DEFAULT_AUGMENTATION}), got "
            f"{hp.augmentation!r}",
        )
    if hp.class_weighting not in common_pb2.ClassWeighting.values():
        add("class_weighting", f"unknown class weighting {hp.class_weighting}")
    if not 0 <= hp.early_stopping_patience <= 1000:
        add("early_stopping_patience", f"must be in 0..1000 (0: no early stopping), got {hp.early_stopping_patience}")
    if hp.early_stopping_metric and not METRIC_NAME.fullmatch(hp.early_stopping_metric):
        add(
            "early_stopping_metric",
            f"must be a metric name such as val_top1, val_map, val_miou or val_loss, got {hp.early_stopping_metric!r}",
        )
    return bad


def task_violations(hp: common_pb2.Hyperparameters, task_type: int, prefix: str = "hyperparameters") -> dict[str, str]:
    """Fields the task type cannot take: an early_stopping_metric it does not report, an image_width
    other than semantic segmentation's."""
    bad = {}
    name = hp.early_stopping_metric
    known = TASK_METRICS.get(task_type, ())
    if name and known and name not in known:
        bad[f"{prefix}.early_stopping_metric"] = (
            f"{name!r} is not a metric of this task type; one of {', '.join(known)}"
        )
    if hp.image_width and task_type != common_pb2.TASK_TYPE_SEGMENTATION:
        bad[f"{prefix}.image_width"] = "applies to semantic segmentation only (other task types keep image_size)"
    elif hp.image_width and not 16 <= hp.image_width <= 2048:
        bad[f"{prefix}.image_width"] = f"must be in 16..2048 (0 for a square of image_size), got {hp.image_width}"
    return bad


def merge(user: common_pb2.Hyperparameters, suggested: common_pb2.Hyperparameters) -> common_pb2.Hyperparameters:
    """The suggested values, overridden by every field the user set (non-zero)."""
    out = common_pb2.Hyperparameters()
    out.CopyFrom(suggested)
    for field, value in user.ListFields():
        setattr(out, field.name, value)
    return out


def request_violations(layers: list[tuple[str, common_pb2.Hyperparameters]], task_type: int) -> dict[str, str]:
    """The one check of the values a request brings, each in the message it came from ("hyperparameters",
    "suggestion.hyperparameters"), before anything is looked up. A preset's and the recipe's values are the
    platform's own; a warm-up longer than the merged epochs is cut to them by `resolve`."""
    bad: dict[str, str] = {}
    for prefix, hp in layers:
        bad |= violations(hp, prefix)
        if task_type in contract.TASK_NAMES:
            bad |= task_violations(hp, task_type, prefix)
    return bad


def resolve(
    hp: common_pb2.Hyperparameters,
    default_image_size: int = 0,
    recipe: common_pb2.Hyperparameters | None = None,
) -> common_pb2.Hyperparameters:
    """A copy of hp with every zero field filled: from the recipe (the model's on the dataset; without one, the
    generic recipe of kernel.recipes), then the defaults above. The job a trainer gets is complete."""
    if recipe is None:
        recipe = recipes.default_hyperparameters("", (), image_size=default_image_size)
    out = merge(hp, recipe)
    out.image_size = out.image_size or default_image_size or DEFAULT_IMAGE_SIZE
    out.backbone_lr_multiplier = out.backbone_lr_multiplier or DEFAULT_BACKBONE_LR_MULTIPLIER
    out.seed = out.seed or DEFAULT_SEED
    out.lr_schedule = out.lr_schedule or DEFAULT_LR_SCHEDULE
    out.lr_step_gamma = out.lr_step_gamma or DEFAULT_LR_STEP_GAMMA
    out.augmentation = out.augmentation or DEFAULT_AUGMENTATION
    out.class_weighting = out.class_weighting or DEFAULT_CLASS_WEIGHTING
    out.warmup_epochs = min(out.warmup_epochs, out.epochs)
    return out


MAX_PROCESSES_PER_NODE = 64
MAX_NODES = 64
MAX_WORLD_SIZE = 256


def resources_violations(
    resources: common_pb2.ComputeResources, batch_size: int | None = None, prefix: str = "resources"
) -> dict[str, str]:
    """Out-of-range ComputeResources; with the resolved batch_size, also a global batch that does not
    split evenly over the processes (each takes batch_size / world size samples per step)."""
    bad: dict[str, str] = {}
    if not 0 <= resources.processes_per_node <= MAX_PROCESSES_PER_NODE:
        bad[f"{prefix}.processes_per_node"] = (
            f"must be in 1..{MAX_PROCESSES_PER_NODE} (0 for one), got {resources.processes_per_node}"
        )
    if not 0 <= resources.nodes <= MAX_NODES:
        bad[f"{prefix}.nodes"] = f"must be in 1..{MAX_NODES} (0 for one), got {resources.nodes}"
    if bad:
        return bad
    world = contract.world_size(resources)
    if world > MAX_WORLD_SIZE:
        bad[f"{prefix}.processes_per_node"] = (
            f"nodes x processes_per_node must be at most {MAX_WORLD_SIZE}, got {resources.nodes} x "
            f"{resources.processes_per_node} = {world}"
        )
    elif batch_size is not None and world > 1 and batch_size % world:
        bad[f"{prefix}.processes_per_node"] = (
            f"batch_size {batch_size} is the global batch and must divide by the {world} processes "
            f"(nodes x processes_per_node); use a batch_size that is a multiple of {world}"
        )
    return bad
