"""Fine-tune MobileNetV2 as PyTorch's transfer-learning tutorial does: all layers, SGD 0.001 with momentum,
the learning rate divided by 10 every 7 epochs, batch 4, random-resized crops and flips at 224 px."""

from __future__ import annotations

import _shared
import torch
from PIL import Image
from torch import nn
from torchvision import transforms as T

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Cases(torch.utils.data.Dataset):
    def __init__(self, root: str, cases: list[dict], transform) -> None:
        self.root, self.cases, self.transform = root, cases, transform

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int):
        case = self.cases[i]
        with Image.open(f"{self.root}/{case['image']}") as img:
            return self.transform(img.convert("RGB")), case["label"]


def main() -> None:
    args = _shared.arguments(epochs=10)
    data = _shared.load(args.data)
    train_tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    val_tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    train = torch.utils.data.DataLoader(
        Cases(data["root"], data["train"], train_tf), batch_size=4, shuffle=True, num_workers=2
    )
    val = torch.utils.data.DataLoader(Cases(data["root"], data["val"], val_tf), batch_size=16, num_workers=2)
    model = _shared.mobilenet_v2(args.weights)
    model.classifier[1] = nn.Linear(model.last_channel, len(data["classes"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        model.train()
        for images, labels in train:
            optimizer.zero_grad()
            loss_fn(model(images), labels).backward()
            optimizer.step()
        schedule.step()
        model.eval()
        correct = 0
        with torch.inference_mode():
            for images, labels in val:
                correct += (model(images).argmax(1) == labels).sum().item()
        _shared.report(epoch, correct / len(data["val"]))


if __name__ == "__main__":
    main()
