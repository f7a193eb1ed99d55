"""Object storage as the trainer sees it: S3 through minio, or a local folder twin for tests.

A missing object is permanent (ObjectMissing: retrying never makes it appear). An object store that
is away (restarting, unreachable, answering 5xx) is waited for: every S3 call is retried with
exponential backoff for up to `retry_s` seconds (kernel.objectstore.call_with_retry, shared
with dataset imports), so a short outage during a checkpoint upload only pauses training.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from minio import Minio
from minio.error import S3Error

from kernel.objectstore import call_with_retry
from trainer.errors import PermanentJobError

log = logging.getLogger(__name__)
T = TypeVar("T")
MISSING_CODES = ("NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket")


class ObjectMissing(PermanentJobError):
    """The object does not exist in the store."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(f"{bucket}/{key} does not exist in the object store (NoSuchKey)")
        self.bucket, self.key = bucket, key


class ObjectStore(Protocol):
    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    def get_file(self, bucket: str, key: str, path: Path) -> None: ...

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...

    def exists(self, bucket: str, key: str) -> bool: ...


class S3Store:
    def __init__(self, client: Minio, *, retry_s: float = 120.0, first_backoff_s: float = 0.5) -> None:
        self.client = client
        self.retry_s = retry_s  # how long an unreachable store is waited for, per call
        self.first_backoff_s = first_backoff_s
        self.retries = 0  # calls repeated after a transient failure (for logs and tests)

    def _call(self, what: str, bucket: str, key: str, fn: Callable[[], T]) -> T:
        def on_retry(error: BaseException, wait_s: float, left_s: float) -> None:
            self.retries += 1
            log.warning(
                "object store unavailable; retrying",
                extra={"op": what, "key": f"{bucket}/{key}", "retry_in_s": round(wait_s, 2), "error": str(error)[:200]},
            )

        try:
            return call_with_retry(fn, retry_s=self.retry_s, first_backoff_s=self.first_backoff_s, on_retry=on_retry)
        except S3Error as exc:
            if exc.code in MISSING_CODES:
                raise ObjectMissing(bucket, key) from exc
            raise

    def get_bytes(self, bucket: str, key: str) -> bytes:
        def get() -> bytes:
            response = self.client.get_object(bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call("get", bucket, key, get)

    def get_file(self, bucket: str, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            self._call("get", bucket, key, lambda: self.client.fget_object(bucket, key, str(tmp)))
        except BaseException:
            for part in path.parent.glob(f"{tmp.name}*"):  # minio's own .part.minio too: a full disk stays usable
                part.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        digest = hashlib.sha256(data).hexdigest()
        self._call(
            "put",
            bucket,
            key,
            lambda: self.client.put_object(  # a fresh stream per try
                bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata={"sha256": digest}
            ),
        )
        return digest

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._call("stat", bucket, key, lambda: self.client.stat_object(bucket, key))
            return True
        except ObjectMissing:
            return False


class LocalStore:
    """A folder laid out as <root>/<bucket>/<key>; the same interface as S3Store."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def get_bytes(self, bucket: str, key: str) -> bytes:
        try:
            return self._path(bucket, key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(bucket, key) from None

    def get_file(self, bucket: str, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.get_bytes(bucket, key))

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return hashlib.sha256(data).hexdigest()

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).exists()
