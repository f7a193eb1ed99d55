"""Rank zoo models for a task: plain functions over the zoo's Model messages.

The score mixes four normalised factors whose weights depend on the training preference:
published accuracy, cost (GFLOPs), size (parameters) and weight availability. Dataset
statistics and the data type adjust the hyperparameters and a few factors. Every factor
that moved the score is written into the suggestion's rationale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2
from trainyard.recommend.v1 import recommend_pb2

Pref = common_pb2.TrainingPreference

# Factor weights per preference: (accuracy, cost, size).
WEIGHTS = {
    Pref.TRAINING_PREFERENCE_FASTEST: (0.2, 0.7, 0.1),
    Pref.TRAINING_PREFERENCE_BALANCED: (0.5, 0.35, 0.15),
    Pref.TRAINING_PREFERENCE_MOST_ACCURATE: (0.85, 0.1, 0.05),
    Pref.TRAINING_PREFERENCE_SMALLEST: (0.2, 0.1, 0.7),
}

# Sustained training throughput assumed per device class, in GFLOP/s of forward compute
# (a training step costs about 3x the forward pass). Rough until measured tables exist.
DEVICE_GFLOPS = {"cpu": 40.0, "gpu": 4000.0}


@dataclass(frozen=True)
class DatasetStats:
    """What the ranking needs to know about the dataset."""

    train_cases: int = 0
    num_classes: int = 0
    # Ratio of the largest to the smallest class count (1 = balanced).
    imbalance: float = 1.0


def _reference_top1(model: modelzoo_pb2.Model) -> float | None:
    for metric in model.reference_metrics:
        if metric.name in ("top1", "acc@1", "imagenet_top1"):
            return metric.value / 100.0 if metric.value > 1 else metric.value
    return None


def _reference_quality(model: modelzoo_pb2.Model) -> float | None:
    top1 = _reference_top1(model)
    if top1 is not None:
        return top1
    for metric in model.reference_metrics:  # detection / segmentation: mAP or mIoU
        if metric.value > 0:
            return metric.value / 100.0 if metric.value > 1 else metric.value
    return None


def _log_scale(value: float, low: float, high: float) -> float:
    """Map value onto [0, 1] on a log scale between low and high (clipped)."""
    if value <= 0 or high <= low:
        return 0.5
    return min(1.0, max(0.0, (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))))


def suggest_hyperparameters(
    model: modelzoo_pb2.Model, stats: DatasetStats, preference: int, device_class: str
) -> tuple[common_pb2.Hyperparameters, common_pb2.TransferStrategy.ValueType, list[str]]:
    notes: list[str] = []
    image_size = model.default_input_size or 224
    if preference == Pref.TRAINING_PREFERENCE_FASTEST and device_class == "cpu":
        image_size = min(image_size, 160)
        notes.append(f"image size {image_size} to keep CPU epochs short")
    if stats.train_cases and stats.train_cases < 1000:
        epochs = 15
        strategy = common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL
        notes.append(f"{stats.train_cases} training images: fine-tune all layers for {epochs} epochs")
    elif stats.train_cases >= 50000:
        epochs = 8
        strategy = common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL
        notes.append(f"{stats.train_cases} training images: fewer epochs ({epochs}) suffice")
    else:
        epochs = 10
        strategy = common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL
    if stats.train_cases and stats.train_cases < 100:
        strategy = common_pb2.TRANSFER_STRATEGY_LINEAR_PROBE
        notes.append("under 100 training images: linear probe to avoid overfitting")
    batch = 64 if device_class == "gpu" else 16
    if stats.train_cases:
        batch = max(2, min(batch, stats.train_cases // 4 or 2))
    hp = common_pb2.Hyperparameters(
        epochs=epochs,
        batch_size=batch,
        learning_rate=1e-3,
        backbone_lr_multiplier=0.1 if strategy == common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL else 0.0,
        weight_decay=0.05,
        image_size=image_size,
        optimizer=common_pb2.OPTIMIZER_ADAMW,
        warmup_epochs=1 if epochs >= 5 else 0,
    )
    return hp, strategy, notes


def seconds_per_epoch(model: modelzoo_pb2.Model, image_size: int, stats: DatasetStats, device_class: str) -> float:
    default = model.default_input_size or 224
    gflops = (model.gflops or 1.0) * (image_size / default) ** 2
    images = stats.train_cases or 1000
    return 3.0 * gflops * images / DEVICE_GFLOPS.get(device_class, DEVICE_GFLOPS["cpu"])


def rank(
    models: list[modelzoo_pb2.Model],
    *,
    preference: int,
    data_type: int,
    stats: DatasetStats,
    device_class: str = "cpu",
    max_params: int = 0,
    max_training_seconds: float = 0.0,
    limit: int = 5,
) -> list[recommend_pb2.Suggestion]:
    """Score every candidate and return the best `limit`, highest score first."""
    if preference == Pref.TRAINING_PREFERENCE_UNSPECIFIED:
        preference = Pref.TRAINING_PREFERENCE_BALANCED
    w_acc, w_cost, w_size = WEIGHTS[preference]
    candidates = [m for m in models if not max_params or m.num_params <= max_params]
    if not candidates:
        return []
    scored: list[tuple[float, recommend_pb2.Suggestion]] = []
    for model in candidates:
        factors: list[str] = []
        quality = _reference_quality(model)
        # Fixed scales, so scores compare across requests: quality 0.5..0.9, 0.01..100 GFLOPs, 1M..500M params.
        acc = 0.5 if quality is None else min(1.0, max(0.0, (quality - 0.5) / 0.4))
        cost = 1.0 - _log_scale(model.gflops, 0.01, 100.0) if model.gflops > 0 else 0.5
        size = 1.0 - _log_scale(model.num_params, 1e6, 5e8)
        score = w_acc * acc + w_cost * cost + w_size * size
        factors.append(f"published quality {quality:.3f}" if quality is not None else "no published quality")
        factors.append(f"{model.gflops:.2f} GFLOPs, {model.num_params / 1e6:.1f}M parameters")

        status = model.weight_status
        if status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE:
            factors.append("pre-trained weights are in the store")
        elif status == modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE:
            score -= 0.1
            factors.append("weights importable from an installed source (import before training)")
        else:
            # Transfer learning needs weights: a model without them ranks below every model with them.
            score -= 1.0
            factors.append("no pre-trained weights available: would train from scratch")

        small_data = stats.train_cases and stats.train_cases < 2000
        if small_data and model.num_params > 50e6:
            score -= 0.1
            factors.append(f"large network for {stats.train_cases} training images (overfitting risk)")
        if data_type in (common_pb2.DATA_TYPE_MEDICAL, common_pb2.DATA_TYPE_MICROSCOPY) and "imagenet" in (
            model.pretrain_dataset or ""
        ):
            factors.append("ImageNet features transfer less directly to medical/microscopy images")

        hp, strategy, notes = suggest_hyperparameters(model, stats, preference, device_class)
        per_epoch = seconds_per_epoch(model, hp.image_size, stats, device_class)
        if max_training_seconds and per_epoch * hp.epochs > max_training_seconds:
            continue
        low, high = _quality_band(quality, stats)
        suggestion = recommend_pb2.Suggestion(
            model_id=model.id,
            pretrain_dataset=model.pretrain_dataset,
            transfer_strategy=strategy,
            hyperparameters=hp,
            score=round(max(0.0, min(1.0, score)), 4),
            factors=factors + notes,
            expected_seconds_per_epoch=round(per_epoch, 2),
            expected_quality_low=low,
            expected_quality_high=high,
        )
        scored.append((score, suggestion))

    scored.sort(key=lambda pair: (-pair[0], pair[1].model_id))
    best = [s for _, s in scored[:limit]]
    label = common_pb2.TrainingPreference.Name(preference).removeprefix("TRAINING_PREFERENCE_").lower()
    for position, suggestion in enumerate(best, start=1):
        suggestion.rationale = f"#{position} for preference '{label}': " + "; ".join(suggestion.factors[:3]) + "."
    return best


def _quality_band(reference: float | None, stats: DatasetStats) -> tuple[float, float]:
    """A wide band: transfer quality tracks the source quality, less so with little or imbalanced data."""
    base = reference if reference is not None else 0.6
    spread = 0.25 if not stats.train_cases or stats.train_cases < 500 else 0.15
    if stats.imbalance > 5:
        spread += 0.1
    return round(max(0.0, base - spread), 3), round(min(1.0, base + spread / 2), 3)
