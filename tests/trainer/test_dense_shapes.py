"""Detection and segmentation keep their images' shape (issue 16): detectors resize the shorter side and
keep the aspect, segmentation trains at (image_size, image_width) and is scored at its labels' own
resolution; exports say how to resize, and the inference service does it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kernel import onnxmeta, recipes
from kernel.datasetstats import DatasetStats
from trainer import tasks
from trainer.architectures import build_network
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2


def _scene(tmp_path, width: int, height: int) -> tasks.Item:
    path = tmp_path / f"scene{width}x{height}.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2] = 1
    mask[0, 0] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    case = {
        "id": "c1",
        "width": width,
        "height": height,
        "boxes": [{"class": 0, "bbox": [48.0, 36.0, 96.0, 180.0]}],
    }
    return tasks.Item(path, case, tmp_path / "mask.png")


def test_detection_keeps_the_aspect_and_scales_boxes_alike(tmp_path):
    item = _scene(tmp_path, 480, 360)
    ds = tasks.DetectionDataset([item], tasks.dense_transform(288, False, keep_aspect=True), False, 288)
    image, target = ds[0]
    assert tuple(image.shape) == (3, 288, 384)  # 480x360 -> 384x288, not squashed into 288x288
    assert target["boxes"].tolist() == [[pytest.approx(38.4), pytest.approx(28.8), pytest.approx(76.8), 144.0]]
    assert onnxmeta.resized(480, 360, 288, onnxmeta.SHORTER_SIDE) == (384, 288)
    # a panorama is capped at 1333/800 of the shorter side, as torchvision's detectors cap it
    assert onnxmeta.resized(1600, 200, 100, onnxmeta.SHORTER_SIDE) == (167, 21)


def test_segmentation_trains_at_its_shape_and_scores_at_label_resolution(tmp_path):
    item = _scene(tmp_path, 480, 360)
    size = tasks.input_size(288, 384)
    train = tasks.SegmentationDataset([item], tasks.dense_transform(size, True, "none"), 288)
    image, mask = train[0]
    assert tuple(image.shape) == (3, 288, 384) and tuple(mask.shape) == (288, 384)
    val = tasks.SegmentationDataset([item], tasks.dense_transform(size, False), 288, full_masks=True)
    image, mask = val[0]
    assert tuple(image.shape) == (3, 288, 384) and tuple(mask.shape) == (360, 480) and mask[0, 0] == 255

    class Halves(torch.nn.Module):  # predicts the top half as class 1: right everywhere
        def forward(self, x):
            logits = torch.zeros(x.shape[0], 2, *x.shape[-2:])
            logits[:, 1, : x.shape[-2] // 2] = 1.0
            logits[:, 0, x.shape[-2] // 2 :] = 1.0
            return {"out": logits}

    adapter = tasks.make_adapter("segmentation", 2, ["background", "top"])
    loader = torch.utils.data.DataLoader(val, batch_size=2, collate_fn=adapter.collate)
    scores = adapter.evaluate(Halves(), loader, torch.device("cpu"), full=True)
    assert scores["val_miou"] == pytest.approx(1.0) and scores["val_pixel_acc"] == pytest.approx(1.0)


def _model(family: str, task: int, size: int) -> modelzoo_pb2.Model:
    return modelzoo_pb2.Model(
        family=family, task_types=[task], default_input_size=size, weight_status=modelzoo_pb2.WEIGHT_STATUS_IN_STORE
    )


def test_dense_recipe_takes_the_images_resolution_within_the_pixel_budget():
    camvid = DatasetStats(train_cases=367, median_width=480, median_height=360)
    seg = recipes.recipe(_model("lraspp", common_pb2.TASK_TYPE_SEGMENTATION, 512), "segmentation", camvid)
    hp = seg.hyperparameters
    assert (hp.image_size, hp.image_width) == (288, 384)  # 4:3 kept, about 320x320 pixels on a CPU
    assert any("not upscaled" in n for n in seg.notes) and any("pixels per image" in n for n in seg.notes)
    gpu = recipes.recipe(
        _model("lraspp", common_pb2.TASK_TYPE_SEGMENTATION, 512), "segmentation", camvid, device_class="gpu"
    )
    assert (gpu.hyperparameters.image_size, gpu.hyperparameters.image_width) == (352, 480)  # native, not 512
    tiny = DatasetStats(train_cases=100, median_width=200, median_height=150, small_object_fraction=0.0)
    det = recipes.recipe(_model("fasterrcnn", common_pb2.TASK_TYPE_DETECTION, 640), "detection", tiny)
    assert det.hyperparameters.image_size == recipes.MIN_DENSE_SIZE and det.hyperparameters.image_width == 0
    small = DatasetStats(train_cases=100, median_width=2000, median_height=1500, small_object_fraction=0.6)
    keep = recipes.recipe(_model("fasterrcnn", common_pb2.TASK_TYPE_DETECTION, 640), "detection", small)
    assert keep.hyperparameters.image_size == 640  # small objects: the full input, over the budget


def test_two_stage_detectors_on_light_backbones_take_strides_16_and_32():
    light = build_network("combo", "fasterrcnn+mobilenet_v2", "detection", 2, input_size=320)
    heavy = build_network("combo", "fasterrcnn+resnet18", "detection", 2, input_size=320)
    assert len(light.backbone.fpn.inner_blocks) == 2 and len(heavy.backbone.fpn.inner_blocks) == 4
    assert light.rpn.anchor_generator.num_anchors_per_location() == [15, 15, 15]
    light.train()
    images = [torch.rand(3, 256, 320), torch.rand(3, 256, 288)]
    targets = [{"boxes": torch.tensor([[20.0, 30.0, 120.0, 200.0]]), "labels": torch.tensor([1])}] * 2
    losses = light(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())


def test_onnx_metadata_says_how_to_resize():
    meta = onnxmeta.OnnxMetadata("segmentation", ["a", "b"], 288, [0.5] * 3, [0.2] * 3, 0.5, resize="288x384")
    back = onnxmeta.OnnxMetadata.parse(meta.props())
    assert back.resize == "288x384" and onnxmeta.resized(1000, 10, 288, back.resize) == (384, 288)
    old = {k: v for k, v in meta.props().items() if k != onnxmeta.RESIZE}  # exported before the key existed
    assert onnxmeta.OnnxMetadata.parse(old).resize == onnxmeta.SQUARE
    with pytest.raises(ValueError, match="resize"):
        onnxmeta.OnnxMetadata.parse({**meta.props(), onnxmeta.RESIZE: "tall"})
    assert onnxmeta.resize_mode("detection", 288) == onnxmeta.SHORTER_SIDE
    assert onnxmeta.resize_mode("segmentation", 288, 384) == "288x384"
    assert onnxmeta.resize_mode("classification", 224) == onnxmeta.SQUARE


def test_a_detector_fine_tuned_from_imagenet_keeps_its_first_stages_frozen():
    from trainer.architectures import freeze_early_stages
    from trainer.models import FINE_TUNE_ALL, BuiltModel, head_of, set_trainable

    detector = build_network("combo", "fasterrcnn+mobilenet_v2", "detection", 2, input_size=256)
    assert freeze_early_stages(detector, "mobilenet_v2") > 0
    body = detector.backbone.body
    assert not any(p.requires_grad for p in body["6"].parameters())  # up to stride 8 on a light backbone
    assert all(p.requires_grad for p in body["7"].parameters())
    built = BuiltModel(detector, head_of(detector, "detection"))
    assert set_trainable(built, FINE_TUNE_ALL, 0, 3)  # the backbone trains: but not its first stages
    assert not any(p.requires_grad for p in body["0"].parameters()) and all(
        p.requires_grad for p in body["7"].parameters()
    )
    resnet = build_network("combo", "fasterrcnn+resnet18", "detection", 2, input_size=256)
    freeze_early_stages(resnet, "resnet18")
    assert not any(p.requires_grad for p in resnet.backbone.body.layer1.parameters())  # up to stride 4
    assert all(p.requires_grad for p in resnet.backbone.body.layer2.parameters())
    ssd = build_network("combo", "ssdlite+mobilenet_v2", "detection", 2)
    assert freeze_early_stages(ssd, "mobilenet_v2") == 0  # SSDlite's recipe trains it whole
