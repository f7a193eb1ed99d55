"""Every task type trains end to end through trainer.job.run_job on tiny generated data written to
real S3 the way the dataset service writes it (manifest contract of BRIEF2 #1): detection with boxes,
semantic segmentation with mask PNGs and an ignore index, instance segmentation with polygons and RLE."""

from __future__ import annotations

import hashlib
import io
import json
import uuid

import numpy as np
import pytest
import testjobs
import torch
from PIL import Image, ImageDraw

from kernel import objectstore
from trainer import data
from trainer.job import run_job
from trainer.storage import S3Store
from trainyard.common.v1 import common_pb2 as C
from trainyard.events.v1 import events_pb2

pytestmark = pytest.mark.integration

SIZE = 64


@pytest.fixture
def s3(settings):
    client = objectstore.make_client(settings)
    objectstore.ensure_buckets(client)
    return client


def put(client, prefix: str, payload: bytes) -> tuple[str, str]:
    digest = hashlib.sha256(payload).hexdigest()
    key = f"{prefix}/{digest[:2]}/{digest}"
    objectstore.put_bytes(client, objectstore.DATASETS_BUCKET, key, payload, "image/png")
    return key, digest


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def scene(seed: int) -> tuple[Image.Image, list[dict]]:
    """A noisy background with one red square (class 0) and one blue wide bar (class 1)."""
    rng = np.random.default_rng(seed)
    arr = (rng.random((SIZE, SIZE, 3)) * 60).astype("uint8")
    img = Image.fromarray(arr)
    draw = ImageDraw.Draw(img)
    objects = []
    x, y = int(rng.integers(2, 24)), int(rng.integers(2, 24))
    draw.rectangle([x, y, x + 17, y + 17], fill=(230, 40, 40))
    objects.append({"class": 0, "bbox": [float(x), float(y), float(x + 18), float(y + 18)]})
    x2, y2 = int(rng.integers(2, 20)), int(rng.integers(44, 54))
    draw.rectangle([x2, y2, x2 + 39, y2 + 7], fill=(40, 40, 230))
    objects.append({"class": 1, "bbox": [float(x2), float(y2), float(x2 + 40), float(y2 + 8)]})
    return img, objects


def upload(client, task: str, n_train: int = 8, n_val: int = 4) -> tuple[events_pb2.DatasetSpec, list[str]]:
    from pycocotools import mask as mask_util

    classes = ["background", "square", "bar"] if task == "segmentation" else ["square", "bar"]
    cases = []
    for i in range(n_train + n_val):
        img, objects = scene(i)
        key, digest = put(client, "images", png(img))
        case = {
            "id": f"c{i:06d}",
            "source_path": f"img/{i}.png",
            "image_key": key,
            "sha256": digest,
            "width": SIZE,
            "height": SIZE,
            "split": "train" if i < n_train else "val",
        }
        if task == "segmentation":
            mask = np.zeros((SIZE, SIZE), dtype="uint8")
            for o in objects:
                x0, y0, x1, y1 = (int(v) for v in o["bbox"])
                mask[y0:y1, x0:x1] = o["class"] + 1
            mask[:, :2] = 255  # unlabelled strip: ignored by loss and metrics
            case["mask_key"], _ = put(client, "masks", png(Image.fromarray(mask, "L")))
        else:
            boxes = []
            for k, o in enumerate(objects):
                box = dict(o)
                if task == "instance_segmentation":
                    x0, y0, x1, y1 = o["bbox"]
                    if k == 0:
                        box["polygons"] = [[x0, y0, x1, y0, x1, y1, x0, y1]]
                    else:
                        m = np.zeros((SIZE, SIZE), dtype="uint8", order="F")
                        m[int(y0) : int(y1), int(x0) : int(x1)] = 1
                        rle = mask_util.encode(np.asfortranarray(m))
                        box["rle"] = {"size": rle["size"], "counts": rle["counts"].decode()}
                boxes.append(box)
            case["boxes"] = boxes
        cases.append(case)
    dataset_id, version_id = f"ds{uuid.uuid4().hex[:10]}", f"dv{uuid.uuid4().hex[:10]}"
    manifest = {
        "schema": "trainyard.dataset.manifest/v1",
        "dataset_id": dataset_id,
        "version_id": version_id,
        "number": 1,
        "project": "default",
        "annotation_types": {"segmentation": ["mask"], "detection": ["box"]}.get(task, ["box", "polygon"]),
        "task_types": [task],
        "classes": classes,
        "ignore_index": 255,
        "cases": cases,
    }
    key = f"manifests/{dataset_id}/{version_id}.json"
    digest, size = objectstore.put_json(client, objectstore.DATASETS_BUCKET, key, manifest)
    ref = C.ObjectRef(bucket=objectstore.DATASETS_BUCKET, key=key, sha256=digest, size_bytes=size)
    return (
        events_pb2.DatasetSpec(dataset_id=dataset_id, version_id=version_id, manifest=ref, class_names=classes),
        classes,
    )


def make_job(task_type: int, dataset: events_pb2.DatasetSpec, library: str, architecture: str, **hp):
    task_id = f"tt{uuid.uuid4().hex[:12]}"
    params = dict(
        epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        backbone_lr_multiplier=1.0,
        weight_decay=1e-4,
        image_size=SIZE,
        optimizer=C.OPTIMIZER_ADAMW,
        seed=42,
    )
    params.update(hp)
    return testjobs.resolved(
        events_pb2.TrainingJob(
            task_id=task_id,
            project="default",
            task_type=task_type,
            model=events_pb2.ModelSpec(
                model_id=f"{library}/{architecture}", library=library, architecture=architecture
            ),
            dataset=dataset,
            hyperparameters=C.Hyperparameters(**params),
            transfer_strategy=C.TRANSFER_STRATEGY_FROM_SCRATCH,
            output_bucket=objectstore.ARTIFACTS_BUCKET,
            output_prefix=f"tasks/{task_id}/",
        )
    )


def run(job, s3, tmp_path):
    store = S3Store(s3)
    cache = data.LocalCache(tmp_path / "cache", 1 << 30)
    logs: list[str] = []

    class Reporter:
        def progress(self, *a):
            pass

        def epoch_metrics(self, epoch, values):
            logs.append(f"epoch {epoch}: {values}")

        def log(self, text):
            logs.append(text)

    result = run_job(job, store=store, cache=cache, device=torch.device("cpu"), reporter=Reporter())
    report = json.loads(store.get_bytes(objectstore.ARTIFACTS_BUCKET, job.output_prefix + "metrics.json"))
    return result, report, logs


def test_detection_trains_with_coco_map_and_per_class_ap(s3, tmp_path):
    dataset, classes = upload(s3, "detection", n_train=4, n_val=2)
    job = make_job(C.TASK_TYPE_DETECTION, dataset, "torchvision", "fasterrcnn_mobilenet_v3_large_fpn", epochs=1)
    result, report, _ = run(job, s3, tmp_path)
    for name in ("val_map", "val_map_50", "val_map_75"):
        assert 0.0 <= result.metrics[name] <= 1.0
    assert "train_loss" in result.metrics and np.isfinite(result.metrics["train_loss"])
    assert [p["class"] for p in report["per_class"]] == classes
    assert all(p["ap"] is None or 0.0 <= p["ap"] <= 1.0 for p in report["per_class"])
    names = {a.name for a in result.artifacts}
    assert {"checkpoint", "best_checkpoint", "model.pt", "metrics.json", "config.json", "curves.png"} <= names
    # detectors are scripted and exported to ONNX, each checked against PyTorch on a val image
    assert {"model.torchscript.pt", "model.onnx"} <= names, report["exports"]
    assert report["exports"]["model.onnx"]["max_abs_diff"] <= report["exports"]["model.onnx"]["tolerance"]


def test_semantic_segmentation_learns_with_miou_and_ignore_index(s3, tmp_path):
    dataset, classes = upload(s3, "segmentation", n_train=8, n_val=2)
    job = make_job(
        C.TASK_TYPE_SEGMENTATION,
        dataset,
        "torchvision",
        "lraspp_mobilenet_v3_large",
        epochs=3,
        batch_size=8,
        learning_rate=1e-2,
        augmentation="none",
        class_weighting=C.CLASS_WEIGHTING_SQRT_INVERSE_FREQUENCY,
    )
    result, report, _ = run(job, s3, tmp_path)
    assert 0.0 <= result.metrics["val_miou"] <= 1.0
    # mostly background: a model that learned anything beats chance (1/3) on pixel accuracy
    assert result.metrics["val_pixel_acc"] > 0.5
    assert [p["class"] for p in report["per_class"]] == classes
    assert len(report["history"]) == 3
    names = {a.name for a in result.artifacts}
    # semantic segmenters are exported and checked against PyTorch
    assert {"model.torchscript.pt", "model.onnx"} <= names, report["exports"]
    assert report["exports"]["model.onnx"]["max_abs_diff"] <= 1e-3
    config = json.loads(S3Store(s3).get_bytes(objectstore.ARTIFACTS_BUCKET, job.output_prefix + "config.json"))
    assert config["ignore_index"] == 255 and len(config["class_weights"]) == 3


def test_instance_segmentation_reports_mask_and_box_map(s3, tmp_path):
    dataset, classes = upload(s3, "instance_segmentation", n_train=4, n_val=2)
    job = make_job(C.TASK_TYPE_INSTANCE_SEGMENTATION, dataset, "combo", "maskrcnn+mobilenet_v2", batch_size=4)
    result, report, _ = run(job, s3, tmp_path)
    for name in ("val_map", "val_map_50", "val_mask_map", "val_mask_map_50"):
        assert 0.0 <= result.metrics[name] <= 1.0, name
    assert [p["class"] for p in report["per_class"]] == classes
    assert all("mask_ap" in p for p in report["per_class"])
    assert {"model.torchscript.pt", "model.onnx"} <= {a.name for a in result.artifacts}, report["exports"]


def test_instance_masks_from_polygons_and_rle():
    from pycocotools import mask as mask_util

    from trainer.tasks import instance_masks

    m = np.zeros((10, 12), dtype="uint8", order="F")
    m[2:5, 3:9] = 1
    rle = mask_util.encode(np.asfortranarray(m))
    case = {
        "boxes": [
            {"class": 0, "bbox": [0, 0, 4, 4], "polygons": [[0, 0, 4, 0, 4, 4, 0, 4]]},
            {"class": 1, "bbox": [3, 2, 9, 5], "rle": {"size": rle["size"], "counts": rle["counts"].decode()}},
        ]
    }
    masks = instance_masks(case, 10, 12)
    assert masks.shape == (2, 10, 12)
    assert masks[1].sum() == 18 and masks[1, 3, 4] == 1
    assert masks[0, 1, 1] == 1 and masks[0, 8, 8] == 0


def test_cpu_threads_setting(monkeypatch):
    """TRAINYARD_TRAINER_THREADS bounds torch's CPU threads (several trainers on one host); 0 = every core."""
    import os

    from trainer.settings import TrainerSettings

    monkeypatch.setenv("TRAINYARD_TRAINER_THREADS", "3")
    assert TrainerSettings().cpu_threads() == 3
    monkeypatch.setenv("TRAINYARD_TRAINER_THREADS", "0")
    assert TrainerSettings().cpu_threads() == len(os.sched_getaffinity(0))


def test_an_allocation_failure_fails_the_job_with_a_reason_in_words(s3, tmp_path, monkeypatch):
    """An out-of-memory error in the epoch loop ends the job for good, saying so and what to change."""
    from trainer import engine
    from trainer.errors import PermanentJobError

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")

    monkeypatch.setattr(engine, "train_one_epoch", out_of_memory)
    dataset, _ = upload(s3, "segmentation", n_train=2, n_val=1)
    job = make_job(C.TASK_TYPE_SEGMENTATION, dataset, "torchvision", "lraspp_mobilenet_v3_large", batch_size=6)
    with pytest.raises(PermanentJobError) as err:
        run(job, s3, tmp_path)
    assert err.value.reason.startswith("out of memory")
    assert "batch_size 6" in err.value.reason and "smaller batch_size (for example 3)" in err.value.reason


# -- the mess of real public datasets ----------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def messy_variants(img: Image.Image) -> list[bytes]:
    """One RGB scene stored the ways real datasets store images: grayscale JPEG, 16-bit PNG (medical),
    CMYK JPEG (print scans), palette PNG with a transparent colour, RGBA PNG and a plain RGB JPEG."""
    grey16 = Image.fromarray((np.asarray(img.convert("L"), dtype="uint16") * 257).astype("uint16"))
    palette = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    palette.info["transparency"] = 0
    rgba = img.convert("RGBA")
    return [
        encode(img.convert("L"), "JPEG"),
        encode(grey16, "PNG"),
        encode(img.convert("CMYK"), "JPEG"),
        encode(palette, "PNG"),
        encode(rgba, "PNG"),
        encode(img, "JPEG", quality=90),
    ]


def test_open_rgb_reads_every_mode_exif_rotation_and_huge_jpegs(tmp_path):
    from trainer.tasks import open_rgb

    img, objects = scene(0)
    x0, y0, x1, y1 = (int(v) for v in objects[0]["bbox"])  # the red square (bright in grey)
    for k, payload in enumerate(messy_variants(img)):
        path = tmp_path / f"v{k}"
        path.write_bytes(payload)
        rgb = np.asarray(open_rgb(path), dtype="float32")
        assert rgb.shape == (SIZE, SIZE, 3), k
        inside, outside = rgb[y0 + 4 : y1 - 4, x0 + 4 : x1 - 4].mean(), rgb[:, : max(1, x0 - 1)].mean()
        assert inside > outside + 20, (k, inside, outside)  # 16-bit is scaled, not clipped to white

    # EXIF orientation 6: stored landscape, shown (and annotated) portrait with the square top-left
    shown = Image.new("RGB", (40, 60), (0, 0, 0))
    ImageDraw.Draw(shown).rectangle([2, 2, 12, 12], fill=(255, 255, 255))
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "exif.jpg").write_bytes(encode(stored, "JPEG", exif=exif, quality=95))
    upright = open_rgb(tmp_path / "exif.jpg")
    assert upright.size == (40, 60) and np.asarray(upright)[7, 7].mean() > 200

    # a 6-megapixel photo decodes at a reduction that still leaves room to crop image_size
    big = img.resize((3000, 2000))
    (tmp_path / "big.jpg").write_bytes(encode(big, "JPEG", quality=70))
    small = open_rgb(tmp_path / "big.jpg", min_side=224)
    assert small.size == (750, 500)  # 1/4: the short side stays >= 2 x 224
    assert open_rgb(tmp_path / "big.jpg").size == (3000, 2000)  # without min_side: full resolution


def test_detection_survives_real_world_mess(s3, tmp_path):
    """Images in every storage mode, a big photo, boxes past the border, outside the image or inverted,
    one-pixel objects, a class seen once: the job trains and evaluates instead of failing on the first odd case."""
    classes = ["square", "bar", "rare"]
    cases = []
    for i in range(8):
        img, objects = scene(i)
        payload = messy_variants(img)[i % 6]
        boxes = [dict(o) for o in objects]
        side = SIZE
        if i == 1:  # a big photo among small ones: its boxes are in its own pixels
            side = 1000
            payload = encode(img.resize((side, side)), "JPEG", quality=80)
            boxes = [{"class": o["class"], "bbox": [v * side / SIZE for v in o["bbox"]]} for o in objects]
        key, digest = put(s3, "images", payload)
        if i % 2 == 0:
            boxes.append({"class": 0, "bbox": [50.0, 50.0, 90.0, 80.0]})  # past the right and bottom border
            boxes.append({"class": 1, "bbox": [70.0, 70.0, 99.0, 99.0]})  # wholly outside the image
            boxes.append({"class": 1, "bbox": [30.0, 30.0, 20.0, 40.0]})  # inverted (x1 < x0)
        boxes.append({"class": 0, "bbox": [5.0, 5.0, 6.0, 6.0]})  # a one-pixel object
        if i == 0:
            boxes.append({"class": 2, "bbox": [40.0, 10.0, 52.0, 22.0]})  # the only "rare" one
        split = "train" if i < 6 else "val"
        cases.append(
            {
                "id": f"m{i:06d}",
                "source_path": f"messy/{i}",
                "image_key": key,
                "sha256": digest,
                "width": side,
                "height": side,
                "split": split,
                "boxes": boxes,
            }
        )
    dataset_id, version_id = f"ds{uuid.uuid4().hex[:10]}", f"dv{uuid.uuid4().hex[:10]}"
    manifest = {
        "schema": "trainyard.dataset.manifest/v1",
        "dataset_id": dataset_id,
        "version_id": version_id,
        "number": 1,
        "project": "default",
        "annotation_types": ["box"],
        "task_types": ["detection"],
        "classes": classes,
        "cases": cases,
    }
    mkey = f"manifests/{dataset_id}/{version_id}.json"
    digest, size = objectstore.put_json(s3, objectstore.DATASETS_BUCKET, mkey, manifest)
    ref = C.ObjectRef(bucket=objectstore.DATASETS_BUCKET, key=mkey, sha256=digest, size_bytes=size)
    dataset = events_pb2.DatasetSpec(dataset_id=dataset_id, version_id=version_id, manifest=ref, class_names=classes)
    job = make_job(
        C.TASK_TYPE_DETECTION,
        dataset,
        "torchvision",
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        class_weighting=C.CLASS_WEIGHTING_INVERSE_FREQUENCY,
        augmentation="strong",
    )
    result, report, _ = run(job, s3, tmp_path)
    assert np.isfinite(result.metrics["train_loss"]) and 0.0 <= result.metrics["val_map"] <= 1.0
    assert [p["class"] for p in report["per_class"]] == classes


def test_segmentation_ignores_mask_values_that_name_no_class(s3, tmp_path):
    """A real dataset's masks carry void labels beyond the class list (and the ignore index): they are
    ignored, not an out-of-bounds crash of the loss; 16-bit and palette images train alongside RGB."""
    from trainer.tasks import SegmentationAdapter

    adapter = SegmentationAdapter(num_classes=3, class_names=["background", "square", "bar"], name="segmentation")
    labels = adapter._labels(torch.tensor([[0, 1, 2, 3, 7, 255]]))
    assert labels.tolist() == [[0, 1, 2, 255, 255, 255]]

    dataset, classes = upload(s3, "segmentation", n_train=4, n_val=2)
    manifest = json.loads(objectstore.get_bytes(s3, dataset.manifest.bucket, dataset.manifest.key))
    for i, case in enumerate(manifest["cases"]):
        img, objects = scene(i)
        case["image_key"], case["sha256"] = put(s3, "images", messy_variants(img)[(i * 3) % 6 + 0])
        mask = np.zeros((SIZE, SIZE), dtype="uint8")
        x0, y0, x1, y1 = (int(v) for v in objects[0]["bbox"])
        mask[y0:y1, x0:x1] = 1
        mask[-6:, :] = 9  # a "void" label no class has
        case["mask_key"], _ = put(s3, "masks", png(Image.fromarray(mask, "L")))
    digest, size = objectstore.put_json(s3, dataset.manifest.bucket, dataset.manifest.key, manifest)
    dataset.manifest.sha256, dataset.manifest.size_bytes = digest, size
    job = make_job(C.TASK_TYPE_SEGMENTATION, dataset, "torchvision", "lraspp_mobilenet_v3_large", batch_size=4)
    result, report, _ = run(job, s3, tmp_path)
    assert 0.0 <= result.metrics["val_miou"] <= 1.0 and np.isfinite(result.metrics["val_loss"])
