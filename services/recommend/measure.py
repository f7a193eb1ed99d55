"""Measure training throughput tables for the recommendation service (imports torch; a separate tool).

    python -m services.recommend.measure [--device cpu|cuda] [--out services/recommend/throughput/cpu.json]

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
DEFAULT_OUT_DIR = Path(__file__).parent / "throughput"

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
    if device.type == "cuda":  # as the trainer runs: channels_last, its mixed precision
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
    entries, skipped, started = [], [], time.monotonic()
    for resolution in resolutions:
        for library, architecture in MODELS:
            if time.monotonic() - started > args.max_seconds:
                skipped.append(f"{library}/{architecture}@{resolution}")
                continue
            entry = time_config(library, architecture, resolution, batch, args.seconds, device, clock, scale)
            entries.append(entry)
            print(
                f"{library}/{architecture} @{resolution}px: {entry['gmacs']:.3f} GMACs, "
                f"train {entry['train_images_per_second']:.1f} img/s, eval {entry['eval_images_per_second']:.1f} img/s",
                file=sys.stderr,
            )
    host["load_average_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    table = {
        "schema": SCHEMA,
        "device_class": device_class,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "measure_seconds": round(time.monotonic() - started, 1),
        "method": "random input, cross-entropy, AdamW step; on CUDA the trainer's mixed precision (bfloat16 where supported) "
        "and channels_last; one warm-up step, then "
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
