"""2. Data path: an epoch of the trainer's data pipeline fed from the object store (cold cache:
download + verify + decode, streamed ahead of the sampler; warm cache: the local sha256 cache)
against the same image bytes on local disk read by a plain torchvision ImageFolder DataLoader.
Same transform, batch and workers; no model, so the data path alone is timed.

Two image sets: the imported dataset (tiny 32x32 JPEGs, ~1 KB: the worst case, where a GET costs
more than a decode) and photo-size JPEGs (400x300, the size of a typical ImageNet photo)."""

from __future__ import annotations

import hashlib
import io
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from torch.utils.data import DataLoader, RandomSampler

from bench.report import Result
from trainer import data
from trainer.storage import S3Store

ROUNDS = 2  # interleaved rounds; the best of each side counts


def _epoch(loader: DataLoader) -> int:
    n = 0
    for images, _ in loader:
        n += images.shape[0]
    return n


def run(s3_client, manifest_ref, photos: int = 0, image_size: int = 64, batch: int = 32, workers: int = 0):
    store = S3Store(s3_client)
    manifest = data.load_manifest(store, manifest_ref.bucket, manifest_ref.key, manifest_ref.sha256)
    cases = [c for c in manifest["cases"] if c.get("split") in ("train", "val")]
    bucket = manifest.get("images_bucket") or manifest_ref.bucket
    out = run_cases(store, bucket, cases, manifest["classes"], "32x32 JPEG", image_size, batch, workers)
    if photos:
        bucket, cases, classes = upload_photos(s3_client, photos)
        out += run_cases(store, bucket, cases, classes, "400x300 JPEG", 224, batch, workers)
    return out


def upload_photos(s3_client, n: int, size: tuple[int, int] = (400, 300)) -> tuple[str, list[dict], list[str]]:
    """n smooth random photo-size JPEGs (~20 KB) under their sha256, as the importer stores images."""
    import numpy as np
    from PIL import Image, ImageFilter

    bucket, classes = "bench-photos", ["a", "b", "c", "d"]
    if not s3_client.bucket_exists(bucket):
        s3_client.make_bucket(bucket)

    def one(i: int) -> dict:
        pixels = np.random.default_rng(i).integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize(size, Image.BILINEAR).filter(ImageFilter.GaussianBlur(2))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=90)
        blob = buf.getvalue()
        sha = hashlib.sha256(blob).hexdigest()
        key = f"images/{sha[:2]}/{sha}"
        s3_client.put_object(bucket, key, io.BytesIO(blob), len(blob), content_type="image/jpeg")
        return {"id": f"p{i}", "image_key": key, "sha256": sha, "label": i % 4, "source_path": f"p{i}.jpg"}

    with ThreadPoolExecutor(8) as pool:
        cases = list(pool.map(one, range(n)))
    return bucket, cases, classes


def run_cases(
    store, bucket: str, cases: list[dict], classes: list[str], what: str, image_size: int, batch: int, workers: int
) -> list[Result]:
    from torchvision.datasets import ImageFolder

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

        def base_epoch() -> float:
            t0 = time.perf_counter()
            return _epoch(base_loader) / (time.perf_counter() - t0)

        def platform_epoch(cache: data.LocalCache) -> tuple[float, int]:
            # As trainer/job.py does it: items at once, images streamed ahead of the sampler.
            t0 = time.perf_counter()
            prefetch = data.Prefetcher(cache, store, bucket)
            items = prefetch.items(cases)
            dataset = data.ClassificationDataset(items, transform)
            sampler = prefetch.sampler(RandomSampler(dataset), items)
            loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers)
            n = _epoch(loader)
            prefetch.close()
            return n / (time.perf_counter() - t0), n

        # Interleaved rounds, best of each side: the machine may be shared, and load that comes
        # and goes then hits both sides alike.
        base = cold = warm = 0.0
        for round_ in range(ROUNDS):
            base = max(base, base_epoch())
            cache = data.LocalCache(root / f"cache{round_}", 10 * 1024**3)
            got, n = platform_epoch(cache)
            cold = max(cold, got)
            warm = max(warm, platform_epoch(cache)[0])
    label = f"{n} {what} -> {image_size}px, batch {batch}, {workers} workers"
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
