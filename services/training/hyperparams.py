"""Hyperparameter ranges and defaults (trainyard.common.v1.Hyperparameters).

Zero values mean "use the default". `violations` reports every bad field at once under
"<prefix>.<field>"; `resolve` fills the defaults in (image_size from the model).
"""

from __future__ import annotations

import math

from trainyard.common.v1 import common_pb2

DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_BACKBONE_LR_MULTIPLIER = 1.0
DEFAULT_WEIGHT_DECAY = 1e-4
DEFAULT_IMAGE_SIZE = 224
DEFAULT_OPTIMIZER = common_pb2.OPTIMIZER_ADAMW
DEFAULT_SEED = 42


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def violations(hp: common_pb2.Hyperparameters, prefix: str = "hyperparameters") -> dict[str, str]:
    """Every out-of-range field of hp (zero values are fine: they take the default)."""
    bad: dict[str, str] = {}

    def add(field: str, reason: str) -> None:
        bad[f"{prefix}.{field}"] = reason

    if not 0 <= hp.epochs <= 1000:
        add("epochs", f"must be in 1..1000 (0 for the default {DEFAULT_EPOCHS}), got {hp.epochs}")
    if not 0 <= hp.batch_size <= 4096:
        add("batch_size", f"must be in 1..4096 (0 for the default {DEFAULT_BATCH_SIZE}), got {hp.batch_size}")
    if not _finite(hp.learning_rate) or not 0 <= hp.learning_rate <= 10:
        add("learning_rate", f"must be in (0, 10] (0 for the default {DEFAULT_LEARNING_RATE}), got {hp.learning_rate}")
    if not _finite(hp.backbone_lr_multiplier) or not 0 <= hp.backbone_lr_multiplier <= 10:
        add("backbone_lr_multiplier", f"must be in [0, 10], got {hp.backbone_lr_multiplier}")
    if not _finite(hp.weight_decay) or not 0 <= hp.weight_decay <= 1:
        add("weight_decay", f"must be in [0, 1], got {hp.weight_decay}")
    if hp.image_size != 0 and not 16 <= hp.image_size <= 2048:
        add("image_size", f"must be in 16..2048 (0 for the model's default input size), got {hp.image_size}")
    if hp.optimizer not in common_pb2.Optimizer.values():
        add("optimizer", f"unknown optimizer {hp.optimizer}")
    epochs = hp.epochs or DEFAULT_EPOCHS
    if hp.warmup_epochs < 0 or (0 <= hp.epochs <= 1000 and hp.warmup_epochs > epochs):
        add("warmup_epochs", f"must be in 0..epochs ({epochs}), got {hp.warmup_epochs}")
    if not _finite(hp.label_smoothing) or not 0 <= hp.label_smoothing < 1:
        add("label_smoothing", f"must be in [0, 1), got {hp.label_smoothing}")
    return bad


def merge(user: common_pb2.Hyperparameters, suggested: common_pb2.Hyperparameters) -> common_pb2.Hyperparameters:
    """The suggested values, overridden by every field the user set (non-zero)."""
    out = common_pb2.Hyperparameters()
    out.CopyFrom(suggested)
    for field, value in user.ListFields():
        setattr(out, field.name, value)
    return out


def resolve(hp: common_pb2.Hyperparameters, default_image_size: int = 0) -> common_pb2.Hyperparameters:
    """A copy of hp with every zero value replaced by its default."""
    out = common_pb2.Hyperparameters()
    out.CopyFrom(hp)
    out.epochs = out.epochs or DEFAULT_EPOCHS
    out.batch_size = out.batch_size or DEFAULT_BATCH_SIZE
    out.learning_rate = out.learning_rate or DEFAULT_LEARNING_RATE
    out.backbone_lr_multiplier = out.backbone_lr_multiplier or DEFAULT_BACKBONE_LR_MULTIPLIER
    out.weight_decay = out.weight_decay or DEFAULT_WEIGHT_DECAY
    out.image_size = out.image_size or default_image_size or DEFAULT_IMAGE_SIZE
    out.optimizer = out.optimizer or DEFAULT_OPTIMIZER
    out.seed = out.seed or DEFAULT_SEED
    out.warmup_epochs = min(out.warmup_epochs, out.epochs)
    return out
