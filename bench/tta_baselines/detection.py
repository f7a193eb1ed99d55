"""Faster R-CNN (or Mask R-CNN with --masks) on MobileNetV2 features, as torchvision's detection tutorial
builds it: one feature map, 5 anchor sizes x 3 ratios, RoIAlign 7 (14 for masks); shorter side 320 px;
SGD 0.005 with momentum and weight decay, the rate divided by 10 every 3 epochs, batch 2, flips."""

from __future__ import annotations

import sys

import _shared
import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_util
from torchmetrics.detection import MeanAveragePrecision
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign
from torchvision.transforms.functional import hflip, to_tensor

MASKS = "--masks" in sys.argv
if MASKS:
    sys.argv.remove("--masks")


class Cases(torch.utils.data.Dataset):
    def __init__(self, root: str, cases: list[dict], train: bool) -> None:
        self.root, self.cases, self.train = root, cases, train

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int):
        case = self.cases[i]
        with Image.open(f"{self.root}/{case['image']}") as img:
            image = to_tensor(img.convert("RGB"))
        h, w = image.shape[-2:]
        target = {
            "boxes": torch.tensor(case["boxes"], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(case["labels"], dtype=torch.int64) + 1,
        }
        if MASKS:
            rles = [{"size": r["size"], "counts": r["counts"].encode()} for r in case["rles"]]
            masks = mask_util.decode(rles) if rles else np.zeros((h, w, 0), np.uint8)
            target["masks"] = torch.from_numpy(masks).permute(2, 0, 1)
        if self.train and torch.rand(1) < 0.5:
            image = hflip(image)
            target["boxes"][:, [0, 2]] = w - target["boxes"][:, [2, 0]]
            if MASKS:
                target["masks"] = target["masks"].flip(-1)
        return image, target


def main() -> None:
    args = _shared.arguments(epochs=10)
    data = _shared.load(args.data)
    backbone = _shared.mobilenet_v2(args.weights).features
    backbone.out_channels = 1280
    kw = dict(
        num_classes=len(data["classes"]) + 1,
        rpn_anchor_generator=AnchorGenerator(((32, 64, 128, 256, 512),), ((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2),
        min_size=320,
        max_size=640,
    )
    model = (
        MaskRCNN(backbone, mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2), **kw)
        if MASKS
        else FasterRCNN(backbone, **kw)
    )
    collate = lambda batch: tuple(zip(*batch, strict=True))  # noqa: E731
    train = torch.utils.data.DataLoader(
        Cases(data["root"], data["train"], True), batch_size=2, shuffle=True, num_workers=2, collate_fn=collate
    )
    val = torch.utils.data.DataLoader(
        Cases(data["root"], data["val"], False), batch_size=2, num_workers=2, collate_fn=collate
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.005, momentum=0.9, weight_decay=0.0005)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for images, targets in train:
            loss = sum(model(list(images), list(targets)).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        model.eval()
        metric = MeanAveragePrecision(iou_type="segm" if MASKS else "bbox", backend="pycocotools")
        with torch.inference_mode():
            for images, targets in val:
                outputs = model(list(images))
                if MASKS:
                    for o, t in zip(outputs, targets, strict=True):
                        o["masks"], t["masks"] = o["masks"][:, 0] > 0.5, t["masks"].bool()
                metric.update(outputs, list(targets))
        _shared.report(epoch, float(metric.compute()["map"]))


if __name__ == "__main__":
    main()
