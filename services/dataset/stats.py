"""Statistics of a dataset version, from its manifest cases (plain, no I/O).

    stats = compute(cases, classes, grayscale={sha, ...}, mask_classes={mask_sha: [class, ...]}, rejected=[...])

`cases` are manifest case dicts (label / boxes / mask_key). The result is a JSON-able dict stored with
the version; keys starting with "_" carry per-image facts that later versions reuse.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import numpy as np

SMALL, LARGE = 32 * 32, 96 * 96  # COCO area thresholds


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"min": 0.0, "p5": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0, "mean": 0.0}
    arr = np.asarray(values, dtype=np.float64)
    p5, p50, p95 = np.percentile(arr, [5, 50, 95])
    return {
        "min": float(arr.min()),
        "p5": float(p5),
        "p50": float(p50),
        "p95": float(p95),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
    }


def _signature(case: dict[str, Any]) -> str:
    if "label" in case:
        return f"label:{case['label']}"
    if "mask_key" in case:
        return f"mask:{case['mask_key']}"
    return json.dumps(sorted((b["class"], b["bbox"]) for b in case.get("boxes") or ()))


def case_classes(case: dict[str, Any], mask_classes: dict[str, list[int]]) -> list[int]:
    """Class index of every annotation of a case (one per label, box, or class shown in the mask)."""
    if "label" in case:
        return [case["label"]]
    if "boxes" in case:
        return [b["class"] for b in case["boxes"]]
    if "mask_key" in case:
        return list(mask_classes.get(case["mask_key"].rsplit("/", 1)[-1], []))
    return []


def compute(
    cases: list[dict[str, Any]],
    classes: list[str],
    *,
    grayscale: set[str] | None = None,
    mask_classes: dict[str, list[int]] | None = None,
    rejected: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    grayscale = grayscale or set()
    mask_classes = mask_classes or {}
    images: Counter = Counter()
    instances: Counter = Counter()
    objects_per_image: list[float] = []
    small = medium = large = empty = 0
    detection = any("boxes" in c for c in cases)
    for case in cases:
        found = case_classes(case, mask_classes)
        instances.update(found)
        images.update(set(found))
        if "boxes" in case:
            objects_per_image.append(len(case["boxes"]))
            if not case["boxes"]:
                empty += 1
            for b in case["boxes"]:
                x0, y0, x1, y1 = b["bbox"]
                area = (x1 - x0) * (y1 - y0)
                if area < SMALL:
                    small += 1
                elif area < LARGE:
                    medium += 1
                else:
                    large += 1
    counts = [instances.get(i, 0) for i in range(len(classes))]
    positive = [c for c in counts if c > 0]
    imbalance = (max(counts) / min(counts)) if counts and min(counts) > 0 else 0.0
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for case in cases:
        groups[case["sha256"]].append(case)
    duplicates = conflicts = leaks = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        if len({_signature(m) for m in members}) > 1:
            conflicts += 1
        else:
            duplicates += 1
        if len({m["split"] for m in members}) > 1:
            leaks += 1
    return {
        "classes": [
            {"index": i, "name": n, "image_count": images.get(i, 0), "instance_count": counts[i]}
            for i, n in enumerate(classes)
        ],
        "imbalance_ratio": round(imbalance, 4) if positive else 0.0,
        "width": percentiles([c["width"] for c in cases]),
        "height": percentiles([c["height"] for c in cases]),
        "grayscale_fraction": (sum(1 for c in cases if c["sha256"] in grayscale) / len(cases)) if cases else 0.0,
        "objects_per_image": percentiles(objects_per_image) if detection else percentiles([]),
        "small_boxes": small,
        "medium_boxes": medium,
        "large_boxes": large,
        "empty_images": empty,
        "duplicate_groups": duplicates,
        "conflict_groups": conflicts,
        "leak_groups": leaks,
        "rejected_files": [{"path": p, "reason": r} for p, r in (rejected or [])[:1000]],
        "_grayscale": sorted(grayscale & {c["sha256"] for c in cases}),
        "_mask_classes": {k: v for k, v in mask_classes.items()},
    }
