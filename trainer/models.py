"""Build the network of a job: library builder, stored weights, a new head for the dataset's classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from trainer import architectures
from trainer.errors import PermanentJobError
from trainyard.common.v1 import common_pb2 as C

FINE_TUNE_ALL, LINEAR_PROBE, GRADUAL_UNFREEZE, FROM_SCRATCH, PROBE_THEN_FINE_TUNE = (
    C.TRANSFER_STRATEGY_FINE_TUNE_ALL,
    C.TRANSFER_STRATEGY_LINEAR_PROBE,
    C.TRANSFER_STRATEGY_GRADUAL_UNFREEZE,
    C.TRANSFER_STRATEGY_FROM_SCRATCH,
    C.TRANSFER_STRATEGY_PROBE_THEN_FINE_TUNE,
)


@dataclass
class BuiltModel:
    model: nn.Module
    head: nn.Module  # the classification layer trained from scratch


def _set_module(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, attr = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, module)


def _classifier(model: nn.Module) -> tuple[str, nn.Module]:
    """(name, layer) of the classification layer: the last nn.Linear, or for networks that classify with
    a 1x1 convolution (SqueezeNet) the last such convolution."""
    last = conv = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = (name, module)
        elif isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1:
            conv = (name, module)
    found = last or conv
    if found is None:
        raise PermanentJobError(f"{type(model).__name__} has no nn.Linear or 1x1 convolution classification layer")
    return found


def replace_last_linear(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the model's classification layer for a fresh one with num_classes outputs; returns the new layer."""
    name, old = _classifier(model)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
    _set_module(model, name, new)
    return new


def build_torchvision(
    architecture: str, num_classes: int, weights_path: Path | None, pretrained_num_classes: int
) -> BuiltModel:
    import torchvision

    try:
        if weights_path is None:
            model = torchvision.models.get_model(architecture, weights=None, num_classes=num_classes)
            return BuiltModel(model, _last_linear(model))
        model = torchvision.models.get_model(architecture, weights=None, num_classes=pretrained_num_classes or 1000)
    except ValueError as exc:
        raise PermanentJobError(f"torchvision has no model {architecture!r}: {exc}") from exc
    try:
        model.load_state_dict(architectures.read_state_dict(weights_path))
    except Exception as exc:  # noqa: BLE001 - unusable weights never load on a retry
        raise PermanentJobError(f"the stored weights do not fit torchvision {architecture}: {exc}") from exc
    head = replace_last_linear(model, num_classes)
    return BuiltModel(model, head)


def _last_linear(model: nn.Module) -> nn.Module:
    return _classifier(model)[1]


def build_timm(architecture: str, num_classes: int, weights_path: Path | None) -> BuiltModel:
    import timm

    try:
        if weights_path is None:
            model = timm.create_model(architecture, pretrained=False, num_classes=num_classes)
        else:
            model = timm.create_model(
                architecture,
                pretrained=True,
                pretrained_cfg_overlay={"state_dict": architectures.read_state_dict(weights_path)},
                num_classes=num_classes,
            )
    except RuntimeError as exc:
        raise PermanentJobError(f"timm cannot build {architecture!r} from the stored weights: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - unknown names etc.
        raise PermanentJobError(f"timm cannot build {architecture!r}: {exc}") from exc
    head = model.get_classifier()
    if not isinstance(head, nn.Module) or not list(head.parameters()):
        head = _last_linear(model)
    return BuiltModel(model, head)


def build_model(
    library: str,
    architecture: str,
    num_classes: int,
    weights_path: Path | None,
    pretrained_num_classes: int = 0,
    *,
    task: str = "classification",
    image_size: int | None = None,
    backbone_weights_path: Path | None = None,
    weights_num_classes: int | None = None,
) -> BuiltModel:
    """The job's network. Classification keeps the torchvision/timm path (a stored ImageNet checkpoint,
    a new last layer); detection and segmentation networks come from trainer.architectures."""
    if task == "classification" and library in ("torchvision", "timm") and not weights_num_classes:
        if library == "torchvision":
            built = build_torchvision(architecture, num_classes, weights_path, pretrained_num_classes)
        else:
            built = build_timm(architecture, num_classes, weights_path)
        settle_batchnorm(built.model)
        return built
    try:
        model = architectures.build_network(
            library,
            architecture,
            task,
            num_classes,
            weights_path=weights_path,
            backbone_weights_path=backbone_weights_path,
            input_size=image_size
            if task in architectures.DETECTION_TASKS and not architecture.startswith("ssd")
            else None,
            weights_num_classes=weights_num_classes,
        )
    except (architectures.ArchitectureError, architectures.WeightsMismatchError) as exc:
        raise PermanentJobError(f"cannot build {library} {architecture} for {task}: {exc}") from exc
    settle_batchnorm(model)
    return BuiltModel(model, head_of(model, task))


# PyTorch's default. Some ImageNet recipes lower it (torchvision's MobileNetV3 and EfficientNet: 0.01) for
# runs of hundreds of epochs; over a fine-tuning run's few hundred steps the running statistics then never
# reach the new data's and evaluation uses stale ones (a MobileNetV3-Small trained from scratch for 30
# epochs reached zero training loss and stayed at chance on validation).
BATCHNORM_MOMENTUM = 0.1


def settle_batchnorm(model: nn.Module) -> None:
    """Raise BatchNorm momentum to BATCHNORM_MOMENTUM where a recipe set it lower."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None:
            module.momentum = max(module.momentum, BATCHNORM_MOMENTUM)


def head_of(model: nn.Module, task: str) -> nn.Module:
    """The part trained from the start under every transfer strategy: the classification layer, or
    everything of a detector / segmenter that is not its backbone."""
    if task == "classification":
        if hasattr(model, "get_classifier"):
            head = model.get_classifier()
            if isinstance(head, nn.Module) and list(head.parameters()):
                return head
        return _last_linear(model)
    for name in ("backbone", "encoder"):
        if isinstance(getattr(model, name, None), nn.Module):
            return nn.ModuleList([child for n, child in model.named_children() if n != name])
    return model


def head_parameter_ids(built: BuiltModel) -> set[int]:
    return {id(p) for p in built.head.parameters()}


def param_groups(built: BuiltModel, lr: float, backbone_multiplier: float, weight_decay: float) -> list[dict]:
    """Head at lr, backbone at lr * backbone_multiplier; no weight decay on biases and norms."""
    head_ids = head_parameter_ids(built)
    groups: dict[tuple[bool, bool], list] = {}
    for param in built.model.parameters():
        is_head = id(param) in head_ids
        decay = param.ndim > 1
        groups.setdefault((is_head, decay), []).append(param)
    out = []
    for (is_head, decay), params in sorted(groups.items()):
        out.append(
            {
                "params": params,
                "lr": lr if is_head else lr * backbone_multiplier,
                "weight_decay": weight_decay if decay else 0.0,
                "name": ("head" if is_head else "backbone") + ("" if decay else "_no_decay"),
            }
        )
    return out


def unfreeze_epoch(strategy: int, epochs: int) -> int | None:
    """First 0-based epoch that trains the backbone; None when it never does."""
    if strategy == LINEAR_PROBE:
        return None
    if strategy == GRADUAL_UNFREEZE:
        return min(max(1, epochs // 4), max(epochs - 1, 0))
    return 0


def set_trainable(built: BuiltModel, strategy: int, epoch: int, epochs: int) -> bool:
    """Freeze or unfreeze the backbone for a 0-based epoch; returns whether the backbone trains."""
    first = unfreeze_epoch(strategy, epochs)
    backbone_trains = first is not None and epoch >= first
    head_ids = head_parameter_ids(built)
    for param in built.model.parameters():
        # a detector's first backbone stages stay frozen (architectures.freeze_early_stages)
        param.requires_grad_((backbone_trains or id(param) in head_ids) and not getattr(param, "stays_frozen", False))
    return backbone_trains
