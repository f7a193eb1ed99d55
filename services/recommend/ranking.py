"""Rank zoo models for a task: plain functions over the zoo's Model messages (no torch, no network).

A candidate's score mixes three normalised factors whose weights depend on the training preference:

- quality: its expected quality on this dataset: the published reference quality (for a network without
  pre-trained weights, counted only in proportion to the dataset's size: _scratch_prior), pulled towards
  what the same network or family achieved on similar datasets of the project (outcomes.py);
- time: expected training time (every epoch plus validation) from the measured throughput table of
  the device class (throughput.py), for the dataset's size at the suggested image size;
- size: parameters.

Weight availability, dataset statistics (size, classes, imbalance, resolution, grayscale fraction,
object sizes) and the data type adjust the score and the hyperparameters. Every factor is written
into the suggestion, the deciding ones (largest contributions) first in its rationale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kernel import recipes
from kernel.datasetstats import DatasetStats, similarity
from kernel.errors import FailedPrecondition
from services.recommend.outcomes import QUALITY_METRICS, Outcome, evidence, quality_metric
from services.recommend.throughput import TABLE_DIR, Estimate, ThroughputTable, load_tables, table_for
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2
from trainyard.recommend.v1 import recommend_pb2

__all__ = ["DatasetStats", "rank", "suggest_hyperparameters"]

Pref = common_pb2.TrainingPreference

# Factor weights per preference: (quality, time, size).
WEIGHTS = {
    Pref.TRAINING_PREFERENCE_FASTEST: (0.1, 0.85, 0.05),
    Pref.TRAINING_PREFERENCE_BALANCED: (0.55, 0.35, 0.10),
    Pref.TRAINING_PREFERENCE_MOST_ACCURATE: (0.85, 0.1, 0.05),
    Pref.TRAINING_PREFERENCE_SMALLEST: (0.2, 0.1, 0.7),
}
# Assumed dataset size when the request names none.
DEFAULT_TRAIN_CASES = 1000
# Networks without pre-trained weights (_scratch_prior): a neutral expected quality, and the dataset size
# from which the published quality counts fully again.
SCRATCH_QUALITY = 0.5
SCRATCH_FULL_CASES = 100_000
# A trained model of the project whose images were of another kind than asked for scores this much less.
TRAINED_OTHER_DOMAIN_PENALTY = 0.3
TRAINED_PREFIX = "trained/"
_TABLES: dict[str, ThroughputTable] | None = None


def default_table(device_class: str) -> ThroughputTable:
    """The committed (or installation-measured) table for a device class, loaded once."""
    global _TABLES
    if _TABLES is None:
        _TABLES = load_tables(TABLE_DIR)
    return table_for(_TABLES, device_class)


@dataclass
class _Factor:
    text: str
    contribution: float = 0.0  # signed score contribution; the largest magnitudes decide


# The published metric that says how good a model is at each task type, in order of preference.
REFERENCE_METRICS = {
    "classification": ("top1", "acc@1", "imagenet_top1"),
    "detection": ("box_map", "map"),
    "instance_segmentation": ("mask_map", "box_map", "map"),
    "segmentation": ("miou",),
}
# Where the published figures of each task type lie (weakest, strongest zoo model): quality is a model's
# place in that range, so a COCO box mAP of 0.33 and an ImageNet top-1 of 0.72 compare within their task.
QUALITY_RANGE = {
    "classification": (0.5, 0.95),
    "detection": (0.15, 0.5),
    "instance_segmentation": (0.15, 0.45),
    "segmentation": (0.4, 0.75),
}
# A prior without any published figure, as a fraction of the task's range.
UNKNOWN_QUALITY = 0.25


def _published(model: modelzoo_pb2.Model, task_type: str) -> float | None:
    for name in REFERENCE_METRICS.get(task_type, ()):
        for metric in model.reference_metrics:
            if metric.name == name and metric.value > 0:
                return metric.value / 100.0 if metric.value > 1 else metric.value
    return None


def _mobile(model: modelzoo_pb2.Model) -> bool:
    """A light backbone (MobileNet, EfficientNet): the class a head's published figure depends on most."""
    name = f"{model.backbone} {model.architecture}".lower()
    return any(light in name for light in ("mobilenet", "efficientnet", "mnasnet", "shufflenet"))


def head_references(models: Sequence[modelzoo_pb2.Model], task_type: str) -> dict[tuple[str, bool], tuple[float, str]]:
    """Per head family and backbone class (light or not), the best published quality of the zoo's models
    of that family at their full input size (torchvision's fasterrcnn_mobilenet_v3_large_fpn for a Faster
    R-CNN on a light backbone). A combo of a head on another backbone has no figure of its own, and the
    ImageNet top-1 of its backbone says nothing about its head."""
    best: dict[tuple[str, bool], tuple[int, float, str]] = {}
    for model in models:
        value = _published(model, task_type)
        if value is None or model.backbone_model_id or "_320" in model.architecture:
            continue
        key = (model.family, _mobile(model))
        # the family's first recipe (its smallest model), not a later improved one (v2: more epochs, tricks)
        if key not in best or model.num_params < best[key][0]:
            best[key] = (model.num_params, value, model.id)
    return {key: (value, model_id) for key, (_, value, model_id) in best.items()}


def _head_reference(
    model: modelzoo_pb2.Model, heads: dict[tuple[str, bool], tuple[float, str]]
) -> tuple[float, str] | None:
    """A combo's expected quality from its head family's figure on the same backbone class; a family
    published only on the other class is scaled by the light/heavy ratio of the families published on both."""
    mobile = _mobile(model)
    if model.family == "mask_rcnn" and (model.family, mobile) not in heads:
        # on boxes alone Mask R-CNN trains as Faster R-CNN: its box figure came with mask supervision
        model = modelzoo_pb2.Model(family="faster_rcnn", backbone=model.backbone, architecture=model.architecture)
    if (model.family, mobile) in heads:
        value, source = heads[(model.family, mobile)]
        return value, f" (of its head, as {source})"
    if (model.family, not mobile) not in heads:
        return None
    ratios = [
        heads[(family, True)][0] / heads[(family, False)][0]
        for family, light in heads
        if light and (family, False) in heads
    ]
    if not ratios:
        return None
    ratio = sorted(ratios)[len(ratios) // 2]
    ratio = ratio if mobile else 1 / ratio
    value, source = heads[(model.family, not mobile)]
    return (
        value * ratio,
        f" (of its head, as {source}, scaled {ratio:.2f} for its {'light' if mobile else 'heavy'} backbone)",
    )


# On a small dataset a one-stage detection head is expected at this fraction of the two-stage head's figure on
# the same backbone class, whatever its own COCO figure. Those figures come from 12+ epochs over 118k images;
# in the steps a small set gives, focal-loss heads (every anchor point's score starting from a 0.01 prior, at
# half the two-stage learning rate in torchvision's recipes) are far from them: on PennFudan (136 training
# photos) FCOS on MobileNetV2 had mAP 0.000 after its first epoch (SGD 0.0025 at batch 4 with a warm-up
# epoch; 0.3 img/s on a shared 2-core machine, against 1.7 measured alone); fine-tuning a detector on a small set is the two-stage recipe (torchvision's tutorial,
# few-shot detection's TFA).
ONE_STAGE_ON_SMALL_DATA = 0.75


def _reference_quality(
    model: modelzoo_pb2.Model,
    task_type: str = "classification",
    heads: dict | None = None,
    stats: DatasetStats | None = None,
) -> tuple[float | None, str]:
    """The model's own published quality for the task type, else its head family's (dense tasks); a
    one-stage detection head on a small dataset at most ONE_STAGE_ON_SMALL_DATA of the two-stage figure."""
    own = _published(model, task_type)
    if own is not None:
        return own, ""
    if task_type != "classification" and heads:
        found = _head_reference(model, heads)
        if found is not None:
            return _one_stage_on_small_data(model, found, heads, stats)
    return None, ""


def _one_stage_on_small_data(
    model: modelzoo_pb2.Model, found: tuple[float, str], heads: dict, stats: DatasetStats | None
) -> tuple[float, str]:
    train = stats.train_cases if stats else 0
    if model.family not in recipes.ONE_STAGE_DETECTORS or not train or train >= recipes.SMALL_DATASET_CASES:
        return found
    two_stage = _head_reference(modelzoo_pb2.Model(family="faster_rcnn", backbone=model.backbone), heads)
    if two_stage is None or found[0] <= two_stage[0] * ONE_STAGE_ON_SMALL_DATA:
        return found
    return (
        two_stage[0] * ONE_STAGE_ON_SMALL_DATA,
        f" (a one-stage head on {train} training images: {ONE_STAGE_ON_SMALL_DATA:g}x the two-stage head's "
        f"figure{two_stage[1]}, not its own {found[0]:.3f})",
    )


def _quality(expected: float, task_type: str) -> float:
    low, high = QUALITY_RANGE.get(task_type, QUALITY_RANGE["classification"])
    return min(1.0, max(0.0, (expected - low) / (high - low)))


def _log_scale(value: float, low: float, high: float) -> float:
    """Map value onto [0, 1] on a log scale between low and high (clipped)."""
    if value <= 0 or high <= low:
        return 0.5
    return min(1.0, max(0.0, (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))))


def suggest_hyperparameters(
    model: modelzoo_pb2.Model,
    stats: DatasetStats,
    preference: int,
    device_class: str,
    data_type: int = 0,
    task_type: str = "classification",
) -> tuple[common_pb2.Hyperparameters, common_pb2.TransferStrategy.ValueType, list[str]]:
    """The suggestion's hyperparameters: the model's recipe on this dataset (kernel.recipes, the
    same the training service fills in when the model is chosen by hand)."""
    r = recipes.recipe(model, task_type, stats, preference, device_class, data_type)
    return r.hyperparameters, r.transfer_strategy, r.notes


def pixel_side(hp: common_pb2.Hyperparameters, stats: DatasetStats, task_type: str) -> int:
    """The side of a square with the pixels a run's images have: segmentation trains at image_size x
    image_width, a detector keeps its images' aspect (the shorter side at image_size)."""
    if task_type == "segmentation":
        return round(math.sqrt(hp.image_size * (hp.image_width or hp.image_size)))
    if task_type in ("detection", "instance_segmentation") and stats.median_side:
        aspect = max(stats.median_width, stats.median_height) / stats.median_side
        return round(hp.image_size * math.sqrt(min(aspect, recipes.MAX_ASPECT)))
    return hp.image_size


def _estimate(table: ThroughputTable, model: modelzoo_pb2.Model, side: int) -> Estimate:
    return table.estimate(model.library, model.architecture, model.gflops, model.default_input_size, side)


def epoch_seconds(estimate: Estimate, stats: DatasetStats) -> float:
    train = stats.train_cases or DEFAULT_TRAIN_CASES
    val = stats.val_cases or max(1, train // 5)
    return train / estimate.train_images_per_second + val / estimate.eval_images_per_second


def run_seconds(estimate: Estimate, stats: DatasetStats, hp: common_pb2.Hyperparameters, strategy: int) -> float:
    """Every planned epoch with its validation, and the linear probe's one pass over train and val (early
    stopping may end a run sooner)."""
    total = epoch_seconds(estimate, stats) * hp.epochs
    if strategy in (common_pb2.TRANSFER_STRATEGY_PROBE_THEN_FINE_TUNE, common_pb2.TRANSFER_STRATEGY_LINEAR_PROBE):
        train = stats.train_cases or DEFAULT_TRAIN_CASES
        total += (train + (stats.val_cases or max(1, train // 5))) / estimate.eval_images_per_second
    return total


def rank(
    models: Sequence[modelzoo_pb2.Model],
    *,
    preference: int,
    data_type: int,
    stats: DatasetStats,
    device_class: str = "cpu",
    max_params: int = 0,
    max_training_seconds: float = 0.0,
    max_latency_ms: float = 0.0,
    limit: int = 5,
    task_type: str = "classification",
    table: ThroughputTable | None = None,
    outcomes: Sequence[Outcome] = (),
    dataset_id: str = "",
) -> list[recommend_pb2.Suggestion]:
    """Score every candidate and return the best `limit`, highest score first. The project's trained
    models (trained/<task id>) are judged by what they measured on their own data (_trained_prior).

    Raises FailedPrecondition naming the constraint when candidates exist but none meets the constraints.
    """
    if preference == Pref.TRAINING_PREFERENCE_UNSPECIFIED:
        preference = Pref.TRAINING_PREFERENCE_BALANCED
    table = table or default_table(device_class)
    w_quality, w_time, w_size = WEIGHTS[preference]
    metric_name = QUALITY_METRICS.get(task_type, ("quality",))[0]
    dropped = {"max_params": 0, "max_training_seconds": 0, "max_latency_ms": 0}
    catalog = {m.id: m for m in models}
    tasks = {o.task_id: o for o in outcomes}
    scored: list[tuple[float, recommend_pb2.Suggestion]] = []
    heads = head_references(models, task_type)
    for model in models:
        if max_params and model.num_params > max_params:
            dropped["max_params"] += 1
            continue
        factors: list[_Factor] = []
        hp, strategy, notes = suggest_hyperparameters(model, stats, preference, device_class, data_type, task_type)
        side = pixel_side(hp, stats, task_type)
        estimate = _estimate(table, model, side)
        per_epoch = epoch_seconds(estimate, stats)
        total = run_seconds(estimate, stats, hp, strategy)
        latency_ms = 1000.0 / estimate.eval_images_per_second
        if max_training_seconds and total > max_training_seconds:
            dropped["max_training_seconds"] += 1
            continue
        if max_latency_ms and latency_ms > max_latency_ms:
            dropped["max_latency_ms"] += 1
            continue

        status = model.weight_status
        trained = model.id.startswith(TRAINED_PREFIX)
        # a trained model's "reference metrics" are its own final metrics (best_epoch among them), never a
        # published quality: it is judged by what it measured on its own data instead
        reference, reference_source = (None, "") if trained else _reference_quality(model, task_type, heads, stats)
        from_scratch = status not in (modelzoo_pb2.WEIGHT_STATUS_IN_STORE, modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE)
        low, high = QUALITY_RANGE.get(task_type, QUALITY_RANGE["classification"])
        prior = reference if reference is not None else low + UNKNOWN_QUALITY * (high - low)
        scratch_note = ""
        if trained:
            prior, trained_factors = _trained_prior(
                model, catalog.get(model.base_model_id), tasks.get(model.task_id), stats, dataset_id, data_type,
                task_type,
            )  # fmt: skip
        elif from_scratch:
            prior, scratch_note = _scratch_prior(prior, stats)
        seen = evidence(list(outcomes), model.id, stats, task_type) if outcomes and not trained else None
        expected = seen.blend(prior) if seen else prior
        quality = _quality(expected, task_type)
        if trained:
            measured_text, penalty, domain_text = trained_factors
            factors.append(_Factor(measured_text, w_quality * quality))
            factors.append(_Factor(domain_text, penalty))
        elif seen:
            factors.append(
                _Factor(
                    f"learned from {seen.count} finished task(s) on similar data: achieved {metric_name} "
                    f"{seen.quality:.3f} (weight {seen.weight:.2f}); expected quality {prior:.3f} -> {expected:.3f}",
                    w_quality * quality,
                )
            )
        elif from_scratch:
            factors.append(_Factor(scratch_note, w_quality * quality))
        elif reference is not None:
            factors.append(
                _Factor(f"published reference quality {reference:.3f}{reference_source}", w_quality * quality)
            )
        else:
            factors.append(_Factor(f"no published quality (assumed {prior:.2f})", w_quality * quality))

        time_score = 1.0 - _log_scale(total, 1.0, 1e5)
        factors.append(
            _Factor(
                f"expected {per_epoch:.1f} s/epoch, at most {total / 60:.1f} min for {hp.epochs} epochs on "
                f"{device_class} at {hp.image_size}"
                + (f"x{hp.image_width}" if hp.image_width else "")
                + f" px ({estimate.source}: {estimate.basis}; early stopping may end it sooner)",
                w_time * time_score,
            )
        )
        size_score = 1.0 - _log_scale(model.num_params, 1e6, 5e8)
        factors.append(
            _Factor(f"{model.num_params / 1e6:.1f}M parameters, {model.gflops:.2f} GFLOPs", w_size * size_score)
        )
        score = w_quality * quality + w_time * time_score + w_size * size_score
        if trained:
            score += trained_factors[1]

        if status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE:
            factors.append(_Factor("pre-trained weights are in the store"))
        elif status == modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE:
            score -= 0.1
            factors.append(_Factor("weights importable from an installed source (import before training)", -0.1))
        else:
            # Transfer learning needs weights: a model without them ranks below every model with them.
            score -= 1.0
            factors.append(_Factor("no pre-trained weights available: would train from scratch", -1.0))

        if stats.train_cases and stats.train_cases < 2000 and model.num_params > 50e6:
            score -= 0.1
            factors.append(_Factor(f"large network for {stats.train_cases} training images (overfitting risk)", -0.1))
        if (stats.small_object_fraction or 0.0) > 0.3 and task_type != "classification":
            if "fpn" in model.architecture or "fpn" in model.id:
                score += 0.05
                factors.append(_Factor("feature pyramid suits the many small objects", 0.05))
        if data_type in (common_pb2.DATA_TYPE_MEDICAL, common_pb2.DATA_TYPE_MICROSCOPY) and "imagenet" in (
            model.pretrain_dataset or ""
        ):  # fmt: skip
            factors.append(_Factor("ImageNet features transfer less directly to medical/microscopy images"))

        low, high = _quality_band(expected, stats, data_type, seen.weight if seen else 0.0)
        ordered = sorted(factors, key=lambda f: -abs(f.contribution))
        suggestion = recommend_pb2.Suggestion(
            model_id=model.id,
            pretrain_dataset=model.pretrain_dataset,
            transfer_strategy=strategy,
            hyperparameters=hp,
            score=round(max(0.0, min(1.0, score)), 4),
            factors=[f.text for f in ordered] + notes,
            expected_seconds_per_epoch=round(per_epoch, 2),
            expected_quality_low=low,
            expected_quality_high=high,
            expected_training_seconds=round(total, 1),
            throughput_source=estimate.source,
            quality_metric=metric_name,
            outcomes_used=seen.count if seen else 0,
            expected_latency_ms=round(latency_ms, 3),
            data_type=data_type,
            preference=preference,
            dataset_id=dataset_id,
        )
        scored.append((score, suggestion))

    if not scored and any(dropped.values()):
        reasons = ", ".join(f"{name} excluded {n}" for name, n in dropped.items() if n)
        raise FailedPrecondition(f"no zoo model meets the constraints ({reasons} of {len(models)} candidates)")
    scored.sort(key=lambda pair: (-pair[0], pair[1].model_id))
    best = [s for _, s in scored[:limit]]
    label = common_pb2.TrainingPreference.Name(preference).removeprefix("TRAINING_PREFERENCE_").lower()
    constraints = [f"device class {device_class}"]
    if max_params:
        constraints.append(f"at most {max_params / 1e6:g}M parameters")
    if max_training_seconds:
        constraints.append(f"training within {max_training_seconds:g} s")
    if max_latency_ms:
        constraints.append(f"inference within {max_latency_ms:g} ms/image")
    for position, suggestion in enumerate(best, start=1):
        suggestion.rank = position
        suggestion.rationale = (
            f"#{position} for preference '{label}'. Deciding factors: "
            + "; ".join(suggestion.factors[:3])
            + f". Expected {suggestion.quality_metric} {suggestion.expected_quality_low:.2f}-"
            f"{suggestion.expected_quality_high:.2f}"
            + (f" (from {suggestion.outcomes_used} past task(s))" if suggestion.outcomes_used else " (prior only)")
            + f". Time estimate {suggestion.throughput_source}. Constraints: {', '.join(constraints)}."
        )
    return best


def _data_type_name(data_type: int) -> str:
    value = data_type or common_pb2.DATA_TYPE_NATURAL_PHOTO  # unspecified means natural photos
    return common_pb2.DataType.Name(value).removeprefix("DATA_TYPE_").lower().replace("_", " ")


def _trained_prior(
    model: modelzoo_pb2.Model,
    base: modelzoo_pb2.Model | None,
    task: Outcome | None,
    stats: DatasetStats,
    dataset_id: str,
    data_type: int,
    task_type: str,
) -> tuple[float, tuple[str, float, str]]:
    """Expected quality of retraining one of the project's trained models on this dataset, with its factors
    (quality text, score adjustment, domain text).

    What it measured on its own data counts in proportion to how alike that data is to this dataset (fully
    on the same dataset; datasetstats.similarity otherwise, 0.5 when its task is not known); the rest comes
    from the network it started from (its published quality, UNKNOWN_QUALITY of the task's range without
    one). Trained on another kind of
    images than asked for (data type; unspecified is natural photos), its features fit other data: it ranks
    below the catalog's networks with pre-trained weights.
    """
    measured = quality_metric(task_type, dict(model.metrics))
    low, high = QUALITY_RANGE.get(task_type, QUALITY_RANGE["classification"])
    published = _reference_quality(base, task_type)[0] if base is not None else None
    base_quality = published or low + UNKNOWN_QUALITY * (high - low)
    if dataset_id and model.dataset_id == dataset_id:
        sim, how = 1.0, "the same dataset"
    elif task is not None:
        sim = similarity(stats, task.stats)
        how = f"data {sim:.0%} alike"
    else:
        sim, how = 0.5, "data of unknown likeness"
    if measured is None:
        prior = base_quality
        text = f"trained model without a measured quality; its network's expected quality {prior:.3f}"
    else:
        metric, value = measured
        prior = sim * value + (1.0 - sim) * base_quality
        text = (
            f"measured {metric} {value:.3f} on its own data (dataset {model.dataset_id}; {how}): "
            f"expected quality {prior:.3f}"
        )
    theirs = task.data_type if task is not None else 0
    if _data_type_name(theirs) != _data_type_name(data_type):
        return prior, (
            text,
            -TRAINED_OTHER_DOMAIN_PENALTY,
            f"trained on {_data_type_name(theirs)} images, not {_data_type_name(data_type)}: its features fit "
            "other data",
        )
    return prior, (text, 0.0, f"trained on {_data_type_name(theirs)} images, like these")


def _scratch_prior(reference: float, stats: DatasetStats) -> tuple[float, str]:
    """Expected quality of a network trained from random initialisation on this dataset.

    A published reference quality was reached with pre-training or hundreds of epochs on ImageNet-size
    data; on a small dataset from scratch it says little about which network ends up better. It counts in
    proportion to the dataset's size (fully from SCRATCH_FULL_CASES training images on) against a
    neutral SCRATCH_QUALITY, so for small data the time and size factors decide.
    """
    cases = stats.train_cases or DEFAULT_TRAIN_CASES
    share = min(1.0, cases / SCRATCH_FULL_CASES)
    prior = share * reference + (1.0 - share) * SCRATCH_QUALITY
    return prior, (
        f"from scratch on {cases} training images: the published quality {reference:.3f} counts {share:.0%} "
        f"(expected {prior:.3f})"
    )


def _quality_band(expected: float, stats: DatasetStats, data_type: int, evidence_weight: float) -> tuple[float, float]:
    """Wide without evidence (less data, imbalance, far domains widen it); narrows with similar outcomes."""
    spread = 0.25 if not stats.train_cases or stats.train_cases < 500 else 0.15
    if stats.imbalance > 5:
        spread += 0.1
    if data_type in (common_pb2.DATA_TYPE_MEDICAL, common_pb2.DATA_TYPE_MICROSCOPY) or (
        (stats.grayscale_fraction or 0.0) > 0.8
    ):
        spread += 0.05
    spread = max(0.03, spread / (1.0 + evidence_weight))
    return round(max(0.0, expected - spread), 3), round(min(1.0, expected + spread / 2), 3)
