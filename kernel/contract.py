"""Facts of the wire contract (trainyard.common.v1) that every part reads the same way, with one owner each:
task types by their short names, how many processes a ComputeResources asks for, the normalisation of a
model that names none, the augmentation presets. The services, the trainer and the SDK import them here."""

from __future__ import annotations

from trainyard.common.v1 import common_pb2 as C


def task_name(task_type: int) -> str:
    """TASK_TYPE_CLASSIFICATION -> "classification" (jobs subjects, dataset records, catalog rows, messages);
    "unspecified" for 0. Raises ValueError for a number the enum does not have."""
    return C.TaskType.Name(task_type).removeprefix("TASK_TYPE_").lower()


# Every task type's short name, in the enum's order (which is also the order they are listed in).
TASK_NAMES: dict[int, str] = {value: task_name(value) for value in C.TaskType.values() if value}
TASK_TYPES: dict[str, int] = {name: value for value, name in TASK_NAMES.items()}
CLASSIFICATION, DETECTION, SEGMENTATION, INSTANCE_SEGMENTATION = (
    TASK_NAMES[C.TASK_TYPE_CLASSIFICATION],
    TASK_NAMES[C.TASK_TYPE_DETECTION],
    TASK_NAMES[C.TASK_TYPE_SEGMENTATION],
    TASK_NAMES[C.TASK_TYPE_INSTANCE_SEGMENTATION],
)

# The metric each task type is judged by: the best checkpoint's, early stopping's and a search's unless told
# otherwise (higher is better).
PRIMARY_METRIC: dict[str, str] = {
    CLASSIFICATION: "val_top1",
    DETECTION: "val_map",
    SEGMENTATION: "val_miou",
    INSTANCE_SEGMENTATION: "val_mask_map",
}

# The normalisation of ImageNet-trained weights: what a model whose catalog entry names none takes.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Hyperparameters.augmentation: the presets a trainer knows (trainer.tasks builds them).
AUGMENTATION_PRESETS = ("none", "light", "standard", "strong")


def processes_per_node(resources: C.ComputeResources) -> int:
    """Processes on each node (0 means one)."""
    return max(1, resources.processes_per_node)


def nodes(resources: C.ComputeResources) -> int:
    """Nodes of a run (0 means one)."""
    return max(1, resources.nodes)


def world_size(resources: C.ComputeResources) -> int:
    """Processes in all."""
    return processes_per_node(resources) * nodes(resources)
