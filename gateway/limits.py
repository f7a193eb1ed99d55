"""Per-key limits: call rate (token bucket), concurrent streams, upload size.

Every refusal is RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail saying when to try again.
"""

from __future__ import annotations

import math
import time

from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2

from kernel.errors import ResourceExhausted


class LimitExceeded(ResourceExhausted):
    """RESOURCE_EXHAUSTED carrying RetryInfo (retry_delay) next to ErrorInfo."""

    def __init__(self, message: str, *, retry_after: float, reason: str, metadata: dict[str, str]) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after = max(retry_after, 0.0)

    def details(self, shown: int = 20) -> list[any_pb2.Any]:
        seconds = math.floor(self.retry_after)
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=seconds, nanos=int((self.retry_after - seconds) * 1e9))
        )
        packed = any_pb2.Any()
        packed.Pack(retry)
        return [packed, *super().details(shown)]


class RateLimiter:
    """`rate` calls per second sustained, bursts up to `burst`; rate 0 turns it off."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill, monotonic)

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise LimitExceeded."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            raise LimitExceeded(
                f"rate limit exceeded for api key {key}: {self.rate:g} calls/s (burst {self.burst}); retry later",
                retry_after=(1 - tokens) / self.rate,
                reason="RATE_LIMITED",
                metadata={"key_id": key, "rate_per_second": f"{self.rate:g}", "burst": str(self.burst)},
            )
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1, now)


class FailureLimiter:
    """Failed authentications per peer address and per key id: `rate` per second sustained, `burst` at once;
    past that, calls from the peer (or for the key id) are refused before any verification, cheaply (two
    dict lookups). Successes cost nothing. rate 0 turns it off."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.max_keys = max_keys
        self._spent: dict[str, tuple[float, float]] = {}  # key -> (failures counted, last update, monotonic)

    def _level(self, key: str, now: float) -> float:
        spent, last = self._spent.get(key, (0.0, now))
        return max(0.0, spent - (now - last) * self.rate)

    def blocked(self, key: str) -> float | None:
        """Seconds until `key` may try again, or None when it may now."""
        if self.rate <= 0 or key not in self._spent:
            return None
        excess = self._level(key, time.monotonic()) - (self.burst - 1)  # room for one more failure: <= 0
        return excess / self.rate if excess > 0 else None

    def failed(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        if key not in self._spent and len(self._spent) >= self.max_keys:
            self._spent = {k: v for k, v in self._spent.items() if self._level(k, now) > 0}
            if len(self._spent) >= self.max_keys:
                self._spent.clear()
        self._spent[key] = (self._level(key, now) + 1, now)


class StreamLimiter:
    """At most `limit` streaming calls (uploads, watches) open at once per key; 0 turns it off."""

    def __init__(self, limit: int, retry_after: float = 1.0) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self._open: dict[str, int] = {}

    def enter(self, key: str) -> None:
        count = self._open.get(key, 0)
        if self.limit and count >= self.limit:
            raise LimitExceeded(
                f"too many concurrent streams for api key {key}: at most {self.limit}; "
                "close a watch or upload, or retry later",
                retry_after=self.retry_after,
                reason="TOO_MANY_STREAMS",
                metadata={"key_id": key, "max_streams": str(self.limit)},
            )
        self._open[key] = count + 1

    def leave(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def open(self, key: str) -> int:
        return self._open.get(key, 0)


class UploadTooLarge(ResourceExhausted):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"upload too large: more than {limit} bytes (the gateway's TRAINYARD_MAX_UPLOAD_BYTES)",
            reason="UPLOAD_TOO_LARGE",
            metadata={"max_upload_bytes": str(limit)},
        )
