"""7. Memory, trainer side: peak RSS of a trainer process training one epoch on an imported
dataset (trainer.job.run_job: manifest, streamed sha256 cache, the real DataLoader) against a
bare PyTorch process training the same model on the same image files in an ImageFolder.

Each side runs in its own fresh process (python -m bench.trainer_rss platform|baseline ...), so
VmHWM is that side's peak alone. Besides the peaks, each reports its growth during training (peak
minus RSS once the model is built): a trainer that held the dataset in RAM would grow by at least
the dataset's size more than the bare loop does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.report import Result

ARCH = "shufflenet_v2_x0_5"
IMAGE_SIZE, BATCH = 32, 128


def _rss_mib() -> tuple[float, float]:
    """(current RSS, VmHWM) of this process in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out["VmRSS"], out["VmHWM"]


def _platform(args: dict) -> dict:
    import torch

    from kernel import contract, objectstore
    from kernel.settings import Settings
    from services.training import hyperparams
    from trainer import data
    from trainer.job import run_job
    from trainer.storage import S3Store
    from trainyard.common.v1 import common_pb2 as C
    from trainyard.events.v1 import events_pb2

    settings = Settings(**args["settings"])
    store = S3Store(objectstore.make_client(settings))
    ref = C.ObjectRef(**args["manifest"])
    job = events_pb2.TrainingJob(
        task_id=f"ttrss{uuid.uuid4().hex[:10]}",
        project="default",
        task_type=C.TASK_TYPE_CLASSIFICATION,
        model=events_pb2.ModelSpec(model_id=f"tv/{ARCH}", library="torchvision", architecture=ARCH),
        dataset=events_pb2.DatasetSpec(
            dataset_id="bench", version_id="bench", manifest=ref, class_names=args["classes"]
        ),
        hyperparameters=C.Hyperparameters(
            epochs=1,
            batch_size=BATCH,
            learning_rate=1e-3,
            backbone_lr_multiplier=1.0,
            weight_decay=1e-4,
            image_size=IMAGE_SIZE,
            optimizer=C.OPTIMIZER_ADAMW,
            seed=1,
        ),
        transfer_strategy=C.TRANSFER_STRATEGY_FROM_SCRATCH,
        output_bucket=objectstore.ARTIFACTS_BUCKET,
        output_prefix=f"bench-rss/{uuid.uuid4().hex[:8]}/",
    )
    job.hyperparameters.CopyFrom(hyperparams.resolve(job.hyperparameters, recipe=C.Hyperparameters()))
    job.model.mean.extend(contract.IMAGENET_MEAN)
    job.model.std.extend(contract.IMAGENET_STD)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cache = data.LocalCache(Path(args["cache"]), 10 * 1024**3)
    samples: list[tuple[int, int, float]] = []  # (step, steps, RSS) at every training step

    class Reporter:
        def progress(self, epoch, epochs, step, total_steps, rate, eta) -> None:
            samples.append((step, total_steps, _rss_mib()[0]))

        def epoch_metrics(self, epoch, values) -> None:
            pass

        def log(self, text) -> None:
            pass

    start, _ = _rss_mib()
    t0 = time.perf_counter()
    run_job(
        job,
        store=store,
        cache=cache,
        device=torch.device("cpu"),
        reporter=Reporter(),
        progress_interval_s=0.0,
        export=False,
    )
    return {"start_mib": start, "peak_mib": _rss_mib()[1], "seconds": time.perf_counter() - t0, **_growth(samples)}


def _growth(samples: list[tuple[int, int, float]]) -> dict:
    """RSS at a tenth of the epoch's steps and at its last step: flat when nothing accumulates."""
    if not samples:
        return {"tenth_mib": 0.0, "end_mib": 0.0}
    total = samples[-1][1]
    tenth = next(rss for step, _, rss in samples if step >= max(1, total // 10))
    return {"tenth_mib": tenth, "end_mib": samples[-1][2]}


def _baseline(args: dict) -> dict:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision import models
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(IMAGE_SIZE, scale=(0.6, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    dataset = ImageFolder(args["folder"], transform=transform)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True)
    model = getattr(models, ARCH)(num_classes=len(dataset.classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    start, _ = _rss_mib()
    t0 = time.perf_counter()
    model.train()
    samples = []
    for step, (images, labels) in enumerate(loader, 1):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()
        samples.append((step, len(loader), _rss_mib()[0]))
    return {"start_mib": start, "peak_mib": _rss_mib()[1], "seconds": time.perf_counter() - t0, **_growth(samples)}


def _child(side: str, args: dict, timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.trainer_rss", side, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode != 0:
        raise RuntimeError(f"trainer RSS {side} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(settings, manifest_ref, timeout: float = 1800) -> list[Result]:
    from kernel import objectstore
    from trainer import data
    from trainer.storage import S3Store

    store = S3Store(objectstore.make_client(settings))
    manifest = data.load_manifest(store, manifest_ref.bucket, manifest_ref.key, manifest_ref.sha256)
    classes = manifest["classes"]
    bucket = manifest.get("images_bucket") or manifest_ref.bucket
    cases = [c for c in manifest["cases"] if c.get("split") in ("train", "val")]
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        folder = Path(tmp) / "imagefolder"
        size = 0
        for c in manifest["cases"]:
            if c.get("split") != "train":
                continue
            d = folder / classes[c["label"]]
            d.mkdir(parents=True, exist_ok=True)
            blob = store.get_bytes(bucket, c["image_key"])
            size += len(blob)
            (d / f"{c['id']}{Path(c.get('source_path') or 'x.jpg').suffix or '.jpg'}").write_bytes(blob)
        common = {"classes": classes}
        s = settings
        platform = _child(
            "platform",
            {
                **common,
                "settings": {
                    "s3_endpoint": s.s3_endpoint,
                    "s3_access_key": s.s3_access_key,
                    "s3_secret_key": s.s3_secret_key,
                    "s3_secure": s.s3_secure,
                },
                "manifest": {"bucket": manifest_ref.bucket, "key": manifest_ref.key, "sha256": manifest_ref.sha256},
                "cache": str(Path(tmp) / "cache"),
            },
            timeout,
        )
        baseline = _child("baseline", {**common, "folder": str(folder)}, timeout)
    dataset_mib = size / 1024**2
    decoded_mib = len(cases) * 3 * IMAGE_SIZE * IMAGE_SIZE * 4 / 1024**2
    grow_p = platform["end_mib"] - platform["tenth_mib"]
    grow_b = baseline["end_mib"] - baseline["tenth_mib"]
    allowance = round(max(4.0, decoded_mib / 4), 1)
    what = f"{len(cases)} images ({dataset_mib:.1f} MiB), {ARCH} @{IMAGE_SIZE}, batch {BATCH}, 1 epoch"
    return [
        Result(
            "7. memory",
            f"trainer peak RSS, {what}",
            platform["peak_mib"],
            "MiB",
            baseline=baseline["peak_mib"],
            baseline_name="bare DataLoader + loop, own process",
            note=f"{platform['seconds']:.0f} s vs {baseline['seconds']:.0f} s bare (the trainer also validates, "
            "checkpoints and uploads artifacts)",
        ),
        Result(
            "7. memory",
            f"trainer RSS growth over the epoch (a tenth of the steps -> the last), {what}",
            grow_p,
            "MiB",
            baseline=grow_b,
            baseline_name="bare loop's growth",
            kind="delta",
            target=allowance,
            extra={"dataset_mib": dataset_mib, "decoded_tensors_mib": decoded_mib, "platform": platform},
            note=f"flat when nothing accumulates; holding the dataset would add up to {dataset_mib:.1f} MiB (bytes) "
            f"or {decoded_mib:.0f} MiB (decoded tensors); allowed: a quarter of that ({allowance:g} MiB) over the "
            "bare loop",
        ),
    ]


if __name__ == "__main__":
    side, raw = sys.argv[1], json.loads(sys.argv[2])
    result = _platform(raw) if side == "platform" else _baseline(raw)
    print(json.dumps(result))
