"""Per-key rate limit: a token bucket per API key (in this gateway process)."""

from __future__ import annotations

import time

from services.common.errors import ResourceExhausted


class RateLimiter:
    """`rate` calls per second sustained, bursts up to `burst`; rate 0 turns it off."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill, monotonic)

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise ResourceExhausted."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            raise ResourceExhausted(
                f"rate limit exceeded for api key {key}: {self.rate:g} calls/s (burst {self.burst}); retry later",
                reason="RATE_LIMITED",
                metadata={"key_id": key, "rate_per_second": f"{self.rate:g}", "burst": str(self.burst)},
            )
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1, now)
