"""Archive -> classification cases. Plain, synchronous, no network.

    result = import_archive(path, workdir, ImportOptions(...), ImportLimits(...))

reads a zip / tar / tar.gz archive in ImageFolder or CSV layout, decodes every image (EXIF
orientation applied), writes the bytes to store under `workdir/<sha256>` and returns the cases,
classes, splits and import warnings. Bad input raises kernel.errors.InvalidArgument
naming the file and the reason; nothing is uploaded here, so a failed import leaves nothing.

The stages are modules beside this one: archive (reading), layouts (detection), building (cases, images,
masks, splits), import_warnings (duplicates and leaks); import_types holds what they share. The names callers
use are importable from here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from services.dataset.archive import _Archive, detect_archive_type
from services.dataset.building import _build, assign_splits
from services.dataset.images import is_image_name
from services.dataset.import_types import (
    ARCHIVE_AUTO,
    ARCHIVE_TAR,
    ARCHIVE_TAR_GZ,
    ARCHIVE_ZIP,
    FORMAT_AUTO,
    FORMAT_COCO,
    FORMAT_CSV,
    FORMAT_IMAGE_FOLDER,
    FORMAT_MASK_FOLDER,
    FORMAT_VOC,
    FORMAT_YOLO,
    FORMATS,
    RATIO_APPLIES_FROM,
    SMALL_IMAGE_BYTES,
    SPLITS,
    SPOOL_ENTRY_BYTES,
    TASK_ORDER,
    ImportLimits,
    ImportOptions,
    ImportRejected,
    ImportResult,
    StoredImage,
    _bad,
    task_types_for,
)
from services.dataset.import_warnings import cap_warnings
from services.dataset.layouts import _detect_layout

__all__ = [
    "ARCHIVE_AUTO",
    "ARCHIVE_TAR",
    "ARCHIVE_TAR_GZ",
    "ARCHIVE_ZIP",
    "FORMATS",
    "FORMAT_AUTO",
    "FORMAT_COCO",
    "FORMAT_CSV",
    "FORMAT_IMAGE_FOLDER",
    "FORMAT_MASK_FOLDER",
    "FORMAT_VOC",
    "FORMAT_YOLO",
    "ImportLimits",
    "ImportOptions",
    "ImportRejected",
    "ImportResult",
    "RATIO_APPLIES_FROM",
    "SMALL_IMAGE_BYTES",
    "SPLITS",
    "SPOOL_ENTRY_BYTES",
    "StoredImage",
    "TASK_ORDER",
    "assign_splits",
    "cap_warnings",
    "detect_archive_type",
    "import_archive",
    "task_types_for",
]


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
