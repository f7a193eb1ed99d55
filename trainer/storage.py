"""Object storage as the trainer sees it: S3 through minio, or a local folder twin for tests."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Protocol

from minio import Minio
from minio.error import S3Error


class ObjectStore(Protocol):
    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    def get_file(self, bucket: str, key: str, path: Path) -> None: ...

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...

    def exists(self, bucket: str, key: str) -> bool: ...


class S3Store:
    def __init__(self, client: Minio) -> None:
        self.client = client

    def get_bytes(self, bucket: str, key: str) -> bytes:
        response = self.client.get_object(bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def get_file(self, bucket: str, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        self.client.fget_object(bucket, key, str(tmp))
        os.replace(tmp, path)

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.client.put_object(
            bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata={"sha256": digest}
        )
        return digest

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client.stat_object(bucket, key)
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise


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
            raise KeyError(f"{bucket}/{key}") from None

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
