"""Unit tests of the dataset importer: archive -> cases, no network."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kernel.errors import InvalidArgument
from kernel.imaging import to_rgb
from services.dataset import importer
from services.dataset.images import decode_image
from services.dataset.importer import ImportLimits, ImportOptions, import_archive, task_types_for
from services.dataset.preview import render_thumbnail
from services.dataset.samples import make_classification_archive, upload_chunks
from trainyard.dataset.v1 import dataset_service_pb2 as pb


def png(colour=(200, 30, 30), size=(16, 12), mode="RGB", seed: int | None = None) -> bytes:
    if seed is not None:
        arr = np.random.default_rng(seed).integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
        im = Image.fromarray(arr, "RGB")
    else:
        im = Image.new("RGB", size, colour)
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def jpeg(size=(40, 20), orientation: int | None = None, mode="RGB") -> bytes:
    arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    arr[:, : size[0] // 2] = (255, 0, 0)  # left half red: shows where rotation moved it
    im = Image.fromarray(arr, "RGB").convert(mode)
    buf = io.BytesIO()
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    im.save(buf, format="JPEG", quality=95, **kwargs)
    return buf.getvalue()


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def write_tar(path: Path, files: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def folder(classes=("cat", "dog"), per_class=5, prefix="") -> dict[str, bytes]:
    return {
        f"{prefix}{c}/{i}.png": png(seed=zlib.crc32(f"{c}/{i}".encode()) % 100_000 + 1)
        for c in classes
        for i in range(per_class)
    }


def run(tmp_path: Path, files: dict[str, bytes], kind: str = "zip", **options) -> importer.ImportResult:
    path = tmp_path / f"a.{kind}"
    if kind == "zip":
        write_zip(path, files)
    else:
        write_tar(path, files, "w:gz" if kind == "tar.gz" else "w")
    limits = options.pop("limits", ImportLimits())
    return import_archive(path, tmp_path / "work", ImportOptions(**options), limits)


def violation(exc: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return " ".join(exc.value.violations.values())


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_image_folder_without_splits(tmp_path, kind):
    result = run(tmp_path, folder(("dog", "cat", "bird"), per_class=10), kind)
    assert result.format == "image_folder"
    assert result.archive_type == kind
    assert result.classes == ["bird", "cat", "dog"]
    assert result.class_counts() == [10, 10, 10]
    assert result.split_counts() == {"train": 24, "val": 6, "test": 0}
    assert [c.id for c in result.cases][:2] == ["c000001", "c000002"]
    case = next(c for c in result.cases if c.source_path == "dog/3.png")
    assert result.classes[case.label] == "dog" and (case.width, case.height) == (16, 12)
    for sha, image in result.images.items():  # stored bytes are content-addressed
        assert hashlib.sha256(image.read_bytes()).hexdigest() == sha
        assert image.key == f"images/{sha[:2]}/{sha}"
    assert result.task_types == ["classification"]


def test_image_folder_given_splits_are_kept(tmp_path):
    files = {
        **folder(prefix="train/", per_class=4),
        **folder(prefix="valid/", per_class=2),
        **{k.replace("cat/", "cat/t"): v for k, v in folder(prefix="test/", per_class=1).items()},
    }
    files = {k: png(seed=i + 100) for i, k in enumerate(files)}
    result = run(tmp_path, files)
    assert result.classes == ["cat", "dog"]
    assert result.split_counts() == {"train": 8, "val": 4, "test": 2}
    for case in result.cases:
        top = case.source_path.split("/")[0]
        assert case.split == {"train": "train", "valid": "val", "test": "test"}[top]


def test_single_wrapper_folder_is_tolerated(tmp_path):
    files = {f"my-dataset/{k}": v for k, v in folder(per_class=3, prefix="train/").items()}
    files.update({f"my-dataset/{k}": v for k, v in folder(per_class=1, prefix="val/").items()})
    files = {k: png(seed=i + 7) for i, k in enumerate(files)}
    result = run(tmp_path, files)
    assert result.classes == ["cat", "dog"]
    assert result.split_counts()["val"] == 2
    assert all(c.source_path.startswith("my-dataset/") for c in result.cases)


def test_csv_with_header(tmp_path):
    files = {f"images/{i}.png": png(seed=i + 1) for i in range(8)}
    rows = "\n".join(f"{i}.png,{'ant' if i % 2 else 'bee'}" for i in range(8))
    files["labels.csv"] = ("filename,label\n" + rows + "\n").encode()
    files["images/labels_backup.txt"] = b"not data"
    # file names are relative to the CSV's folder or to images/
    result = run(tmp_path, files)
    assert result.format == "csv"
    assert result.classes == ["ant", "bee"]
    assert result.class_counts() == [4, 4]
    assert any("non-image" in w and "labels_backup.txt" in w for w in result.warnings)


def test_csv_without_header_and_with_split_column(tmp_path):
    files = {f"data/img{i}.png": png(seed=i + 50) for i in range(6)}
    files["data/labels.csv"] = "".join(f"img{i}.png,{'x' if i < 3 else 'y'}\n" for i in range(6)).encode()
    result = run(tmp_path, files)
    assert result.format == "csv" and result.class_counts() == [3, 3]

    files["data/labels.csv"] = (
        "image,class,split\n"
        + "".join(f"img{i}.png,{'x' if i < 3 else 'y'},{'val' if i in (0, 3) else 'train'}\n" for i in range(6))
    ).encode()
    result = run(tmp_path, files)
    assert result.split_counts() == {"train": 4, "val": 2, "test": 0}


def test_csv_row_naming_a_missing_file_is_an_error(tmp_path):
    files = {f"{i}.png": png(seed=i + 1) for i in range(4)}
    files["labels.csv"] = b"file,label\n0.png,a\n1.png,a\n2.png,b\n3.png,b\nmissing.png,b\n"
    with pytest.raises(InvalidArgument) as exc:
        run(tmp_path, files, format="csv")
    assert "labels.csv line 6" in violation(exc) and "missing.png" in violation(exc)


def test_format_override(tmp_path):
    files = folder(per_class=3)
    files["labels.csv"] = b"file,label\n" + b"".join(
        f"{k},z{i % 2}\n".encode() for i, k in enumerate(folder(per_class=3))
    )
    assert run(tmp_path, files).format == "csv"
    result = run(tmp_path, files, format="image_folder")
    assert result.format == "image_folder" and result.classes == ["cat", "dog"]


def test_junk_and_non_image_files_are_skipped(tmp_path):
    files = folder(per_class=3)
    files.update(
        {
            "__MACOSX/cat/._0.png": b"\x00\x05\x16\x07junk",
            "cat/.DS_Store": b"junk",
            ".hidden/x.png": b"junk",
            "dog/Thumbs.db": b"junk",
            "dog/notes.txt": b"hello",
            "README.md": b"# readme",
        }
    )
    result = run(tmp_path, files)
    assert len(result.cases) == 6
    assert any("hidden or system" in w for w in result.warnings)
    assert any("non-image" in w and "dog/notes.txt" in w and "README.md" in w for w in result.warnings)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("bad", [b"this is not a png", png(size=(64, 64), seed=1)[:500]], ids=["garbage", "truncated"])
def test_corrupt_image_is_an_error_naming_the_file(tmp_path, bad):
    files = folder(per_class=3, prefix="wrap/")
    files["wrap/dog/broken.png"] = bad
    with pytest.raises(InvalidArgument) as exc:
        run(tmp_path, files)
    assert "wrap/dog/broken.png" in violation(exc)
    assert "wrap/dog/broken.png" in exc.value.violations  # the field is the bad file
    # the explicit option imports the good cases and reports the skipped one
    result = run(tmp_path, files, accept_partial=True)
    assert len(result.cases) == 6
    assert [f for f, _ in result.rejected] == ["wrap/dog/broken.png"]
    assert any("skipped 1 bad case" in w for w in result.warnings)


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize("evil", ["../evil.png", "cat/../../evil.png", "/etc/evil.png"])
def test_path_traversal_is_rejected(tmp_path, kind, evil):
    files = folder(per_class=2)
    files[evil] = png()
    with pytest.raises(InvalidArgument) as exc:
        run(tmp_path, files, kind)
    assert "outside the archive" in violation(exc) or "absolute path" in violation(exc)


def test_tar_links_are_skipped_not_followed(tmp_path):
    path = write_tar(tmp_path / "a.tar", folder(per_class=2))
    with tarfile.open(path, "a") as tf:
        link = tarfile.TarInfo("cat/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tf.addfile(link)
    result = import_archive(path, tmp_path / "work")
    assert len(result.cases) == 4 and all(c.source_path != "cat/link.png" for c in result.cases)
    assert any("link" in w and "cat/link.png" in w for w in result.warnings)


def test_archive_limits_bound_zip_bombs(tmp_path):
    files = folder(per_class=5)
    with pytest.raises(InvalidArgument) as exc:
        run(tmp_path, files, limits=ImportLimits(max_entries=5))
    assert "more than 5 entries" in violation(exc)
    bomb = {**files, "cat/zeros.png": b"\x00" * 5_000_000}  # deflates to a few KB
    with pytest.raises(InvalidArgument) as exc:
        run(tmp_path, bomb, limits=ImportLimits(max_uncompressed_bytes=1_000_000))
    assert "expands to more than" in violation(exc)
    with pytest.raises(InvalidArgument) as exc:
        run(tmp_path, folder(per_class=2), limits=ImportLimits(max_image_pixels=100))
    assert "over the limit" in violation(exc)


def test_empty_single_class_and_not_an_archive(tmp_path):
    with pytest.raises(InvalidArgument) as exc:
        run(tmp_path, {"readme.txt": b"x"})
    assert "no images found" in violation(exc)
    with pytest.raises(InvalidArgument) as exc:
        run(tmp_path, folder(classes=("cat",)))
    assert "only one class ('cat')" in violation(exc)
    path = tmp_path / "x.bin"
    path.write_bytes(b"hello world" * 100)
    with pytest.raises(InvalidArgument) as exc:
        import_archive(path, tmp_path / "w")
    assert "not a zip, tar or tar.gz" in violation(exc)
    write_zip(path, folder())
    with pytest.raises(InvalidArgument) as exc:  # archive_type override wins over the magic bytes
        import_archive(path, tmp_path / "w", ImportOptions(archive_type="tar.gz"))
    assert "not a readable tar.gz archive" in violation(exc)


# ------------------------------------------------------------------ images


def test_exif_orientation_is_applied(tmp_path):
    original = jpeg((40, 20), orientation=6)  # rotate 90 degrees clockwise on display
    plain = jpeg((40, 20), orientation=1)
    files = {**folder(per_class=2), "cat/rotated.jpg": original, "dog/plain.jpg": plain}
    result = run(tmp_path, files)
    rotated = next(c for c in result.cases if c.source_path == "cat/rotated.jpg")
    assert (rotated.width, rotated.height) == (20, 40)
    stored = result.images[rotated.sha256].read_bytes()
    assert stored != original
    im = Image.open(io.BytesIO(stored))
    assert im.size == (20, 40) and im.getexif().get(0x0112) in (None, 1)
    top = np.asarray(im.convert("RGB"))[:5].mean(axis=(0, 1))
    assert top[0] > 150 and top[1] < 100  # the red left half is now on top
    kept = next(c for c in result.cases if c.source_path == "dog/plain.jpg")
    assert kept.sha256 == hashlib.sha256(plain).hexdigest()  # no rotation: original bytes


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1"])
def test_every_image_mode_imports_and_previews(tmp_path, mode):
    if mode == "CMYK":
        data = jpeg((24, 16), mode="CMYK")
    elif mode == "I;16":
        arr = (np.arange(24 * 16, dtype=np.uint16).reshape(16, 24) * 100).astype(np.uint16)
        buf = io.BytesIO()
        Image.frombytes("I;16", (24, 16), arr.astype("<u2").tobytes()).save(buf, format="PNG")
        data = buf.getvalue()
    else:
        data = png(size=(24, 16), mode=mode, seed=3)
    files = {**folder(per_class=2), f"cat/odd.{'jpg' if mode == 'CMYK' else 'png'}": data}
    result = run(tmp_path, files)
    case = next(c for c in result.cases if "odd" in c.source_path)
    assert (case.width, case.height) == (24, 16)
    thumb = Image.open(io.BytesIO(render_thumbnail(result.images[case.sha256].read_bytes(), "cat", 64)))
    assert thumb.format == "JPEG" and max(thumb.size) == 64
    rgb = to_rgb(Image.open(io.BytesIO(data)))
    assert rgb.mode == "RGB"
    if mode == "I;16":  # scaled, not clipped to white
        assert np.asarray(rgb).std() > 20


def test_decode_rotates_and_reports_mode():
    image = decode_image(jpeg((30, 10), orientation=8))
    assert (image.width, image.height) == (10, 30) and image.reencoded and image.format == "JPEG"


# ------------------------------------------------------------------ duplicates and splits


def test_duplicates_and_conflicts_are_warned(tmp_path):
    files = folder(per_class=6)
    same = png(seed=999)
    files.update(
        {
            "cat/dup1.png": same,
            "cat/dup2.png": same,
            "dog/conflict.png": png(seed=555),
            "cat/conflict.png": png(seed=555),
        }
    )
    result = run(tmp_path, files)
    dup = [w for w in result.warnings if w.startswith("duplicate")]
    conflict = [w for w in result.warnings if w.startswith("conflict")]
    assert len(dup) == 1 and "cat/dup1.png" in dup[0] and "cat/dup2.png" in dup[0]
    assert len(conflict) == 1 and "cat/conflict.png" in conflict[0] and "dog/conflict.png" in conflict[0]
    by_path = {c.source_path: c for c in result.cases}
    assert by_path["cat/dup1.png"].split == by_path["cat/dup2.png"].split
    assert by_path["cat/conflict.png"].split == by_path["dog/conflict.png"].split
    assert len(result.images) == len(result.cases) - 2  # one stored object per distinct image


def test_stratified_split_is_deterministic():
    labels = [0] * 50 + [1] * 20 + [2] * 1
    groups = [f"g{i}" for i in range(len(labels))]
    a = importer.assign_splits(labels, groups, 0.2, 0.1, seed=7)
    assert a == importer.assign_splits(labels, groups, 0.2, 0.1, seed=7)
    assert a != importer.assign_splits(labels, groups, 0.2, 0.1, seed=8)
    for cls, n, (val, test) in ((0, 50, (10, 5)), (1, 20, (4, 2))):
        got = [s for s, lab in zip(a, labels, strict=True) if lab == cls]
        assert (got.count("val"), got.count("test"), got.count("train")) == (val, test, n - val - test)
    assert a[-1] == "train"  # a class with one image stays in train
    # a group spans its cases
    assert len(set(importer.assign_splits([0, 0, 0, 0, 1, 1], ["a", "a", "b", "c", "d", "e"], 0.5, 0, 1)[:2])) == 1


def test_split_seed_changes_import_split(tmp_path):
    files = folder(per_class=10)
    first = {c.source_path: c.split for c in run(tmp_path, files, split_seed=1).cases}
    again = {c.source_path: c.split for c in run(tmp_path, files, split_seed=1).cases}
    other = {c.source_path: c.split for c in run(tmp_path, files, split_seed=2).cases}
    assert first == again and first != other


def test_task_types_mapping_is_general():
    assert task_types_for(["label"]) == ["classification"]
    assert task_types_for(["box"]) == ["detection"]
    assert task_types_for(["mask"]) == ["segmentation"]
    assert task_types_for(["box", "polygon"]) == ["detection", "instance_segmentation"]


# ------------------------------------------------------------------ samples


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_sample_archive_imports(tmp_path, fmt):
    data = make_classification_archive(per_class=4, size=32, fmt=fmt, seed=3)
    assert data == make_classification_archive(per_class=4, size=32, fmt=fmt, seed=3) or fmt != "zip"
    path = make_classification_archive(tmp_path / f"s.{fmt}", per_class=4, size=32, fmt=fmt, layout="csv")
    result = import_archive(path, tmp_path / "w")
    assert result.format == "csv" and result.classes == ["circle", "square", "triangle"]
    assert result.class_counts() == [4, 4, 4]


def test_upload_chunks_sends_metadata_first():
    data = bytes(range(256)) * 10
    messages = list(upload_chunks(pb.CreateDatasetMetadata(name="x"), data, chunk_size=1000))
    assert messages[0].WhichOneof("payload") == "metadata"
    assert b"".join(m.chunk for m in messages[1:]) == data and len(messages) == 4
