"""Archive -> classification cases. Plain, synchronous, no network.

    result = import_archive(path, workdir, ImportOptions(...), ImportLimits(...))

reads a zip / tar / tar.gz archive in ImageFolder or CSV layout, decodes every image (EXIF
orientation applied), writes the bytes to store under `workdir/<sha256>` and returns the cases,
classes, splits and import warnings. Bad input raises kernel.errors.InvalidArgument
naming the file and the reason; nothing is uploaded here, so a failed import leaves nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import random
import re
import tarfile
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kernel import contract
from kernel.errors import InvalidArgument
from services.dataset import formats
from services.dataset.images import IMAGE_EXTENSIONS, ImageError, decode_image, is_grayscale, is_image_name

log = logging.getLogger(__name__)

FORMAT_AUTO = "auto"
FORMAT_IMAGE_FOLDER = "image_folder"
FORMAT_CSV = "csv"
FORMAT_COCO = "coco"
FORMAT_VOC = "voc"
FORMAT_YOLO = "yolo"
FORMAT_MASK_FOLDER = "mask_folder"
FORMATS = (FORMAT_IMAGE_FOLDER, FORMAT_CSV, FORMAT_COCO, FORMAT_VOC, FORMAT_YOLO, FORMAT_MASK_FOLDER)
ARCHIVE_AUTO = "auto"
ARCHIVE_ZIP = "zip"
ARCHIVE_TAR = "tar"
ARCHIVE_TAR_GZ = "tar.gz"

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = formats.SPLIT_ALIASES  # train / val|valid|validation / test, and ADE20K's training, ...
JUNK_NAMES = {"__macosx", "thumbs.db", "desktop.ini", "ehthumbs.db"}
CSV_FILE_COLUMNS = ("file", "filename", "file_name", "path", "filepath", "file_path", "image", "image_path", "img")
CSV_LABEL_COLUMNS = ("label", "class", "class_name", "category", "target", "labels")
CSV_SPLIT_COLUMNS = ("split", "subset", "set", "fold")
MAX_LISTED_WARNINGS = 50
ANNOTATION_EXTENSIONS = (".txt", ".xml", ".yaml", ".yml", ".names", ".csv")
MAX_CACHED_ANNOTATION = 1024 * 1024

# Annotation type -> task types the manifest can train without more data: polygons/RLE are
# instances with boxes (detection, instance segmentation); semantic masks train segmentation.
TASKS_FOR_ANNOTATION = {
    "label": ("classification",),
    "box": ("detection",),
    "mask": ("segmentation",),
    "polygon": ("instance_segmentation", "detection"),
}
TASK_ORDER = tuple(contract.TASK_NAMES.values())


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
    # Import the good cases and report the bad ones instead of rejecting the whole import.
    accept_partial: bool = False
    # Mask pixel value for "not labelled" (semantic segmentation).
    ignore_index: int = 255
    # Task the data is for ("" = whatever the annotations give). "segmentation" rasterises COCO / YOLO
    # instances into class-index masks (class 0 "background").
    task: str = ""
    # Keep one case of each group of exact duplicates (same bytes, same annotations) within a split.
    drop_duplicates: bool = False


@dataclass(frozen=True)
class ImportLimits:
    """Bounds on what an archive may expand to (zip bombs); the service takes them from DatasetSettings."""

    max_uncompressed_bytes: int = 16 * 1024**3
    max_entries: int = 500_000
    max_image_pixels: int = 100_000_000
    max_entry_bytes: int = 1024**3
    # Uncompressed : compressed, for an entry and for the archive as a whole, once over RATIO_APPLIES_FROM.
    max_compression_ratio: float = 100.0


# The compression ratio is only judged for sizes from here up: a small all-black mask may deflate 1000:1
# and harms nothing; a bomb must expand far beyond this to hurt.
RATIO_APPLIES_FROM = 64 * 1024**2
# Entries from this size up are streamed to a file in the work folder instead of read into memory.
SPOOL_ENTRY_BYTES = 8 * 1024**2
_CHUNK = 1024**2


@dataclass
class ImportedCase:
    id: str
    source_path: str
    sha256: str
    width: int
    height: int
    split: str
    label: int | None = None
    boxes: list[dict] | None = None
    mask_sha256: str | None = None

    def manifest_entry(self) -> dict:
        out = {
            "id": self.id,
            "source_path": self.source_path,
            "image_key": image_key(self.sha256),
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "split": self.split,
        }
        if self.label is not None:
            out["label"] = self.label
        if self.boxes is not None:
            out["boxes"] = self.boxes
        if self.mask_sha256 is not None:
            out["mask_key"] = mask_key(self.mask_sha256)
        return out


# Images up to this size stay in memory (up to IN_MEMORY_BUDGET in all) instead of a file in the
# work folder: creating a file costs more than decoding a small image (it was the top item of a
# profile of importing 10,000 32x32 JPEGs).
SMALL_IMAGE_BYTES = 256 * 1024
IN_MEMORY_BUDGET = 256 * 1024**2


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    path: Path  # the bytes to store, in the work folder (when not kept in `data`)
    size: int
    content_type: str

    kind: str = "image"  # or "mask"
    data: bytes | None = field(default=None, repr=False)  # small images: the bytes themselves

    @property
    def key(self) -> str:
        return mask_key(self.sha256) if self.kind == "mask" else image_key(self.sha256)

    def read_bytes(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


@dataclass
class ImportResult:
    format: str
    archive_type: str
    classes: list[str]
    cases: list[ImportedCase]
    images: dict[str, StoredImage]
    warnings: list[str] = field(default_factory=list)
    annotation_types: list[str] = field(default_factory=lambda: ["label"])
    masks: dict[str, StoredImage] = field(default_factory=dict)
    ignore_index: int | None = None
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) skipped with accept_partial
    mask_classes: dict[str, list[int]] = field(default_factory=dict)  # mask sha -> class indices present
    grayscale: set[str] = field(default_factory=set)  # sha256 of grey images

    @property
    def task_types(self) -> list[str]:
        return task_types_for(self.annotation_types)

    def class_counts(self) -> list[int]:
        """Annotations per class: labels, boxes, or images whose mask shows the class."""
        counts: Counter = Counter()
        for c in self.cases:
            if c.label is not None:
                counts[c.label] += 1
            for b in c.boxes or ():
                counts[b["class"]] += 1
            if c.mask_sha256 is not None:
                counts.update(self.mask_classes.get(c.mask_sha256, ()))
        return [counts.get(i, 0) for i in range(len(self.classes))]

    def split_counts(self) -> dict[str, int]:
        counts = Counter(c.split for c in self.cases)
        return {s: counts.get(s, 0) for s in SPLITS}


def image_key(sha256: str) -> str:
    return f"images/{sha256[:2]}/{sha256}"


def mask_key(sha256: str) -> str:
    return f"masks/{sha256[:2]}/{sha256}"


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
    """Read-only view of a zip or tar archive with names checked and sizes bounded.

    Every bound is checked against the sizes the archive declares before anything is expanded (an
    entry over max_entry_bytes, a total over max_uncompressed_bytes, or a compression ratio over
    max_compression_ratio is refused at once, naming the entry), and again while reading, in chunks."""

    def __init__(self, path: Path, kind: str, limits: ImportLimits) -> None:
        self.kind = kind
        self.limits = limits
        self.files: list[_Entry] = []
        self.skipped_junk = 0
        self.skipped_links: list[str] = []
        self.archive_bytes = path.stat().st_size
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
        except (
            zipfile.BadZipFile,
            tarfile.TarError,
            EOFError,
            OSError,
            ValueError,
            NotImplementedError,
            zlib.error,
        ) as exc:
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
            self._check_entry(name, info.file_size, info.compress_size)
            total += info.file_size
            self._check_total(total, name)
            self._add(_Entry(name, info.file_size, index, info))

    def _open_tar(self, path: Path, mode: str) -> None:
        self._tar = tarfile.open(path, mode)  # noqa: SIM115 - closed in close()
        total = 0
        count = 0
        # Each member is judged on its header, before tarfile reads past its data.
        for member in self._tar:
            count += 1
            self._check_count(count)
            name = _safe_name(member.name)
            if member.isdir() or not name:
                continue
            if not member.isfile():  # links, devices, fifos are never followed
                self.skipped_links.append(name)
                continue
            self._check_entry(name, member.size, None)
            total += member.size
            self._check_total(total, name)
            self._add(_Entry(name, member.size, count, member))

    def _add(self, entry: _Entry) -> None:
        if _is_junk(entry.name):
            self.skipped_junk += 1
        else:
            self.files.append(entry)

    def _check_count(self, count: int) -> None:
        if count > self.limits.max_entries:
            raise _bad(f"archive has more than {self.limits.max_entries} entries (dataset_max_entries)")

    def _check_entry(self, name: str, size: int, compressed: int | None) -> None:
        limits = self.limits
        if size > limits.max_entry_bytes:
            raise _bad(
                f"entry {name!r} expands to {size} bytes, over the limit of {limits.max_entry_bytes} bytes per "
                "entry (dataset_max_entry_bytes); nothing was imported"
            )
        if compressed is not None:
            self._check_ratio(f"entry {name!r}", size, compressed)

    def _check_ratio(self, what: str, size: int, compressed: int) -> None:
        ratio = self.limits.max_compression_ratio
        if size >= RATIO_APPLIES_FROM and size > ratio * max(compressed, 1):
            raise _bad(
                f"{what} expands {size / max(compressed, 1):.0f}:1 ({compressed} bytes to {size}), over the "
                f"limit of {ratio:g}:1 (dataset_max_compression_ratio); nothing was imported"
            )

    def _check_total(self, total: int, name: str = "") -> None:
        if total > self.limits.max_uncompressed_bytes:
            at = f" (at entry {name!r})" if name else ""
            raise _bad(
                f"archive expands to more than {self.limits.max_uncompressed_bytes} bytes{at} "
                "(dataset_max_uncompressed_bytes); nothing was imported"
            )
        # the archive as a whole: a tar.gz does not say how well each member compressed
        self._check_ratio(f"the archive (up to entry {name!r})" if name else "the archive", total, self.archive_bytes)

    def _stream(self, entry: _Entry):
        """The entry's bytes in chunks, never more than its declared size (checked as it goes)."""
        try:
            if self._zip is not None:
                fh = self._zip.open(entry.ref)  # type: ignore[arg-type]
            else:
                assert self._tar is not None
                fh = self._tar.extractfile(entry.ref)  # type: ignore[arg-type]
                if fh is None:
                    raise _bad(f"{entry.name}: cannot read the entry")
            with fh:
                read = 0
                while chunk := fh.read(min(_CHUNK, entry.size + 1 - read)):
                    read += len(chunk)
                    if read > entry.size:
                        raise _bad(f"{entry.name}: entry is larger than its declared size")
                    self._read_total += len(chunk)
                    self._check_total(self._read_total, entry.name)
                    yield chunk
        except InvalidArgument:
            raise
        except (
            zipfile.BadZipFile,
            tarfile.TarError,
            EOFError,
            OSError,
            RuntimeError,
            ValueError,
            zlib.error,
        ) as exc:  # NotImplementedError (an unsupported zip method) is a RuntimeError
            raise _bad(f"{entry.name}: cannot read the entry from the archive: {exc}") from None

    def read(self, entry: _Entry) -> bytes:
        return b"".join(self._stream(entry))

    def extract(self, entry: _Entry, target: Path) -> Path:
        """Write the entry to `target` in chunks (large entries never sit in memory whole)."""
        with open(target, "wb") as out:
            for chunk in self._stream(entry):
                out.write(chunk)
        return target

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
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """progress(done, total) is called as images are decoded."""
    archive_path, workdir = Path(archive_path), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    kind = detect_archive_type(archive_path) if options.archive_type == ARCHIVE_AUTO else options.archive_type
    archive = _Archive(archive_path, kind, limits)
    try:
        return _import(archive, workdir, options, limits, progress)
    finally:
        archive.close()


def _import(
    archive: _Archive,
    workdir: Path,
    options: ImportOptions,
    limits: ImportLimits,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    warnings: list[str] = []
    if archive.skipped_junk:
        warnings.append(
            f"skipped {archive.skipped_junk} hidden or system file(s) (__MACOSX, .DS_Store, Thumbs.db, ...)"
        )
    if archive.skipped_links:
        warnings.append(
            f"skipped {len(archive.skipped_links)} link(s) or special file(s), e.g. {archive.skipped_links[0]!r}"
        )
    if options.format not in (FORMAT_AUTO, *FORMATS):
        raise _bad(f"unknown format {options.format!r}; one of {', '.join(FORMATS)}", "metadata.format")
    images = [e for e in archive.files if is_image_name(e.name)]
    layout = _detect_layout(archive, images, options, warnings)
    return _build(archive, workdir, layout, options, limits, warnings, progress)


def _read_small(archive: _Archive, entry: _Entry, limit: int = 512 * 1024 * 1024) -> bytes:
    if entry.size > limit:
        raise _bad(f"{entry.name}: annotation file is over {limit} bytes")
    return archive.read(entry)


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


class ImportRejected(InvalidArgument):
    """An import refused over bad cases; carries every one (`rejected`) and the warnings so far, for the
    import's report. The error itself shows a few: it must fit gRPC's trailers (errors.MAX_STATUS_BYTES)."""

    def __init__(self, rejected: list[tuple[str, str]], warnings: list[str], import_id: str = "") -> None:
        self.rejected = list(rejected)
        self.warnings = list(warnings)
        self.import_id = import_id
        violations: dict[str, str] = {}
        for file, reason in rejected:
            if len(violations) >= 100:
                break
            violations[file] = f"{violations[file]}; {reason}" if file in violations else f"{file}: {reason}"
        shown = "; ".join(list(violations.values())[:3])
        more = f"; and {len(rejected) - 3} more" if len(rejected) > 3 else ""
        report = (
            f"; every file and reason: `trainyard datasets report {import_id}` (GetImportReport)" if import_id else ""
        )
        super().__init__(
            violations,
            message=(
                f"{len(rejected)} bad case(s), nothing imported (set accept_partial to import the good cases "
                f"and skip these){report}: {shown}{more}"
            ),
            metadata={"import_id": import_id, "rejected_count": str(len(rejected))} if import_id else None,
        )

    def with_report(self, import_id: str) -> ImportRejected:
        """The same refusal, naming the import whose report lists every file."""
        return ImportRejected(self.rejected, self.warnings, import_id)


def rejection_error(rejected: list[tuple[str, str]], warnings: list[str] | None = None) -> ImportRejected:
    """All bad cases in one error: a field violation per file (the first 100) and the full count."""
    return ImportRejected(rejected, warnings or [])


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
