"""Dataset statistics as inputs of the recipe (kernel.recipes) and the ranking, read from a
Dataset's version message.

Counts (train/val cases, classes, per-class counts) come from the dataset version every dataset
service version returns. Richer statistics (image size percentiles, grayscale fraction, objects per
image, COCO small/medium/large box counts) come from DatasetVersion.statistics when the dataset
service fills it; fields are read by name through the descriptor, so an older dataset service (no
such message or field) degrades to "unknown" instead of failing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from google.protobuf.message import Message


@dataclass(frozen=True)
class DatasetStats:
    """What the ranking needs to know about the dataset; None means unknown."""

    train_cases: int = 0
    val_cases: int = 0
    num_classes: int = 0
    # Ratio of the largest to the smallest class count (1 = balanced).
    imbalance: float = 1.0
    # Median image width and height in pixels.
    median_width: float | None = None
    median_height: float | None = None
    # Fraction of images that are grayscale.
    grayscale_fraction: float | None = None
    # Mean objects (boxes) per image, detection and instance segmentation.
    objects_per_image: float | None = None
    # Fraction of boxes that are COCO "small" (< 32x32 px).
    small_object_fraction: float | None = None

    @property
    def median_side(self) -> float | None:
        if self.median_width and self.median_height:
            return min(self.median_width, self.median_height)
        return None

    def vector(self) -> tuple[float, ...]:
        """Features for similarity between datasets (unknown values are neutral)."""
        return (
            math.log10(max(self.train_cases, 1)),
            math.log10(max(self.num_classes, 1)),
            math.log10(max(self.imbalance, 1.0)),
            math.log10(self.median_side or 224) - math.log10(224),
            self.grayscale_fraction if self.grayscale_fraction is not None else 0.0,
        )

    def describe(self) -> list[str]:
        lines = []
        if self.train_cases:
            lines.append(f"{self.train_cases} training / {self.val_cases} validation images")
        if self.num_classes:
            lines.append(f"{self.num_classes} classes, imbalance ratio {self.imbalance:.1f}")
        if self.median_side:
            lines.append(f"median image {self.median_width:.0f}x{self.median_height:.0f} px")
        else:
            lines.append("image resolution unknown (no statistics from the dataset service)")
        if self.grayscale_fraction is not None:
            lines.append(f"{self.grayscale_fraction:.0%} grayscale images")
        if self.objects_per_image is not None:
            lines.append(f"{self.objects_per_image:.1f} objects per image")
        if self.small_object_fraction is not None:
            lines.append(f"{self.small_object_fraction:.0%} small objects (< 32x32 px)")
        return lines


def similarity(a: DatasetStats, b: DatasetStats) -> float:
    """1 for identical statistics, falling towards 0 as sizes, class counts, resolution or colour differ."""
    scale = (1.0, 0.7, 0.5, 0.3, 0.5)  # a factor of 10 in size counts as much as a factor of 5 in classes ...
    distance = math.sqrt(sum(((x - y) / s) ** 2 for x, y, s in zip(a.vector(), b.vector(), scale, strict=True)))
    return math.exp(-distance)


def _field(message: Message | None, name: str):
    """A field's value when the message has that field (and, for messages, it is set); else None."""
    if message is None or name not in message.DESCRIPTOR.fields_by_name:
        return None
    try:
        if not message.HasField(name):
            return None
    except ValueError:  # a scalar or repeated field: no presence, its value is the answer
        pass
    return getattr(message, name)


def _p50(percentiles: Message | None) -> float | None:
    value = _field(percentiles, "p50")
    return float(value) if value else None


def from_dataset(dataset: Message) -> DatasetStats:
    return from_version(dataset.latest_version)


def from_version(version: Message) -> DatasetStats:
    counts = [c.count for c in version.classes if c.count > 0]
    imbalance = max(counts) / min(counts) if counts else 1.0
    statistics = _field(version, "statistics")  # DatasetStatistics, when the dataset service fills it
    if statistics is None:
        return DatasetStats(
            train_cases=version.split_counts.train,
            val_cases=version.split_counts.val,
            num_classes=len(version.classes),
            imbalance=imbalance,
        )
    stated = _field(statistics, "imbalance_ratio") or 0.0
    boxes = [_field(statistics, f"{size}_boxes") or 0 for size in ("small", "medium", "large")]
    per_image = _field(statistics, "objects_per_image")
    has_boxes = sum(boxes) > 0
    return DatasetStats(
        train_cases=version.split_counts.train,
        val_cases=version.split_counts.val,
        num_classes=len(version.classes),
        imbalance=stated if stated >= 1 else imbalance,
        median_width=_p50(_field(statistics, "width")),
        median_height=_p50(_field(statistics, "height")),
        grayscale_fraction=_field(statistics, "grayscale_fraction"),
        objects_per_image=float(_field(per_image, "mean") or 0.0) if has_boxes and per_image is not None else None,
        small_object_fraction=boxes[0] / sum(boxes) if has_boxes else None,
    )
