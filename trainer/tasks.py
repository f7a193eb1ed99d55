"""Task types as adapters of the one training loop: datasets (image and target transformed
together), collate, the loss of a batch, and the evaluation metrics (torchmetrics / pycocotools).

Classification batches are (images [N,3,H,W], labels [N]); detection and instance segmentation
batches are (list of images, list of torchvision target dicts with 1-based labels: 0 is the
background a torchvision detector needs); semantic segmentation batches are (images, masks [N,H,W]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from kernel.contract import CLASSIFICATION, DETECTION, INSTANCE_SEGMENTATION, PRIMARY_METRIC, SEGMENTATION
from trainer.errors import PermanentJobError


def lower_is_better(metric: str) -> bool:
    return metric.endswith("loss")


@dataclass
class Item:
    """One case with its local files."""

    path: Path
    case: dict
    mask_path: Path | None = None

    @property
    def label(self) -> int:
        return int(self.case["label"])


# EXIF orientations that swap width and height (transpose, rotate 90/270, transverse)
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


def decode_rgb(path: Path, min_short: int = 0) -> tuple[Image.Image, tuple[int, int]]:
    """A stored image as 8-bit RGB the way the dataset service reads it: EXIF orientation applied,
    16-bit and float images scaled (not clipped to white), transparency over white, CMYK and
    palettes converted. With min_short, a JPEG is decoded at the largest power-of-two reduction
    (libjpeg's DCT scaling: 1/2, 1/4 or 1/8) that keeps its short side >= min_short, so a 6000x4000
    photo costs little per epoch; other formats cannot be drafted and decode in full.

    Returns the image and its full-resolution (width, height) after EXIF orientation: the frame a
    case's boxes, polygons and masks refer to (the dataset service stores images upright and
    annotates them so), which a reduced image has to be scaled from."""
    from PIL import ExifTags, ImageOps

    from kernel.imaging import to_rgb

    try:
        with Image.open(path) as img:
            w, h = img.size
            # read the way exif_transpose reads it below, so the two agree on the frame
            swapped = img.getexif().get(ExifTags.Base.Orientation, 1) in _SWAPPING_ORIENTATIONS
            short = min(w, h)
            if min_short and img.format == "JPEG" and short >= 2 * min_short:
                # draft picks the largest reduction whose size is still >= the one asked for
                img.draft("RGB", (min_short * w // short, min_short * h // short))
            return to_rgb(ImageOps.exif_transpose(img)), ((h, w) if swapped else (w, h))
    except Exception as exc:  # noqa: BLE001 - a broken image is a data error
        raise PermanentJobError(f"image {path.name} cannot be decoded: {exc}") from exc


def open_rgb(path: Path, min_side: int = 0) -> Image.Image:
    """decode_rgb's image. With min_side (classification), the short side stays at least twice
    min_side: room for random crops."""
    return decode_rgb(path, 2 * min_side)[0]


# -- transforms --------------------------------------------------------------------------------


def classification_transform(image_size: int, mean, std, train: bool, preset: str = "none"):
    ops: list = [v2.ToImage()]
    if train and preset != "none":
        scale = {"light": (0.8, 1.0), "standard": (0.6, 1.0), "strong": (0.35, 1.0)}[preset]
        ops += [v2.RandomResizedCrop(image_size, scale=scale, antialias=True), v2.RandomHorizontalFlip()]
        if preset in ("standard", "strong"):
            ops.append(v2.ColorJitter(0.2, 0.2, 0.2) if preset == "standard" else v2.ColorJitter(0.4, 0.4, 0.4, 0.05))
        if preset == "strong":
            ops.append(v2.RandomRotation(15))
    else:
        shape = image_size if isinstance(image_size, tuple) else (image_size, image_size)
        ops.append(v2.Resize(shape, antialias=True))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
    return v2.Compose(ops)


# A detector's longer side may be at most this many times its shorter (torchvision's 1333 / 800).
MAX_ASPECT = 1333 / 800


def input_size(image_size: int, image_width: int = 0) -> int | tuple[int, int]:
    """What dense_transform resizes to: a square side, or (height, width) for a semantic-segmentation run
    that keeps its images' aspect (Hyperparameters.image_width)."""
    return (image_size, image_width) if image_width else image_size


def dense_transform(
    image_size: int | tuple[int, int],
    train: bool,
    preset: str = "none",  # a training run names its Hyperparameters.augmentation
    normalize=None,
    keep_aspect: bool = False,
):
    """Image + boxes + masks transformed together (tv_tensors): resized to a square image_size or to
    (height, width), or with keep_aspect (detectors, whose batches are lists) the shorter side to
    image_size and the longer side at most MAX_ASPECT times that: a 480x360 street scene is not squashed
    into a square."""
    ops: list = []
    if train and preset != "none":
        ops.append(v2.RandomHorizontalFlip())
        if preset in ("standard", "strong"):
            ops.append(v2.ColorJitter(0.2, 0.2, 0.2))
        if preset == "strong":
            ops.append(v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.8, 1.2)))
    if keep_aspect:
        ops.append(v2.Resize(image_size, max_size=math.ceil(image_size * MAX_ASPECT), antialias=True))
    else:
        shape = image_size if isinstance(image_size, tuple) else (image_size, image_size)
        ops.append(v2.Resize(shape, antialias=True))
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if normalize is not None:
        ops.append(v2.Normalize(mean=list(normalize[0]), std=list(normalize[1])))
    return v2.Compose(ops)


# -- datasets ----------------------------------------------------------------------------------


class ClassificationDataset(Dataset):
    def __init__(self, items: Sequence[Item], transform, min_side: int = 0) -> None:
        self.items, self.transform, self.min_side = list(items), transform, min_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        return self.transform(open_rgb(item.path, self.min_side)), item.label


def instance_masks(case: dict, height: int, width: int, frame: tuple[int, int] | None = None) -> torch.Tensor:
    """[N, H, W] uint8 masks of a case's instances from COCO polygons or compressed RLE.

    frame is the (height, width) the annotations refer to (the full-size image) when the image was
    decoded smaller: polygons and boxes are scaled before rasterising, RLE masks are decoded at
    their own size, checked against the frame, and resized nearest."""
    import numpy as np
    from pycocotools import mask as mask_util

    fh, fw = frame or (height, width)
    sx, sy = width / fw, height / fh
    out = []
    for box in case.get("boxes", []):
        bbox = [box["bbox"][0] * sx, box["bbox"][1] * sy, box["bbox"][2] * sx, box["bbox"][3] * sy]
        if box.get("rle"):
            rle = dict(box["rle"])
            if isinstance(rle.get("counts"), str):
                rle["counts"] = rle["counts"].encode()
            m = mask_util.decode(rle)
            if m.shape != (fh, fw):
                raise PermanentJobError(
                    f"case {case.get('id')} ({case.get('source_path')}) has a mask of size "
                    f"{m.shape[1]}x{m.shape[0]}, but its image is {fw}x{fh}"
                )
            if (fh, fw) != (height, width):
                m = np.asarray(Image.fromarray(np.ascontiguousarray(m)).resize((width, height), Image.NEAREST))
        elif box.get("polygons"):
            polys = [[v * (sx if i % 2 == 0 else sy) for i, v in enumerate(p)] for p in box["polygons"] if len(p) >= 6]
            if not polys:
                m = _box_mask(bbox, height, width)
            else:
                m = mask_util.decode(mask_util.merge(mask_util.frPyObjects(polys, height, width)))
        else:
            m = _box_mask(bbox, height, width)
        out.append(torch.from_numpy(m.astype("uint8")))
    if not out:
        return torch.zeros((0, height, width), dtype=torch.uint8)
    return torch.stack(out)


def _box_mask(bbox, height: int, width: int):
    import numpy as np

    m = np.zeros((height, width), dtype="uint8")
    x0, y0, x1, y1 = (round(v) for v in bbox)
    m[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = 1
    return m


class DetectionDataset(Dataset):
    """(image [3,S,S] in [0,1], {"boxes", "labels" (1-based)[, "masks"]}) pairs.

    With min_side (the square size the transform resizes to), a big JPEG is decoded at a reduction
    that keeps its short side >= min_side, and its boxes and masks are scaled to match: the
    transform would have downscaled them anyway, and masks are built at the reduced size."""

    def __init__(self, items: Sequence[Item], transform, with_masks: bool = False, min_side: int = 0) -> None:
        self.items, self.transform, self.with_masks, self.min_side = list(items), transform, with_masks, min_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        image, (fw, fh) = decode_rgb(item.path, self.min_side)
        w, h = image.size
        boxes = item.case.get("boxes", [])
        coords = torch.tensor([b["bbox"] for b in boxes], dtype=torch.float32).reshape(-1, 4)
        if (w, h) != (fw, fh):
            coords = coords * torch.tensor([w / fw, h / fh, w / fw, h / fh])
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                coords,
                format="XYXY",
                canvas_size=(h, w),
            ),
            "labels": torch.tensor([int(b["class"]) + 1 for b in boxes], dtype=torch.int64),
        }
        if self.with_masks:
            target["masks"] = tv_tensors.Mask(instance_masks(item.case, h, w, frame=(fh, fw)))
        img, target = self.transform(tv_tensors.Image(v2.functional.pil_to_tensor(image)), target)
        keep = (target["boxes"][:, 2] > target["boxes"][:, 0] + 0.5) & (
            target["boxes"][:, 3] > target["boxes"][:, 1] + 0.5
        )
        out = {"boxes": target["boxes"].as_subclass(torch.Tensor)[keep], "labels": target["labels"][keep]}
        if self.with_masks:
            out["masks"] = target["masks"].as_subclass(torch.Tensor)[keep].to(torch.uint8)
        return img.as_subclass(torch.Tensor), out


# Validation scores a semantic segmentation at its labels' own resolution, up to this many pixels (a
# larger mask is scored at a nearest-neighbour reduction: logits upsampled to 12 Mpx x 150 classes would
# not fit in memory).
SCORED_MASK_PIXELS = 1024 * 1024


class SegmentationDataset(Dataset):
    """(normalised image [3,H,W], class mask [H,W] int64 with ignore_index) pairs. With min_side, a
    big JPEG decodes reduced (see DetectionDataset) and its mask is resized nearest to match, so
    class and ignore values stay exact. With full_masks (validation), the mask stays at its own
    resolution (at most SCORED_MASK_PIXELS): predictions are scored against the labels as given."""

    def __init__(self, items: Sequence[Item], transform, min_side: int = 0, full_masks: bool = False) -> None:
        self.items, self.transform, self.min_side = list(items), transform, min_side
        self.full_masks = full_masks

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        image, full = decode_rgb(item.path, self.min_side)
        if item.mask_path is None:
            raise PermanentJobError(f"case {item.case.get('id')} has no mask")
        with Image.open(item.mask_path) as m:
            mask = m.convert("L") if m.mode not in ("L", "P", "I;16", "I") else m.copy()
        if mask.size != full:  # the full-size image: a reduced decode must not hide a mismatch
            raise PermanentJobError(
                f"case {item.case.get('id')} ({item.case.get('source_path')}): mask is {mask.size[0]}x{mask.size[1]}, "
                f"image is {full[0]}x{full[1]}"
            )
        if self.full_masks:
            w, h = mask.size
            if w * h > SCORED_MASK_PIXELS:
                scale = (SCORED_MASK_PIXELS / (w * h)) ** 0.5
                mask = mask.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.NEAREST)
            img = self.transform(tv_tensors.Image(v2.functional.pil_to_tensor(image)))
            return img.as_subclass(torch.Tensor), torch.from_numpy(__import__("numpy").array(mask, dtype="int64"))
        if mask.size != image.size:
            mask = mask.resize(image.size, Image.NEAREST)
        img, msk = self.transform(
            tv_tensors.Image(v2.functional.pil_to_tensor(image)),
            tv_tensors.Mask(torch.from_numpy(__import__("numpy").array(mask, dtype="int64"))),
        )
        return img.as_subclass(torch.Tensor), msk.as_subclass(torch.Tensor).long()


def detection_collate(batch):
    return [b[0] for b in batch], [b[1] for b in batch]


def segmentation_collate(batch):
    """Images stacked; masks stacked when they share a size, else a list (validation at label resolution)."""
    images, masks = torch.stack([b[0] for b in batch]), [b[1] for b in batch]
    same = all(m.shape == masks[0].shape for m in masks)
    return images, torch.stack(masks) if same else masks


# -- adapters ----------------------------------------------------------------------------------


@dataclass
class Adapter:
    """What the training loop needs to know about a task type."""

    num_classes: int
    class_names: list[str] = field(default_factory=list)
    class_weights: list[float] | None = None
    label_smoothing: float = 0.0
    ignore_index: int = 255
    name: str = CLASSIFICATION
    collate = None

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.name]

    @property
    def channels_last(self) -> bool:
        """Whether this task's networks train in channels_last. Classifiers: yes, as is usual on GPUs, and on
        CPUs too (oneDNN; MobileNetV2 trained 1.5x faster at 224 px on 2 cores, EfficientNet-B0 1.4x,
        MobileNetV3 1.5x, ResNet-18 1.06x, ConvNeXt-T the same).
        Segmenters: no; on an H200 (bf16, batch 16, 224 px) NCHW trained LR-ASPP and DeepLabV3 with
        MobileNetV3 about 1.3x faster and FCN-ResNet50 1.14x, DeepLabV3-ResNet50 0.8x. Detectors: their
        list-of-images inputs stay NCHW."""
        return self.name == CLASSIFICATION

    @property
    def fixed_input_size(self) -> bool:
        """Every batch has one shape (classification and semantic segmentation resize to a square
        image_size), so cuDNN may time its kernels once and keep the fastest; a detector's heads see a
        different number of regions each step, for which that search would run again and again."""
        return self.name in (CLASSIFICATION, SEGMENTATION)

    def loss(self, model: nn.Module, images, targets, device: torch.device) -> tuple[torch.Tensor, int]:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, loader, device: torch.device, full: bool = False) -> dict:
        raise NotImplementedError


def _to_device(images, device, channels_last: bool = False):
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA: bfloat16 where the GPU has it (Ampere and later: fp32's range, so no
    loss scaling), float16 with a GradScaler on older GPUs; full precision on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def grad_scaler(device: torch.device) -> torch.amp.GradScaler | None:
    """Loss scaling, needed only where float16 gradients could underflow."""
    return torch.amp.GradScaler("cuda") if amp_dtype(device) == torch.float16 else None


def _autocast(device: torch.device):
    dtype = amp_dtype(device)
    if dtype is None:
        return torch.autocast("cpu", enabled=False)
    return torch.autocast("cuda", dtype=dtype)


class ClassificationAdapter(Adapter):
    def _criterion(self, device, smoothing: float) -> nn.Module:
        weight = torch.tensor(self.class_weights, device=device) if self.class_weights else None
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing)

    def loss(self, model, images, targets, device):
        images = _to_device(images, device, True)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device):
            out = model(images)
        return self._criterion(device, self.label_smoothing)(out.float(), targets), images.shape[0]

    @torch.inference_mode()
    def evaluate(self, model, loader, device, full=False) -> dict:
        model.eval()
        logits, targets = [], []
        for images, labels in loader:
            images = _to_device(images, device, True)
            with _autocast(device):
                logits.append(model(images).float().cpu())
            targets.append(labels.cpu())
        if not logits:
            return {"val_loss": 0.0}
        return self.scores(torch.cat(logits), torch.cat(targets), full)

    def scores(self, logits: torch.Tensor, targets: torch.Tensor, full: bool = False) -> dict:
        """The validation metrics of a split's logits (also used by the linear probe, which has them without
        running the network again)."""
        from torchmetrics.classification import (
            MulticlassAccuracy,
            MulticlassConfusionMatrix,
            MulticlassF1Score,
            MulticlassPrecision,
            MulticlassRecall,
        )

        n = self.num_classes
        metrics = {
            "val_top1": MulticlassAccuracy(num_classes=n, top_k=1, average="micro"),
            "val_f1_macro": MulticlassF1Score(num_classes=n, average="macro"),
        }
        if n >= 5:
            metrics["val_top5"] = MulticlassAccuracy(num_classes=n, top_k=5, average="micro")
        if full:
            metrics |= {
                "precision": MulticlassPrecision(num_classes=n, average=None),
                "recall": MulticlassRecall(num_classes=n, average=None),
                "f1": MulticlassF1Score(num_classes=n, average=None),
                "confusion_matrix": MulticlassConfusionMatrix(num_classes=n),
            }
        out: dict = {"val_loss": float(nn.functional.cross_entropy(logits, targets))}
        for name, metric in metrics.items():
            value = metric(logits, targets)
            out[name] = float(value) if value.ndim == 0 else value.tolist()
        return out


class DetectionAdapter(Adapter):
    """torchvision detectors: a loss dict in train mode, [{"boxes","labels","scores"(,"masks")}] in eval."""

    collate = staticmethod(detection_collate)

    @property
    def with_masks(self) -> bool:
        return self.name == INSTANCE_SEGMENTATION

    def loss(self, model, images, targets, device):
        images = [i.to(device, non_blocking=True) for i in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        with _autocast(device):
            losses = model(images, targets)
        return sum(v.float() for v in losses.values()), len(images)

    @torch.inference_mode()
    def evaluate(self, model, loader, device, full=False) -> dict:
        from torchmetrics.detection import MeanAveragePrecision

        model.eval()
        iou = ("bbox", "segm") if self.with_masks else "bbox"
        metric = MeanAveragePrecision(iou_type=iou, class_metrics=full, backend="pycocotools")
        for images, targets in loader:
            images = [i.to(device, non_blocking=True) for i in images]
            with _autocast(device):
                outputs = model(images)
            preds = []
            for o in outputs:
                p = {
                    "boxes": o["boxes"].float().cpu(),
                    "scores": o["scores"].float().cpu(),
                    "labels": o["labels"].cpu(),
                }
                if self.with_masks:
                    p["masks"] = (
                        (o["masks"][:, 0] > 0.5).cpu()
                        if len(o["masks"])
                        else torch.zeros((0, *images[0].shape[-2:]), dtype=torch.bool)
                    )
                preds.append(p)
            gts = []
            for t in targets:
                g = {"boxes": t["boxes"], "labels": t["labels"]}
                if self.with_masks:
                    g["masks"] = t["masks"].bool()
                gts.append(g)
            metric.update(preds, gts)
        res = metric.compute()
        out: dict = {}
        prefixes = {"bbox_": "val_", "segm_": "val_mask_"} if self.with_masks else {"": "val_"}
        for src, dst in prefixes.items():
            for key in ("map", "map_50", "map_75", "mar_100"):
                value = res.get(src + key)
                if value is not None:
                    out[dst + key] = max(float(value), 0.0)  # -1 means "no ground truth": report 0
            if full:
                per = res.get(src + "map_per_class")
                ids = res.get("classes")
                if per is not None and ids is not None:
                    per, ids = per.reshape(-1).tolist(), ids.reshape(-1).tolist()
                    ap = {
                        self.class_names[int(i) - 1]: max(float(v), 0.0)
                        for i, v in zip(ids, per, strict=False)
                        if 0 < int(i) <= len(self.class_names)
                    }
                    out[dst.removeprefix("val_") + "ap_per_class"] = ap
        return out


class SegmentationAdapter(Adapter):
    """Semantic segmentation: {"out": logits [N,C,H,W]}; cross-entropy with the dataset's ignore index.
    Validation upsamples the logits to each mask's own size before scoring."""

    collate = staticmethod(segmentation_collate)

    def _logits(self, model, images):
        out = model(images)
        return out["out"] if isinstance(out, dict) else out

    def _labels(self, masks: torch.Tensor) -> torch.Tensor:
        """Mask values that name no class (a void or unlisted label in a real dataset's masks) are
        ignored like the ignore index, instead of failing the loss with an out-of-bounds target."""
        return masks.masked_fill((masks >= self.num_classes) | (masks < 0), self.ignore_index)

    def loss(self, model, images, targets, device):
        images = _to_device(images, device, self.channels_last)
        targets = self._labels(targets.to(device, non_blocking=True))
        weight = torch.tensor(self.class_weights, device=device) if self.class_weights else None
        criterion = nn.CrossEntropyLoss(weight=weight, ignore_index=self.ignore_index)
        with _autocast(device):
            out = model(images)
        loss = criterion(out["out"].float() if isinstance(out, dict) else out.float(), targets)
        if isinstance(out, dict) and out.get("aux") is not None:
            loss = loss + 0.5 * criterion(out["aux"].float(), targets)
        return loss, images.shape[0]

    @torch.inference_mode()
    def evaluate(self, model, loader, device, full=False) -> dict:
        from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

        n, ignore = self.num_classes, self.ignore_index
        model.eval()
        iou = MulticlassJaccardIndex(num_classes=n, average=None, ignore_index=ignore)
        acc = MulticlassAccuracy(num_classes=n, average="micro", ignore_index=ignore, multidim_average="global")
        criterion = nn.CrossEntropyLoss(ignore_index=ignore)
        total, seen = 0.0, 0
        for images, masks in loader:
            images = _to_device(images, device, self.channels_last)
            with _autocast(device):
                logits = self._logits(model, images).float()
            for row, target in zip(logits, masks, strict=True):
                if row.shape[-2:] != target.shape[-2:]:
                    row = nn.functional.interpolate(
                        row[None], size=target.shape[-2:], mode="bilinear", align_corners=False
                    )[0]
                row, target = row[None].cpu(), self._labels(target[None].cpu())
                if (target != ignore).any():
                    total += criterion(row, target).item()
                seen += 1
                pred = row.argmax(1)
                iou.update(pred, target)
                acc.update(pred, target)
        per_class = iou.compute()
        # classes absent from both prediction and ground truth have no IoU: leave them out of the mean
        present = torch.zeros(n, dtype=torch.bool)
        present |= torch.as_tensor(iou.confmat.sum(0) + iou.confmat.sum(1) > 0) if hasattr(iou, "confmat") else True
        miou = float(per_class[present].mean()) if present.any() else 0.0
        out: dict = {"val_loss": total / max(seen, 1), "val_miou": miou, "val_pixel_acc": float(acc.compute())}
        if full:
            out["iou_per_class"] = {
                name: (float(per_class[i]) if present[i] else None) for i, name in enumerate(self.class_names[:n])
            }
        return out


def make_adapter(task: str, num_classes: int, class_names: list[str], **kw) -> Adapter:
    cls = {
        CLASSIFICATION: ClassificationAdapter,
        DETECTION: DetectionAdapter,
        INSTANCE_SEGMENTATION: DetectionAdapter,
        SEGMENTATION: SegmentationAdapter,
    }.get(task)
    if cls is None:
        raise PermanentJobError(f"this trainer cannot run {task} jobs")
    return cls(num_classes=num_classes, class_names=class_names, name=task, **kw)
