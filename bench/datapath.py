"""2. Data path: an epoch of the trainer's data pipeline fed from the object store (cold cache:
download + verify + decode; warm cache: the local sha256 cache) against the same image bytes on
local disk read by a plain torchvision ImageFolder DataLoader. Same transform, batch and workers;
no model, so the data path alone is timed."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from bench.report import Result
from trainer import data
from trainer.storage import S3Store


def _epoch(loader: DataLoader) -> int:
    n = 0
    for images, _ in loader:
        n += images.shape[0]
    return n


def run(s3_client, manifest_ref, image_size: int = 64, batch: int = 32, workers: int = 0) -> list[Result]:
    from torchvision.datasets import ImageFolder

    store = S3Store(s3_client)
    manifest = data.load_manifest(store, manifest_ref.bucket, manifest_ref.key, manifest_ref.sha256)
    classes = manifest["classes"]
    cases = [c for c in manifest["cases"] if c.get("split") in ("train", "val")]
    bucket = manifest.get("images_bucket") or manifest_ref.bucket
    transform = data.build_transforms(image_size, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], train=True)
    out: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-datapath-") as tmp:
        root = Path(tmp)
        # Baseline: the same bytes as an ImageFolder on local disk.
        folder = root / "imagefolder"
        for c in cases:
            d = folder / classes[c["label"]]
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{c['id']}.{Path(c['source_path']).suffix.lstrip('.') or 'img'}").write_bytes(
                store.get_bytes(bucket, c["image_key"])
            )
        base_loader = DataLoader(
            ImageFolder(str(folder), transform=transform), batch_size=batch, shuffle=True, num_workers=workers
        )
        _epoch(base_loader)  # page cache and decoder warm, as a local-disk run would be
        t0 = time.perf_counter()
        n_base = _epoch(base_loader)
        base = n_base / (time.perf_counter() - t0)

        cache = data.LocalCache(root / "cache", 10 * 1024**3)

        def platform_epoch() -> tuple[float, int]:
            t0 = time.perf_counter()
            items = data.fetch_images(cache, store, bucket, cases)
            loader = DataLoader(
                data.ClassificationDataset(items, transform), batch_size=batch, shuffle=True, num_workers=workers
            )
            n = _epoch(loader)
            return n / (time.perf_counter() - t0), n

        cold, n = platform_epoch()
        warm = max(platform_epoch()[0], platform_epoch()[0])
    label = f"{n} images -> {image_size}px, batch {batch}, {workers} workers"
    out.append(
        Result(
            "2. data path",
            f"cold cache (object store), {label}",
            cold,
            "img/s",
            baseline=base,
            baseline_name="ImageFolder, local disk",
            kind="ratio",
            target=0.8,
        )
    )
    out.append(
        Result(
            "2. data path",
            f"warm cache, {label}",
            warm,
            "img/s",
            baseline=base,
            baseline_name="ImageFolder, local disk",
            kind="ratio",
            target=0.95,
        )
    )
    return out
