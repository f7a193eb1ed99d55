"""Training defaults of a zoo model, by family and task type.

The values follow the recipes the libraries publish for fine-tuning (torchvision's detection and
segmentation references, scaled linearly to the smaller batches a CPU or a single GPU runs; the
usual AdamW fine-tuning of vision transformers). Epochs are fewer than the from-ImageNet recipes (26-30
for segmenters and SSD): a fine-tune on a small dataset converges sooner, and a default must stay in tens
of minutes on a CPU node. A training request's zero values take them; the
training service's own defaults apply only to what a model leaves at zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainyard.common.v1 import common_pb2

SGD, ADAMW = common_pb2.OPTIMIZER_SGD, common_pb2.OPTIMIZER_ADAMW

TWO_STAGE_DETECTORS = frozenset({"faster_rcnn", "mask_rcnn"})
ONE_STAGE_DETECTORS = frozenset({"retinanet", "fcos"})
SSD_DETECTORS = frozenset({"ssd", "ssdlite"})
SEGMENTERS = frozenset({"fcn", "deeplabv3", "lraspp", "unet", "semantic_fpn"})
# Attention-based classifiers: AdamW at a low rate with strong weight decay, as their fine-tuning recipes.
TRANSFORMERS = frozenset(
    {"vit", "deit", "swin", "swin_v2", "maxvit", "levit", "mobilevit", "efficientvit", "fastvit", "edgenext"}
)
MODERN_CONVNETS = frozenset({"convnext", "convnext_v2"})
LARGE_PARAMS = 150_000_000  # above this a classifier's default batch is halved (memory)


@dataclass(frozen=True)
class Recipe:
    optimizer: int
    learning_rate: float
    batch_size: int
    epochs: int
    weight_decay: float
    warmup_epochs: int = 1
    label_smoothing: float = 0.0


def recipe(family: str, task_types: tuple[str, ...] | list[str], num_params: int = 0) -> Recipe:
    """The default recipe of a model from its family, task types and size."""
    tasks = set(task_types)
    if family in TWO_STAGE_DETECTORS:  # torchvision: SGD 0.02 at 16 images; 4 images here
        return Recipe(SGD, 0.005, 4, 12, 1e-4)
    if family in ONE_STAGE_DETECTORS:  # torchvision: SGD 0.01 at 16 images
        return Recipe(SGD, 0.0025, 4, 12, 1e-4)
    if family == "ssdlite":  # torchvision: SGD 0.15 at 192 images, weight decay 4e-5
        return Recipe(SGD, 0.0125, 16, 20, 4e-5)
    if family == "ssd":  # torchvision: SGD 0.002 at 32 images, weight decay 5e-4
        return Recipe(SGD, 0.001, 16, 20, 5e-4)
    if family in SEGMENTERS or "segmentation" in tasks:  # torchvision: SGD 0.02 at 32 images
        return Recipe(SGD, 0.01, 8, 12, 4e-5 if family == "lraspp" else 1e-4)
    if tasks & {"detection", "instance_segmentation"}:  # a detector family not named above
        return Recipe(SGD, 0.005, 4, 12, 1e-4)
    batch = 16 if num_params > LARGE_PARAMS else 32
    if family in TRANSFORMERS:
        return Recipe(ADAMW, 1e-4, batch, 10, 0.05, label_smoothing=0.1)
    if family in MODERN_CONVNETS:
        return Recipe(ADAMW, 2e-4, batch, 10, 0.05, label_smoothing=0.1)
    return Recipe(ADAMW, 1e-3, batch, 10, 1e-4)


def default_hyperparameters(
    family: str, task_types: tuple[str, ...] | list[str], num_params: int = 0, image_size: int = 0
) -> common_pb2.Hyperparameters:
    """The recipe as the Hyperparameters a request's zero values take (image_size: the model's input size)."""
    r = recipe(family, task_types, num_params)
    return common_pb2.Hyperparameters(
        epochs=r.epochs,
        batch_size=r.batch_size,
        learning_rate=r.learning_rate,
        weight_decay=r.weight_decay,
        optimizer=r.optimizer,
        warmup_epochs=r.warmup_epochs,
        label_smoothing=r.label_smoothing,
        image_size=image_size,
    )
