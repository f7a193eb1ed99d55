"""Sample classification archives for tests and the demo, and an upload-stream helper.

    data = make_classification_archive()                       # zip bytes, 3 classes x 12 images
    make_classification_archive("shapes.tar.gz", fmt="tar.gz")  # written to a file, returns its Path
    stub.CreateDataset(upload_chunks(metadata, data))

Each class is a simple shape (circle, square, triangle, ...) drawn at a random position, size and
colour on a noisy background, so a tiny CNN tells the classes apart within a couple of epochs.
"""

from __future__ import annotations

import io
import math
import tarfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw

from trainyard.dataset.v1 import dataset_service_pb2 as pb

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond", "star", "stripes")


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image of `shape` on a noisy background."""
    base = rng.integers(0, 90, size=3)
    noise = rng.integers(-25, 26, size=(size, size, 3))
    background = np.clip(base + noise, 0, 255).astype(np.uint8)
    im = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(im)
    colour = tuple(int(c) for c in rng.integers(150, 256, size=3))
    r = size * rng.uniform(0.22, 0.34)
    cx = size / 2 + rng.uniform(-0.12, 0.12) * size
    cy = size / 2 + rng.uniform(-0.12, 0.12) * size
    box = (cx - r, cy - r, cx + r, cy + r)
    kind = shape if shape in SHAPES else SHAPES[sum(map(ord, shape)) % len(SHAPES)]
    width = max(2, size // 12)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    elif kind == "cross":
        draw.rectangle((cx - r, cy - r / 3, cx + r, cy + r / 3), fill=colour)
        draw.rectangle((cx - r / 3, cy - r, cx + r / 3, cy + r), fill=colour)
    elif kind == "ring":
        draw.ellipse(box, outline=colour, width=width)
    elif kind == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    elif kind == "star":
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else r / 2.5
            angle = math.pi / 2 + i * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy - radius * math.sin(angle)))
        draw.polygon(points, fill=colour)
    else:  # stripes
        for x in range(int(cx - r), int(cx + r), 2 * width):
            draw.rectangle((x, cy - r, x + width - 1, cy + r), fill=colour)
    return im


def _encode(im: Image.Image, ext: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG" if ext == "jpg" else "PNG", **({"quality": 92} if ext == "jpg" else {}))
    return buf.getvalue()


def make_classification_archive(
    path_or_buffer: str | Path | BinaryIO | None = None,
    classes: Sequence[str] = ("circle", "square", "triangle"),
    per_class: int = 12,
    size: int = 64,
    seed: int = 0,
    fmt: str = "zip",
    *,
    layout: str = "imagefolder",
    splits: dict[str, float] | None = None,
    image_format: str = "png",
    wrapper: str = "",
) -> bytes | Path:
    """Build an archive of `per_class` images per class.

    fmt: "zip", "tar" or "tar.gz". layout: "imagefolder" (`<class>/<i>.png`, or
    `<split>/<class>/<i>.png` when `splits` is given, e.g. {"train": 0.75, "val": 0.25}) or "csv"
    (`images/<i>.png` plus `labels.csv` with a file,label header). `wrapper` puts everything under
    one top folder. Returns the bytes, or the Path when given a path; a buffer is written to.
    """
    if fmt not in ("zip", "tar", "tar.gz"):
        raise ValueError(f"fmt must be zip, tar or tar.gz, got {fmt!r}")
    rng = np.random.default_rng(seed)
    ext = "jpg" if image_format in ("jpg", "jpeg") else "png"
    files: list[tuple[str, bytes]] = []
    rows = ["file,label"]
    for class_name in classes:
        for i in range(per_class):
            data = _encode(draw_shape(class_name, size, rng), ext)
            if layout == "csv":
                name = f"images/{class_name}_{i:04d}.{ext}"
                rows.append(f"{name},{class_name}")
            else:
                name = f"{class_name}/{i:04d}.{ext}"
                if splits:
                    name = f"{_split_for(i, per_class, splits)}/{name}"
            files.append((name, data))
    if layout == "csv":
        files.append(("labels.csv", ("\n".join(rows) + "\n").encode()))
    if wrapper:
        files = [(f"{wrapper.strip('/')}/{name}", data) for name, data in files]
    data = _pack(files, fmt)
    if path_or_buffer is None:
        return data
    if isinstance(path_or_buffer, (str, Path)):
        path = Path(path_or_buffer)
        path.write_bytes(data)
        return path
    path_or_buffer.write(data)
    return data


def _split_for(i: int, n: int, splits: dict[str, float]) -> str:
    position = (i + 0.5) / n
    edge = 0.0
    for name, fraction in splits.items():
        edge += fraction
        if position < edge:
            return name
    return next(reversed(splits))


def _pack(files: list[tuple[str, bytes]], fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "zip":
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files:
                zf.writestr(name, data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz" if fmt == "tar.gz" else "w") as tf:
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = int(time.time())
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload_chunks(
    metadata: pb.CreateDatasetMetadata, data: bytes | str | Path, chunk_size: int = 256 * 1024
) -> Iterator[pb.CreateDatasetRequest]:
    """The CreateDataset request stream: the metadata, then the archive in chunks (bytes or a file)."""
    yield pb.CreateDatasetRequest(metadata=metadata)
    if isinstance(data, (str, Path)):
        with open(data, "rb") as fh:
            while chunk := fh.read(chunk_size):
                yield pb.CreateDatasetRequest(chunk=chunk)
        return
    view = memoryview(data)
    for start in range(0, len(view), chunk_size):
        yield pb.CreateDatasetRequest(chunk=bytes(view[start : start + chunk_size]))
