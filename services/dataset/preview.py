"""Preview thumbnails: a deterministic sample of cases, each drawn with its annotations (kernel.drawing)."""

from __future__ import annotations

import random
from typing import Any

from kernel.drawing import (  # noqa: F401 - the previews' drawing lives in the shared kernel
    PALETTE,
    class_colour,
    colour_hex,
    render_case,
    render_thumbnail,
)
from kernel.errors import InvalidArgument

DEFAULT_COUNT = 8
MAX_COUNT = 64
DEFAULT_THUMBNAIL = 128
MIN_THUMBNAIL, MAX_THUMBNAIL = 32, 512
SPLIT_NAMES = ("train", "val", "test")


def validate_preview_args(count: int, thumbnail_size: int, split: str | None) -> tuple[int, int]:
    """(count, thumbnail_size) with defaults applied for zero values; InvalidArgument otherwise."""
    violations = {}
    count = count or DEFAULT_COUNT
    size = thumbnail_size or DEFAULT_THUMBNAIL
    if not 1 <= count <= MAX_COUNT:
        violations["count"] = f"must be between 1 and {MAX_COUNT}, got {count}"
    if not MIN_THUMBNAIL <= size <= MAX_THUMBNAIL:
        violations["thumbnail_size"] = f"must be between {MIN_THUMBNAIL} and {MAX_THUMBNAIL}, got {size}"
    if split is not None and split not in SPLIT_NAMES:
        violations["split"] = f"must be train, val or test, got {split!r}"
    if violations:
        raise InvalidArgument(violations)
    return count, size


def sample_cases(
    cases: list[dict[str, Any]],
    count: int,
    seed: int,
    split: str | None = None,
    classes: set[int] | None = None,
    mask_classes: dict[str, list[int]] | None = None,
) -> list[dict[str, Any]]:
    """The same seed gives the same cases, in case-id order; `classes` keeps cases showing one of them."""
    from services.dataset.stats import case_classes

    pool = sorted(
        (
            c
            for c in cases
            if (split is None or c["split"] == split)
            and (not classes or classes & set(case_classes(c, mask_classes or {})))
        ),
        key=lambda c: c["id"],
    )
    if len(pool) <= count:
        return pool
    chosen = random.Random(seed).sample(range(len(pool)), count)
    return [pool[i] for i in sorted(chosen)]
