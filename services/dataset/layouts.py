"""Finding an archive's layout: ImageFolder, CSV or file-name labels for classification, and the choice
between the annotation layouts services.dataset.formats reads (COCO, VOC, PASCAL text, YOLO, masks).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import PurePosixPath

from kernel.errors import InvalidArgument
from services.dataset import formats
from services.dataset.archive import _Archive, _Entry, _read_small, _safe_name
from services.dataset.images import IMAGE_EXTENSIONS, is_image_name
from services.dataset.import_types import (
    FORMAT_AUTO,
    FORMAT_COCO,
    FORMAT_CSV,
    FORMAT_IMAGE_FOLDER,
    FORMAT_MASK_FOLDER,
    FORMAT_VOC,
    FORMAT_YOLO,
    SPLIT_ALIASES,
    ImportOptions,
    _bad,
    task_types_for,
)

log = logging.getLogger(__name__)

CSV_FILE_COLUMNS = ("file", "filename", "file_name", "path", "filepath", "file_path", "image", "image_path", "img")


CSV_LABEL_COLUMNS = ("label", "class", "class_name", "category", "target", "labels")


CSV_SPLIT_COLUMNS = ("split", "subset", "set", "fold")


ANNOTATION_EXTENSIONS = (".txt", ".xml", ".yaml", ".yml", ".names", ".csv")


MAX_CACHED_ANNOTATION = 1024 * 1024


_Item = formats.Item  # entry, label, split


def _strip_wrapper(paths: list[str]) -> int:
    """Number of leading folders that merely wrap everything (a single top folder)."""
    depth = 0
    split_parts = [p.split("/") for p in paths]
    while split_parts:
        tops = {parts[depth] for parts in split_parts}
        if len(tops) != 1 or min(len(parts) for parts in split_parts) - depth < 3:
            break
        if formats.split_name(next(iter(tops))):
            break
        depth += 1
    return depth


def _image_folder(images: list[_Entry], warnings: list[str]) -> list[_Item]:
    """<class>/<image>, or <split>/<class>/<image> at any depth: the class is the folder right under the
    last split folder on the path (so a duplicated copy such as chest_xray/chest_xray/train/... still
    reads right), else the top folder. Falls back to labels in file names (cat.1.jpg, Abyssinian_12.jpg)."""
    depth = _strip_wrapper([e.name for e in images])
    rel = {e.name: e.name.split("/")[depth:] for e in images}
    has_split = any(formats.split_name(p) for parts in rel.values() for p in parts[:-1])
    if not has_split:
        images, rel = _without_nested_copies(images, rel, warnings)
    items: list[_Item] = []
    loose: list[_Entry] = []
    for entry in images:
        parts = rel[entry.name]
        if has_split:
            last = max((i for i, p in enumerate(parts[:-1]) if formats.split_name(p)), default=None)
            if last is None or last + 2 > len(parts) - 1:
                loose.append(entry)
                continue
            items.append(_Item(entry, parts[last + 1], formats.split_name(parts[last])))
        else:
            if len(parts) < 2:
                loose.append(entry)
                continue
            items.append(_Item(entry, parts[0], None))
    if len({it.label for it in items}) < 2:
        named = _labels_from_file_names(images)
        if named is not None:
            warnings.append(
                f"no class folders; took the labels of {len(named)} image(s) from their file names "
                "(<label>.<n>.jpg or <label>_<n>.jpg)"
            )
            return named
    if loose:
        where = "<split>/<class>/" if has_split else "<class>/"
        names = ", ".join(repr(e.name) for e in loose[:3])
        warnings.append(f"ignored {len(loose)} image(s) outside {where} folders, e.g. {names}")
    return items


def _without_nested_copies(
    images: list[_Entry], rel: dict[str, list[str]], warnings: list[str]
) -> tuple[list[_Entry], dict[str, list[str]]]:
    """Leave out a top folder that repeats the class folders beside it file for file (Kaggle's brain tumour
    set: yes/, no/ and brain_tumor_dataset/{yes,no}/ holding the same files), which would otherwise be a
    class of its own holding every image again. A folder whose files differ keeps its images, labelled by
    their own class folder."""
    top: dict[str, dict[tuple[str, ...], int]] = defaultdict(dict)
    for entry in images:
        parts = rel[entry.name]
        if len(parts) >= 2:
            top[parts[0]][tuple(parts[1:])] = entry.size
    classes = {name for name, files in top.items() if all(len(k) == 1 for k in files)}
    copies: dict[str, bool] = {}  # folder -> its files are all in the class folders beside it
    for name, files in top.items():
        inner = {k[0] for k in files if len(k) == 2}
        if len(inner) < 2 or not inner <= classes - {name} or any(len(k) != 2 for k in files):
            continue
        copies[name] = all(top[cls].get((file,)) == size for (cls, file), size in files.items())
    if not copies:
        return images, rel
    kept, relabelled = [], dict(rel)
    for entry in images:
        parts = rel[entry.name]
        if parts[0] in copies:
            if copies[parts[0]]:
                continue
            relabelled[entry.name] = parts[1:]
        kept.append(entry)
    for name, same in sorted(copies.items()):
        inner = sorted({k[0] for k in top[name]})
        if same:
            warnings.append(f"left out {name}/: a copy of the class folders {', '.join(inner)} (the same files)")
        else:
            warnings.append(f"{name}/ repeats the class folders {', '.join(inner)}: its images keep those classes")
    return kept, relabelled


_FILE_NAME_LABEL = re.compile(r"^(.*?[A-Za-z].*?)[._\- ]*\(?\d+\)?$")


def _labels_from_file_names(images: list[_Entry]) -> list[_Item] | None:
    """Labels from names like cat.123.jpg or american_bulldog_12.jpg (Kaggle Dogs vs Cats, Oxford-IIIT
    Pet), when that gives at least two classes of at least two images each; images whose name is only
    a number (an unlabelled test folder) are left out."""
    labelled: list[_Item] = []
    for entry in images:
        stem = PurePosixPath(entry.name).stem
        m = _FILE_NAME_LABEL.match(stem)
        if m is not None:
            split = formats.split_from_path(str(PurePosixPath(entry.name).parent) + "/x")
            labelled.append(_Item(entry, m.group(1).strip("._- "), split))
    counts = Counter(it.label for it in labelled)
    if len(counts) < 2 or min(counts.values()) < 2 or len(counts) * 2 > len(labelled):
        return None
    return labelled


def _pick_csv(csvs: list[_Entry], forced: bool) -> _Entry | None:
    if not csvs:
        return None
    if len(csvs) == 1:
        return csvs[0]
    named = [e for e in csvs if PurePosixPath(e.name).name.lower() in ("labels.csv", "annotations.csv")]
    if len(named) == 1:
        return named[0]
    if forced:
        names = ", ".join(repr(e.name) for e in csvs[:5])
        raise _bad(f"several CSV files ({names}); keep one labels.csv with file,label rows")
    return None


def _csv_rows(entry: _Entry, data: bytes) -> list[tuple[int, list[str]]]:
    try:
        reader = csv.reader(io.StringIO(formats.decode_text(data)))
        rows = []
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, [cell.strip() for cell in row]))
        return rows
    except csv.Error as exc:
        raise _bad(f"{entry.name}: not a valid CSV file: {exc}") from None


def _csv_items(
    entry: _Entry, data: bytes, images: list[_Entry], warnings: list[str], *, forced: bool
) -> list[_Item] | None:
    """Items of a CSV layout; None when (auto-detecting) the CSV does not describe the images."""
    rows = _csv_rows(entry, data)
    if not rows:
        if forced:
            raise _bad(f"{entry.name}: the CSV file has no rows")
        return None
    by_name = {e.name: e for e in images}
    base = str(PurePosixPath(entry.name).parent)
    base = "" if base == "." else base

    def resolve(cell: str) -> _Entry | None:
        path = _safe_name(cell)
        for candidate in (
            f"{base}/{path}" if base else path,
            path,
            f"{base}/images/{path}" if base else f"images/{path}",
        ):
            if candidate in by_name:
                return by_name[candidate]
        return None

    first = [c.lower() for c in rows[0][1]]
    file_col, label_col, split_col = 0, 1, None
    header = any(c in CSV_FILE_COLUMNS or c in CSV_LABEL_COLUMNS for c in first) or (
        not is_image_name(rows[0][1][0]) and len(rows) > 1 and is_image_name(rows[1][1][0])
    )
    if header:
        file_col = next((i for i, c in enumerate(first) if c in CSV_FILE_COLUMNS), 0)
        label_col = next((i for i, c in enumerate(first) if c in CSV_LABEL_COLUMNS and i != file_col), None)
        if label_col is None:
            label_col = 1 if file_col == 0 else 0
        split_col = next((i for i, c in enumerate(first) if c in CSV_SPLIT_COLUMNS), None)
        rows = rows[1:]
    if not forced:
        resolved = sum(1 for _, row in rows if len(row) > max(file_col, label_col) and resolve(row[file_col]))
        if resolved == 0 or resolved * 2 < len(rows):
            return None
    items: list[_Item] = []
    seen: dict[str, tuple[int, str]] = {}
    for line, row in rows:
        where = f"{entry.name} line {line}"
        if len(row) <= max(file_col, label_col):
            raise _bad(f"{where}: expected file,label columns, got {len(row)} column(s)")
        cell, label = row[file_col], row[label_col]
        if not label:
            raise _bad(f"{where}: empty label for {cell!r}")
        _safe_name(cell)
        image = resolve(cell)
        if image is None:
            raise _bad(f"{where}: {cell!r} is not an image in the archive")
        split = None
        if split_col is not None:
            value = row[split_col].lower() if len(row) > split_col else ""
            if value not in SPLIT_ALIASES:
                raise _bad(f"{where}: split {value!r} is not one of train, val, test")
            split = SPLIT_ALIASES[value]
        if image.name in seen:
            prev_line, prev_label = seen[image.name]
            if prev_label != label:
                raise _bad(
                    f"{where}: {cell!r} is listed again with label {label!r} (line {prev_line} says {prev_label!r})"
                )
            warnings.append(f"{where}: {cell!r} is listed twice; the repeat was ignored")
            continue
        seen[image.name] = (line, label)
        items.append(_Item(image, label, split))
    unlisted = len(images) - len(seen)
    if unlisted > 0:
        warnings.append(f"ignored {unlisted} image(s) not listed in {entry.name}")
    return items


def _detect_layout(
    archive: _Archive, images: list[_Entry], options: ImportOptions, warnings: list[str]
) -> formats.Layout:
    fmt = options.format
    # documentation is never an annotation: PennFudanPed's readme.txt quotes an example annotation file
    files = [e for e in archive.files if not formats.is_documentation(e.name)]
    # Small annotation files are read once, in archive order, before any parser looks at them: a
    # tar.gz reads forward only, and parsers visit label files in image order (one rewind per read).
    cache: dict[str, bytes] = {}
    for entry in sorted(files, key=lambda e: e.index):
        if entry.name.lower().endswith(ANNOTATION_EXTENSIONS) and entry.size <= MAX_CACHED_ANNOTATION:
            cache[entry.name] = archive.read(entry)

    def read(entry: _Entry) -> bytes:
        data = cache.get(entry.name)
        return data if data is not None else _read_small(archive, entry)

    def coco(forced: bool) -> formats.Layout | None:
        docs = []
        for entry in formats.coco_json_candidates(files):
            doc = formats.try_json(read(entry))
            if formats.looks_like_coco(doc):
                docs.append((entry, doc))
            elif forced and doc is None and entry.size > 0:
                raise _bad(f"{entry.name}: not valid JSON")
        if docs:
            return formats.parse_coco(docs, images)
        if forced:
            raise _bad("format is COCO but no JSON file has 'images' and 'annotations'", "metadata.format")
        return None

    def voc_xml(forced: bool) -> formats.Layout | None:
        xmls = []
        for entry in files:
            if entry.name.lower().endswith(".xml"):
                root = formats.voc_root(read(entry))
                if root is not None:
                    xmls.append((entry, root))
        if xmls:
            return formats.parse_voc(xmls, images, files, read)
        if forced and not any(e.name.lower().endswith(".txt") and formats.is_pascal_text(read(e)) for e in files):
            raise _bad(
                "format is Pascal VOC but no XML file has an <annotation> root and no .txt file is a "
                "PASCAL Annotation Version 1.00 file",
                "metadata.format",
            )
        return None

    def pascal_text(forced: bool) -> formats.Layout | None:
        texts = [
            (entry, formats.decode_text(read(entry)))
            for entry in files
            if entry.name.lower().endswith(".txt") and formats.is_pascal_text(read(entry))
        ]
        return formats.parse_pascal_text(texts, images, read) if texts else None

    def yolo(forced: bool) -> formats.Layout | None:
        labels = formats.yolo_txts(files)
        paired = sum(1 for im in images if formats.yolo_label_for(im.name, labels) is not None)
        if forced or (paired and paired * 2 >= len(labels)):
            return formats.parse_yolo(images, files, read)
        return None

    def masks(forced: bool) -> formats.Layout | None:
        if forced:
            return formats.parse_masks(images, files, read, options.ignore_index)
        return formats.mask_layout(images, files, read, options.ignore_index)

    finders = {
        FORMAT_COCO: (coco,),
        FORMAT_VOC: (voc_xml, pascal_text),
        FORMAT_YOLO: (yolo,),
        FORMAT_MASK_FOLDER: (masks,),
    }
    if fmt in finders:
        for finder in finders[fmt]:
            layout = _guarded(finder, True)
            if layout is not None:
                return layout
    if fmt != FORMAT_AUTO:
        return _classification_layout(archive, images, options, warnings, read)
    # Auto: every layout the archive holds is a candidate, then one is chosen (_choose_layout).
    found: list[formats.Layout] = []
    failed: list[InvalidArgument] = []
    for finder in (coco, voc_xml, pascal_text, yolo, masks):
        try:
            layout = _guarded(finder, False)
        except InvalidArgument as exc:
            failed.append(exc)
            continue
        if layout is not None:
            found.append(layout)
    return _choose_layout(found, failed, archive, images, options, warnings, read)


def _guarded(finder: Callable[[bool], formats.Layout | None], forced: bool) -> formats.Layout | None:
    try:
        return finder(forced)
    except formats.CaseError as exc:  # pragma: no cover - parsers raise CaseError only per item
        raise _bad(str(exc)) from None
    except ValueError as exc:
        raise _bad(str(exc)) from None
    except (TypeError, KeyError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        # Safety net for annotation documents of the wrong shape (e.g. a list where an id belongs):
        # found by tests/dataset/test_fuzz_importers.py; bad input is the caller's error, never a crash.
        log.info("malformed annotations", extra={"error": repr(exc)})
        raise _bad(f"malformed annotations ({type(exc).__name__}: {str(exc)[:200]})") from None


# A later candidate layout wins over an earlier one (in the order COCO, VOC XML, PASCAL text, YOLO, mask
# folders) only when it annotates this many times as many images: Oxford-IIIT Pet's trimaps (every
# image) over its head-box XMLs (the trainval half), not a mask folder over a PennFudan with one
# annotation file missing.
COVERAGE_MARGIN = 1.5


def _choose_layout(
    found: list[formats.Layout],
    failed: list[InvalidArgument],
    archive: _Archive,
    images: list[_Entry],
    options: ImportOptions,
    warnings: list[str],
    read: Callable[[_Entry], bytes],
) -> formats.Layout:
    """One layout of those found. A requested task picks the first (by coverage) that can train it:
    classification takes the labels from folder or file names, leaving the annotation images out;
    detection takes boxes; segmentation takes masks or instances to rasterise. Without a task the
    first found wins unless a later one covers COVERAGE_MARGIN times as many images. A layout whose
    annotation images all belong to an earlier one (PennFudan's PedMasks, which its PASCAL files
    name) is no candidate."""
    seen: set[str] = set()
    candidates = []
    for layout in found:
        if layout.annotation_images and layout.annotation_images <= seen:
            continue
        seen |= layout.annotation_images
        candidates.append(layout)
    task = options.task
    if task == "classification":
        cases = [e for e in images if e.name not in seen]
        try:
            chosen = _classification_layout(archive, cases, options, warnings, read)
        except InvalidArgument:
            if not candidates and failed:
                raise failed[0] from None
            if not candidates:
                raise
            return _best(candidates)  # fails in _build: it cannot train classification, and says what it can
        if candidates:
            warnings.append(
                f"task classification: took the labels from folder or file names and left out the "
                f"{', '.join(sorted({_kind(c) for c in candidates}))} annotations"
            )
        return chosen
    if not candidates:
        if failed:
            raise failed[0]
        return _classification_layout(archive, images, options, warnings, read)
    serving = [c for c in candidates if task in _trainable(c)] if task else candidates
    chosen = _best(serving or candidates)
    for exc in failed:
        warnings.append(f"ignored annotations that could not be read: {exc}")
    others = [c for c in candidates if c is not chosen]
    if others and not task:
        have = _trainable(chosen)
        hints = []
        for other in others:
            extra = [t for t in _trainable(other) if t not in have]
            if extra:
                how = f"task_type {extra[0]} imports those"
            else:
                how = f"format {other.format} imports those" if other.format != chosen.format else "not imported"
            hints.append(f"{_kind(other)} annotations ({other.format}) for {_coverage(other)} image(s): {how}")
        warnings.append(
            f"the archive holds several kinds of annotations; imported the {_kind(chosen)} annotations "
            f"({chosen.format}) of {_coverage(chosen)} image(s). Also found: {'; '.join(hints)}; "
            "task_type classification takes the labels from folder or file names instead"
        )
    return chosen


def _coverage(layout: formats.Layout) -> int:
    """Images the layout annotates (YOLO's images without a label file are negatives, not counted)."""
    return sum(1 for it in layout.items if it.entry is not None and (it.source or it.label is not None))


def _best(layouts: list[formats.Layout]) -> formats.Layout:
    best = layouts[0]
    for layout in layouts[1:]:
        if _coverage(layout) >= COVERAGE_MARGIN * _coverage(best):
            best = layout
    return best


def _trainable(layout: formats.Layout) -> list[str]:
    """Task types the layout can train, rasterising instances for segmentation included."""
    tasks = task_types_for(layout.annotation_types)
    if "polygon" in layout.annotation_types and "segmentation" not in tasks:
        tasks.append("segmentation")
    return tasks


def _kind(layout: formats.Layout) -> str:
    types = layout.annotation_types
    return "mask" if "mask" in types else "instance" if "polygon" in types else "box" if "box" in types else "label"


def _classification_layout(
    archive: _Archive,
    images: list[_Entry],
    options: ImportOptions,
    warnings: list[str],
    read: Callable[[_Entry], bytes],
) -> formats.Layout:
    csvs = [e for e in archive.files if e.name.lower().endswith(".csv")]
    fmt, items = None, None
    if options.format in (FORMAT_CSV, FORMAT_AUTO):
        forced = options.format == FORMAT_CSV
        if forced and not csvs:
            raise _bad("format is CSV but the archive has no .csv file", "metadata.format")
        chosen = _pick_csv(csvs, forced)
        if chosen is not None:
            csv_warnings: list[str] = []
            items = _csv_items(chosen, archive.read(chosen), images, csv_warnings, forced=forced)
            if items is not None:
                fmt = FORMAT_CSV
                warnings.extend(csv_warnings)
    if fmt is None:
        fmt = FORMAT_IMAGE_FOLDER
        items = _image_folder(images, warnings)
    assert items is not None
    used = {it.entry.name for it in items}
    lists: list[str] = []
    if items and all(it.split is None for it in items):  # e.g. Oxford-IIIT Pet's trainval.txt / test.txt
        split_of, lists = formats.split_lists(archive.files, read, [it.entry for it in items])
        if split_of:
            items = [_Item(it.entry, it.label, split_of.get(it.entry.name)) for it in items]
            unlisted = sum(1 for it in items if it.split is None)
            warnings.append(
                f"splits from {', '.join(lists)}"
                + (f"; {unlisted} image(s) listed in none of them go to train" if unlisted else "")
            )
    others = [e for e in archive.files if not is_image_name(e.name) and e.name not in used and e.name not in lists]
    if fmt == FORMAT_CSV:
        others = [e for e in others if e is not chosen]
    if others:
        names = ", ".join(repr(e.name) for e in others[:5])
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        warnings.append(f"ignored {len(others)} non-image file(s): {names}{more}")
    hint = (
        "ImageFolder expects <class>/<image> (optionally under train/ val/ test/); CSV expects file,label rows; "
        "detection and segmentation need COCO JSON, VOC XML, YOLO txt + data.yaml, or images/ + masks/ folders"
    )
    if not items:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise _bad(f"no images found (image files end in {exts}); {hint}")
    classes = sorted({item.label for item in items})
    if len(classes) < 2:
        raise _bad(f"only one class ({classes[0]!r}) found; classification needs at least two classes; {hint}")
    return formats.Layout(fmt, items, classes, ["label"])
