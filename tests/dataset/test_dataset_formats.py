"""Detection and segmentation layouts: COCO, Pascal VOC, YOLO, mask folders; bad input; the manifest fields."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kernel.errors import InvalidArgument
from services.dataset import importer, samples
from services.dataset.importer import ImportOptions, import_archive


def imp(tmp_path: Path, data: bytes | dict[str, bytes], **options) -> importer.ImportResult:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "a.zip"
    if isinstance(data, dict):
        with zipfile.ZipFile(path, "w") as zf:
            for name, value in data.items():
                zf.writestr(name, value)
    else:
        path.write_bytes(data)
    return import_archive(path, tmp_path / "work", ImportOptions(**options))


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def jpg(size=(40, 30), colour=(120, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG")
    return buf.getvalue()


def png_mask(arr: np.ndarray, mode="L") -> bytes:
    buf = io.BytesIO()
    if mode == "P":
        im = Image.frombytes("P", (arr.shape[1], arr.shape[0]), arr.astype(np.uint8).tobytes())
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [9] * (253 * 3))
    else:
        im = Image.fromarray(arr.astype(np.uint8), "L")
    im.save(buf, format="PNG")
    return buf.getvalue()


def coco_doc(images, annotations, categories=({"id": 1, "name": "cat"}, {"id": 7, "name": "dog"}), **extra):
    return json.dumps(
        {
            "info": {"year": 2024},
            "licenses": [],
            **extra,
            "images": images,
            "annotations": annotations,
            "categories": list(categories),
        }
    ).encode()


# ------------------------------------------------------------------ formats detected and read


@pytest.mark.parametrize(
    ("fmt", "polygons", "expected_format", "types"),
    [
        ("coco", False, "coco", ["box"]),
        ("coco", True, "coco", ["box", "polygon"]),
        ("voc", False, "voc", ["box"]),
        ("yolo", False, "yolo", ["box"]),
        ("yolo", True, "yolo", ["box", "polygon"]),
    ],
)
def test_detection_formats_are_detected_and_match_the_drawn_objects(tmp_path, fmt, polygons, expected_format, types):
    data = samples.make_detection_archive(fmt=fmt, n=8, polygons=polygons, seed=3)
    result = imp(tmp_path, data)
    assert result.format == expected_format
    assert result.annotation_types == types
    assert result.classes == ["circle", "square"]
    assert len(result.cases) == 8
    # the same generator with the same seed draws the same scenes: compare boxes to the truth
    rng = np.random.default_rng(3)
    truth = [samples._scene(rng, 64, samples.DETECTION_CLASSES)[2] for _ in range(8)]
    for case, objects in zip(sorted(result.cases, key=lambda c: c.source_path), truth, strict=True):
        assert case.label is None and case.mask_sha256 is None
        assert len(case.boxes) == len(objects)
        for box, (cls, bbox, _) in zip(case.boxes, objects, strict=True):
            assert box["class"] == cls
            assert np.allclose(box["bbox"], bbox, atol=0.15 if fmt != "voc" else 0.06)
            assert ("polygons" in box) == polygons
    assert "detection" in result.task_types
    assert ("instance_segmentation" in result.task_types) == polygons


def test_manifest_carries_the_contract_fields(tmp_path):
    from services.dataset.domain import build_manifest

    result = imp(tmp_path, samples.make_detection_archive(fmt="coco", n=4, polygons=True))
    manifest = build_manifest("default", "ds-1", "dsv-1", 1, result)
    case = manifest["cases"][0]
    assert manifest["task_types"] == ["detection", "instance_segmentation"]
    assert set(case) >= {"id", "source_path", "image_key", "sha256", "width", "height", "split", "boxes"}
    assert "label" not in case
    box = case["boxes"][0]
    assert isinstance(box["class"], int) and len(box["bbox"]) == 4 and box["polygons"][0]
    json.dumps(manifest)  # plain JSON

    seg = imp(tmp_path / "s", samples.make_segmentation_archive(n=4))
    manifest = build_manifest("default", "ds-2", "dsv-2", 1, seg)
    assert manifest["ignore_index"] == 255
    assert manifest["annotation_types"] == ["mask"] and manifest["task_types"] == ["segmentation"]
    assert manifest["cases"][0]["mask_key"].startswith("masks/")


def test_given_splits_are_kept_for_coco_yolo_and_voc(tmp_path):
    for fmt in ("coco", "yolo", "voc"):
        result = imp(tmp_path / fmt, samples.make_detection_archive(fmt=fmt, n=8, splits=True))
        splits = {c.source_path.rsplit("/", 1)[-1]: c.split for c in result.cases}
        assert splits["img_0003.jpg"] == "val" and splits["img_0000.jpg"] == "train", fmt


@pytest.mark.parametrize("palette", [False, True])
def test_mask_folders_store_single_channel_index_masks(tmp_path, palette):
    result = imp(tmp_path, samples.make_segmentation_archive(n=6, palette=palette, ignore_border=True))
    assert result.format == "mask_folder"
    assert result.classes == ["background", "circle", "square"]
    assert result.ignore_index == 255
    assert len(result.masks) == 6
    for case in result.cases:
        stored = result.masks[case.mask_sha256]
        mask = Image.open(stored.path)
        assert mask.mode == "L" and mask.size == (case.width, case.height)
        values = set(np.unique(np.asarray(mask)).tolist())
        assert 255 in values and values <= {0, 1, 2, 255}
    assert sum(result.class_counts()) > 0


def test_rgb_colour_masks_need_and_use_a_colour_map(tmp_path):
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[5:15, 5:15] = (255, 0, 0)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    files = {f"data/images/a {i}.JPG": jpg() for i in range(3)}
    files |= {f"data/masks/a {i}.png": buf.getvalue() for i in range(3)}
    with pytest.raises(InvalidArgument, match="colour map"):
        imp(tmp_path / "x", files)
    files["data/classes.csv"] = b"\xef\xbb\xbfname,r,g,b\nbackground,0,0,0\ncar,255,0,0\n"
    result = imp(tmp_path / "y", files)
    mask = np.asarray(Image.open(next(iter(result.masks.values())).path))
    assert mask[10, 10] == 1 and mask[0, 0] == 0
    assert result.classes == ["background", "car"]


def test_messy_coco_bom_extra_keys_basename_refs_spaces_and_case(tmp_path):
    doc = coco_doc(
        [
            {"id": 1, "file_name": "C:\\Users\\me\\photos\\My Cat.JPG", "width": 40, "height": 30, "flickr": "x"},
            {"id": 2, "file_name": "dog 2.jpeg"},
        ],
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "extra": True},
            {"id": 2, "image_id": 2, "category_id": 7, "bbox": [5, 5, 10, 10], "segmentation": []},
        ],
        extra_top={"whatever": 1},
    )
    files = {
        "wrapper/annotations/_annotations.coco.json": b"\xef\xbb\xbf" + doc,
        "wrapper/pics/My Cat.JPG": jpg(),
        "wrapper/pics/dog 2.jpeg": jpg(colour=(1, 2, 3)),
    }
    result = imp(tmp_path, files)
    assert result.classes == ["cat", "dog"]  # category ids 1 and 7 -> indices 0 and 1
    by_path = {c.source_path: c for c in result.cases}
    assert by_path["wrapper/pics/My Cat.JPG"].boxes == [{"class": 0, "bbox": [1.0, 1.0, 11.0, 11.0]}]
    assert by_path["wrapper/pics/dog 2.jpeg"].boxes[0]["class"] == 1


def test_coco_rle_is_kept_compressed_and_gives_a_box(tmp_path):
    from pycocotools import mask as mask_utils

    arr = np.zeros((30, 40), np.uint8, order="F")
    arr[10:20, 4:14] = 1
    rle = mask_utils.encode(np.asfortranarray(arr))
    uncompressed = {"size": [30, 40], "counts": [int(v) for v in _uncompressed_counts(arr)]}
    doc = coco_doc(
        [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": {"size": [30, 40], "counts": rle["counts"].decode()},
                "iscrowd": 1,
            },
            {"id": 2, "image_id": 2, "category_id": 7, "segmentation": uncompressed, "iscrowd": 1},
        ],
    )
    result = imp(tmp_path, {"ann.json": doc, "a.jpg": jpg(), "b.jpg": jpg(colour=(0, 0, 200))})
    assert result.annotation_types == ["box", "polygon"]
    for case in result.cases:
        box = case.boxes[0]
        assert box["bbox"] == [4.0, 10.0, 14.0, 20.0]
        decoded = mask_utils.decode({"size": box["rle"]["size"], "counts": box["rle"]["counts"].encode()})
        assert decoded.sum() == 100


def _uncompressed_counts(arr: np.ndarray) -> list[int]:
    flat = arr.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return counts


def test_format_override_wins_over_detection(tmp_path):
    data = samples.make_segmentation_archive(n=4)
    with pytest.raises(InvalidArgument, match="COCO"):
        imp(tmp_path / "a", data, format="coco")
    assert imp(tmp_path / "b", data, format="mask_folder").format == "mask_folder"


def test_yolo_with_classes_txt_and_negatives(tmp_path):
    files = {
        "obj/a.jpg": jpg(),
        "obj/a.txt": b"0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.1 0.1\n",
        "obj/b.JPG": jpg(colour=(1, 100, 1)),
        "classes.txt": b"cat\ndog\n",
    }
    result = imp(tmp_path, files)
    assert result.format == "yolo"
    by_path = {c.source_path: c for c in result.cases}
    assert by_path["obj/a.jpg"].boxes[0] == {"class": 0, "bbox": [10.0, 7.5, 30.0, 22.5]}
    assert by_path["obj/b.JPG"].boxes == []
    assert any("no label file" in w for w in result.warnings)


# ------------------------------------------------------------------ bad input


def coco_case(tmp_path, annotations, images=None, files=None, **options):
    images = images or [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}]
    content = {"ann.json": coco_doc(images, annotations), "a.jpg": jpg(), "b.jpg": jpg(colour=(0, 0, 200))}
    return imp(tmp_path, content | (files or {}), **options)


GOOD = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]}


@pytest.mark.parametrize(
    ("annotation", "images", "needle"),
    [
        ({"id": 2, "image_id": 2, "category_id": 99, "bbox": [1, 1, 5, 5]}, None, "unknown category id 99"),
        (
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 5, 5]},
            None,
            "lies outside the 40x30 image; rejected",
        ),
        ({"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 5, 0, 4]}, None, "non-positive size; rejected"),
        ({"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 5, -3, 4]}, None, "non-positive size; rejected"),
        (
            None,
            [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "missing.jpg"}],
            "'missing.jpg' (id 2) is not in the archive",
        ),
        ({"id": 2, "image_id": 42, "category_id": 1, "bbox": [1, 1, 5, 5]}, None, "refers to image id 42"),
        (
            {"id": 2, "image_id": 2, "category_id": 1, "segmentation": {"size": [99, 40], "counts": "abc"}},
            None,
            "RLE size",
        ),
    ],
    ids=[
        "unknown-category",
        "box-outside",
        "zero-size",
        "negative-size",
        "missing-image",
        "unlisted-image-id",
        "rle-size",
    ],
)
def test_bad_coco_cases_reject_the_import_with_a_report_or_are_skipped(tmp_path, annotation, images, needle):
    annotations = [GOOD] + ([annotation] if annotation else [])
    with pytest.raises(InvalidArgument) as exc:
        coco_case(tmp_path / "strict", annotations, images)
    assert needle in str(exc.value)
    assert "nothing imported" in exc.value.message
    assert any(needle in v for v in exc.value.violations.values())
    result = coco_case(tmp_path / "partial", annotations, images, accept_partial=True)
    # an annotation of an unlisted image id spoils no listed image: b.jpg stays, without objects
    expected = ["a.jpg", "b.jpg"] if "refers to image id" in needle else ["a.jpg"]
    assert [c.source_path for c in result.cases] == expected
    assert any(needle in reason for _, reason in result.rejected)


def test_boxes_partly_outside_are_clipped_and_said_so(tmp_path):
    result = coco_case(tmp_path, [GOOD, {"id": 2, "image_id": 2, "category_id": 7, "bbox": [30, 20, 20, 20]}])
    b = next(c for c in result.cases if c.source_path == "b.jpg")
    assert b.boxes[0]["bbox"] == [30.0, 20.0, 40.0, 30.0]
    assert any("clipped 1 box" in w for w in result.warnings)


def test_mask_size_mismatch_and_unknown_values_are_rejected(tmp_path):
    good = np.zeros((30, 40), np.uint8)
    good[2:8, 2:8] = 1
    files = {
        "images/a.jpg": jpg(),
        "masks/a.png": png_mask(good),
        "images/b.jpg": jpg(),
        "masks/b.png": png_mask(np.zeros((20, 40))),
        "images/c.jpg": jpg(),
        "masks/c.png": png_mask(np.full((30, 40), 7)),
        "classes.txt": b"background\nthing\n",
    }
    with pytest.raises(InvalidArgument) as exc:
        imp(tmp_path / "s", files)
    assert "masks/b.png is 40x20 but the image is 40x30" in exc.value.violations["images/b.jpg"]
    assert "[7]" in exc.value.violations["images/c.jpg"]
    result = imp(tmp_path / "p", files, accept_partial=True)
    assert [c.source_path for c in result.cases] == ["images/a.jpg"]


def test_palette_mask_indices_are_class_indices(tmp_path):
    arr = np.zeros((30, 40), np.uint8)
    arr[0:5] = 2
    arr[-1] = 255
    files = {
        "JPEGImages/x.jpg": jpg(),
        "SegmentationClass/x.png": png_mask(arr, "P"),
        "JPEGImages/y.jpg": jpg(),
        "SegmentationClass/y.png": png_mask(arr, "P"),
        "labels.txt": b"background\na\nb\n",
    }
    result = imp(tmp_path, files)
    mask = np.asarray(Image.open(next(iter(result.masks.values())).path))
    assert mask[0, 0] == 2 and mask[-1, 0] == 255 and mask[10, 10] == 0
    assert result.class_counts() == [2, 0, 2]


def test_voc_unknown_class_and_missing_image(tmp_path):
    xml = b"<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>"
    bad = xml.replace(b"<name>cat", b"<name>zebra").replace(b"a.jpg", b"b.jpg")
    missing = xml.replace(b"a.jpg", b"gone.jpg")
    files = {
        "Annotations/a.xml": xml,
        "Annotations/b.xml": bad,
        "Annotations/gone.xml": missing,
        "JPEGImages/a.jpg": jpg(),
        "JPEGImages/b.jpg": jpg(),
        "classes.txt": b"cat\n",
    }
    with pytest.raises(InvalidArgument) as exc:
        imp(tmp_path, files)
    report = str(exc.value)
    assert "unknown class 'zebra'" in report and "'gone.jpg' is not in the archive" in report


def test_yolo_bad_lines_and_orphan_labels(tmp_path):
    files = {
        "images/a.jpg": jpg(),
        "labels/a.txt": b"0 0.5 0.5 0.2 0.2\n",
        "images/b.jpg": jpg(),
        "labels/b.txt": b"5 0.5 0.5 0.2 0.2\n",
        "images/c.jpg": jpg(),
        "labels/c.txt": b"0 0.5 0.5\n",
        "labels/d.txt": b"0 0.5 0.5 0.2 0.2\n",
        "data.yaml": b"names: [cat, dog]\n",
    }
    with pytest.raises(InvalidArgument) as exc:
        imp(tmp_path, files)
    v = exc.value.violations
    assert "unknown class id 5" in v["images/b.jpg"]
    assert "expected 'class cx cy w h'" in v["images/c.jpg"]
    assert "no matching image" in v["labels/d.txt"]


def test_yolo_without_class_list_is_an_error(tmp_path):
    files = {"images/a.jpg": jpg(), "labels/a.txt": b"0 0.5 0.5 0.2 0.2\n"}
    with pytest.raises(InvalidArgument, match="data.yaml"):
        imp(tmp_path, files, format="yolo")


def test_an_empty_detection_dataset_is_an_error(tmp_path):
    with pytest.raises(InvalidArgument, match="is not in the archive"):
        coco_case(tmp_path, [], images=[{"id": 1, "file_name": "zzz.jpg"}], files={})
    with pytest.raises(InvalidArgument, match="empty"):
        coco_case(tmp_path / "b", [], images=[{"id": 1, "file_name": "zzz.jpg"}], accept_partial=True)


def test_messy_yolo_tar_gz_with_wrapper_spaces_and_upper_case(tmp_path):
    import tarfile

    files = {
        "My Export/data.yaml": b"\xef\xbb\xbfnames:\n  0: cat\n  1: dog\n",
        "My Export/train/images/Photo 1.JPG": jpg(),
        "My Export/train/labels/Photo 1.txt": b"1 0.5 0.5 0.5 0.5\n",
        "My Export/valid/images/photo 2.Png": png_mask(np.full((30, 40), 90)),
        "My Export/valid/labels/photo 2.txt": b"0 0.5 0.5 0.2 0.2\n\n",
        "My Export/README.roboflow.txt": b"exported",
    }
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    result = import_archive(path, tmp_path / "work", ImportOptions())
    assert result.format == "yolo" and result.archive_type == "tar.gz"
    by_path = {c.source_path: c for c in result.cases}
    assert by_path["My Export/train/images/Photo 1.JPG"].split == "train"
    assert by_path["My Export/valid/images/photo 2.Png"].split == "val"
    assert by_path["My Export/train/images/Photo 1.JPG"].boxes[0]["class"] == 1
    assert len(result.grayscale) == 1  # the grey PNG


def test_zip_symlinks_are_skipped_not_followed(tmp_path):
    files = {"images/a.jpg": jpg(), "masks/a.png": png_mask(np.zeros((30, 40))), "classes.txt": b"bg\n"}
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        link = zipfile.ZipInfo("images/evil.jpg")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    result = import_archive(path, tmp_path / "work", ImportOptions())
    assert [c.source_path for c in result.cases] == ["images/a.jpg"]
    assert any("link" in w for w in result.warnings)


def test_decompression_bomb_mask_and_non_image_are_rejected(tmp_path):
    files = {
        "images/a.jpg": jpg(),
        "masks/a.png": png_mask(np.zeros((30, 40))),
        "images/b.jpg": b"GIF89a but not really",
        "masks/b.png": png_mask(np.zeros((30, 40))),
        "classes.txt": b"bg\n",
    }
    with pytest.raises(InvalidArgument) as exc:
        imp(tmp_path / "a", files)
    assert "not a recognised image format" in exc.value.violations["images/b.jpg"]
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            if "b." not in name:
                zf.writestr(name, data)
    with pytest.raises(InvalidArgument, match="over the limit"):
        import_archive(path, tmp_path / "w", ImportOptions(), importer.ImportLimits(max_image_pixels=1000))


def test_unknown_format_name_is_rejected(tmp_path):
    with pytest.raises(InvalidArgument) as exc:
        imp(tmp_path, {"a.jpg": jpg()}, format="labelme")
    assert "metadata.format" in exc.value.violations


def test_detection_duplicates_and_conflicts_and_statistics(tmp_path):
    from services.dataset import stats
    from services.dataset.domain import build_manifest

    same = jpg(colour=(9, 9, 9))
    doc = coco_doc(
        [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}, {"id": 3, "file_name": "c.jpg"}],
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 10, 10]},
            {"id": 3, "image_id": 3, "category_id": 7, "bbox": [0, 0, 40, 30]},
        ],
    )
    result = imp(tmp_path, {"ann.json": doc, "a.jpg": same, "b.jpg": same, "c.jpg": same})
    assert any(w.startswith("conflict") for w in result.warnings)
    m = build_manifest("p", "d", "v", 1, result)
    st = stats.compute(m["cases"], m["classes"], grayscale=result.grayscale)
    assert st["conflict_groups"] == 1 and st["duplicate_groups"] == 0
    assert st["small_boxes"] == 2 and st["medium_boxes"] == 1 and st["large_boxes"] == 0
    assert st["classes"][0] == {"index": 0, "name": "cat", "image_count": 2, "instance_count": 2}
    assert st["imbalance_ratio"] == 2.0 and st["grayscale_fraction"] == 1.0
    assert len({c.split for c in result.cases}) == 1  # identical images share a split


def test_coco_polygons_rasterised_for_semantic_segmentation(tmp_path):
    data = samples.make_detection_archive(fmt="coco", n=6, polygons=True, seed=4)
    result = imp(tmp_path / "a", data, task="segmentation")
    assert result.annotation_types == ["mask"] and result.task_types == ["segmentation"]
    assert result.classes == ["background", "circle", "square"] and result.ignore_index == 255
    rng = np.random.default_rng(4)
    truth = [samples._scene(rng, 64, samples.DETECTION_CLASSES) for _ in range(6)]
    for case, (_, drawn, _) in zip(sorted(result.cases, key=lambda c: c.source_path), truth, strict=True):
        assert case.boxes is None
        mask = np.asarray(Image.open(result.masks[case.mask_sha256].path))
        agree = (mask == np.asarray(drawn)).mean()
        assert agree > 0.97, agree  # the rasterised polygons match the drawn shapes up to edge pixels
    with pytest.raises(InvalidArgument) as exc:
        imp(tmp_path / "b", samples.make_detection_archive(fmt="coco", n=4), task="segmentation")
    assert "cannot be rasterised" in str(exc.value)
    with pytest.raises(InvalidArgument) as exc:
        imp(tmp_path / "c", data, task="classification")
    assert "cannot train classification" in exc.value.violations["metadata.task_type"]


def test_split_folders_with_a_year_are_splits_not_classes(tmp_path):
    # COCO's own layout: train2017/ and val2017/ image folders beside annotations/instances_<split>2017.json
    coco = {
        "annotations/instances_train2017.json": coco_doc(
            [{"id": 1, "file_name": "000000000009.jpg"}, {"id": 2, "file_name": "000000000025.jpg"}],
            [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
                {"id": 2, "image_id": 2, "category_id": 7, "bbox": [2, 2, 10, 10]},
            ],
        ),
        "annotations/instances_val2017.json": coco_doc(
            [{"id": 3, "file_name": "000000000139.jpg"}],
            [{"id": 3, "image_id": 3, "category_id": 1, "bbox": [1, 1, 9, 9]}],
        ),
        "train2017/000000000009.jpg": jpg(),
        "train2017/000000000025.jpg": jpg(colour=(0, 0, 200)),
        "val2017/000000000139.jpg": jpg(colour=(0, 200, 0)),
    }
    result = imp(tmp_path / "coco", coco)
    assert result.task_types[0] == "detection" and result.classes == ["cat", "dog"]
    assert {c.split for c in result.cases} == {"train", "val"}
    # asked for classification, it does not take train2017/ and val2017/ for two classes
    with pytest.raises(InvalidArgument) as exc:
        imp(tmp_path / "cls", coco, task="classification")
    assert "cannot train classification" in exc.value.violations["metadata.task_type"]
    # class folders under dated split folders
    folders = {
        f"{split}2017/{cls}/{i}.jpg": jpg(colour=colour)
        for split in ("train", "val")
        for i in range(3)
        for cls, colour in (("cat", (200, 0, 0)), ("dog", (0, 0, 200)))
    }
    result = imp(tmp_path / "folders", folders)
    assert result.classes == ["cat", "dog"]
    assert sorted({c.split for c in result.cases}) == ["train", "val"]
