"""The object store, always through the minio SDK so any S3 server works."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

from minio import Minio
from minio.error import S3Error

from services.common.settings import Settings

# Buckets, one per kind of object.
DATASETS_BUCKET = "trainyard-datasets"
WEIGHTS_BUCKET = "trainyard-weights"
ARTIFACTS_BUCKET = "trainyard-artifacts"
UPLOADS_BUCKET = "trainyard-uploads"
ALL_BUCKETS = (DATASETS_BUCKET, WEIGHTS_BUCKET, ARTIFACTS_BUCKET, UPLOADS_BUCKET)


def make_client(settings: Settings, *, retries: int | None = None) -> Minio:
    """A client; `retries` replaces the SDK's own 5 HTTP retries (~6 s) for callers that back off themselves."""
    http_client = None
    if retries is not None:
        import urllib3

        http_client = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=300),
            maxsize=16,
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key or None,
        secret_key=settings.s3_secret_key or None,
        secure=settings.s3_secure,
        region=settings.s3_region,
        http_client=http_client,
    )


def ensure_buckets(client: Minio, buckets: tuple[str, ...] = ALL_BUCKETS) -> None:
    for bucket in buckets:
        try:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
        except S3Error as exc:  # another process created it first
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def put_bytes(client: Minio, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
    """Upload bytes; returns their hex sha256."""
    digest = hashlib.sha256(data).hexdigest()
    client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata={"sha256": digest})
    return digest


def get_bytes(client: Minio, bucket: str, key: str) -> bytes:
    response = client.get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def put_json(client: Minio, bucket: str, key: str, value: Any) -> tuple[str, int]:
    data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return put_bytes(client, bucket, key, data, "application/json"), len(data)


def get_json(client: Minio, bucket: str, key: str) -> Any:
    return json.loads(get_bytes(client, bucket, key))


def exists(client: Minio, bucket: str, key: str) -> bool:
    try:
        client.stat_object(bucket, key)
        return True
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            return False
        raise
