"""An import's warnings about its cases: exact duplicates (kept or dropped), duplicates across splits, and the
cap on how many are listed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from services.dataset.import_types import ImportedCase

MAX_LISTED_WARNINGS = 50


def _annotation_signature(case: ImportedCase) -> str:
    if case.label is not None:
        return f"label:{case.label}"
    if case.mask_sha256 is not None:
        return f"mask:{case.mask_sha256}"
    return "boxes:" + json.dumps(sorted((b["class"], b["bbox"]) for b in case.boxes or ()))


def _drop_duplicates(cases: list[ImportedCase], warnings: list[str]) -> list[ImportedCase]:
    """The cases without exact duplicates within a split (same image bytes, same annotations): the first by
    source path stays. Counting an image twice weighs it twice in training and in the split's metrics."""
    kept: list[ImportedCase] = []
    first: dict[tuple[str, str, str], ImportedCase] = {}
    dropped: list[tuple[ImportedCase, ImportedCase]] = []
    for case in cases:
        key = (case.split, case.sha256, _annotation_signature(case))
        if key in first:
            dropped.append((case, first[key]))
        else:
            first[key] = case
            kept.append(case)
    if dropped:
        per_split = Counter(case.split for case, _ in dropped)
        examples = "; ".join(f"{c.source_path!r} = {k.source_path!r}" for c, k in dropped[:3])
        warnings.append(
            f"dropped {len(dropped)} exact duplicate case(s) within their split (drop_duplicates: "
            + ", ".join(f"{split} {n}" for split, n in sorted(per_split.items()))
            + f"), e.g. {examples}"
        )
        for i, case in enumerate(kept):
            case.id = f"c{i + 1:06d}"
    return kept


def _duplicate_warnings(cases: list[ImportedCase], classes: list[str]) -> list[str]:
    groups: dict[str, list[ImportedCase]] = defaultdict(list)
    for case in cases:
        groups[case.sha256].append(case)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        if members[0].label is not None:
            names = ", ".join(f"{m.source_path!r} ({classes[m.label]})" for m in members[:5])
        else:
            names = ", ".join(repr(m.source_path) for m in members[:5])
        if len({_annotation_signature(m) for m in members}) > 1:
            what = "labels" if members[0].label is not None else "annotations"
            out.append(f"conflict: the same image has different {what}: {names}")
        else:
            splits = {m.split for m in members}
            hint = " (drop_duplicates keeps one)" if len(splits) < len(members) else ""
            out.append(f"duplicate: {len(members)} identical images: {names}{hint}")
    return out


def _leak_warnings(cases: list[ImportedCase]) -> list[str]:
    splits_of: dict[str, set[str]] = defaultdict(set)
    paths: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        splits_of[case.sha256].add(case.split)
        paths[case.sha256].append(case.source_path)
    return [
        f"leak: the same image is in several splits ({', '.join(sorted(splits_of[sha]))}): "
        + ", ".join(repr(p) for p in paths[sha][:5])
        for sha in splits_of
        if len(splits_of[sha]) > 1
    ]


def cap_warnings(warnings: list[str]) -> list[str]:
    """The warnings a version shows (the import report keeps them all)."""
    if len(warnings) <= MAX_LISTED_WARNINGS:
        return warnings
    return [*warnings[:MAX_LISTED_WARNINGS], f"... and {len(warnings) - MAX_LISTED_WARNINGS} more warning(s)"]
