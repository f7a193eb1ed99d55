"""Measure training throughput tables for the recommendation service (a tool beside the trainer: it imports torch).

    python -m tools.measure_throughput [--device cpu|cuda] [--out services/recommend/throughput/cpu.json]

For a representative subset of zoo networks at a few square resolutions it times real training
steps (forward, cross-entropy loss, backward, AdamW step) and inference batches on random input,
and writes a JSON table the service reads at start (the service never imports torch):

    {"schema": "trainyard.recommend.throughput/v1", "device_class": "cpu", "host": {...},
     "entries": [{"library": "torchvision", "architecture": "resnet18", "resolution": 160,
                  "batch_size": 16, "gmacs": 0.93, "train_images_per_second": 41.2,
                  "eval_images_per_second": 130.5, "steps_timed": 3}, ...]}

`gmacs` is the measured forward cost of one image in billions of multiply-adds (the unit torchvision
and timm publish as "GFLOPs", so it compares with the zoo's gflops field). The service reads
measured values directly and interpolates other networks by their GFLOPs from the measured
throughput x GFLOPs ratio. Keep a run short: each configuration is timed for about --seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

SCHEMA = "trainyard.recommend.throughput/v1"
DEFAULT_OUT_DIR = (
    Path(__file__).resolve().parents[1] / "services" / "recommend" / "throughput"
)  # read by its throughput.py

# (library, architecture): small to large, convolutional and transformer-free so every one accepts any resolution.
MODELS = [
    ("torchvision", "mobilenet_v3_small"),
    ("torchvision", "mobilenet_v2"),
    ("torchvision", "efficientnet_b0"),
    ("torchvision", "resnet18"),
    ("timm", "convnext_atto"),
    ("torchvision", "resnet50"),
]
# Measured resolution-major in this order, so a run cut short by --max-seconds still covers every network.
RESOLUTIONS = (160, 96, 224)
# Detectors and segmenters as the trainer builds them (heads on an ImageNet backbone), with their task
# type, timed on their own loss at 4:3 inputs (shorter side = the resolution), as street and indoor
# photos mostly are; the service estimates other shapes by their pixel count.
DENSE_MODELS = [
    ("combo", "fasterrcnn+mobilenet_v2", "detection"),
    ("combo", "fcos+mobilenet_v2", "detection"),
    ("combo", "retinanet+mobilenet_v2", "detection"),
    ("combo", "ssdlite+mobilenet_v2", "detection"),
    ("combo", "maskrcnn+mobilenet_v2", "instance_segmentation"),
    ("combo", "lraspp+mobilenet_v2", "segmentation"),
    ("combo", "deeplabv3+mobilenet_v2", "segmentation"),
    ("combo", "fcn+mobilenet_v2", "segmentation"),
    ("combo", "fpn+mobilenet_v2", "segmentation"),
    ("combo", "unet+mobilenet_v2", "segmentation"),
]
DENSE_RESOLUTIONS = (288, 416)
DENSE_ASPECT = 4 / 3


def build(library: str, architecture: str, num_classes: int = 10):
    if library == "torchvision":
        import torchvision

        return torchvision.models.get_model(architecture, weights=None, num_classes=num_classes)
    import timm

    return timm.create_model(architecture, pretrained=False, num_classes=num_classes)


def forward_gmacs(model, resolution: int, device) -> float:
    """Forward multiply-adds of one image, in billions (FlopCounterMode counts 2 FLOPs per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, resolution, resolution, device=device))
    return counter.get_total_flops() / 2e9


def time_config(
    library: str, architecture: str, resolution: int, batch: int, seconds: float, device, clock, scale: float
) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    from trainer.tasks import amp_dtype

    model = build(library, architecture).to(device)
    gmacs = forward_gmacs(model, resolution, device)
    images = torch.randn(batch, 3, resolution, resolution, device=device)
    # as the trainer runs classifiers: channels_last (CPU and GPU), mixed precision on a GPU
    model = model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
    targets = torch.randint(0, 10, (batch,), device=device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = amp_dtype(device)
    use_amp = dtype is not None

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=use_amp):
            loss = criterion(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    train_step()  # warm-up: allocator, kernels, optimizer state
    sync()
    train_times = _timed(train_step, sync, min_runs=3, seconds=seconds, clock=clock)

    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=use_amp):
        model(images)
        sync()
        eval_times = _timed(lambda: model(images), sync, min_runs=3, seconds=seconds / 3, clock=clock)
    return {
        "library": library,
        "architecture": architecture,
        "resolution": resolution,
        "batch_size": batch,
        "gmacs": round(gmacs, 4),
        # Best step: other processes on a shared machine only ever slow a step down.
        "train_images_per_second": round(scale * batch / min(train_times), 3),
        "train_images_per_second_mean": round(scale * batch * len(train_times) / sum(train_times), 3),
        "eval_images_per_second": round(scale * batch / min(eval_times), 3),
        "steps_timed": len(train_times),
    }


def time_dense(
    library: str, architecture: str, task: str, resolution: int, batch: int, seconds: float, device, clock, scale: float
) -> dict:
    """A detector's or segmenter's training step on its own loss (random 4:3 images, two boxes or a random
    mask each) and its inference, as time_config does for classifiers."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from trainer.architectures import DETECTION_TASKS, build_network

    torch.manual_seed(0)
    classes = 3
    model = build_network(library, architecture, task, classes, input_size=resolution).to(device)
    height, width = resolution, int(round(resolution * DENSE_ASPECT / 32) * 32)
    detector = task in DETECTION_TASKS
    if detector:
        images = [torch.rand(3, height, width, device=device) for _ in range(batch)]
        box = torch.tensor([[0.1 * width, 0.1 * height, 0.5 * width, 0.8 * height]], device=device)
        targets = []
        for _ in range(batch):
            target = {"boxes": torch.cat([box, box + 0.3 * height]), "labels": torch.tensor([1, 2], device=device)}
            if task == "instance_segmentation":
                masks = torch.zeros(2, height, width, dtype=torch.uint8, device=device)
                for m, (x0, y0, x1, y1) in zip(masks, target["boxes"].int().tolist(), strict=True):
                    m[y0:y1, x0:x1] = 1
                target["masks"] = masks
            targets.append(target)
        run = lambda: model(images)  # noqa: E731

        def loss_of() -> torch.Tensor:
            return sum(model(images, targets).values())
    else:
        images = torch.randn(batch, 3, height, width, device=device)
        masks = torch.randint(0, classes, (batch, height, width), device=device)
        criterion = nn.CrossEntropyLoss()
        run = lambda: model(images)  # noqa: E731

        def loss_of() -> torch.Tensor:
            out = model(images)
            return criterion(out["out"] if isinstance(out, dict) else out, masks)

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images[:1])
    gmacs = counter.get_total_flops() / 2e9
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        loss = loss_of()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    train_step()
    sync()
    train_times = _timed(train_step, sync, min_runs=2, seconds=seconds, clock=clock)
    model.eval()
    with torch.inference_mode():
        run()
        sync()
        eval_times = _timed(run, sync, min_runs=2, seconds=seconds / 3, clock=clock)
    return {
        "library": library,
        "architecture": architecture,
        "task": task,
        # the square of the same pixel count: the service compares shapes by their pixels
        "resolution": int(round((height * width) ** 0.5)),
        "height": height,
        "width": width,
        "batch_size": batch,
        "gmacs": round(gmacs, 4),
        "train_images_per_second": round(scale * batch / min(train_times), 3),
        "train_images_per_second_mean": round(scale * batch * len(train_times) / sum(train_times), 3),
        "eval_images_per_second": round(scale * batch / min(eval_times), 3),
        "steps_timed": len(train_times),
    }


def _timed(step, sync, *, min_runs: int, seconds: float, clock) -> list[float]:
    """Seconds (on `clock`) of each run of step, at least min_runs and about `seconds` in all."""
    times: list[float] = []
    while len(times) < min_runs or sum(times) < seconds:
        started = clock()
        step()
        sync()
        times.append(clock() - started)
    return times


def host_info(device) -> dict:
    import torch

    info = {
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, help="table file (default services/recommend/throughput/<class>.json)")
    parser.add_argument("--seconds", type=float, default=1.5, help="timed seconds per training configuration")
    parser.add_argument("--batch-size", type=int, default=0, help="0: 8 on CPU, 64 on GPU")
    parser.add_argument(
        "--clock",
        default="cpu",
        choices=("cpu", "wall"),
        help="cpu (default on CPU): time steps by this process's CPU time on ONE thread and scale by the cores "
        "(robust on a shared machine); wall: wall time with torch's default threads (use on a quiet machine or GPU)",
    )
    parser.add_argument("--max-seconds", type=float, default=170.0, help="stop starting configurations after this")
    parser.add_argument("--resolutions", default=",".join(map(str, RESOLUTIONS)))
    parser.add_argument("--dense-resolutions", default=",".join(map(str, DENSE_RESOLUTIONS)))
    parser.add_argument("--only", default="", help="comma-separated architectures to measure (default: all)")
    parser.add_argument("--merge", action="store_true", help="keep the table's other entries, replace these")
    args = parser.parse_args(argv)

    import torch

    device = torch.device(args.device)
    device_class = "gpu" if device.type == "cuda" else "cpu"
    cores = torch.get_num_threads()  # what a trainer on this machine uses
    host = host_info(device)
    if device_class == "gpu" or args.clock == "wall":
        clock, scale = time.perf_counter, 1.0
    else:
        torch.set_num_threads(1)
        clock, scale = time.process_time, float(cores)
    batch = args.batch_size or (64 if device_class == "gpu" else 8)
    resolutions = [int(r) for r in args.resolutions.split(",") if r]
    out = args.out or DEFAULT_OUT_DIR / f"{device_class}.json"
    only = {a for a in args.only.split(",") if a}
    entries, skipped, started = [], [], time.monotonic()
    plan = [(lib, arch, None, r) for r in resolutions for lib, arch in MODELS]
    plan += [
        (lib, arch, task, r)
        for r in (int(v) for v in args.dense_resolutions.split(",") if v)
        for lib, arch, task in DENSE_MODELS
    ]
    for library, architecture, task, resolution in plan:
        if only and architecture not in only:
            continue
        if time.monotonic() - started > args.max_seconds:
            skipped.append(f"{library}/{architecture}@{resolution}")
            continue
        if task is None:
            entry = time_config(library, architecture, resolution, batch, args.seconds, device, clock, scale)
        else:
            dense_batch = max(2, batch // 2)
            entry = time_dense(library, architecture, task, resolution, dense_batch, args.seconds, device, clock, scale)
        entries.append(entry)
        print(
            f"{library}/{architecture} @{entry['resolution']}px: {entry['gmacs']:.3f} GMACs, "
            f"train {entry['train_images_per_second']:.1f} img/s, eval {entry['eval_images_per_second']:.1f} img/s",
            file=sys.stderr,
        )
    if args.merge and out.exists():
        measured = {(e["library"], e["architecture"], e["resolution"]) for e in entries}
        old = json.loads(out.read_text()).get("entries", [])
        entries += [e for e in old if (e["library"], e["architecture"], e["resolution"]) not in measured]
    host["load_average_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    table = {
        "schema": SCHEMA,
        "device_class": device_class,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "measure_seconds": round(time.monotonic() - started, 1),
        "method": "random input, cross-entropy, AdamW step, channels_last (classifiers; detectors and segmenters: "
        "their own losses, an SGD step, 4:3 inputs with `resolution` the side of a square of the same pixels); on "
        "CUDA the trainer's mixed precision (bfloat16 where supported); one warm-up step, then "
        "images/s of the fastest timed step (and the mean over all timed steps)"
        + (
            f"; timed by process CPU time on one thread and multiplied by the {cores} cores a trainer uses "
            "(assumes linear scaling; immune to other processes on a shared machine)"
            if scale != 1.0
            else "; wall-clock time"
        ),
        "clock": "cpu_time_x_cores" if scale != 1.0 else "wall",
        "host": host,
        "skipped_for_time": skipped,
        "entries": sorted(entries, key=lambda e: (e["gmacs"] / e["resolution"] ** 2, e["resolution"])),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {out} ({len(entries)} entries in {table['measure_seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
