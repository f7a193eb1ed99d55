"""Specialized training presets (BRIEF2 contract 4): a fixed network and tuned defaults for one kind of data.

Each preset names a catalog model (the network is fixed), an input size, an augmentation preset
("none" | "light" | "standard" | "strong", as the trainer knows them), a transfer strategy and
hyperparameters; a CreateTrainingTask with `preset_id` uses them as defaults that the task's own
values override. Hyperparameter names are trainyard.common.v1.Hyperparameters fields; enum values
use the enum's value names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    description: str
    task_type: str  # short name: classification | detection | segmentation | instance_segmentation
    model_id: str
    input_size: int
    augmentation: str
    transfer_strategy: str  # TransferStrategy value name
    data_type: str  # DataType value name
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    example_classes: tuple[str, ...] = ()


PRESETS: tuple[Preset, ...] = (
    Preset(
        id="preset/chest-xray-classification",
        name="Chest X-ray classification",
        description=(
            "Findings on frontal chest radiographs (for example normal / pneumonia). DenseNet-121, the "
            "CheXNet network, fine-tuned end to end at a low learning rate; light augmentation only (no "
            "vertical flips or colour jitter: anatomy has a fixed orientation and grey levels carry meaning)."
        ),
        task_type="classification",
        model_id="tv/densenet121.imagenet1k_v1",
        input_size=320,
        augmentation="light",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_MEDICAL",
        hyperparameters={
            "epochs": 20,
            "batch_size": 16,
            "learning_rate": 1e-4,
            "backbone_lr_multiplier": 1.0,
            "weight_decay": 1e-5,
            "optimizer": "OPTIMIZER_ADAMW",
            "lr_schedule": "LR_SCHEDULE_COSINE",
            "warmup_epochs": 1,
            "class_weighting": "CLASS_WEIGHTING_INVERSE_FREQUENCY",
            "early_stopping_patience": 5,
            "early_stopping_metric": "val_f1_macro",
        },
        example_classes=("normal", "pneumonia"),
    ),
    Preset(
        id="preset/skin-lesion-classification",
        name="Dermoscopy skin lesion classification",
        description=(
            "Dermoscopic images of skin lesions (for example nevus / melanoma). EfficientNet-B0 fine-tuned "
            "with strong augmentation (lesions have no orientation) and class weighting for the rare classes."
        ),
        task_type="classification",
        model_id="tv/efficientnet_b0.imagenet1k_v1",
        input_size=256,
        augmentation="strong",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_MEDICAL",
        hyperparameters={
            "epochs": 30,
            "batch_size": 32,
            "learning_rate": 3e-4,
            "optimizer": "OPTIMIZER_ADAMW",
            "lr_schedule": "LR_SCHEDULE_COSINE",
            "weight_decay": 1e-4,
            "label_smoothing": 0.1,
            "class_weighting": "CLASS_WEIGHTING_SQRT_INVERSE_FREQUENCY",
            "early_stopping_patience": 6,
            "early_stopping_metric": "val_f1_macro",
        },
        example_classes=("nevus", "melanoma", "keratosis"),
    ),
    Preset(
        id="preset/document-classification",
        name="Document image classification",
        description=(
            "Scanned or photographed documents by type (invoice, letter, form, ...). ResNet-50 at a larger "
            "input so text layout survives the resize; light augmentation (documents are upright), a "
            "gradual unfreeze because page layouts differ from natural photos."
        ),
        task_type="classification",
        model_id="tv/resnet50.imagenet1k_v2",
        input_size=384,
        augmentation="light",
        transfer_strategy="TRANSFER_STRATEGY_GRADUAL_UNFREEZE",
        data_type="DATA_TYPE_DOCUMENT",
        hyperparameters={
            "epochs": 15,
            "batch_size": 16,
            "learning_rate": 1e-3,
            "backbone_lr_multiplier": 0.1,
            "optimizer": "OPTIMIZER_SGD",
            "lr_schedule": "LR_SCHEDULE_COSINE",
            "weight_decay": 1e-4,
            "early_stopping_patience": 4,
            "early_stopping_metric": "val_top1",
        },
        example_classes=("invoice", "letter", "form", "receipt"),
    ),
    Preset(
        id="preset/industrial-defect-classification",
        name="Industrial surface defect classification",
        description=(
            "Close-ups of parts or surfaces sorted as good or by defect type. MobileNetV3-Large (fast on "
            "line-side CPUs), standard augmentation, class weighting for the rare defects."
        ),
        task_type="classification",
        model_id="tv/mobilenet_v3_large.imagenet1k_v2",
        input_size=224,
        augmentation="standard",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_INDUSTRIAL",
        hyperparameters={
            "epochs": 25,
            "batch_size": 32,
            "learning_rate": 1e-3,
            "optimizer": "OPTIMIZER_ADAMW",
            "lr_schedule": "LR_SCHEDULE_ONE_CYCLE",
            "weight_decay": 1e-4,
            "class_weighting": "CLASS_WEIGHTING_INVERSE_FREQUENCY",
            "early_stopping_patience": 6,
            "early_stopping_metric": "val_f1_macro",
        },
        example_classes=("good", "scratch", "dent", "crack"),
    ),
    Preset(
        id="preset/industrial-defect-detection",
        name="Industrial defect detection",
        description=(
            "Boxes around defects on parts or surfaces. Faster R-CNN over a MobileNetV2 backbone that starts "
            "from the ImageNet weights the local stack ships, at 640 px; small defects need the FPN's "
            "stride-4 level; standard augmentation."
        ),
        task_type="detection",
        model_id="combo/fasterrcnn+mobilenet_v2.imagenet1k_v1",
        input_size=640,
        augmentation="standard",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_INDUSTRIAL",
        hyperparameters={
            "epochs": 30,
            "batch_size": 4,
            "learning_rate": 0.01,
            "optimizer": "OPTIMIZER_SGD",
            "lr_schedule": "LR_SCHEDULE_COSINE",
            "warmup_epochs": 1,
            "weight_decay": 1e-4,
            "early_stopping_patience": 8,
            "early_stopping_metric": "val_map",
        },
        example_classes=("scratch", "dent", "crack"),
    ),
    Preset(
        id="preset/aerial-object-detection",
        name="Aerial and drone object detection",
        description=(
            "Vehicles, buildings or other objects seen from above. RetinaNet over ResNet-50 (focal loss "
            "copes with many small objects and much background) with strong augmentation (any orientation)."
        ),
        task_type="detection",
        model_id="combo/retinanet+resnet50.imagenet1k_v1",
        input_size=800,
        augmentation="strong",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_AERIAL",
        hyperparameters={
            "epochs": 24,
            "batch_size": 4,
            "learning_rate": 0.01,
            "optimizer": "OPTIMIZER_SGD",
            "lr_schedule": "LR_SCHEDULE_STEP",
            "lr_step_epochs": 16,
            "lr_step_gamma": 0.1,
            "warmup_epochs": 1,
            "weight_decay": 1e-4,
            "early_stopping_metric": "val_map",
        },
        example_classes=("car", "truck", "building"),
    ),
    Preset(
        id="preset/cell-segmentation",
        name="Microscopy cell segmentation",
        description=(
            "Per-pixel cell / nucleus / background masks in microscopy images. A U-Net (the network made for "
            "biomedical segmentation) over a MobileNetV2 encoder that starts from ImageNet weights; strong "
            "augmentation (cells have no orientation)."
        ),
        task_type="segmentation",
        model_id="combo/unet+mobilenet_v2.imagenet1k_v1",
        input_size=256,
        augmentation="strong",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_MICROSCOPY",
        hyperparameters={
            "epochs": 40,
            "batch_size": 8,
            "learning_rate": 1e-3,
            "optimizer": "OPTIMIZER_ADAMW",
            "lr_schedule": "LR_SCHEDULE_COSINE",
            "weight_decay": 1e-4,
            "early_stopping_patience": 10,
            "early_stopping_metric": "val_miou",
        },
        example_classes=("background", "cell"),
    ),
    Preset(
        id="preset/cell-instance-segmentation",
        name="Microscopy cell instance segmentation",
        description=(
            "One mask per cell, so touching cells are counted apart. Mask R-CNN over ResNet-50 from ImageNet "
            "weights; strong augmentation."
        ),
        task_type="instance_segmentation",
        model_id="combo/maskrcnn+resnet50.imagenet1k_v1",
        input_size=512,
        augmentation="strong",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_MICROSCOPY",
        hyperparameters={
            "epochs": 30,
            "batch_size": 2,
            "learning_rate": 0.01,
            "optimizer": "OPTIMIZER_SGD",
            "lr_schedule": "LR_SCHEDULE_COSINE",
            "warmup_epochs": 1,
            "weight_decay": 1e-4,
            "early_stopping_metric": "val_mask_map",
        },
        example_classes=("cell",),
    ),
    Preset(
        id="preset/medical-organ-segmentation",
        name="Medical image organ / lesion segmentation",
        description=(
            "Organ or lesion masks in radiology or endoscopy images. DeepLabV3 over ResNet-50, COCO pre-trained "
            "(VOC labels); light augmentation keeps anatomy upright."
        ),
        task_type="segmentation",
        model_id="tv/deeplabv3_resnet50.coco_with_voc_labels_v1",
        input_size=384,
        augmentation="light",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_MEDICAL",
        hyperparameters={
            "epochs": 30,
            "batch_size": 8,
            "learning_rate": 0.01,
            "optimizer": "OPTIMIZER_SGD",
            "lr_schedule": "LR_SCHEDULE_COSINE",
            "weight_decay": 1e-4,
            "early_stopping_metric": "val_miou",
        },
        example_classes=("background", "organ", "lesion"),
    ),
    Preset(
        id="preset/retail-product-detection",
        name="Retail shelf product detection",
        description=(
            "Products on shelves or on a counter. SSDlite over MobileNetV3 (COCO pre-trained) for fast "
            "inference on edge devices; standard augmentation."
        ),
        task_type="detection",
        model_id="tv/ssdlite320_mobilenet_v3_large.coco_v1",
        input_size=320,
        augmentation="standard",
        transfer_strategy="TRANSFER_STRATEGY_FINE_TUNE_ALL",
        data_type="DATA_TYPE_NATURAL_PHOTO",
        hyperparameters={
            "epochs": 60,
            "batch_size": 16,
            "learning_rate": 0.05,
            "optimizer": "OPTIMIZER_SGD",
            "lr_schedule": "LR_SCHEDULE_COSINE",
            "warmup_epochs": 2,
            "weight_decay": 4e-5,
            "early_stopping_metric": "val_map",
        },
        example_classes=("bottle", "can", "box"),
    ),
)

BY_ID: dict[str, Preset] = {p.id: p for p in PRESETS}
