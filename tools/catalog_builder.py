"""Build the zoo's catalog from torchvision's and timm's own registries, offline.

    python -m tools.catalog_builder --out PATH

A tool beside the trainer (it imports torch, torchvision, timm and trainer.architectures): the zoo runs it
once, in a subprocess, when no catalog file is cached (or the image build runs it), and afterwards only
reads the JSON it wrote (schema and staleness in services.modelzoo.catalog, the format's owner). Nothing is downloaded and no real weights are loaded:

- torchvision: every classification builder from ``list_models(module=torchvision.models)`` with
  each member of its weights enum (``.meta``: num_params, _ops, _metrics, categories, recipe;
  ``transforms()`` for crop size, mean and std), plus the detection and segmentation builders.
  Detection input size and normalisation come from the model's own ``transform``, read from a
  model built on the meta device (no memory, no weights).
- timm: the pretrained tags of a curated set of popular architectures (``list_pretrained()``,
  ``get_pretrained_cfg()`` for input size, mean, std, license, classes, hub id). Parameters are
  counted and GFLOPs measured (torch.utils.flop_counter, multiply-adds as torchvision reports
  them) on a model built on the meta device; a model whose measurement fails keeps gflops 0.
- combos: every "<head>+<backbone>" of trainer.architectures (Faster R-CNN, RetinaNet, FCOS, SSDlite,
  Mask R-CNN, DeepLabV3, FCN, LR-ASPP, U-Net, semantic FPN over torchvision backbones), id
  ``combo/<head>+<backbone>.<backbone weights tag>``, measured on the meta device (detectors as
  torchvision counts its _ops); their pre-trained part is the backbone's ImageNet weights.

Measurements (parameters, GFLOPs) of timm models and combos are cached in measurements.json per
library versions (``--write-measurements`` refreshes it), so a build with a matching cache only reads
the registries' metadata (seconds).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from services.modelzoo.catalog import builder_fingerprint

log = logging.getLogger(__name__)

SCHEMA = "trainyard.modelzoo.catalog/v1"
TV_LICENSE = "BSD-3-Clause"

# Family descriptions; a model's family comes from FAMILY_RULES (first match wins).
FAMILIES: dict[str, str] = {
    "alexnet": "AlexNet: the 2012 ImageNet-winning convolutional network; large and dated.",
    "convnext": "ConvNeXt: a pure convolutional network modernised with transformer design choices.",
    "convnext_v2": "ConvNeXt V2: ConvNeXt pre-trained as a masked autoencoder (FCMAE), then fine-tuned.",
    "deit": "DeiT: data-efficient vision transformers trained on ImageNet alone, with distillation.",
    "densenet": "DenseNet: convolutional blocks whose layers take every earlier layer's features.",
    "edgenext": "EdgeNeXt: a small hybrid CNN-transformer for edge devices.",
    "efficientnet": "EfficientNet: compound-scaled mobile convolutions, B0 (small) to B7 (large).",
    "efficientnet_v2": "EfficientNetV2: faster-training EfficientNet with fused MBConv blocks.",
    "efficientvit": "EfficientViT: a vision transformer with linear attention for fast inference.",
    "fastvit": "FastViT: a fast hybrid transformer with re-parameterised convolutions.",
    "ghostnet": "GhostNet: cheap 'ghost' feature maps for mobile classification.",
    "googlenet": "GoogLeNet: the Inception v1 network.",
    "hgnet": "HGNetV2: PaddlePaddle's high-performance GPU network.",
    "inception": "Inception v3: factorised inception modules.",
    "lcnet": "LCNet: a lightweight CPU-friendly network.",
    "levit": "LeViT: a hybrid convolution-transformer tuned for fast inference.",
    "maxvit": "MaxViT: multi-axis attention (block and grid) over a convolutional backbone.",
    "mnasnet": "MnasNet: a mobile network found by platform-aware architecture search.",
    "mobilenet_v2": "MobileNetV2: inverted residual blocks with linear bottlenecks; small and fast.",
    "mobilenet_v3": "MobileNetV3: searched mobile blocks with squeeze-excitation and hard-swish.",
    "mobilenet_v4": "MobileNetV4: universal inverted bottlenecks for mobile accelerators.",
    "mobilevit": "MobileViT: light transformers mixed into a mobile convolutional network.",
    "regnet": "RegNet: networks from a designed design space (RegNetX, RegNetY with squeeze-excitation).",
    "repvgg": "RepVGG: a plain VGG-style network re-parameterised from multi-branch training.",
    "resnet": "ResNet: residual convolutional networks, the standard transfer-learning baseline.",
    "resnext": "ResNeXt: ResNet with grouped convolutions (cardinality).",
    "seresnext": "SE-ResNeXt: ResNeXt with squeeze-excitation blocks.",
    "shufflenet_v2": "ShuffleNetV2: channel-shuffle blocks for very fast mobile inference.",
    "squeezenet": "SqueezeNet: AlexNet accuracy with 50x fewer parameters.",
    "swin": "Swin Transformer: a hierarchical vision transformer with shifted windows.",
    "swin_v2": "Swin Transformer V2: Swin scaled up with cosine attention and log-spaced positions.",
    "vgg": "VGG: deep plain 3x3 convolutional networks; large.",
    "vit": "Vision Transformer (ViT): a transformer over image patches.",
    "wide_resnet": "Wide ResNet: ResNet with wider bottleneck blocks.",
    # detection and segmentation (torchvision)
    "faster_rcnn": "Faster R-CNN: a two-stage detector with a region proposal network and FPN.",
    "fcos": "FCOS: a fully convolutional one-stage, anchor-free detector.",
    "retinanet": "RetinaNet: a one-stage detector with focal loss and FPN.",
    "ssd": "SSD: a single-shot multibox detector with a VGG-16 backbone.",
    "ssdlite": "SSDlite: SSD with a MobileNetV3 backbone for mobile detection.",
    "mask_rcnn": "Mask R-CNN: Faster R-CNN with a mask head, for instance segmentation.",
    "deeplabv3": "DeepLabV3: atrous spatial pyramid pooling for semantic segmentation.",
    "fcn": "FCN: a fully convolutional network for semantic segmentation.",
    "lraspp": "LR-ASPP: a lite segmentation head on MobileNetV3.",
    "unet": "U-Net: an encoder-decoder that upsamples step by step, fusing the encoder's skip features.",
    "semantic_fpn": "Semantic FPN: a feature pyramid over the backbone, every level upsampled and summed.",
}

FAMILY_RULES: list[tuple[str, str]] = [
    (r"^unet\+", "unet"),
    (r"^fpn\+", "semantic_fpn"),
    (r"^(fasterrcnn)", "faster_rcnn"),
    (r"^maskrcnn", "mask_rcnn"),
    (r"^retinanet", "retinanet"),
    (r"^fcos", "fcos"),
    (r"^ssdlite", "ssdlite"),
    (r"^ssd", "ssd"),
    (r"^deeplabv3", "deeplabv3"),
    (r"^fcn", "fcn"),
    (r"^lraspp", "lraspp"),
    (r"^wide_resnet", "wide_resnet"),
    (r"^seresnext", "seresnext"),
    (r"^resnext", "resnext"),
    (r"^resnet", "resnet"),
    (r"^convnextv2", "convnext_v2"),
    (r"^convnext", "convnext"),
    (r"^(efficientnet_v2|tf_efficientnetv2|efficientnetv2)", "efficientnet_v2"),
    (r"^efficientnet_b", "efficientnet"),
    (r"^efficientvit", "efficientvit"),
    (r"^(mobilenet_v2|mobilenetv2)", "mobilenet_v2"),
    (r"^(mobilenet_v3|mobilenetv3)", "mobilenet_v3"),
    (r"^mobilenetv4", "mobilenet_v4"),
    (r"^mobilevit", "mobilevit"),
    (r"^(vit_|vit$)", "vit"),
    (r"^deit", "deit"),
    (r"^swin_v2", "swin_v2"),
    (r"^swin", "swin"),
    (r"^regnet", "regnet"),
    (r"^densenet", "densenet"),
    (r"^vgg", "vgg"),
    (r"^alexnet", "alexnet"),
    (r"^googlenet", "googlenet"),
    (r"^inception", "inception"),
    (r"^mnasnet", "mnasnet"),
    (r"^shufflenet_v2", "shufflenet_v2"),
    (r"^squeezenet", "squeezenet"),
    (r"^maxvit", "maxvit"),
    (r"^ghostnet", "ghostnet"),
    (r"^levit", "levit"),
    (r"^fastvit", "fastvit"),
    (r"^repvgg", "repvgg"),
    (r"^lcnet", "lcnet"),
    (r"^hgnetv2", "hgnet"),
    (r"^edgenext", "edgenext"),
]

# timm architectures whose pretrained tags join the catalog (popular, well-documented families).
TIMM_ARCHS: tuple[str, ...] = (
    # resnet / resnext
    "resnet10t", "resnet14t", "resnet18", "resnet26d", "resnet34", "resnet50", "resnet50d", "resnet101",
    "resnet152", "resnext50_32x4d", "seresnext50_32x4d",
    # convnext
    "convnext_atto", "convnext_femto", "convnext_pico", "convnext_nano", "convnext_tiny", "convnext_small",
    "convnext_base", "convnext_large", "convnextv2_atto", "convnextv2_femto", "convnextv2_pico",
    "convnextv2_nano", "convnextv2_tiny", "convnextv2_base",
    # efficientnet
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "efficientnet_b5", "tf_efficientnetv2_b0", "tf_efficientnetv2_s", "tf_efficientnetv2_m",
    "efficientnetv2_rw_t", "efficientnetv2_rw_s",
    # mobile
    "mobilenetv2_050", "mobilenetv2_100", "mobilenetv2_140", "mobilenetv3_small_050", "mobilenetv3_small_075",
    "mobilenetv3_small_100", "mobilenetv3_large_100", "mobilenetv3_large_150d", "mobilenetv4_conv_small",
    "mobilenetv4_conv_medium", "mobilenetv4_conv_large", "mobilenetv4_hybrid_medium", "mobilevit_xs",
    "mobilevit_s", "mobilevitv2_100", "efficientvit_b0", "efficientvit_b1", "ghostnet_100", "lcnet_100",
    "fastvit_t8", "fastvit_s12", "edgenext_x_small", "edgenext_small", "hgnetv2_b0", "hgnetv2_b1",
    # transformers
    "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "vit_large_patch16_224",
    "vit_tiny_patch16_384", "vit_small_patch16_384", "vit_base_patch16_384", "vit_small_patch32_224",
    "vit_base_patch32_224", "deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224",
    "deit3_small_patch16_224", "deit3_base_patch16_224", "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224", "swin_base_patch4_window7_224", "levit_128", "levit_192", "levit_256",
    # regnet
    "regnetx_002", "regnetx_004", "regnetx_008", "regnetx_016", "regnetx_032", "regnety_002", "regnety_004",
    "regnety_008", "regnety_016", "regnety_032", "regnety_040", "regnety_080",
    # others
    "densenet121", "inception_v3", "repvgg_a2",
)  # fmt: skip

# torchvision detection builders and the task types they serve (keypoint R-CNN is left out: no
# keypoint task type exists).
TV_DETECTION_TASKS = {
    "fasterrcnn": ["detection"],
    "retinanet": ["detection"],
    "fcos": ["detection"],
    "ssd": ["detection"],
    "maskrcnn": ["instance_segmentation", "detection"],
}

METRIC_DATASETS = {
    "ImageNet-1K": "imagenet-1k",
    "COCO-val2017": "coco-val2017",
    "COCO-val2017-VOC-labels": "coco-val2017-voc-labels",
}
METRIC_NAMES = {
    "acc@1": "top1",
    "acc@5": "top5",
    "box_map": "box_map",
    "mask_map": "mask_map",
    "miou": "miou",
    "pixel_acc": "pixel_acc",
}


def family_of(arch: str) -> str:
    for pattern, family in FAMILY_RULES:
        if re.match(pattern, arch):
            return family
    raise KeyError(f"no family for architecture {arch!r}")


def _first(value: Any) -> int:
    if isinstance(value, list | tuple):
        return int(value[0])
    return int(value)


def _floats(values: Any) -> list[float]:
    return [round(float(v), 6) for v in values]


def _weight_file(url: str) -> str:
    return url.rsplit("/", 1)[-1] if url else ""


# ---------------------------------------------------------------- torchvision


def torchvision_entries() -> list[dict[str, Any]]:
    import torch
    from torchvision import models

    version = metadata.version("torchvision")
    out: list[dict[str, Any]] = []

    def base(builder: str, weights: Any, task_types: list[str]) -> dict[str, Any]:
        meta = weights.meta
        metrics = []
        for dataset, values in (meta.get("_metrics") or {}).items():
            for name, value in values.items():
                if name in METRIC_NAMES and not math.isnan(float(value)):  # features-only weights publish NaN
                    metrics.append(
                        {
                            "name": METRIC_NAMES[name],
                            "value": float(value),
                            "dataset": METRIC_DATASETS.get(dataset, dataset.lower()),
                            "source": "torchvision",
                        }
                    )
        license_ = meta.get("license") or TV_LICENSE
        return {
            "id": f"tv/{builder}.{weights.name.lower()}",
            "family": family_of(builder),
            "variant": builder,
            "task_types": task_types,
            "architecture": builder,
            "library": "torchvision",
            "library_version": version,
            "pretrain_tag": weights.name,
            "license": license_,
            "num_params": int(meta["num_params"]),
            "gflops": float(meta.get("_ops") or 0.0),
            "reference_metrics": metrics,
            "pretrained_num_classes": len(meta.get("categories") or []),
            "source_url": meta.get("recipe") or weights.url,
            "weights_url": weights.url,
            "hf_hub_id": "",
            "weight_files": [_weight_file(weights.url)],
            "training_modes": ["general"],
        }

    for builder in models.list_models(module=models):
        for weights in models.get_model_weights(builder):
            entry = base(builder, weights, ["classification"])
            tf = weights.transforms()
            entry.update(
                # every classification weight is ImageNet-1K (vgg16's features-only one has no head)
                pretrain_dataset="imagenet-1k",
                default_input_size=_first(tf.crop_size),
                resize_size=_first(tf.resize_size),
                mean=_floats(tf.mean),
                std=_floats(tf.std),
                interpolation=tf.interpolation.value,
            )
            out.append(entry)

    for builder in models.list_models(module=models.detection):
        prefix = next((p for p in TV_DETECTION_TASKS if builder.startswith(p)), None)
        if prefix is None:
            log.info("skipping %s: no matching task type", builder)
            continue
        with torch.device("meta"):
            model = models.get_model(builder, weights=None, weights_backbone=None)
        transform = model.transform
        for weights in models.get_model_weights(builder):
            entry = base(builder, weights, list(TV_DETECTION_TASKS[prefix]))
            entry.update(
                pretrain_dataset="coco",
                default_input_size=int(max(transform.min_size)),
                resize_size=int(transform.max_size),
                mean=_floats(transform.image_mean),
                std=_floats(transform.image_std),
                interpolation="bilinear",
            )
            out.append(entry)

    for builder in models.list_models(module=models.segmentation):
        for weights in models.get_model_weights(builder):
            entry = base(builder, weights, ["segmentation"])
            tf = weights.transforms()
            entry.update(
                pretrain_dataset="coco-voc-labels",
                default_input_size=_first(tf.resize_size),
                resize_size=_first(tf.resize_size),
                mean=_floats(tf.mean),
                std=_floats(tf.std),
                interpolation=tf.interpolation.value,
            )
            out.append(entry)
    return out


# ---------------------------------------------------------------- timm

_DATASET_TOKENS = {"in1k": "imagenet-1k", "in12k": "imagenet-12k", "in21k": "imagenet-21k", "in22k": "imagenet-22k"}


def timm_pretrain_dataset(tag: str, num_classes: int) -> str:
    """The dataset the weights' head was last trained on, from the tag (e.g. in21k_ft_in1k -> imagenet-1k)."""
    tokens = re.findall(r"in1k|in12k|in21k|in22k", tag)
    if tokens:
        return _DATASET_TOKENS[tokens[-1]]
    return {1000: "imagenet-1k", 11821: "imagenet-12k", 21841: "imagenet-22k", 21843: "imagenet-21k"}.get(
        num_classes, "unknown"
    )


def _count_gflops(model: Any, input_size: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, input_size, input_size, device="meta"))
    return counter.get_total_flops() / 2e9  # multiply-adds, as torchvision's _ops


def _timm_arch_entries(
    arch: str, tags: list[str], version: str, cached: dict[str, dict] | None = None
) -> list[dict[str, Any]]:
    """Entries of one timm architecture: one model built on the meta device, its head reset per class count."""
    import timm
    import torch

    cfgs = []
    for tag in sorted(tags):
        cfg = timm.get_pretrained_cfg(f"{arch}.{tag}")
        if cfg is None or not cfg.num_classes or cfg.num_classes <= 0:  # MAE/DINO feature extractors
            continue
        if timm_pretrain_dataset(tag, int(cfg.num_classes)) == "unknown":  # CLIP projections, odd label sets
            continue
        cfgs.append((tag, cfg))
    if not cfgs:
        return []
    cached = cached or {}
    if all(f"timm/{arch}.{tag}" in cached for tag, _ in cfgs):
        return [_timm_entry(arch, tag, cfg, version, cached[f"timm/{arch}.{tag}"]) for tag, cfg in cfgs]
    first_classes = int(cfgs[0][1].num_classes)
    try:
        with torch.device("meta"):
            model = timm.create_model(arch, pretrained=False, num_classes=first_classes).eval()
    except Exception as exc:  # noqa: BLE001 - a model that cannot be built is left out, logged
        log.warning("skipping timm %s: cannot build on the meta device: %s", arch, exc)
        return []
    base_params = sum(p.numel() for p in model.parameters())
    flops_by_size: dict[int, float] = {}
    params_by_classes: dict[int, int] = {first_classes: base_params}
    out = []
    for tag, cfg in cfgs:
        classes = int(cfg.num_classes)
        size = int(cfg.input_size[-1])
        if size not in flops_by_size:
            try:
                flops_by_size[size] = _count_gflops(model, size)
            except Exception as exc:  # noqa: BLE001 - a model we cannot trace keeps gflops 0
                log.warning("gflops not measured for %s at %d px: %s", arch, size, exc)
                flops_by_size[size] = 0.0
        if classes not in params_by_classes:
            with torch.device("meta"):
                model.reset_classifier(classes)
            params_by_classes[classes] = sum(p.numel() for p in model.parameters())
            with torch.device("meta"):
                model.reset_classifier(first_classes)
        params = params_by_classes[classes]
        gflops = flops_by_size[size]
        if gflops:  # the head's multiply-adds grow with its parameters (one per weight)
            gflops += (params - base_params) / 1e9
        out.append(_timm_entry(arch, tag, cfg, version, {"num_params": int(params), "gflops": round(gflops, 3)}))
    return out


def _timm_entry(arch: str, tag: str, cfg: Any, version: str, measured: dict) -> dict[str, Any]:
    classes = int(cfg.num_classes)
    size = int(cfg.input_size[-1])
    hub = cfg.hf_hub_id or ""
    files = [_weight_file(cfg.url)] if cfg.url else []
    return {
        "id": f"timm/{arch}.{tag}",
        "family": family_of(arch),
        "variant": arch,
        "task_types": ["classification"],
        "architecture": arch,
        "library": "timm",
        "library_version": version,
        "pretrain_dataset": timm_pretrain_dataset(tag, classes),
        "pretrain_tag": tag,
        "license": cfg.license or "unknown",
        "num_params": int(measured["num_params"]),
        "gflops": float(measured["gflops"]),
        "default_input_size": size,
        "resize_size": int(round(size / (cfg.crop_pct or 1.0))),
        "mean": _floats(cfg.mean),
        "std": _floats(cfg.std),
        "interpolation": cfg.interpolation or "bicubic",
        "reference_metrics": [],
        "pretrained_num_classes": classes,
        "source_url": f"https://huggingface.co/{hub}" if hub else (cfg.url or cfg.origin_url or ""),
        "weights_url": cfg.url or "",
        "hf_hub_id": hub,
        "weight_files": files,
        "training_modes": ["general"],
    }


def timm_entries(
    archs: tuple[str, ...] | list[str] = TIMM_ARCHS, cached: dict[str, dict] | None = None
) -> list[dict[str, Any]]:
    import timm

    version = metadata.version("timm")
    tags_by_arch: dict[str, list[str]] = {}
    for name in timm.list_pretrained():
        arch, _, tag = name.partition(".")
        tags_by_arch.setdefault(arch, []).append(tag)
    out = []
    for arch in archs:
        out += _timm_arch_entries(arch, tags_by_arch.get(arch, []), version, cached)
    return out


def _timm_worker(archs: list[str], cached: dict[str, dict] | None = None) -> list[dict[str, Any]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    return timm_entries(archs, cached or {})


# ---------------------------------------------------------------- combos (trainer.architectures)

# Head sizes the combos are measured with (they have no pre-trained head): COCO's 91 outputs for
# detectors, Pascal VOC's 21 classes for segmenters, so their numbers compare with torchvision's.
COMBO_MEASURE_CLASSES = {"detection": 91, "instance_segmentation": 91, "segmentation": 21}


def combo_architectures() -> list[str]:
    from trainer.architectures import COMBO_BACKBONES, DETECTION_HEADS, SEGMENTATION_HEADS

    return [f"{head}+{backbone}" for head in DETECTION_HEADS + SEGMENTATION_HEADS for backbone in COMBO_BACKBONES]


def combo_entries(archs: list[str], cached: dict[str, dict] | None = None) -> list[dict[str, Any]]:
    """Backbone x head combinations: measured on the meta device (or taken from the measurement cache);
    their pre-trained part is the backbone's ImageNet weights from torchvision."""
    import torch
    from torchvision import models

    from trainer import architectures as A

    cached = cached or {}
    version = metadata.version("torchvision")
    out = []
    for arch in archs:
        spec = A.combo_spec(arch)
        weights = models.get_model_weights(spec.backbone)[spec.backbone_weights_tag]
        model_id = f"combo/{arch}.{spec.backbone_weights_tag.lower()}"
        task = spec.task_types[0]
        measured = cached.get(model_id)
        if measured is None:
            with torch.device("meta"):
                model = A.construct("combo", arch, task, COMBO_MEASURE_CLASSES[task]).eval()
            try:
                gflops = round(A.count_gflops(model, task, spec.default_input_size), 3)
            except Exception as exc:  # noqa: BLE001 - keep the entry, without a number
                log.warning("gflops not measured for %s: %s", arch, exc)
                gflops = 0.0
            measured = {"num_params": sum(p.numel() for p in model.parameters()), "gflops": gflops}
        meta = weights.meta
        backbone_id = f"tv/{spec.backbone}.{weights.name.lower()}"
        top1 = (meta.get("_metrics") or {}).get("ImageNet-1K", {}).get("acc@1")
        metrics = []
        if top1 is not None:
            metrics.append(
                {
                    "name": "backbone_top1",
                    "value": float(top1),
                    "dataset": "imagenet-1k",
                    "source": f"torchvision ({backbone_id}; the detector/segmenter itself has no published metric)",
                }
            )
        out.append(
            {
                "id": model_id,
                "family": family_of(arch),
                "variant": arch,
                "task_types": list(spec.task_types),
                "architecture": arch,
                "library": "combo",
                "library_version": version,
                "pretrain_dataset": "imagenet-1k",
                "pretrain_tag": weights.name,
                "license": meta.get("license") or TV_LICENSE,
                "num_params": int(measured["num_params"]),
                "gflops": float(measured["gflops"]),
                "default_input_size": spec.default_input_size,
                "resize_size": spec.default_input_size,
                "mean": _floats(spec.mean),
                "std": _floats(spec.std),
                "interpolation": "bilinear",
                "reference_metrics": metrics,
                "pretrained_num_classes": 0,
                "source_url": meta.get("recipe") or weights.url,
                "weights_url": weights.url,
                "hf_hub_id": "",
                "weight_files": [_weight_file(weights.url)],
                "training_modes": ["general"],
                "backbone": spec.backbone,
                "backbone_model_id": backbone_id,
            }
        )
    return out


def _combo_worker(archs: list[str], cached: dict[str, dict] | None = None) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(1)
    return combo_entries(archs, cached)


# ---------------------------------------------------------------- measurement cache

# Parameters and GFLOPs measured by earlier builds, per library versions, shipped with the code so a
# fresh install does not measure again (`--write-measurements` refreshes it).
MEASUREMENTS = Path(__file__).with_name("measurements.json")


def load_measurements(path: Path = MEASUREMENTS) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if data.get("libraries") != library_versions():
        return {}
    return dict(data.get("models", {}))


def write_measurements(models: list[dict[str, Any]], path: Path = MEASUREMENTS) -> None:
    data = {
        "libraries": library_versions(),
        "models": {
            m["id"]: {"num_params": m["num_params"], "gflops": m["gflops"]}
            for m in models
            if m["library"] in ("timm", "combo")
        },
    }
    path.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")


# ---------------------------------------------------------------- catalog


def build_catalog(
    include_timm: bool = True, workers: int | None = None, measurements: dict[str, dict] | None = None
) -> dict[str, Any]:
    """The whole catalog. timm architectures and combos missing from the measurement cache are
    measured in worker processes forked before torch is imported here (the measuring is pure-Python
    dispatch, so it scales with cores)."""
    started = time.monotonic()
    workers = max(1, workers or min(4, os.cpu_count() or 1))
    cached = load_measurements() if measurements is None else measurements
    models: list[dict[str, Any]] = []
    jobs: list[tuple[Any, list[str]]] = []
    if include_timm:
        jobs += [(_timm_worker, list(TIMM_ARCHS[i :: workers * 4])) for i in range(workers * 4)]
    combos = _combo_names()
    jobs += [(_combo_worker, combos[i :: workers * 2]) for i in range(workers * 2)]
    jobs = [(fn, names) for fn, names in jobs if names]
    pool = None
    futures = []
    # with a matching measurement cache almost nothing is measured: one process is fastest
    if workers > 1 and "torch" not in sys.modules and not cached:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
        futures = [pool.submit(fn, names, cached) for fn, names in jobs]
    try:
        models += torchvision_entries()
        if pool is not None:
            for future in futures:
                models += future.result()
        else:
            for fn, names in jobs:
                models += fn(names, cached)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    models.sort(key=lambda m: m["id"])
    ids = [m["id"] for m in models]
    if len(ids) != len(set(ids)):
        raise RuntimeError("duplicate model ids in the catalog")
    used = sorted({m["family"] for m in models})
    families = []
    for name in used:
        tasks: list[str] = []
        for m in models:
            if m["family"] == name:
                tasks += [t for t in m["task_types"] if t not in tasks]
        families.append({"name": name, "description": FAMILIES.get(name, ""), "task_types": tasks})
    return {
        "schema": SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started, 2),
        "libraries": library_versions(),
        "builder": builder_fingerprint(),
        "families": families,
        "models": models,
    }


def _combo_names() -> list[str]:
    """Combo architecture names without importing torch (trainer.architectures imports it)."""
    import ast

    src = Path(__file__).resolve().parents[1] / "trainer" / "architectures.py"
    tree = ast.parse(src.read_text())
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id in (
                "COMBO_BACKBONES",
                "DETECTION_HEADS",
                "SEGMENTATION_HEADS",
            ):
                values[target.id] = ast.literal_eval(node.value)
    return [
        f"{head}+{backbone}"
        for head in values["DETECTION_HEADS"] + values["SEGMENTATION_HEADS"]
        for backbone in values["COMBO_BACKBONES"]
    ]


def library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("torch", "torchvision", "timm")}


def write_catalog(catalog: dict[str, Any], out: Path) -> None:
    """Write atomically, so a reader never sees half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(catalog, indent=1, sort_keys=True))
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the catalog JSON")
    parser.add_argument("--no-timm", action="store_true", help="torchvision entries only")
    parser.add_argument("--workers", type=int, default=None, help="processes measuring timm models and combos")
    parser.add_argument("--no-cache", action="store_true", help="measure everything again, ignoring measurements.json")
    parser.add_argument("--write-measurements", action="store_true", help="save the measurements to measurements.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Keep the build on the CPU and off the network, whatever the environment says.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    catalog = build_catalog(
        include_timm=not args.no_timm, workers=args.workers, measurements={} if args.no_cache else None
    )
    write_catalog(catalog, args.out)
    if args.write_measurements:
        write_measurements(catalog["models"])
    print(
        json.dumps({"out": str(args.out), "models": len(catalog["models"]), "build_seconds": catalog["build_seconds"]})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
