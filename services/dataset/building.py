"""Building the cases of a layout: images decoded and stored by sha256, masks stored or rasterised,
splits assigned (stratified), warnings collected; a bad file rejects the import or, when asked, only itself.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from services.dataset import formats
from services.dataset.archive import _Archive, _Entry
from services.dataset.images import ImageError, decode_image, is_grayscale
from services.dataset.import_types import (
    FORMAT_COCO,
    FORMAT_MASK_FOLDER,
    FORMAT_VOC,
    FORMAT_YOLO,
    IN_MEMORY_BUDGET,
    SMALL_IMAGE_BYTES,
    SPOOL_ENTRY_BYTES,
    ImportedCase,
    ImportLimits,
    ImportOptions,
    ImportResult,
    StoredImage,
    _bad,
    rejection_error,
    task_types_for,
)
from services.dataset.import_warnings import _drop_duplicates, _duplicate_warnings, _leak_warnings

log = logging.getLogger(__name__)


def assign_splits(
    labels: list[int], groups: list[str], val_fraction: float, test_fraction: float, seed: int
) -> list[str]:
    """Deterministic stratified split. Cases sharing a group (identical images) share a split;
    a group counts for the class of its first case; a class with one group stays in train."""
    first_label: dict[str, int] = {}
    for label, group in zip(labels, groups, strict=True):
        first_label.setdefault(group, label)
    per_class: dict[int, list[str]] = defaultdict(list)
    for group, label in first_label.items():
        per_class[label].append(group)
    rng = random.Random(seed)
    split_of: dict[str, str] = {}
    for label in sorted(per_class):
        members = sorted(per_class[label])
        rng.shuffle(members)
        n = len(members)
        n_val = _portion(n, val_fraction)
        n_test = _portion(n, test_fraction)
        while n_val + n_test > n - 1:  # keep at least one training example per class
            if n_test >= n_val and n_test > 0:
                n_test -= 1
            else:
                n_val -= 1
        for i, group in enumerate(members):
            split_of[group] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return [split_of[g] for g in groups]


def _portion(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 2:
        return 0
    return max(1, int(n * fraction + 0.5))


def _build(
    archive: _Archive,
    workdir: Path,
    layout: formats.Layout,
    options: ImportOptions,
    limits: ImportLimits,
    warnings: list[str],
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    warnings.extend(layout.warnings)
    rejected: list[tuple[str, str]] = list(layout.rejected)
    items = [it for it in layout.items if it.entry is not None]
    given = any(item.split is not None for item in items)
    ignore = layout.ignore_index if layout.ignore_index is not None else options.ignore_index

    # decode every image (and mask) once, in archive order: tar.gz reads forward only
    needed: dict[str, tuple[_Entry, str]] = {}
    for it in items:
        needed[it.entry.name] = (it.entry, "image")
        if it.mask is not None:
            needed[it.mask.name] = (it.mask, "mask")
    decoded: dict[str, tuple[str, int, int]] = {}  # entry name -> sha, width, height
    failed: dict[str, str] = {}
    stored: dict[str, StoredImage] = {}
    masks: dict[str, StoredImage] = {}
    mask_values: dict[str, list[int]] = {}
    grey: set[str] = set()
    in_memory = 0
    total = len(needed)
    for done, (entry, kind) in enumerate(sorted(needed.values(), key=lambda pair: pair[0].index)):
        if progress is not None and (done % 25 == 0 or done == total - 1):
            progress(done, total)
        # a large entry goes to a file in chunks and is decoded from there, never held whole in memory
        spooled = archive.extract(entry, workdir / ".entry") if entry.size >= SPOOL_ENTRY_BYTES else None
        data = spooled if spooled is not None else archive.read(entry)
        try:
            if kind == "image":
                image = decode_image(data, max_pixels=limits.max_image_pixels)
                if image.sha256 not in stored:
                    target = workdir / image.sha256
                    size = image.size
                    keep = spooled is None and size <= SMALL_IMAGE_BYTES and in_memory + size <= IN_MEMORY_BUDGET
                    if keep:
                        in_memory += size
                    elif image.data is None and spooled is not None:
                        spooled.replace(target)  # the original bytes, kept
                    else:
                        target.write_bytes(image.data)
                    stored[image.sha256] = StoredImage(
                        image.sha256, target, size, image.content_type, data=image.data if keep else None
                    )
                    if is_grayscale(target if image.data is None else image.data):
                        grey.add(image.sha256)
                decoded[entry.name] = (image.sha256, image.width, image.height)
            else:
                sha, w, h, values = _store_mask(data, workdir, layout, ignore, limits)
                masks.setdefault(
                    sha, StoredImage(sha, workdir / sha, (workdir / sha).stat().st_size, "image/png", "mask")
                )
                mask_values[sha] = values
                decoded[entry.name] = (sha, w, h)
        except (ImageError, formats.CaseError) as exc:
            failed[entry.name] = str(exc)
        finally:
            if spooled is not None:
                spooled.unlink(missing_ok=True)
        del data

    classes = list(layout.classes)
    if layout.format == FORMAT_MASK_FOLDER and layout.classes_from_masks:
        top = max((v for vals in mask_values.values() for v in vals if v != ignore), default=0)
        classes = [f"class_{i}" for i in range(top + 1)]
        warnings.append(f"no class list (classes.txt or data.yaml) given; named the {len(classes)} mask values class_N")
    index_of = {name: i for i, name in enumerate(classes)}

    good: list[tuple[formats.Item, dict]] = []  # item, annotation fields
    clipped_total = 0
    unlabelled: list[tuple[str, str]] = []  # (case, split) whose mask is all ignore
    for it in sorted(items, key=lambda it: it.entry.name):
        name = it.entry.name
        try:
            if name in failed:
                raise formats.CaseError(failed[name])
            if it.error:
                raise formats.CaseError(it.error)
            sha, w, h = decoded[name]
            fields: dict = {}
            if it.label is not None:
                fields["label"] = index_of[it.label]
            if it.objects is not None:
                boxes, clipped = formats.finalise_objects(it.objects, w, h)
                clipped_total += clipped
                fields["boxes"] = boxes
            if it.mask is not None:
                if it.mask.name in failed:
                    raise formats.CaseError(f"mask {it.mask.name}: {failed[it.mask.name]}")
                msha, mw, mh = decoded[it.mask.name]
                if (mw, mh) != (w, h):
                    raise formats.CaseError(f"mask {it.mask.name} is {mw}x{mh} but the image is {w}x{h}")
                bad = [v for v in mask_values[msha] if v != ignore and v >= len(classes)]
                if bad:
                    raise formats.CaseError(
                        f"mask {it.mask.name} has value(s) {bad[:5]} that are not class indices "
                        f"(0..{len(classes) - 1}) nor the ignore index {ignore}"
                    )
                if mask_values[msha] and all(v == ignore for v in mask_values[msha]):
                    unlabelled.append((name, it.split or "unsplit"))
                    continue
                fields["mask_sha256"] = msha
        except formats.CaseError as exc:
            reason = str(exc)
            src = f" ({it.source})" if it.source and it.source not in reason else ""
            rejected.append((name, reason + src))
            continue
        good.append((it, fields))
    if clipped_total:
        warnings.append(f"clipped {clipped_total} box(es) that reached outside their image to the image border")
    if unlabelled:
        # e.g. Cityscapes' gtFine/test: its labels are withheld, the masks mark only the ego vehicle and
        # the image border, which are ignored; such a case teaches and measures nothing
        by_split = Counter(split for _, split in unlabelled)
        warnings.append(
            f"left out {len(unlabelled)} case(s) whose mask has no labelled pixel (all ignore {ignore}; "
            + ", ".join(f"{k}: {v}" for k, v in sorted(by_split.items()))
            + f"), e.g. {unlabelled[0][0]!r}"
        )
    rasterised = options.task == "segmentation" and (
        layout.format in (FORMAT_COCO, FORMAT_YOLO)
        or (layout.format == FORMAT_VOC and "polygon" in layout.annotation_types)
    )
    if rasterised:  # instances -> one class-index mask per image; class 0 is the background
        classes = ["background", *classes]
        for i, (it, fields) in enumerate(good):
            try:
                _, w, h = decoded[it.entry.name]
                sha, values = _rasterise(fields.get("boxes") or [], w, h, workdir)
            except formats.CaseError as exc:
                rejected.append((it.entry.name, f"{exc} ({it.source})"))
                good[i] = (it, {})
                continue
            masks.setdefault(sha, StoredImage(sha, workdir / sha, (workdir / sha).stat().st_size, "image/png", "mask"))
            mask_values[sha] = values
            good[i] = (it, {"mask_sha256": sha})
        good = [(it, f) for it, f in good if f]
        layout.annotation_types = ["mask"]

    if rejected and not options.accept_partial:
        raise rejection_error(rejected, warnings)
    if rejected:
        warnings.append(
            f"skipped {len(rejected)} bad case(s) (accept_partial): "
            + "; ".join(f"{f}: {r}" for f, r in rejected[:10])
            + (" ..." if len(rejected) > 10 else "")
        )
    if not good:
        raise _bad("the dataset would be empty: no case could be imported")
    if given and not any(it.split == "train" for it, _ in good):
        raise _bad("the archive has splits but no cases in train")

    shas = [decoded[it.entry.name][0] for it, _ in good]
    strata = [_stratum(fields, mask_values) for _, fields in good]
    if given:
        splits = [it.split or "train" for it, _ in good]
        if "val" not in splits and options.val_fraction > 0:
            # e.g. Kaggle's train/ + test/: validation (best checkpoint, early stopping) needs a val split,
            # and the given test split stays untouched for the final evaluation
            train = [i for i, split in enumerate(splits) if split == "train"]
            carved = assign_splits(
                [strata[i] for i in train], [shas[i] for i in train], options.val_fraction, 0.0, options.split_seed
            )
            for i, split in zip(train, carved, strict=True):
                splits[i] = split
            moved = carved.count("val")
            if moved:
                warnings.append(
                    f"the archive has no val split; moved {moved} of {len(train)} train case(s) to val "
                    f"(val_fraction {options.val_fraction:g}, stratified)"
                )
    else:
        splits = assign_splits(strata, shas, options.val_fraction, options.test_fraction, options.split_seed)
    cases = [
        ImportedCase(
            id=f"c{i + 1:06d}",
            source_path=it.entry.name,
            sha256=sha,
            width=decoded[it.entry.name][1],
            height=decoded[it.entry.name][2],
            split=split,
            label=fields.get("label"),
            boxes=fields.get("boxes"),
            mask_sha256=fields.get("mask_sha256"),
        )
        for i, ((it, fields), sha, split) in enumerate(zip(good, shas, splits, strict=True))
    ]
    if options.drop_duplicates:
        cases = _drop_duplicates(cases, warnings)
    warnings.extend(_duplicate_warnings(cases, classes))
    if given:
        warnings.extend(_leak_warnings(cases))
    used_masks = {c.mask_sha256 for c in cases if c.mask_sha256}
    used_images = {c.sha256 for c in cases}
    annotation_types = list(layout.annotation_types)
    if (
        layout.format in (FORMAT_COCO, FORMAT_YOLO)
        and not rasterised
        and not any(b.get("polygons") or b.get("rle") for c in cases for b in c.boxes or ())
    ):
        annotation_types = [a for a in annotation_types if a != "polygon"] or ["box"]
    if options.task and options.task not in task_types_for(annotation_types):
        raise _bad(
            f"the data has {', '.join(annotation_types)} annotations ({layout.format}), which cannot train "
            f"{options.task}; it can train {', '.join(task_types_for(annotation_types))}",
            "metadata.task_type",
        )
    log.info(
        "archive imported",
        extra={"format": layout.format, "archive_type": archive.kind, "cases": len(cases), "classes": len(classes)},
    )
    return ImportResult(
        layout.format,
        archive.kind,
        classes,
        cases,
        {k: v for k, v in stored.items() if k in used_images},
        warnings,
        annotation_types,
        masks={k: v for k, v in masks.items() if k in used_masks},
        ignore_index=ignore if layout.format == FORMAT_MASK_FOLDER or rasterised else None,
        rejected=rejected,
        mask_classes={k: [v for v in vals if v != ignore] for k, vals in mask_values.items() if k in used_masks},
        grayscale=grey & used_images,
    )


def _stratum(fields: dict, mask_values: dict[str, list[int]]) -> int:
    if "label" in fields:
        return fields["label"]
    if fields.get("boxes"):
        return Counter(b["class"] for b in fields["boxes"]).most_common(1)[0][0]
    if fields.get("mask_sha256"):
        vals = mask_values.get(fields["mask_sha256"], [])
        return max(vals) if vals else -1
    return -1


def _store_mask(
    data: bytes | Path, workdir: Path, layout: formats.Layout, ignore: int, limits: ImportLimits
) -> tuple[str, int, int, list[int]]:
    """Decode a mask (bytes, or a file for a large one) to class indices, write it as a single-channel PNG;
    (sha, w, h, values present)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(data if isinstance(data, Path) else io.BytesIO(data))
        if im.width * im.height > limits.max_image_pixels:
            raise ImageError(f"mask is {im.width}x{im.height}, over the limit of {limits.max_image_pixels} pixels")
        im.load()
    except UnidentifiedImageError:
        raise ImageError("mask is not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot decode mask: {exc}") from None
    index = formats.apply_value_map(formats.mask_to_index(im, layout.colour_map, ignore), layout)
    values = sorted(int(v) for v in np.unique(index))
    if values and (values[0] < 0 or values[-1] > 255):
        raise formats.CaseError(f"mask values {values[0]}..{values[-1]} do not fit 0..255")
    buf = io.BytesIO()
    Image.fromarray(index.astype(np.uint8), "L").save(buf, format="PNG")
    out = buf.getvalue()
    sha = hashlib.sha256(out).hexdigest()
    target = workdir / sha
    if not target.exists():
        target.write_bytes(out)
    return sha, im.width, im.height, values


def _rasterise(boxes: list[dict], width: int, height: int, workdir: Path) -> tuple[str, list[int]]:
    """Draw instances (largest first, so small ones stay visible) into a class-index PNG (class + 1)."""
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    out = np.zeros((height, width), np.uint8)
    shapes = []
    for box in boxes:
        if box.get("polygons"):
            rles = mask_utils.frPyObjects(box["polygons"], height, width)
            m = mask_utils.decode(mask_utils.merge(rles))
        elif box.get("rle"):
            m = mask_utils.decode({"size": box["rle"]["size"], "counts": box["rle"]["counts"].encode()})
        else:
            raise formats.CaseError("a box without a polygon or RLE cannot be rasterised into a segmentation mask")
        shapes.append((int(m.sum()), box["class"] + 1, m.astype(bool)))
    for _, value, m in sorted(shapes, key=lambda s: -s[0]):
        out[m] = value
    buf = io.BytesIO()
    Image.fromarray(out, "L").save(buf, format="PNG")
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    target = workdir / sha
    if not target.exists():
        target.write_bytes(data)
    return sha, sorted(int(v) for v in np.unique(out))
