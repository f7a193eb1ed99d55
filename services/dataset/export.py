"""Export a version's manifest and stored objects as a zip: COCO, ImageFolder or mask PNG folders.

    write_export(manifest, fetch, "coco", out_path)

`fetch(key) -> bytes` reads one object (image or mask); one object is held in memory at a time and
the zip is written to a file, so memory stays bounded whatever the dataset's size.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from kernel.errors import FailedPrecondition, InvalidArgument

EXPORT_COCO = "coco"
EXPORT_IMAGE_FOLDER = "image_folder"
EXPORT_MASK_PNG = "mask_png"
EXPORT_FORMATS = (EXPORT_COCO, EXPORT_IMAGE_FOLDER, EXPORT_MASK_PNG)
_EXT = {
    b"\xff\xd8": ".jpg",
    b"\x89P": ".png",
    b"BM": ".bmp",
    b"GI": ".gif",
    b"RI": ".webp",
    b"II": ".tif",
    b"MM": ".tif",
}


def _name(case: dict[str, Any], data: bytes, used: set[str], folder: str) -> str:
    """A file name under `folder`: the source base name, made unique, with the stored format's extension."""
    base = PurePosixPath(case["source_path"]).name
    stem = PurePosixPath(base).stem or case["id"]
    ext = _EXT.get(data[:2], PurePosixPath(base).suffix or ".png")
    if PurePosixPath(base).suffix.lower() in (".jpg", ".jpeg") and ext == ".jpg":
        ext = PurePosixPath(base).suffix
    name = f"{folder}/{stem}{ext}"
    if name.lower() in used:
        name = f"{folder}/{case['id']}_{stem}{ext}"
    used.add(name.lower())
    return name


def write_export(manifest: dict[str, Any], fetch: Callable[[str], bytes], fmt: str, out: Path) -> int:
    """Write the archive; returns the number of cases written."""
    types = set(manifest.get("annotation_types", []))
    cases = manifest["cases"]
    classes = manifest["classes"]
    if fmt not in EXPORT_FORMATS:
        raise InvalidArgument({"format": f"must be one of {', '.join(EXPORT_FORMATS)}"})
    if fmt == EXPORT_IMAGE_FOLDER and "label" not in types:
        raise FailedPrecondition("ImageFolder export needs image labels (a classification dataset)")
    if fmt == EXPORT_COCO and not types & {"box", "polygon"}:
        raise FailedPrecondition("COCO export needs boxes or polygons (a detection or instance segmentation dataset)")
    if fmt == EXPORT_MASK_PNG and "mask" not in types:
        raise FailedPrecondition("mask PNG export needs semantic masks (a segmentation dataset)")
    used: set[str] = set()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        if fmt == EXPORT_IMAGE_FOLDER:
            for case in cases:
                data = fetch(case["image_key"])
                zf.writestr(_name(case, data, used, f"{case['split']}/{classes[case['label']]}"), data)
        elif fmt == EXPORT_MASK_PNG:
            for case in cases:
                data = fetch(case["image_key"])
                name = _name(case, data, used, f"{case['split']}/images")
                stem = PurePosixPath(name).stem
                zf.writestr(name, data)
                zf.writestr(f"{case['split']}/masks/{stem}.png", fetch(case["mask_key"]))
            zf.writestr("classes.txt", "\n".join(classes) + "\n")
            zf.writestr(
                "data.yaml",
                json.dumps({"names": classes, "ignore_index": int(manifest.get("ignore_index", 255))}) + "\n",
            )
        else:
            docs: dict[str, dict[str, Any]] = {}
            for case in cases:
                doc = docs.setdefault(
                    case["split"],
                    {
                        "info": {"description": f"trainyard {manifest['dataset_id']} v{manifest['number']}"},
                        "images": [],
                        "annotations": [],
                        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(classes)],
                    },
                )
                data = fetch(case["image_key"])
                name = _name(case, data, used, f"images/{case['split']}")
                zf.writestr(name, data)
                image_id = len(doc["images"]) + 1
                doc["images"].append(
                    {
                        "id": image_id,
                        "file_name": PurePosixPath(name).name,
                        "width": case["width"],
                        "height": case["height"],
                    }
                )
                for box in case.get("boxes") or ():
                    x0, y0, x1, y1 = box["bbox"]
                    ann: dict[str, Any] = {
                        "id": len(doc["annotations"]) + 1,
                        "image_id": image_id,
                        "category_id": box["class"] + 1,
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "area": (x1 - x0) * (y1 - y0),
                        "iscrowd": 0,
                    }
                    if box.get("polygons"):
                        ann["segmentation"] = box["polygons"]
                    elif box.get("rle"):
                        ann["segmentation"] = box["rle"]
                        ann["iscrowd"] = 1
                    doc["annotations"].append(ann)
            for split, doc in docs.items():
                zf.writestr(f"annotations/instances_{split}.json", json.dumps(doc))
    return len(cases)
