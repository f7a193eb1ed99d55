"""DeepLabV3's head on MobileNetV2 features, trained at half the scenes' resolution (CamVid: 240 x 320,
the aspect kept): SGD 0.01 with momentum, polynomial decay, batch 8, flips; cross-entropy that ignores
unlabelled pixels (255). Scored at the labels' own resolution."""

from __future__ import annotations

import _shared
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassJaccardIndex
from torchvision.models.segmentation.deeplabv3 import DeepLabHead
from torchvision.transforms.functional import normalize, to_tensor

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Cases(torch.utils.data.Dataset):
    def __init__(self, root: str, cases: list[dict], train: bool) -> None:
        self.root, self.cases, self.train = root, cases, train

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int):
        case = self.cases[i]
        with Image.open(f"{self.root}/{case['image']}") as img, Image.open(case["mask"]) as m:
            image, mask = img.convert("RGB"), m.copy()
        if self.train:  # half resolution; the mask keeps its values
            w, h = image.size
            image, mask = image.resize((w // 2, h // 2), Image.BILINEAR), mask.resize((w // 2, h // 2), Image.NEAREST)
        x, y = normalize(to_tensor(image), MEAN, STD), torch.from_numpy(np.array(mask, dtype=np.int64))
        if self.train and torch.rand(1) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x, y


class Segmenter(nn.Module):
    def __init__(self, backbone: nn.Module, classes: int) -> None:
        super().__init__()
        self.backbone, self.head = backbone, DeepLabHead(1280, classes)

    def forward(self, x: torch.Tensor, size=None) -> torch.Tensor:
        return F.interpolate(
            self.head(self.backbone(x)), size=size or x.shape[-2:], mode="bilinear", align_corners=False
        )


def main() -> None:
    args = _shared.arguments(epochs=15)
    data = _shared.load(args.data)
    classes = len(data["classes"])
    model = Segmenter(_shared.mobilenet_v2(args.weights).features, classes)
    train = torch.utils.data.DataLoader(
        Cases(data["root"], data["train"], True), batch_size=8, shuffle=True, num_workers=2
    )
    val = torch.utils.data.DataLoader(Cases(data["root"], data["val"], False), batch_size=4, num_workers=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    steps = args.epochs * len(train)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1 - step / steps) ** 0.9)
    loss_fn = nn.CrossEntropyLoss(ignore_index=255)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for images, masks in train:
            optimizer.zero_grad()
            loss_fn(model(images), masks).backward()
            optimizer.step()
            schedule.step()
        model.eval()
        iou = MulticlassJaccardIndex(num_classes=classes, average="macro", ignore_index=255)
        with torch.inference_mode():
            for images, masks in val:  # inferred at half resolution, scored at full
                small = F.interpolate(images, scale_factor=0.5, mode="bilinear", align_corners=False)
                iou.update(model(small, size=masks.shape[-2:]).argmax(1), masks)
        _shared.report(epoch, float(iou.compute()))


if __name__ == "__main__":
    main()
