"""Dataset adapter: a version manifest's cases as a torch Dataset, images cached by sha256.

Images stream: a job's items are known up front but downloaded by a Prefetcher a bounded
distance ahead of the order the DataLoader's sampler hands out, so the first batch starts at once
instead of after the whole dataset is in the cache.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler
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

    def fetch(self, store: ObjectStore, bucket: str, key: str, sha256: str, what: str, small: bool = False) -> Path:
        """The local path of an object with the given sha256, downloading and verifying it if needed.

        small: fetch into memory with one GET and hash it there (images); large files (weights)
        stream to disk and are hashed from it.
        """
        path = self.path(sha256)
        if path.exists():
            os.utime(path)  # mark as recently used
            return path
        tmp = path.with_name(f"{sha256}.{os.getpid()}.{threading.get_ident()}.download")
        try:
            if small:
                # One GET (fget_object would stat first) and no re-read: 2-3x the objects/s for small images.
                content = store.get_bytes(bucket, key)
                actual = hashlib.sha256(content).hexdigest()
                if actual == sha256:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp.write_bytes(content)
            else:
                store.get_file(bucket, key, tmp)
                actual = sha256_file(tmp)
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
        path = cache.fetch(
            store, bucket, case["image_key"], case["sha256"], f"image of case {case.get('id')}", small=True
        )
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
        path = cache.fetch(
            store, bucket, case["image_key"], case["sha256"], f"image of case {case.get('id')}", small=True
        )
        mask = None
        if case.get("mask_key"):
            mask = cache.fetch(
                store, bucket, case["mask_key"], mask_sha256(case), f"mask of case {case.get('id')}", small=True
            )
        return Item(path, case, mask)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, cases))


# -- streaming ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """An object to have in the cache: where it is, its sha256 and what it is (for errors)."""

    key: str
    sha256: str
    what: str


class StreamedItem:
    """tasks.Item's interface (path, case, mask_path, label); the files come from a Prefetcher
    when first read, so the item list exists before any image is downloaded."""

    __slots__ = ("case", "image", "mask", "_source")

    def __init__(self, case: dict, image: Ref, mask: Ref | None, source: Prefetcher) -> None:
        self.case, self.image, self.mask, self._source = case, image, mask, source

    @property
    def path(self) -> Path:
        return self._source.get(self.image)

    @property
    def mask_path(self) -> Path | None:
        return None if self.mask is None else self._source.get(self.mask)

    @property
    def label(self) -> int:
        return int(self.case["label"])

    def refs(self) -> tuple[Ref, ...]:
        return (self.image,) if self.mask is None else (self.image, self.mask)


class Prefetcher:
    """Downloads a job's images into the cache on `threads` threads, in the order its samplers
    hand out indices, then the rest of its items; never more than `ahead` downloads beyond the
    cases the sampler has handed out (only files missing from the cache are counted).

    A read of a file not there yet downloads it at once (or waits for the download under way).
    In DataLoader worker processes (no threads of ours there) a read waits for the file the main
    process is fetching. A failed background download is raised by the sampler in the main
    process, so a corrupt image fails the job with its PermanentJobError as before.
    """

    def __init__(
        self,
        cache: LocalCache,
        store: ObjectStore,
        bucket: str,
        threads: int = 8,
        ahead: int = 512,
        wait_s: float = 300.0,
    ) -> None:
        self.cache, self.store, self.bucket = cache, store, bucket
        self.threads, self.ahead, self.wait_s = threads, ahead, wait_s
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._items: list[StreamedItem] = []
        self._order: list[Ref] = []  # what the running sampler will read, then every item's refs
        self._next = 0  # the next position in _order for a download thread
        self._read = 0  # the position the sampler has handed out
        self._inflight: dict[str, threading.Event] = {}
        self._failed: dict[str, BaseException] = {}
        self._workers: list[threading.Thread] = []
        self._closed = False

    # -- the item list

    def items(self, cases: Sequence[dict]) -> list[StreamedItem]:
        out = []
        for case in cases:
            where = f"case {case.get('id')}"
            image = Ref(case["image_key"], case["sha256"], f"image of {where}")
            mask = Ref(case["mask_key"], mask_sha256(case), f"mask of {where}") if case.get("mask_key") else None
            out.append(StreamedItem(case, image, mask, self))
        with self._cond:
            self._items.extend(out)
        return out

    def sampler(self, inner: Sampler | Sequence[int], items: Sequence[StreamedItem]) -> PrefetchSampler:
        """Wrap the loader's sampler: each epoch's order is downloaded ahead of the reads."""
        return PrefetchSampler(inner, items, self)

    # -- reads

    def get(self, ref: Ref) -> Path:
        path = self.cache.path(ref.sha256)
        if path.exists():
            return path
        if os.getpid() != self._pid:
            return self._wait_for_file(ref, path)
        with self._cond:
            event = self._inflight.get(ref.sha256)
            mine = event is None
            if mine:
                event = self._inflight[ref.sha256] = threading.Event()
        if not mine:
            event.wait()
            if path.exists():
                return path
        try:  # ours, or the background download failed: try once more here and raise what it raises
            return self.cache.fetch(self.store, self.bucket, ref.key, ref.sha256, ref.what, small=True)
        finally:
            if mine:
                with self._cond:
                    self._inflight.pop(ref.sha256, None)
                event.set()

    def _wait_for_file(self, ref: Ref, path: Path) -> Path:
        deadline = time.monotonic() + self.wait_s
        delay = 0.002
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ref.what} ({ref.key}) did not reach the cache within {self.wait_s:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return path

    # -- the download threads

    def schedule(self, refs: Sequence[Ref]) -> None:
        """Download these in this order from now on (a new epoch's order), then everything else."""
        with self._cond:
            everything = [r for item in self._items for r in item.refs()]
        seen: set[str] = set()
        order = []
        for r in (*refs, *everything):
            if r.sha256 not in seen:
                seen.add(r.sha256)
                if not self.cache.path(r.sha256).exists():
                    order.append(r)
        with self._cond:
            self._order, self._next, self._read = order, 0, 0
            self._cond.notify_all()
            self._workers = [t for t in self._workers if t.is_alive()]
            while self._order and len(self._workers) < self.threads:
                t = threading.Thread(target=self._work, name=f"prefetch-{len(self._workers)}", daemon=True)
                self._workers.append(t)
                t.start()

    def advance(self, position: int) -> None:
        """The sampler has handed out `position` cases of the current order."""
        with self._cond:
            if position > self._read:
                self._read = position
                self._cond.notify_all()

    def raise_failure(self) -> None:
        with self._cond:
            if not self._failed:
                return
            sha, exc = next(iter(self._failed.items()))
        if self.cache.path(sha).exists():  # fetched since by a read
            with self._cond:
                self._failed.pop(sha, None)
            return
        raise exc

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._order = []
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._next < len(self._order) and self._next >= self._read + self.ahead:
                    self._cond.wait()
                if self._closed or self._next >= len(self._order):
                    return
                ref = self._order[self._next]
                self._next += 1
                if ref.sha256 in self._inflight or self.cache.path(ref.sha256).exists():
                    continue
                event = self._inflight[ref.sha256] = threading.Event()
            try:  # the store retries a store that is away; what escapes is the job's failure
                self.cache.fetch(self.store, self.bucket, ref.key, ref.sha256, ref.what, small=True)
            except BaseException as exc:  # noqa: BLE001 - raised by the sampler in the main process
                log.warning("prefetch of %s failed: %s", ref.what, exc)
                with self._cond:
                    self._failed.setdefault(ref.sha256, exc)
            finally:
                with self._cond:
                    self._inflight.pop(ref.sha256, None)
                event.set()


def cache_names(items) -> set[str]:
    """The cache file names (sha256) a job's items use, to keep when pruning; downloads nothing."""
    out: set[str] = set()
    for item in items:
        if isinstance(item, StreamedItem):
            out.update(ref.sha256 for ref in item.refs())
        else:
            out.add(item.path.name)
            if item.mask_path is not None:
                out.add(item.mask_path.name)
    return out


class PrefetchSampler(Sampler[int]):
    """The inner sampler's indices, unchanged; each epoch's order goes to the Prefetcher first."""

    def __init__(self, inner: Sampler | Sequence[int], items: Sequence[StreamedItem], prefetcher: Prefetcher) -> None:
        self.inner, self.items, self.prefetcher = inner, items, prefetcher

    def __len__(self) -> int:
        return len(self.inner)

    def set_epoch(self, epoch: int) -> None:  # DistributedSampler's, passed on
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        order = list(iter(self.inner))
        self.prefetcher.schedule([ref for i in order for ref in self.items[i].refs()])
        for position, index in enumerate(order):
            self.prefetcher.raise_failure()
            self.prefetcher.advance(position)
            yield index
