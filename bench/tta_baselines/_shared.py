"""What every baseline script needs: the dataset description, the backbone weights, the epoch log."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torchvision

START = time.monotonic()


def arguments(epochs: int) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True, help="dataset.json written by bench/tta.py")
    p.add_argument("--weights", type=Path, required=True, help="torchvision's mobilenet_v2-b0353104.pth")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def load(path: Path) -> dict:
    """{"classes": [...], "root": folder, "train": [case], "val": [case]}; a case has "image" (a path under
    root) and "label", "boxes" + "labels" (+ "rles"), or "mask" (a PNG of class indices, 255 = ignore)."""
    return json.loads(path.read_text())


def mobilenet_v2(weights: Path) -> torch.nn.Module:
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


def report(epoch: int, metric: float) -> None:
    print(json.dumps({"epoch": epoch, "t": round(time.monotonic() - START, 2), "metric": metric}), flush=True)
