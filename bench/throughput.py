"""1. Trainer throughput: the platform's engine against a bare PyTorch loop.

Same model, batch, resolution and in-memory data on both sides; a few warm-up steps, then a
few timed steps; rounds alternate between the two sides and the best round of each counts
(on a 2-core machine the noise between rounds is larger than the difference we look for).
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bench.report import Result
from trainer import engine
from trainer.models import BuiltModel, build_model
from trainer.tasks import amp_dtype, grad_scaler

TARGET = 0.95


def _loader(images: torch.Tensor, targets, batch: int) -> DataLoader:
    return DataLoader(TensorDataset(images, targets), batch_size=batch, shuffle=False, num_workers=0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_classification_step_loop(model, loader, device, amp: bool) -> int:
    """What a user would write by hand: forward, loss, backward, step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = nn.CrossEntropyLoss()
    # the same precision as the engine (bfloat16, or float16 with loss scaling), so only the loops differ
    scaler = grad_scaler(device) if amp else None
    dtype = amp_dtype(device) or torch.float16
    model.train()
    n = 0
    for images, targets in loader:
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = criterion(model(images), targets)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        n += images.shape[0]
    _sync(device)
    return n


def platform_loop(built, loader, device, task: str = "classification", num_classes: int = 10) -> int:
    """The trainer's own path: engine optimizer/scheduler, the task adapter's loss, train_one_epoch
    with a per-step hook like fit's."""
    from trainer.tasks import make_adapter
    from trainyard.common.v1 import common_pb2 as C

    cfg = engine.FitConfig(
        epochs=1,
        num_classes=num_classes,
        learning_rate=1e-4,
        backbone_lr_multiplier=1.0,
        weight_decay=1e-4,
        optimizer=C.OPTIMIZER_ADAMW,
        strategy=C.TRANSFER_STRATEGY_FINE_TUNE_ALL,
        seed=42,
        schedule=C.LR_SCHEDULE_COSINE,
        step_gamma=0.1,
    )
    optimizer = engine.make_optimizer(built, cfg)
    scheduler = engine.make_scheduler(optimizer, len(loader), cfg)
    scaler = grad_scaler(device)
    adapter = make_adapter(task, num_classes, [str(i) for i in range(num_classes)])
    seen = [0]
    last = [time.monotonic()]

    def on_step(step: int, steps: int, n: int) -> None:  # what fit's hook does per step (stop check, progress)
        seen[0] += n
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now

    engine.train_one_epoch(built.model, adapter, optimizer, scheduler, loader, device, scaler, on_step)
    _sync(device)
    return seen[0]


def _timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def classification(
    arch: str, batch: int, size: int, warmup: int, steps: int, rounds: int, device: torch.device
) -> Result:
    torch.manual_seed(0)
    built = build_model("torchvision", arch, 10, None)
    model = built.model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    images = torch.randn(batch * max(warmup, steps), 3, size, size)
    targets = torch.randint(0, 10, (images.shape[0],))
    warm_loader = _loader(images[: batch * warmup], targets[: batch * warmup], batch)
    loader = _loader(images[: batch * steps], targets[: batch * steps], batch)
    amp = device.type == "cuda"
    bare_classification_step_loop(model, warm_loader, device, amp)
    platform_loop(built, warm_loader, device)
    best_bare = best_plat = 0.0
    for _ in range(rounds):
        s, n = _timed(lambda: bare_classification_step_loop(model, loader, device, amp))
        best_bare = max(best_bare, n / s)
        s, n = _timed(lambda: platform_loop(built, loader, device))
        best_plat = max(best_plat, n / s)
    return Result(
        "1. trainer throughput",
        f"{arch} @{size}, batch {batch} ({device.type})",
        best_plat,
        "img/s",
        baseline=best_bare,
        baseline_name="bare PyTorch loop",
        kind="ratio",
        target=TARGET,
        extra={"warmup_steps": warmup, "timed_steps": steps, "rounds": rounds},
    )


# ---------------------------------------------------------------- detection / segmentation


def _detection_data(count: int, size: int, num_classes: int):
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, size, size, generator=g) for _ in range(count)]
    targets = []
    for _ in range(count):
        xy = torch.rand(2, 2, generator=g) * size * 0.5
        wh = torch.rand(2, 2, generator=g) * size * 0.4 + 8
        boxes = torch.cat([xy, xy + wh], dim=1).clamp(max=size - 1)
        targets.append({"boxes": boxes, "labels": torch.randint(1, num_classes, (2,), generator=g)})
    return images, targets


def bare_detection_loop(model, batches, device, amp: bool) -> int:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    dtype = amp_dtype(device) or torch.float16
    model.train()
    n = 0
    for images, targets in batches:
        images = [i.to(device) for i in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = sum(model(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(images)
    _sync(device)
    return n


def bare_segmentation_loop(model, batches, device, amp: bool) -> int:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    dtype = amp_dtype(device) or torch.float16
    model.train()
    n = 0
    for images, masks in batches:
        images, masks = images.to(device), masks.to(device)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = criterion(model(images)["out"], masks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += images.shape[0]
    _sync(device)
    return n


def dense(kind: str, batch: int, warmup: int, steps: int, rounds: int, device: torch.device) -> list[Result]:
    """A small detector (Faster R-CNN MobileNetV3-320 FPN) or segmenter (LR-ASPP MobileNetV3)."""
    import torchvision

    torch.manual_seed(0)
    amp = device.type == "cuda"
    if kind == "detection":
        size, arch = 320, "fasterrcnn_mobilenet_v3_large_320_fpn"
        model = torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=3).to(device)
        images, targets = _detection_data(batch * max(warmup, steps), size, 3)
        mk = lambda k: [(images[i : i + batch], targets[i : i + batch]) for i in range(0, k * batch, batch)]  # noqa: E731
        bare = bare_detection_loop
        head = model.roi_heads.box_predictor
    else:
        size, arch = 224, "lraspp_mobilenet_v3_large"
        model = torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=3).to(device)
        n = batch * max(warmup, steps)
        imgs = torch.randn(n, 3, size, size)
        masks = torch.randint(0, 3, (n, size, size))
        mk = lambda k: [(imgs[i : i + batch], masks[i : i + batch]) for i in range(0, k * batch, batch)]  # noqa: E731
        bare = bare_segmentation_loop
        head = model.classifier
    built = BuiltModel(model, head)
    bare(model, mk(warmup), device, amp)
    platform_loop(built, mk(warmup), device, kind, 3)
    best_bare = best_plat = 0.0
    for _ in range(rounds):
        s, n = _timed(lambda: bare(model, mk(steps), device, amp))
        best_bare = max(best_bare, n / s)
        s, n = _timed(lambda: platform_loop(built, mk(steps), device, kind, 3))
        best_plat = max(best_plat, n / s)
    return [
        Result(
            "1. trainer throughput",
            f"{arch} @{size}, batch {batch} ({device.type})",
            best_plat,
            "img/s",
            baseline=best_bare,
            baseline_name="bare PyTorch loop",
            kind="ratio",
            target=TARGET,
            extra={"warmup_steps": warmup, "timed_steps": steps, "rounds": rounds},
        )
    ]


def run(mode: str, device: torch.device) -> list[Result]:
    """mode: "tiny" (smoke test), "quick" or "full"."""
    gpu = device.type == "cuda"
    size = {"tiny": 32, "quick": 112, "full": 224}[mode] if not gpu else 224
    rounds = {"tiny": 1, "quick": 2, "full": 3}[mode]
    warmup, steps = {"tiny": (1, 1), "quick": (1, 3), "full": (3, 8)}[mode]
    batch = (4 if mode == "tiny" else 8) if not gpu else 64
    out = [
        classification("mobilenet_v2", batch, size, warmup, steps, rounds, device),
        classification("resnet18", batch, size, warmup, steps, rounds, device),
    ]
    if mode != "tiny":
        dense_batch = (1 if mode == "quick" else 2) if not gpu else 16
        for kind in ("detection", "segmentation"):
            out += dense(kind, dense_batch, warmup, steps if gpu or mode == "full" else 2, rounds, device)
    return out
