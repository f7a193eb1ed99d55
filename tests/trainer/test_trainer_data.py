"""The trainer's data path against a real S3 (SeaweedFS): images stream into the sha256 cache
ahead of the sampler, bounded, verified, and a corrupt image still fails the job."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader, RandomSampler

from kernel import objectstore
from trainer import data
from trainer.errors import PermanentJobError
from trainer.storage import S3Store

BUCKET = objectstore.DATASETS_BUCKET


@pytest.fixture
def s3(settings):
    client = objectstore.make_client(settings)
    objectstore.ensure_buckets(client)
    return client


def upload(s3, n: int, prefix: str, corrupt: int | None = None) -> list[dict]:
    cases = []
    for i in range(n):
        buf = io.BytesIO()
        pixels = np.random.default_rng(i).integers(0, 255, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buf, "PNG")
        blob = buf.getvalue()
        sha = hashlib.sha256(blob).hexdigest()
        key = f"{prefix}/{sha}"
        body = blob[:-8] + b"garbage!" if i == corrupt else blob
        s3.put_object(BUCKET, key, io.BytesIO(body), len(body))
        cases.append({"id": f"c{i}", "image_key": key, "sha256": sha, "label": i % 2, "split": "train"})
    return cases


def cached(cache: data.LocalCache) -> int:
    return sum(1 for p in cache.root.glob("*/*") if p.is_file() and not p.name.endswith(".download"))


def loader(prefetch: data.Prefetcher, cases: list[dict], batch: int) -> DataLoader:
    items = prefetch.items(cases)
    dataset = data.ClassificationDataset(items, data.build_transforms(16, [0.5] * 3, [0.5] * 3, train=False))
    return DataLoader(dataset, batch_size=batch, sampler=prefetch.sampler(RandomSampler(dataset), items))


def test_images_stream_ahead_of_the_sampler_within_the_bound(s3, tmp_path):
    cases = upload(s3, 48, "stream")
    cache = data.LocalCache(tmp_path / "cache", 1 << 30)
    prefetch = data.Prefetcher(cache, S3Store(s3), BUCKET, threads=2, ahead=4)
    batches = iter(loader(prefetch, cases, batch=4))
    images, labels = next(batches)
    # The first batch came before the dataset was downloaded: at most the batch plus `ahead`.
    assert images.shape == (4, 3, 16, 16) and cached(cache) <= 4 + 4
    seen = 4 + sum(len(labels) for _, labels in batches)
    assert seen == 48 and cached(cache) == 48
    # Every cached file is the verified object under its sha256.
    for case in cases:
        assert hashlib.sha256(cache.path(case["sha256"]).read_bytes()).hexdigest() == case["sha256"]
    # The next epoch reads the cache: no download threads start.
    prefetch2 = data.Prefetcher(cache, S3Store(s3), BUCKET)
    assert sum(len(labels) for _, labels in loader(prefetch2, cases, batch=8)) == 48
    assert not prefetch2._workers
    prefetch.close()


def test_a_corrupt_image_fails_with_its_case_named(s3, tmp_path):
    cases = upload(s3, 12, "corrupt", corrupt=5)
    cache = data.LocalCache(tmp_path / "cache", 1 << 30)
    prefetch = data.Prefetcher(cache, S3Store(s3), BUCKET, threads=2)
    with pytest.raises(PermanentJobError, match=r"image of case c5 .* is corrupt: sha256"):
        for _ in loader(prefetch, cases, batch=3):
            pass
    assert not cache.path(cases[5]["sha256"]).exists()
    prefetch.close()
