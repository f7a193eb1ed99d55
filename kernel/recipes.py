"""The training recipe of a model on a dataset: the one owner of every training default.

The zoo shows a model's recipe without a dataset (Model.default_hyperparameters), the recommender
attaches the recipe to each suggestion, and the training service fills the zero fields of a request
with it whichever way the model was chosen (auto select, by hand, a preset), so one model on one
dataset trains the same way however it was picked.

`model_recipe` is what the model's family and size say (the libraries' published fine-tuning recipes,
scaled to the small batches of a CPU or a single GPU); `recipe` adds what the dataset says (its size,
image resolution, domain) and the training preference.

Classification with pre-trained weights probes, then fine-tunes (TRANSFER_STRATEGY_PROBE_THEN_FINE_TUNE,
trainer/probe.py): the head is fitted on frozen features in seconds, then every layer trains gently
(SGD with momentum at a low rate: gradients are small when the head already fits, so the pre-trained
features move little; Adam's normalised steps would move every weight by the full rate from the first
step). Measured on the ants/bees set (245 / 153 photos, MobileNetV2, 2 CPU cores): the probe alone
reached 93.5 % top-1 in 8 s; fine-tuning from it with SGD 1e-3 gained up to a point in 2 epochs, AdamW
1e-4 first lost 2 points, SGD 3e-3 lost 3-6 (bench/REPORT.md, time to accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.datasetstats import DatasetStats
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2

SGD, ADAMW = common_pb2.OPTIMIZER_SGD, common_pb2.OPTIMIZER_ADAMW
# The device class recipes and estimates are made for: trainers are CPU nodes unless told otherwise.
DEVICE_CLASS = "cpu"
Pref = common_pb2.TrainingPreference

TWO_STAGE_DETECTORS = frozenset({"faster_rcnn", "mask_rcnn"})
ONE_STAGE_DETECTORS = frozenset({"retinanet", "fcos"})
SSD_DETECTORS = frozenset({"ssd", "ssdlite"})
SEGMENTERS = frozenset({"fcn", "deeplabv3", "lraspp", "unet", "semantic_fpn"})
# Attention-based classifiers: AdamW at a low rate with strong weight decay, as their fine-tuning recipes.
TRANSFORMERS = frozenset(
    {"vit", "deit", "swin", "swin_v2", "maxvit", "levit", "mobilevit", "efficientvit", "fastvit", "edgenext"}
)
MODERN_CONVNETS = frozenset({"convnext", "convnext_v2"})
MIN_DENSE_SIZE = 256  # detection and segmentation inputs are not shrunk below this
MAX_ASPECT = 1333 / 800  # a segmentation input's longer side is at most this times its shorter (as detectors')
# Pixels per image a detection or segmentation run trains at, by device class and preference ("balanced"
# on a CPU: about 320 x 320; the published full-resolution recipes need a GPU's speed); none: no limit.
DENSE_PIXEL_BUDGET = {
    ("cpu", Pref.TRAINING_PREFERENCE_FASTEST): 256 * 256,
    ("cpu", Pref.TRAINING_PREFERENCE_BALANCED): 320 * 320,
    ("cpu", Pref.TRAINING_PREFERENCE_SMALLEST): 320 * 320,
    ("gpu", Pref.TRAINING_PREFERENCE_FASTEST): 512 * 512,
    ("gpu", Pref.TRAINING_PREFERENCE_BALANCED): 1024 * 1024,
}
LARGE_PARAMS = 150_000_000  # above this a classifier's default batch is halved (memory)
# Under this many training images a dataset is small: classifiers train up to 10 epochs, and detection heads
# are not ranked by their published COCO figures alone (services.recommend.ranking).
SMALL_DATASET_CASES = 1000
# Epochs without improvement of the task's primary metric before a run stops (with its best epoch's model).
EARLY_STOPPING_PATIENCE = 3
# The fine-tuning rate after a linear probe, per 16 images of batch (SGD with momentum; linear scaling).
PROBED_FINE_TUNE_LR = 1e-3
PROBED_TRANSFORMER_LR = 2e-5  # AdamW: transformers fine-tune poorly with SGD


@dataclass(frozen=True)
class ModelRecipe:
    optimizer: int
    learning_rate: float
    batch_size: int
    epochs: int
    weight_decay: float
    warmup_epochs: int = 1
    label_smoothing: float = 0.0


@dataclass
class Recipe:
    """Hyperparameters (every field a request may leave at zero), the transfer strategy, and why."""

    hyperparameters: common_pb2.Hyperparameters
    transfer_strategy: int
    notes: list[str] = field(default_factory=list)


def model_recipe(family: str, task_types: tuple[str, ...] | list[str], num_params: int = 0) -> ModelRecipe:
    """The default recipe of a model from its family, task types and size (no dataset known)."""
    tasks = set(task_types)
    if family in TWO_STAGE_DETECTORS:  # torchvision's detection tutorial: SGD 0.005 at 2 images; 4 here
        return ModelRecipe(SGD, 0.01, 4, 12, 1e-4)
    if family in ONE_STAGE_DETECTORS:  # torchvision: SGD 0.01 at 16 images
        return ModelRecipe(SGD, 0.0025, 4, 12, 1e-4)
    if family == "ssdlite":  # torchvision: SGD 0.15 at 192 images, weight decay 4e-5
        return ModelRecipe(SGD, 0.0125, 16, 20, 4e-5)
    if family == "ssd":  # torchvision: SGD 0.002 at 32 images, weight decay 5e-4
        return ModelRecipe(SGD, 0.001, 16, 20, 5e-4)
    if family in SEGMENTERS or "segmentation" in tasks:  # torchvision: SGD 0.02 at 32 images
        return ModelRecipe(SGD, 0.01, 8, 12, 4e-5 if family == "lraspp" else 1e-4)
    if tasks & {"detection", "instance_segmentation"}:  # a detector family not named above
        return ModelRecipe(SGD, 0.01, 4, 12, 1e-4)
    batch = 16 if num_params > LARGE_PARAMS else 32
    if family in TRANSFORMERS:
        return ModelRecipe(ADAMW, 1e-4, batch, 10, 0.05, label_smoothing=0.1)
    if family in MODERN_CONVNETS:
        return ModelRecipe(ADAMW, 2e-4, batch, 10, 0.05, label_smoothing=0.1)
    return ModelRecipe(ADAMW, 1e-3, batch, 10, 1e-4)


def default_hyperparameters(
    family: str, task_types: tuple[str, ...] | list[str], num_params: int = 0, image_size: int = 0
) -> common_pb2.Hyperparameters:
    """The model's recipe as the Hyperparameters a request's zero values take (image_size: its input size)."""
    r = model_recipe(family, task_types, num_params)
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


def _round32(value: float) -> int:
    return int(max(32, round(value / 32) * 32))


def _dense_size(
    default: int, task_type: str, stats: DatasetStats, preference: int, device_class: str, notes: list[str]
) -> tuple[int, int]:
    """(image_size, image_width) of a detection or segmentation run: the images' own resolution (upscaling
    adds cost, not detail) unless objects are small, within the pixel budget of the device and preference;
    semantic segmentation keeps the images' aspect (image_width), detectors keep it themselves."""
    side, small = stats.median_side, stats.small_object_fraction or 0.0
    aspect = stats.median_width / stats.median_height if side else 1.0
    size = default
    if small > 0.3:
        notes.append(f"{small:.0%} small objects: keep the full {default} px input")
    elif side and side < default:
        size = max(MIN_DENSE_SIZE, _round32(side))
        notes.append(f"images are about {side:.0f} px on their shorter side: train at {size} px, not upscaled")
    budget = DENSE_PIXEL_BUDGET.get((device_class, preference))
    long_side = size * max(aspect, 1 / aspect)
    if budget and size * long_side > budget and small <= 0.3:
        size = max(MIN_DENSE_SIZE, _round32((budget / max(aspect, 1 / aspect)) ** 0.5))
        notes.append(f"at most {budget / 1e3:.0f}k pixels per image on {device_class}: {size} px on the shorter side")
    if task_type != "segmentation" or abs(aspect - 1) < 0.1:
        return size, 0
    if aspect > 1:  # landscape: size is the height
        return size, _round32(size * min(aspect, MAX_ASPECT))
    return _round32(size / max(aspect, 1 / MAX_ASPECT)), size


def has_weights(model: modelzoo_pb2.Model) -> bool:
    """Pre-trained weights are in the store or can be brought in."""
    return model.weight_status in (modelzoo_pb2.WEIGHT_STATUS_IN_STORE, modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE)


def far_from_imagenet(stats: DatasetStats, data_type: int) -> bool:
    return (
        data_type
        in (
            common_pb2.DATA_TYPE_MEDICAL,
            common_pb2.DATA_TYPE_MICROSCOPY,
            common_pb2.DATA_TYPE_DOCUMENT,
        )
        or (stats.grayscale_fraction or 0.0) > 0.8
    )


def recipe(
    model: modelzoo_pb2.Model,
    task_type: str,
    stats: DatasetStats | None = None,
    preference: int = Pref.TRAINING_PREFERENCE_BALANCED,
    device_class: str = "cpu",
    data_type: int = 0,
    strategy: int = 0,
    batch_size: int = 0,
    world_size: int = 1,
) -> Recipe:
    """The recipe of this model on this dataset (stats None: the dataset is not known yet), for the transfer
    strategy asked for (0: the recipe's own choice). A batch_size asked for scales the learning rate with
    it (linear scaling); several processes need a batch that divides among them."""
    stats = stats or DatasetStats()
    notes: list[str] = []
    base = model_recipe(model.family, list(model.task_types), model.num_params)
    default_size = model.default_input_size or 224
    image_size, image_width = default_size, 0
    if task_type == "classification":
        side = stats.median_side
        if side and 2 * side < default_size:
            image_size = max(96, min(default_size, _round32(2 * side)))
            notes.append(
                f"images are about {side:.0f} px: train at {image_size} px (more upscaling adds cost, not detail)"
            )
        if preference == Pref.TRAINING_PREFERENCE_FASTEST and device_class == "cpu" and image_size > 160:
            image_size = 160
            notes.append("image size 160 to keep CPU epochs short")
    else:
        image_size, image_width = _dense_size(default_size, task_type, stats, preference, device_class, notes)

    epochs = base.epochs
    if stats.train_cases and stats.train_cases < SMALL_DATASET_CASES:
        epochs = epochs if task_type != "classification" else 10
        notes.append(f"{stats.train_cases} training images: up to {epochs} epochs, stopping early")
    elif stats.train_cases >= 50000:
        epochs = min(epochs, 8)
        notes.append(f"{stats.train_cases} training images: fewer epochs ({epochs}) suffice")
    if preference == Pref.TRAINING_PREFERENCE_FASTEST:
        epochs = max(3, epochs // 2)
    elif preference == Pref.TRAINING_PREFERENCE_MOST_ACCURATE:
        epochs = epochs * 3 // 2

    hp = common_pb2.Hyperparameters(
        epochs=epochs,
        batch_size=base.batch_size,
        learning_rate=base.learning_rate,
        weight_decay=base.weight_decay,
        optimizer=base.optimizer,
        warmup_epochs=base.warmup_epochs if epochs >= 5 else 0,
        label_smoothing=base.label_smoothing,
        image_size=image_size,
        image_width=image_width,
        early_stopping_patience=EARLY_STOPPING_PATIENCE,
    )
    default = common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL
    if task_type == "classification":
        hp.batch_size = 64 if device_class == "gpu" else 16
        if base.batch_size < 32:  # a large network's halved batch
            hp.batch_size //= 2
        if stats.train_cases:
            hp.batch_size = max(2, min(hp.batch_size, stats.train_cases // 4 or 2))
        if stats.num_classes >= 100:
            hp.label_smoothing = 0.1
            notes.append(f"{stats.num_classes} classes: label smoothing 0.1")
        if has_weights(model):
            default = common_pb2.TRANSFER_STRATEGY_PROBE_THEN_FINE_TUNE
            far = far_from_imagenet(stats, data_type)
            if stats.train_cases and stats.train_cases < 100 and not far:
                default = common_pb2.TRANSFER_STRATEGY_LINEAR_PROBE
                notes.append("under 100 training images: the linear probe only, to avoid overfitting")
            elif far:  # ImageNet features fit less: the fine-tuning after the probe matters more
                notes.append("images unlike ImageNet photos (grayscale/medical/document): fine-tuned after the probe")
        chosen = strategy or default
        far = far_from_imagenet(stats, data_type)
        probed = (common_pb2.TRANSFER_STRATEGY_PROBE_THEN_FINE_TUNE, common_pb2.TRANSFER_STRATEGY_LINEAR_PROBE)
        if has_weights(model) and chosen in probed:
            hp.warmup_epochs = 0
            hp.backbone_lr_multiplier = 1.0
            if model.family in TRANSFORMERS | MODERN_CONVNETS:
                hp.optimizer, hp.weight_decay = ADAMW, 0.05
                hp.learning_rate = PROBED_TRANSFORMER_LR * hp.batch_size / 16
            else:
                hp.optimizer, hp.weight_decay = SGD, 1e-4
                hp.learning_rate = PROBED_FINE_TUNE_LR * hp.batch_size / 16
            notes.append(
                "linear probe of the new head on frozen features first (seconds), then gentle fine-tuning of "
                "every layer"
            )
        elif has_weights(model) and chosen != common_pb2.TRANSFER_STRATEGY_FROM_SCRATCH:
            # a random head: it learns at the full rate while the pre-trained backbone moves slowly
            hp.optimizer, hp.learning_rate, hp.weight_decay = ADAMW, 1e-3, 0.05
            hp.backbone_lr_multiplier = 0.5 if far else 0.1
            hp.warmup_epochs = 1 if epochs >= 5 else 0
            if far:
                notes.append(
                    "images unlike ImageNet photos (grayscale/medical/document): backbone at 0.5x the head rate"
                )
    if batch_size or world_size > 1:
        wanted = batch_size or -(-hp.batch_size // world_size) * world_size  # rounded up to divide
        hp.learning_rate *= wanted / hp.batch_size
        hp.batch_size = wanted
    return Recipe(hp, strategy or default, notes)
