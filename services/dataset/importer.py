"""Archive -> classification cases. Plain, synchronous, no network.

    result = import_archive(path, workdir, ImportOptions(...), ImportLimits(...))

reads a zip / tar / tar.gz archive in ImageFolder or CSV layout, decodes every image (EXIF
orientation applied), writes the bytes to store under `workdir/<sha256>` and returns the cases,
classes, splits and import warnings. Bad input raises services.common.errors.InvalidArgument
naming the file and the reason; nothing is uploaded here, so a failed import leaves nothing.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import re
import tarfile
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from services.common.errors import InvalidArgument
from services.dataset.images import IMAGE_EXTENSIONS, ImageError, decode_image, is_image_name

log = logging.getLogger(__name__)

FORMAT_AUTO = "auto"
FORMAT_IMAGE_FOLDER = "image_folder"
FORMAT_CSV = "csv"
ARCHIVE_AUTO = "auto"
ARCHIVE_ZIP = "zip"
ARCHIVE_TAR = "tar"
ARCHIVE_TAR_GZ = "tar.gz"

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
JUNK_NAMES = {"__macosx", "thumbs.db", "desktop.ini", "ehthumbs.db"}
CSV_FILE_COLUMNS = ("file", "filename", "file_name", "path", "filepath", "file_path", "image", "image_path", "img")
CSV_LABEL_COLUMNS = ("label", "class", "class_name", "category", "target", "labels")
CSV_SPLIT_COLUMNS = ("split", "subset", "set", "fold")
MAX_LISTED_WARNINGS = 50

# Annotation type -> task types it can train (a general mapping; classification uses "label" now).
TASKS_FOR_ANNOTATION = {
    "label": ("classification",),
    "box": ("detection",),
    "mask": ("segmentation", "detection"),
    "polygon": ("instance_segmentation", "segmentation", "detection"),
}
TASK_ORDER = ("classification", "detection", "segmentation", "instance_segmentation")


def task_types_for(annotation_types: set[str] | list[str] | tuple[str, ...]) -> list[str]:
    """Task types a dataset with these annotation types can train, in a stable order."""
    tasks = {t for a in annotation_types for t in TASKS_FOR_ANNOTATION.get(a, ())}
    return [t for t in TASK_ORDER if t in tasks]


@dataclass(frozen=True)
class ImportOptions:
    format: str = FORMAT_AUTO
    archive_type: str = ARCHIVE_AUTO
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    split_seed: int = 0


@dataclass(frozen=True)
class ImportLimits:
    max_uncompressed_bytes: int = 16 * 1024**3
    max_entries: int = 500_000
    max_image_pixels: int = 100_000_000


@dataclass
class ImportedCase:
    id: str
    source_path: str
    sha256: str
    width: int
    height: int
    split: str
    label: int


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    path: Path  # the bytes to store, in the work folder
    size: int
    content_type: str

    @property
    def key(self) -> str:
        return image_key(self.sha256)


@dataclass
class ImportResult:
    format: str
    archive_type: str
    classes: list[str]
    cases: list[ImportedCase]
    images: dict[str, StoredImage]
    warnings: list[str] = field(default_factory=list)
    annotation_types: list[str] = field(default_factory=lambda: ["label"])

    @property
    def task_types(self) -> list[str]:
        return task_types_for(self.annotation_types)

    def class_counts(self) -> list[int]:
        counts = Counter(c.label for c in self.cases)
        return [counts.get(i, 0) for i in range(len(self.classes))]

    def split_counts(self) -> dict[str, int]:
        counts = Counter(c.split for c in self.cases)
        return {s: counts.get(s, 0) for s in SPLITS}


def image_key(sha256: str) -> str:
    return f"images/{sha256[:2]}/{sha256}"


def _bad(reason: str, field_name: str = "archive") -> InvalidArgument:
    return InvalidArgument({field_name: reason}, message=f"{field_name}: {reason}")


# ---------------------------------------------------------------- archive reading


@dataclass
class _Entry:
    name: str  # normalised relative path
    size: int
    index: int
    ref: object


class _Archive:
    """Read-only view of a zip or tar archive with names checked and sizes bounded."""

    def __init__(self, path: Path, kind: str, limits: ImportLimits) -> None:
        self.kind = kind
        self.limits = limits
        self.files: list[_Entry] = []
        self.skipped_junk = 0
        self.skipped_links: list[str] = []
        self._read_total = 0
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        try:
            if kind == ARCHIVE_ZIP:
                self._open_zip(path)
            else:
                self._open_tar(path, "r:gz" if kind == ARCHIVE_TAR_GZ else "r:")
        except InvalidArgument:
            self.close()
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
            self.close()
            raise _bad(f"not a readable {kind} archive: {exc}") from None

    def _open_zip(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path)
        infos = self._zip.infolist()
        self._check_count(len(infos))
        total = 0
        for index, info in enumerate(infos):
            name = _safe_name(info.filename)
            if info.is_dir() or not name:
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symlink
                self.skipped_links.append(name)
                continue
            total += info.file_size
            self._check_total(total)
            self._add(_Entry(name, info.file_size, index, info))

    def _open_tar(self, path: Path, mode: str) -> None:
        self._tar = tarfile.open(path, mode)  # noqa: SIM115 - closed in close()
        total = 0
        count = 0
        for member in self._tar:
            count += 1
            self._check_count(count)
            name = _safe_name(member.name)
            if member.isdir() or not name:
                continue
            if not member.isfile():  # links, devices, fifos are never followed
                self.skipped_links.append(name)
                continue
            total += member.size
            self._check_total(total)
            self._add(_Entry(name, member.size, count, member))

    def _add(self, entry: _Entry) -> None:
        if _is_junk(entry.name):
            self.skipped_junk += 1
        else:
            self.files.append(entry)

    def _check_count(self, count: int) -> None:
        if count > self.limits.max_entries:
            raise _bad(f"archive has more than {self.limits.max_entries} entries")

    def _check_total(self, total: int) -> None:
        if total > self.limits.max_uncompressed_bytes:
            raise _bad(f"archive expands to more than {self.limits.max_uncompressed_bytes} bytes")

    def read(self, entry: _Entry) -> bytes:
        try:
            if self._zip is not None:
                with self._zip.open(entry.ref) as fh:  # type: ignore[arg-type]
                    data = fh.read(entry.size + 1)
            else:
                assert self._tar is not None
                fh = self._tar.extractfile(entry.ref)  # type: ignore[arg-type]
                if fh is None:
                    raise _bad(f"{entry.name}: cannot read the entry")
                data = fh.read(entry.size + 1)
        except InvalidArgument:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, RuntimeError, ValueError) as exc:
            raise _bad(f"{entry.name}: cannot read the entry from the archive: {exc}") from None
        if len(data) > entry.size:
            raise _bad(f"{entry.name}: entry is larger than its declared size")
        self._read_total += len(data)
        self._check_total(self._read_total)
        return data

    def close(self) -> None:
        for handle in (self._zip, self._tar):
            if handle is not None:
                handle.close()


def _safe_name(raw: str) -> str:
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _bad(f"entry {raw!r} has an absolute path; archives must hold relative paths only")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(f"entry {raw!r} points outside the archive ('..' in its path)")
    return "/".join(parts)


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return any(p.startswith(".") or p.lower() in JUNK_NAMES for p in parts)


def detect_archive_type(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return ARCHIVE_ZIP
    if head[:2] == b"\x1f\x8b":
        return ARCHIVE_TAR_GZ
    if len(head) >= 262 and head[257:262] == b"ustar":
        return ARCHIVE_TAR
    if tarfile.is_tarfile(path):
        return ARCHIVE_TAR
    if not head:
        raise _bad("the upload is empty")
    raise _bad("not a zip, tar or tar.gz archive (unrecognised leading bytes)")


# ---------------------------------------------------------------- layouts


@dataclass
class _Item:
    entry: _Entry
    label: str
    split: str | None  # given split, or None


def _strip_wrapper(paths: list[str]) -> int:
    """Number of leading folders that merely wrap everything (a single top folder)."""
    depth = 0
    split_parts = [p.split("/") for p in paths]
    while split_parts:
        tops = {parts[depth] for parts in split_parts}
        if len(tops) != 1 or min(len(parts) for parts in split_parts) - depth < 3:
            break
        if next(iter(tops)).lower() in SPLIT_ALIASES:
            break
        depth += 1
    return depth


def _image_folder(images: list[_Entry], warnings: list[str]) -> list[_Item]:
    depth = _strip_wrapper([e.name for e in images])
    rel = {e.name: e.name.split("/")[depth:] for e in images}
    nested = [parts for parts in rel.values() if len(parts) >= 2]
    tops = {parts[0].lower() for parts in nested}
    split_mode = bool(tops) and tops <= set(SPLIT_ALIASES)
    items: list[_Item] = []
    loose: list[str] = []
    for entry in images:
        parts = rel[entry.name]
        if split_mode:
            if len(parts) < 3:
                loose.append(entry.name)
                continue
            items.append(_Item(entry, parts[1], SPLIT_ALIASES[parts[0].lower()]))
        else:
            if len(parts) < 2:
                loose.append(entry.name)
                continue
            items.append(_Item(entry, parts[0], None))
    if loose:
        where = "<split>/<class>/" if split_mode else "<class>/"
        warnings.append(
            f"ignored {len(loose)} image(s) outside {where} folders, e.g. {', '.join(repr(n) for n in loose[:3])}"
        )
    return items


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


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _csv_rows(entry: _Entry, data: bytes) -> list[tuple[int, list[str]]]:
    try:
        reader = csv.reader(io.StringIO(_decode_text(data)))
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


# ---------------------------------------------------------------- splits


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


# ---------------------------------------------------------------- the import


def import_archive(
    archive_path: str | Path,
    workdir: str | Path,
    options: ImportOptions = ImportOptions(),
    limits: ImportLimits = ImportLimits(),
) -> ImportResult:
    archive_path, workdir = Path(archive_path), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    kind = detect_archive_type(archive_path) if options.archive_type == ARCHIVE_AUTO else options.archive_type
    archive = _Archive(archive_path, kind, limits)
    try:
        return _import(archive, workdir, options, limits)
    finally:
        archive.close()


def _import(archive: _Archive, workdir: Path, options: ImportOptions, limits: ImportLimits) -> ImportResult:
    warnings: list[str] = []
    if archive.skipped_junk:
        warnings.append(
            f"skipped {archive.skipped_junk} hidden or system file(s) (__MACOSX, .DS_Store, Thumbs.db, ...)"
        )
    if archive.skipped_links:
        warnings.append(
            f"skipped {len(archive.skipped_links)} link(s) or special file(s), e.g. {archive.skipped_links[0]!r}"
        )
    images = [e for e in archive.files if is_image_name(e.name)]
    csvs = [e for e in archive.files if e.name.lower().endswith(".csv")]
    others = [e for e in archive.files if not is_image_name(e.name) and not e.name.lower().endswith(".csv")]

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
                others += [e for e in csvs if e is not chosen]
    if fmt is None:
        if options.format not in (FORMAT_AUTO, FORMAT_IMAGE_FOLDER):
            raise _bad(f"format {options.format!r} is not supported yet", "metadata.format")
        fmt = FORMAT_IMAGE_FOLDER
        others += csvs
        items = _image_folder(images, warnings)
    assert items is not None
    if others:
        names = ", ".join(repr(e.name) for e in others[:5])
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        warnings.append(f"ignored {len(others)} non-image file(s): {names}{more}")

    hint = "ImageFolder expects <class>/<image> (optionally under train/ val/ test/); CSV expects file,label rows"
    if not items:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise _bad(f"no images found (image files end in {exts}); {hint}")
    classes = sorted({item.label for item in items})
    if len(classes) < 2:
        raise _bad(f"only one class ({classes[0]!r}) found; classification needs at least two classes; {hint}")
    given = any(item.split is not None for item in items)
    if given and not any(item.split == "train" for item in items):
        raise _bad("the archive has split folders but no images in train/")

    index_of = {name: i for i, name in enumerate(classes)}
    decoded: dict[str, tuple[str, int, int]] = {}  # entry name -> sha, width, height
    stored: dict[str, StoredImage] = {}
    for item in sorted(items, key=lambda it: it.entry.index):  # archive order: tar.gz reads forward only
        entry = item.entry
        try:
            image = decode_image(archive.read(entry), max_pixels=limits.max_image_pixels)
        except ImageError as exc:
            raise _bad(f"{entry.name}: {exc}") from None
        if image.sha256 not in stored:
            target = workdir / image.sha256
            target.write_bytes(image.data)
            stored[image.sha256] = StoredImage(image.sha256, target, len(image.data), image.content_type)
        decoded[entry.name] = (image.sha256, image.width, image.height)

    items.sort(key=lambda it: it.entry.name)
    shas = [decoded[it.entry.name][0] for it in items]
    labels = [index_of[it.label] for it in items]
    warnings.extend(_duplicate_warnings(items, shas))
    if given:
        splits = [it.split or "train" for it in items]
    else:
        splits = assign_splits(labels, shas, options.val_fraction, options.test_fraction, options.split_seed)
    cases = [
        ImportedCase(
            id=f"c{i + 1:06d}",
            source_path=it.entry.name,
            sha256=sha,
            width=decoded[it.entry.name][1],
            height=decoded[it.entry.name][2],
            split=split,
            label=label,
        )
        for i, (it, sha, label, split) in enumerate(zip(items, shas, labels, splits, strict=True))
    ]
    if given:
        warnings.extend(_leak_warnings(cases))
    log.info(
        "archive imported",
        extra={"format": fmt, "archive_type": archive.kind, "cases": len(cases), "classes": len(classes)},
    )
    return ImportResult(fmt, archive.kind, classes, cases, stored, _cap(warnings))


def _duplicate_warnings(items: list[_Item], shas: list[str]) -> list[str]:
    groups: dict[str, list[_Item]] = defaultdict(list)
    for item, sha in zip(items, shas, strict=True):
        groups[sha].append(item)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        names = ", ".join(f"{m.entry.name!r} ({m.label})" for m in members[:5])
        if len({m.label for m in members}) > 1:
            out.append(f"conflict: the same image has different labels: {names}")
        else:
            out.append(f"duplicate: {len(members)} identical images: {names}")
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


def _cap(warnings: list[str]) -> list[str]:
    if len(warnings) <= MAX_LISTED_WARNINGS:
        return warnings
    return [*warnings[:MAX_LISTED_WARNINGS], f"... and {len(warnings) - MAX_LISTED_WARNINGS} more warning(s)"]
