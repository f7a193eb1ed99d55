"""Fuzz target for the dataset importer's annotation parsers (COCO JSON, Pascal VOC XML, YOLO txt, CSV).

One input = one selector byte (which format) + annotation text. The target packs the text with one
small, valid image into a zip in the layout that format expects and imports it. The contract: the
import either succeeds or raises kernel.errors.InvalidArgument; any other exception (or a
hang) is a bug.

With atheris installed (it is not in the venv):

    .venv/bin/python tests/fuzz/fuzz_annotations.py tests/fuzz/corpus/annotations -max_total_time=300

The test suite drives the same `check_annotations` / `fuzz_one` with hypothesis
(tests/dataset/test_fuzz_importers.py), so the target cannot rot.
"""

from __future__ import annotations

import io
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from kernel.errors import InvalidArgument  # noqa: E402
from services.dataset.importer import ImportLimits, ImportOptions, import_archive  # noqa: E402

FORMATS = ("coco", "voc", "yolo", "csv")
# Small limits so a hostile input cannot make one run slow.
LIMITS = ImportLimits(max_uncompressed_bytes=8 * 1024 * 1024, max_entries=64, max_image_pixels=1_000_000)


def tiny_png(size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 140, 30)).save(buf, "PNG")
    return buf.getvalue()


PNG = tiny_png()


def layout(fmt: str, text: bytes) -> dict[str, bytes]:
    """The archive members for annotation `text` in format `fmt` (plus one valid image)."""
    if fmt == "coco":
        return {"images/a.png": PNG, "annotations.json": text}
    if fmt == "voc":
        return {"JPEGImages/a.png": PNG, "Annotations/a.xml": text}
    if fmt == "yolo":
        return {"images/a.png": PNG, "labels/a.txt": text, "classes.txt": b"cat\ndog\n"}
    if fmt == "csv":
        return {"img/a.png": PNG, "img/b.png": tiny_png((8, 8)), "labels.csv": text}
    raise ValueError(fmt)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def import_bytes(data: bytes, workdir: Path, suffix: str = ".zip", **options):
    """Import raw archive bytes; returns the ImportResult or raises (only InvalidArgument is allowed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"archive{suffix}"
    path.write_bytes(data)
    return import_archive(path, workdir / "work", ImportOptions(**options), LIMITS)


def check_annotations(fmt: str, text: bytes, *, forced: bool = True):
    """Import `text` as a `fmt` annotation file: the ImportResult, or None when it was refused with
    InvalidArgument (carrying a field violation). Any other exception propagates (a bug). An import
    that succeeds must be sound: every label and box class indexes a class, every box is finite and
    lies inside its image, every case's size is its image's."""
    with tempfile.TemporaryDirectory(prefix="fuzz-ann-") as tmp:
        try:
            result = import_bytes(zip_bytes(layout(fmt, text)), Path(tmp), format=fmt if forced else "auto")
        except InvalidArgument as exc:
            assert exc.violations, "InvalidArgument without a field violation"
            return None
    check_sound(result, layout(fmt, text))
    return result


def check_sound(result, members: dict[str, bytes]) -> None:
    """What every successful import must give (see check_annotations)."""
    import math

    sizes = {name: Image.open(io.BytesIO(data)).size for name, data in members.items() if name.endswith(".png")}
    assert result.cases, "an import without a case"
    for case in result.cases:
        assert case.source_path in sizes, f"{case.source_path} is no image of the archive"
        assert (case.width, case.height) == sizes[case.source_path]
        if case.label is not None:
            assert 0 <= case.label < len(result.classes)
        for box in case.boxes or ():
            assert 0 <= box["class"] < len(result.classes)
            x1, y1, x2, y2 = box["bbox"]
            assert all(math.isfinite(v) for v in (x1, y1, x2, y2)), box
            assert 0 <= x1 < x2 <= case.width and 0 <= y1 < y2 <= case.height, box


def fuzz_one(data: bytes) -> None:
    """atheris entry point: first byte picks the format (and auto-detection), the rest is the text."""
    if not data:
        return
    selector, text = data[0], data[1:]
    check_annotations(FORMATS[selector % len(FORMATS)], text, forced=bool(selector & 0x80))  # sound or refused


def main() -> None:  # pragma: no cover - needs atheris
    import atheris

    atheris.Setup(sys.argv, fuzz_one)
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    main()
