"""The object store, always through the minio SDK so any S3 server works.

An object store that is away (restarting, failing over, unreachable, answering 5xx or SlowDown) is
waited for by the callers that must not lose work (the trainer, dataset imports): `call_with_retry`
repeats a call with exponential backoff for up to a window of seconds. A request the store refused
(NoSuchBucket, AccessDenied, a missing key, bad input) is never retried.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import tenacity
import urllib3.exceptions
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from kernel.settings import Settings

T = TypeVar("T")

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


def public_client(settings: Settings) -> Minio | None:
    """A client for presigning links that clients follow: on the public endpoint (s3_public_endpoint), never
    the internal one; None when none is configured. Presigning with the region set makes no request."""
    if not settings.s3_public_endpoint:
        return None
    return Minio(
        settings.s3_public_endpoint,
        access_key=settings.s3_access_key or None,
        secret_key=settings.s3_secret_key or None,
        secure=settings.s3_public_secure,
        region=settings.s3_region,
    )


# S3 error codes and HTTP statuses that mean "away or overloaded, try again", not "refused".
TRANSIENT_S3_CODES = ("InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted")
TRANSIENT_HTTP_STATUS = (429, 500, 502, 503, 504)
# A bad endpoint or a TLS failure is configuration, not an outage: waiting never fixes it.
_PERMANENT_URLLIB3 = (urllib3.exceptions.SSLError, urllib3.exceptions.LocationValueError)


def is_transient(exc: BaseException) -> bool:
    """True for an object store that is away or overloaded (connection refused/reset, timeout, 5xx,
    SlowDown), False for a request it refused (NoSuchBucket, AccessDenied, NoSuchKey, ...)."""
    if isinstance(exc, S3Error):
        return exc.code in TRANSIENT_S3_CODES
    if isinstance(exc, ServerError):  # a status without an S3 error body
        return exc.status_code in TRANSIENT_HTTP_STATUS
    if isinstance(exc, InvalidResponseError):  # e.g. a proxy's HTML 502/503 page during a failover
        return getattr(exc, "_code", None) in TRANSIENT_HTTP_STATUS
    if isinstance(exc, urllib3.exceptions.MaxRetryError):  # urllib3's own retries ran out: judge the cause
        return exc.reason is None or is_transient(exc.reason)
    if isinstance(exc, _PERMANENT_URLLIB3):
        return False
    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def describe(error: BaseException) -> str:
    """One short line for an object-store error: urllib3's cause (e.g. "Failed to establish a new
    connection: [Errno 111] Connection refused") rather than its long "Max retries exceeded with url"."""
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split("): ", 1)[-1][:160]  # drops urllib3's "HTTPConnection(host=..., port=...)" prefix


def call_with_retry(
    fn: Callable[[], T],
    *,
    retry_s: float,
    first_backoff_s: float = 0.5,
    max_backoff_s: float = 10.0,
    on_retry: Callable[[BaseException, float, float], None] | None = None,
    stop: threading.Event | None = None,
) -> T:
    """fn(), repeated after transient failures (is_transient) with exponential backoff (tenacity) until `retry_s`
    seconds have passed; a permanent failure, or the transient one at the end of the window, is raised
    as it is. `fn` must be repeatable (a PUT opens a fresh stream per try).

    on_retry(error, wait_s, left_s) runs before each wait (logs, progress, counters). `stop` set by
    another thread (a parallel upload gave up) ends the wait early and the retries with the last error."""
    deadline = time.monotonic() + retry_s

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            on_retry(state.outcome.exception(), state.next_action.sleep, deadline - time.monotonic())

    def wait_left(state: tenacity.RetryCallState) -> float:  # never past the window
        backoff = min(first_backoff_s * 2 ** (state.attempt_number - 1), max_backoff_s)
        return max(0.0, min(backoff, deadline - time.monotonic()))

    give_up = tenacity.stop_after_delay(retry_s)
    if stop is not None:
        give_up |= tenacity.stop_when_event_set(stop)
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=give_up,
        wait=wait_left,
        sleep=(lambda seconds: stop.wait(seconds)) if stop is not None else time.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)


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
