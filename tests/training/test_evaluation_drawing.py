"""The error browser's drawings for every task type (services.training.evaluations: given labels beside the
model's), from per-case records as the trainer stores them, on real S3."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kernel import objectstore
from services.training.evaluations import EvaluationsDomain

pytestmark = pytest.mark.integration


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def domain(settings):
    client = objectstore.make_client(settings)
    objectstore.ensure_buckets(client)
    return EvaluationsDomain(
        store=None, tasks=None, datasets=None, zoo=None, publisher=None, notifier=None, client=client
    ), client


def _panels(jpeg: bytes) -> tuple[np.ndarray, np.ndarray]:
    im = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
    half = im.shape[1] // 2
    return im[20:, : half - 2], im[20:, half + 2 :]


@pytest.mark.parametrize("task", ["classification", "detection", "segmentation"])
def test_each_task_type_is_drawn_given_beside_predicted(domain, task):
    evaluations, client = domain
    image = np.full((60, 80, 3), 90, np.uint8)
    objectstore.put_bytes(client, objectstore.DATASETS_BUCKET, "images/x", _png(image))
    doc = {"task": task, "classes": ["cat", "dog"], "model_classes": ["cat", "dog", "fox"],
           "images_bucket": objectstore.DATASETS_BUCKET, "artifacts_bucket": objectstore.ARTIFACTS_BUCKET}  # fmt: skip
    record = {
        "id": "c1",
        "image_key": "images/x",
        "label": 0,
        "predictions": [{"class_name": "dog", "class_index": 1, "score": 0.9}],
    }
    if task == "detection":
        record["boxes"] = [{"class": 0, "bbox": [5, 5, 40, 40]}]
        record["predictions"] = [{"class_name": "fox", "class_index": 2, "score": 0.8, "box": [30, 10, 75, 55]}]
    if task == "segmentation":
        gt, pred = np.zeros((60, 80), np.uint8), np.zeros((60, 80), np.uint8)
        gt[:, 40:] = 1
        pred[:30] = 2  # a class only the model knows
        objectstore.put_bytes(client, objectstore.DATASETS_BUCKET, "masks/x", _png(gt))
        objectstore.put_bytes(client, objectstore.ARTIFACTS_BUCKET, "evaluations/e/masks/c1.png", _png(pred))
        record |= {"mask_key": "masks/x", "pred_mask_key": "evaluations/e/masks/c1.png"}
    missing = {"kind": "missing_box", "suggested_label": "dog", "box": [2, 2, 20, 20]} if task == "detection" else None
    jpeg = evaluations._draw(doc, record, 96, missing)
    left, right = _panels(jpeg)
    assert jpeg.startswith(b"\xff\xd8") and left.shape[1] > 40
    # the two panels differ: the model's answer is not the given label
    assert np.abs(left - right).mean() > 2
