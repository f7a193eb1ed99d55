"""What an import takes and gives (issue 21: services/dataset/importer.py split by stage): the formats and
archive types, ImportOptions and ImportLimits, the imported cases and images, ImportResult, and the errors
(_bad, ImportRejected) that name the file and the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kernel import contract
from kernel.errors import InvalidArgument
from services.dataset import formats

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
