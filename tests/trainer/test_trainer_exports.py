"""Detector exports: each family scripts to TorchScript and exports to ONNX (or records why it cannot),
loaded back and matched against eager PyTorch on the same image. Untrained networks at 64 px, a low score
threshold so there are detections to compare."""

from __future__ import annotations

import io

import onnxruntime as ort
import pytest
import torch

from trainer import artifacts as art
from trainer.architectures import build_network

pytestmark = pytest.mark.slow


def detector(library: str, architecture: str, task: str = "detection") -> torch.nn.Module:
    torch.manual_seed(0)
    size = None if "ssd" in architecture else 64
    model = build_network(library, architecture, task, 3, input_size=size).eval()
    for name in ("score_thresh", "box_score_thresh"):
        if hasattr(model, name):
            setattr(model, name, 0.0)
    if hasattr(model, "roi_heads"):
        model.roi_heads.score_thresh = 0.0
        model.roi_heads.detections_per_img = 20
    if hasattr(model, "detections_per_img"):
        model.detections_per_img = 20
    head = getattr(getattr(model, "head", None), "classification_head", None)
    if hasattr(
        head, "cls_logits"
    ):  # untrained one-stage heads score every anchor 0.01 exactly: spread them as training does
        torch.nn.init.normal_(head.cls_logits.weight, std=0.5)
    return model


@pytest.mark.parametrize(
    ("library", "architecture", "task"),
    [
        ("torchvision", "fasterrcnn_mobilenet_v3_large_320_fpn", "detection"),
        ("combo", "retinanet+mobilenet_v3_large", "detection"),
        ("combo", "fcos+mobilenet_v3_large", "detection"),
    ],  # Mask R-CNN (boxes and masks) is exported by tests/trainer/test_trainer_tasks.py's instance segmentation job
)
def test_detectors_export_to_torchscript_and_onnx_matching_pytorch(library, architecture, task):
    model = detector(library, architecture, task)
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))
    notes: dict = {}
    files = dict((name, payload) for name, payload, _ in art.export_model(model, task, image, notes))
    assert set(files) == {"model.torchscript.pt", "model.onnx"}, notes
    for name in files:
        # boxes are held to ATOL plus RTOL of their largest coordinate (at most the 64 px image's side)
        assert notes[name]["max_abs_diff"] <= notes[name]["tolerance"] <= art.ATOL + art.RTOL * 64
    with torch.no_grad():
        expected = model([image])[0]
    assert len(expected["boxes"]) > 0  # a real comparison, not two empty lists
    if task == "instance_segmentation":
        assert "masks" in expected

    # what a user does with the files: load and run them on another image, get the same detections
    other = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model([other])[0]
        _, got = torch.jit.load(io.BytesIO(files["model.torchscript.pt"]))([other])
    diff, tolerance = art.check_detections("TorchScript", want, got[0])
    assert diff <= tolerance <= art.ATOL + art.RTOL * 64
    session = ort.InferenceSession(files["model.onnx"], providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"image": other.numpy()}), strict=True))
    diff, tolerance = art.check_detections("ONNX", want, outputs)
    assert diff <= tolerance <= art.ATOL + art.RTOL * 64


def test_ssd_has_torchscript_and_records_why_it_has_no_onnx():
    model = detector("combo", "ssdlite+mobilenet_v3_large")
    image = torch.rand(3, 64, 64)
    notes: dict = {}
    files = [name for name, _, _ in art.export_model(model, "detection", image, notes)]
    assert files == ["model.torchscript.pt"], notes
    assert notes["model.onnx"] == {"unsupported": art.SSD_NO_ONNX}
    assert "NMS" in notes["model.onnx"]["unsupported"]


@pytest.mark.parametrize("n", [2, 3, 40])
def test_confusion_matrix_and_curves_fit_their_picture(n):
    """Nothing drawn is cut at the picture's edges (the hand-drawn matrix cut its own title), and the title is
    there."""
    import numpy as np
    from PIL import Image

    names = [f"a rather long class name {i}" for i in range(n)]
    matrix = [[10 if i == j else 1 for j in range(n)] for i in range(n)]
    history = [{"epoch": e, "values": {"train_loss": 1 / (e + 1), "val_top1": 0.5 + 0.1 * e}} for e in range(4)]
    for png in (art.confusion_matrix_png(matrix, names), art.curves_png(history)):
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
        ink = pixels < 200
        assert ink[: pixels.shape[0] // 8].any()  # the title
        assert not ink[0].any() and not ink[-1].any() and not ink[:, 0].any() and not ink[:, -1].any()
