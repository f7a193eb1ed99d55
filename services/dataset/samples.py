"""Sample classification archives for tests and the demo, and an upload-stream helper.

    data = make_classification_archive()                       # zip bytes, 3 classes x 12 images
    make_classification_archive("shapes.tar.gz", fmt="tar.gz")  # written to a file, returns its Path
    stub.CreateDataset(upload_chunks(metadata, data))

Each class is a simple shape (circle, square, triangle, ...) drawn at a random position, size and
colour on a noisy background, so a tiny CNN tells the classes apart within a couple of epochs.
"""

from __future__ import annotations

import io
import json
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
    return _emit(path_or_buffer, _pack(files, fmt))


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


# ---------------------------------------------------------------- detection / segmentation samples

DETECTION_CLASSES = ("circle", "square")


def _scene(rng: np.random.Generator, size: int, classes: Sequence[str], max_objects: int = 3):
    """An image with 1..max_objects shapes; returns (image, mask L image, objects).

    objects: (class index, [x0, y0, x1, y1], polygon [x1, y1, ...]) in pixels; the mask holds
    class index + 1 per pixel (0 = background)."""
    background = np.clip(rng.integers(0, 60, size=3) + rng.integers(-20, 21, size=(size, size, 3)), 0, 255)
    im = Image.fromarray(background.astype(np.uint8), "RGB")
    mask = Image.new("L", (size, size), 0)
    draw, mdraw = ImageDraw.Draw(im), ImageDraw.Draw(mask)
    objects = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = int(rng.integers(0, len(classes)))
        r = float(rng.uniform(0.1, 0.2) * size)
        cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 1, size=2))
        colour = tuple(int(c) for c in rng.integers(150, 256, size=3))
        kind = classes[cls] if classes[cls] in ("circle", "square") else ("circle", "square")[cls % 2]
        if kind == "circle":
            poly = [
                v
                for k in range(16)
                for v in (cx + r * math.cos(2 * math.pi * k / 16), cy + r * math.sin(2 * math.pi * k / 16))
            ]
        else:
            poly = [cx - r, cy - r, cx + r, cy - r, cx + r, cy + r, cx - r, cy + r]
        pts = list(zip(poly[0::2], poly[1::2], strict=True))
        draw.polygon(pts, fill=colour)
        mdraw.polygon(pts, fill=cls + 1)
        xs, ys = poly[0::2], poly[1::2]
        objects.append((cls, [min(xs), min(ys), max(xs), max(ys)], [round(v, 2) for v in poly]))
    return im, mask, objects


def make_detection_archive(
    path_or_buffer: str | Path | BinaryIO | None = None,
    fmt: str = "coco",
    n: int = 12,
    size: int = 64,
    seed: int = 0,
    classes: Sequence[str] = DETECTION_CLASSES,
    archive: str = "zip",
    polygons: bool = False,
    splits: bool = False,
) -> bytes | Path:
    """Detection / instance segmentation archive: fmt "coco" (with polygons when `polygons`),
    "voc" or "yolo" (polygon lines when `polygons`); `splits` puts cases under train/ and val/."""
    rng = np.random.default_rng(seed)
    files: list[tuple[str, bytes]] = []
    coco: dict[str, dict] = {}
    for i in range(n):
        split = ("val" if i % 4 == 3 else "train") if splits else ""
        im, _, objects = _scene(rng, size, classes)
        stem = f"img_{i:04d}"
        sub = f"{split}/" if split else ""
        if fmt == "coco":
            doc = coco.setdefault(
                split,
                {
                    "images": [],
                    "annotations": [],
                    "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)],
                },
            )
            doc["images"].append({"id": i + 1, "file_name": f"{stem}.jpg", "width": size, "height": size})
            for cls, (x0, y0, x1, y1), poly in objects:
                ann = {
                    "id": len(doc["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": cls + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
                if polygons:
                    ann["segmentation"] = [poly]
                doc["annotations"].append(ann)
            files.append((f"{sub}images/{stem}.jpg", _encode(im, "jpg")))
        elif fmt == "voc":
            objs = "".join(
                f"<object><name>{classes[cls]}</name><difficult>0</difficult><bndbox><xmin>{x0:.1f}</xmin>"
                f"<ymin>{y0:.1f}</ymin><xmax>{x1:.1f}</xmax><ymax>{y1:.1f}</ymax></bndbox></object>"
                for cls, (x0, y0, x1, y1), _ in objects
            )
            xml = (
                f"<annotation><folder>VOC</folder><filename>{stem}.jpg</filename><size><width>{size}</width>"
                f"<height>{size}</height><depth>3</depth></size>{objs}</annotation>"
            )
            files.append((f"JPEGImages/{stem}.jpg", _encode(im, "jpg")))
            files.append((f"Annotations/{stem}.xml", xml.encode()))
            if splits:
                files.append((f"ImageSets/Main/{split}.txt", b""))  # filled below
        elif fmt == "yolo":
            lines = []
            for cls, (x0, y0, x1, y1), poly in objects:
                if polygons:
                    lines.append(f"{cls} " + " ".join(f"{v / size:.6f}" for v in poly))
                else:
                    cx, cy, w, h = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size
                    lines.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
            files.append((f"images/{sub}{stem}.jpg", _encode(im, "jpg")))
            files.append((f"labels/{sub}{stem}.txt", ("\n".join(lines) + "\n").encode()))
        else:
            raise ValueError(f"fmt must be coco, voc or yolo, got {fmt!r}")
    if fmt == "coco":
        for split, doc in coco.items():
            name = f"annotations/instances_{split}.json" if split else "annotations/instances.json"
            files.append((name, json.dumps(doc).encode()))
    elif fmt == "yolo":
        names = "\n".join(f"  {k}: {c}" for k, c in enumerate(classes))
        files.append(("data.yaml", f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names}\n".encode()))
    elif fmt == "voc" and splits:
        files = [f for f in files if not f[0].startswith("ImageSets/")]
        for split in ("train", "val"):
            stems = [f"img_{i:04d}" for i in range(n) if ("val" if i % 4 == 3 else "train") == split]
            files.append((f"ImageSets/Main/{split}.txt", ("\n".join(stems) + "\n").encode()))
    return _emit(path_or_buffer, _pack(files, archive))


def make_segmentation_archive(
    path_or_buffer: str | Path | BinaryIO | None = None,
    n: int = 12,
    size: int = 48,
    seed: int = 0,
    classes: Sequence[str] = DETECTION_CLASSES,
    archive: str = "zip",
    palette: bool = False,
    ignore_border: bool = False,
) -> bytes | Path:
    """Semantic segmentation archive: images/<i>.jpg, masks/<i>.png and classes.txt
    ("background" first). Palette PNG masks when `palette`; a 1-pixel 255 border when `ignore_border`."""
    rng = np.random.default_rng(seed)
    files: list[tuple[str, bytes]] = []
    for i in range(n):
        im, mask, _ = _scene(rng, size, classes)
        if ignore_border:
            arr = np.asarray(mask).copy()
            arr[0, :] = arr[-1, :] = arr[:, 0] = arr[:, -1] = 255
            mask = Image.fromarray(arr, "L")
        if palette:
            pal = Image.frombytes("P", mask.size, mask.tobytes())
            pal.putpalette([v for k in range(256) for v in ((k * 80) % 256, (k * 150) % 256, (k * 40) % 256)])
            mask = pal
        buf = io.BytesIO()
        mask.save(buf, format="PNG")
        files.append((f"images/img_{i:04d}.jpg", _encode(im, "jpg")))
        files.append((f"masks/img_{i:04d}.png", buf.getvalue()))
    files.append(("classes.txt", ("\n".join(["background", *classes]) + "\n").encode()))
    return _emit(path_or_buffer, _pack(files, archive))


def _emit(path_or_buffer: str | Path | BinaryIO | None, data: bytes) -> bytes | Path:
    if path_or_buffer is None:
        return data
    if isinstance(path_or_buffer, (str, Path)):
        path = Path(path_or_buffer)
        path.write_bytes(data)
        return path
    path_or_buffer.write(data)
    return data
