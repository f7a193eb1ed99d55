"""The layouts of well-known public datasets, rebuilt in miniature (same folders, file names and
annotation formats, generated pixels), imported as a new user would: upload the archive as downloaded."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from services.common.errors import InvalidArgument
from services.dataset.importer import ImportOptions, import_archive

RNG = np.random.default_rng(0)


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(shape=(48, 64, 3)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, shape, dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def write_zip(path: Path, files: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def pennfudan_files(n: int = 4) -> dict[str, bytes | str]:
    """PennFudanPed: PNGImages/, PedMasks/<name>_mask.png (pixel value k = pedestrian k, palette PNG),
    Annotation/<name>.txt in the PASCAL Annotation Version 1.00 text format (1-based corners)."""
    files: dict[str, bytes | str] = {"PennFudanPed/readme.txt": "Penn-Fudan Database\n"}
    for i in range(1, n + 1):
        name = f"FudanPed{i:05d}"
        mask = np.zeros((120, 160), np.uint8)
        lines = [
            "# Compatible with PASCAL Annotation Version 1.00",
            f'Image filename : "PennFudanPed/PNGImages/{name}.png"',
            "Image size (X x Y x C) : 160 x 120 x 3",
            'Objects with ground truth : 2 { "PASpersonWalking" "PASpersonWalking" }',
        ]
        for k in (1, 2):
            x0, y0 = 10 + 70 * (k - 1), 20
            mask[y0 : y0 + 80, x0 : x0 + 40] = k
            lines += [
                f'Bounding box for object {k} "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : '
                f"({x0 + 1}, {y0 + 1}) - ({x0 + 40}, {y0 + 80})",
                f'Pixel mask for object {k} "PASpersonWalking" : "PennFudanPed/PedMasks/{name}_mask.png"',
            ]
        palette = Image.fromarray(mask, "L").convert("P")
        palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
        buf = io.BytesIO()
        palette.save(buf, format="PNG")
        files[f"PennFudanPed/PNGImages/{name}.png"] = png(RNG.integers(0, 255, (120, 160, 3), dtype=np.uint8))
        files[f"PennFudanPed/PedMasks/{name}_mask.png"] = buf.getvalue()
        files[f"PennFudanPed/Annotation/{name}.txt"] = "\r\n".join(lines)
    return files


def test_pennfudan_pascal_text_gives_detection_and_instance_masks(tmp_path):
    result = import_archive(write_zip(tmp_path / "PennFudanPed.zip", pennfudan_files()), tmp_path / "w")
    assert result.format == "voc"
    assert result.task_types == ["detection", "instance_segmentation"]
    assert result.classes == ["PASpersonWalking"]
    assert len(result.cases) == 4 and all("PNGImages" in c.source_path for c in result.cases)
    first = min(result.cases, key=lambda c: c.source_path)
    boxes = sorted(first.boxes, key=lambda b: b["bbox"][0])
    assert [b["bbox"] for b in boxes] == [[10.0, 20.0, 50.0, 100.0], [80.0, 20.0, 120.0, 100.0]]  # 0-based
    decoded = mask_utils.decode({"size": boxes[1]["rle"]["size"], "counts": boxes[1]["rle"]["counts"].encode()})
    assert decoded.sum() == 40 * 80 and decoded[20:100, 80:120].all()  # the pixels of pedestrian 2 only


def test_pennfudan_as_semantic_segmentation_rasterises_the_instances(tmp_path):
    archive = write_zip(tmp_path / "PennFudanPed.zip", pennfudan_files(2))
    result = import_archive(archive, tmp_path / "w", ImportOptions(task="segmentation"))
    assert result.task_types == ["segmentation"] and result.classes == ["background", "PASpersonWalking"]
    assert all(values == [0, 1] for values in result.mask_classes.values())


def test_pascal_text_pointing_at_a_missing_mask_is_rejected_by_name(tmp_path):
    files = pennfudan_files(2)
    del files["PennFudanPed/PedMasks/FudanPed00002_mask.png"]
    with pytest.raises(InvalidArgument) as err:
        import_archive(write_zip(tmp_path / "a.zip", files), tmp_path / "w")
    assert "FudanPed00002_mask.png" in str(err.value) and "not in the archive" in str(err.value)


def test_camvid_colour_masks_in_split_label_folders(tmp_path):
    """Kaggle's CamVid: <split>/ + <split>_labels/<stem>_L.png colour masks + class_dict.csv."""
    colours = {"Sky": (128, 128, 128), "Road": (128, 64, 128), "Car": (64, 0, 128)}
    files: dict[str, bytes | str] = {
        "CamVid/class_dict.csv": "name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in colours.items())
    }
    for split in ("train", "val", "test"):
        for i in range(3):
            label = np.zeros((24, 32, 3), np.uint8)
            label[:] = colours["Sky"]
            label[12:] = colours["Road"] if i % 2 else colours["Car"]  # tells the pairs apart
            files[f"CamVid/{split}/0001TP_{split}{i}.png"] = png(RNG.integers(0, 255, (24, 32, 3), dtype=np.uint8))
            files[f"CamVid/{split}_labels/0001TP_{split}{i}_L.png"] = png(label)
    result = import_archive(write_zip(tmp_path / "CamVid.zip", files), tmp_path / "w")
    assert result.format == "mask_folder" and result.classes == ["Sky", "Road", "Car"]
    assert result.split_counts() == {"train": 3, "val": 3, "test": 3}
    for case in result.cases:
        wanted = 1 if int(case.source_path[-5]) % 2 else 2
        assert result.mask_classes[case.mask_sha256] == [0, wanted], case.source_path


def test_dogs_vs_cats_labels_come_from_file_names_and_val_is_carved_from_train(tmp_path):
    files = {f"train/{c}.{i}.jpg": jpeg() for c in ("cat", "dog") for i in range(10)}
    files.update({f"test1/{i}.jpg": jpeg() for i in range(1, 4)})  # unlabelled: left out
    result = import_archive(write_zip(tmp_path / "dogs-vs-cats.zip", files), tmp_path / "w")
    assert result.format == "image_folder" and result.classes == ["cat", "dog"]
    assert result.split_counts() == {"train": 16, "val": 4, "test": 0}
    assert any("file names" in w for w in result.warnings)
    assert not any(c.source_path.startswith("test1/") for c in result.cases)


def test_chest_xray_with_its_nested_copy_and_mac_junk(tmp_path):
    """The Kaggle chest X-ray zip holds chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/ plus a second copy
    under chest_xray/chest_xray/ and a __MACOSX folder; the classes are still NORMAL and PNEUMONIA."""
    files: dict[str, bytes | str] = {"__MACOSX/chest_xray/._train": b"\x00\x05\x16\x07"}
    for root in ("chest_xray", "chest_xray/chest_xray"):
        for split in ("train", "val", "test"):
            for cls in ("NORMAL", "PNEUMONIA"):
                for i in range(3):
                    files[f"{root}/{split}/{cls}/IM-{i:04d}-0001.jpeg"] = jpeg((40, 40))
    result = import_archive(write_zip(tmp_path / "chest_xray.zip", files), tmp_path / "w")
    assert result.classes == ["NORMAL", "PNEUMONIA"]
    assert result.split_counts() == {"train": 12, "val": 12, "test": 12}
    assert len(result.grayscale) == len(result.images)


def test_train_and_test_folders_without_val(tmp_path):
    files = {f"{split}/{c}/{i}.jpg": jpeg() for split in ("train", "test") for c in ("a", "b") for i in range(5)}
    result = import_archive(write_zip(tmp_path / "x.zip", files), tmp_path / "w")
    assert result.split_counts() == {"train": 8, "val": 2, "test": 10}
    assert {result.classes[c.label] for c in result.cases if c.split == "val"} == {"a", "b"}  # stratified
