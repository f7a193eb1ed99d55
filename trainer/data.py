"""Dataset adapter: a version manifest's cases as a torch Dataset, images cached by sha256."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from trainer.errors import PermanentJobError, RetryableJobError
from trainer.storage import ObjectMissing, ObjectStore

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "trainyard.dataset.manifest/v1"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class LocalCache:
    """Files by sha256 under a folder, bounded in bytes (least recently used go first).

    Files pinned by the running job are never evicted, so the bound is soft when one job's
    data is larger than it.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def fetch(self, store: ObjectStore, bucket: str, key: str, sha256: str, what: str) -> Path:
        """The local path of an object with the given sha256, downloading and verifying it if needed."""
        path = self.path(sha256)
        if path.exists():
            os.utime(path)  # mark as recently used
            return path
        tmp = path.with_name(f"{sha256}.{threading.get_ident()}.download")
        try:
            store.get_file(bucket, key, tmp)
        except ObjectMissing as exc:  # permanent: the job fails at once, naming the object
            raise PermanentJobError(f"{what} {bucket}/{key} does not exist in the object store") from exc
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            tmp.unlink(missing_ok=True)
            # Retryable: another trainer (or this one, once space is freed) can run the job.
            raise RetryableJobError(
                f"the trainer's cache disk is full: no space left to store {what} under {self.root} "
                f"({exc.strerror}); free space there or point TRAINYARD_TRAINER_CACHE_DIR at a larger disk"
            ) from exc
        actual = sha256_file(tmp)
        if actual != sha256:
            tmp.unlink(missing_ok=True)
            raise PermanentJobError(f"{what} {bucket}/{key} is corrupt: sha256 {actual} != expected {sha256}")
        os.replace(tmp, path)
        return path

    def prune(self, keep: Iterable[str] = ()) -> int:
        """Evict least recently used files until under the bound; returns bytes freed."""
        keep = set(keep)
        with self._lock:
            files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.root.glob("*/*") if p.is_file()]
            total = sum(size for _, size, _ in files)
            freed = 0
            for _, size, path in sorted(files):
                if total - freed <= self.max_bytes:
                    break
                if path.name in keep or path.name.endswith(".download"):
                    continue
                path.unlink(missing_ok=True)
                freed += size
            return freed


@dataclass
class Case:
    path: Path
    label: int


def load_manifest(store: ObjectStore, bucket: str, key: str, expected_sha256: str = "") -> dict:
    import json

    try:
        data = store.get_bytes(bucket, key)
    except Exception as exc:  # noqa: BLE001 - a missing manifest never appears by retrying
        if isinstance(exc, (ObjectMissing, KeyError)) or "NoSuchKey" in str(exc):
            raise PermanentJobError(f"dataset manifest {bucket}/{key} does not exist") from exc
        raise
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise PermanentJobError(f"dataset manifest {bucket}/{key} does not match its sha256")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise PermanentJobError(f"dataset manifest {bucket}/{key} is not valid JSON: {exc}") from exc
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise PermanentJobError(
            f"dataset manifest {bucket}/{key} has schema {manifest.get('schema')!r}, expected {MANIFEST_SCHEMA}"
        )
    return manifest


def classification_cases(manifest: dict, split: str, num_classes: int) -> list[dict]:
    out = []
    for case in manifest.get("cases", []):
        if case.get("split") != split:
            continue
        label = case.get("label")
        if not isinstance(label, int) or not 0 <= label < num_classes:
            raise PermanentJobError(
                f"case {case.get('id')} ({case.get('source_path')}) has label {label!r}, expected 0..{num_classes - 1}"
            )
        out.append(case)
    return out


def fetch_images(
    cache: LocalCache, store: ObjectStore, bucket: str, cases: Sequence[dict], threads: int = 8
) -> list[Case]:
    def one(case: dict) -> Case:
        path = cache.fetch(store, bucket, case["image_key"], case["sha256"], f"image of case {case.get('id')}")
        return Case(path, int(case["label"]))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, cases))


def build_transforms(image_size: int, mean: Sequence[float], std: Sequence[float], train: bool):
    normalize = T.Normalize(mean=list(mean), std=list(std))
    if train:
        return T.Compose(
            [
                T.RandomResizedCrop(image_size, scale=(0.6, 1.0), antialias=True),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                normalize,
            ]
        )
    return T.Compose([T.Resize((image_size, image_size), antialias=True), T.ToTensor(), normalize])


class ClassificationDataset(Dataset):
    """(image tensor, label) pairs from local image files."""

    def __init__(self, cases: Sequence[Case], transform) -> None:
        self.cases = list(cases)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        case = self.cases[index]
        try:
            with Image.open(case.path) as img:
                image = img.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - a broken image is a data error
            raise PermanentJobError(f"image {case.path.name} cannot be decoded: {exc}") from exc
        return self.transform(image), case.label


def task_cases(manifest: dict, split: str, task: str, num_classes: int) -> list[dict]:
    """The split's cases, each checked for the annotations the task type needs (PermanentJobError naming it)."""
    if task == "classification":
        return classification_cases(manifest, split, num_classes)
    out = []
    for case in manifest.get("cases", []):
        if case.get("split") != split:
            continue
        where = f"case {case.get('id')} ({case.get('source_path')})"
        if task == "segmentation":
            if not case.get("mask_key"):
                raise PermanentJobError(f"{where} has no mask_key; semantic segmentation needs a mask per image")
        else:
            for box in case.get("boxes", []) or []:
                cls, bbox = box.get("class"), box.get("bbox")
                if not isinstance(cls, int) or not 0 <= cls < num_classes:
                    raise PermanentJobError(f"{where} has a box of class {cls!r}, expected 0..{num_classes - 1}")
                if not isinstance(bbox, list) or len(bbox) != 4:
                    raise PermanentJobError(f"{where} has a box {bbox!r}, expected [x_min, y_min, x_max, y_max]")
        out.append(case)
    return out


def mask_sha256(case: dict) -> str:
    """Masks are content-addressed like images: masks/<sha256[:2]>/<sha256>."""
    return case.get("mask_sha256") or case["mask_key"].rsplit("/", 1)[-1]


def fetch_items(cache: LocalCache, store: ObjectStore, bucket: str, cases: Sequence[dict], threads: int = 8):
    """tasks.Item per case: the image and (semantic segmentation) the mask, from the local cache."""
    from trainer.tasks import Item

    def one(case: dict) -> Item:
        path = cache.fetch(store, bucket, case["image_key"], case["sha256"], f"image of case {case.get('id')}")
        mask = None
        if case.get("mask_key"):
            mask = cache.fetch(store, bucket, case["mask_key"], mask_sha256(case), f"mask of case {case.get('id')}")
        return Item(path, case, mask)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, cases))
