"""Authenticating a call: bearer token -> verified key, with a short cache so the hot path skips SQL."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from gateway import tokens
from gateway.keys import ROLES, UNAUTHENTICATED_MESSAGE, KeyInfo, KeyStore, utcnow
from gateway.limits import FailureLimiter, LimitExceeded
from kernel.errors import Unauthenticated


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer ("ipv4:10.0.0.7:53412" -> "10.0.0.7", "ipv6:[::1]:5000" -> "::1")."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1 : rest.find("]")]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return rest or peer


class Authenticator:
    """Verifies tokens against the key store; a verified key is trusted for `ttl` seconds.

    Revoking through this gateway takes effect at once (forget); a revocation made through
    another gateway replica takes effect here within `ttl`. Failures are never cached, so a key
    created a moment ago works immediately.

    Failed authentications are rate limited per peer address and per key id (`failures`): past the
    limit a call is refused RESOURCE_EXHAUSTED (AUTH_RATE_LIMITED, RetryInfo) before any verification,
    so a flood of wrong secrets costs a hash and two lookups per call and no database query. A token
    verified within `known_ttl` is never held back by those limits (it is still verified), so callers
    with good keys are not locked out by an attacker on the same address or guessing their key's secret.
    """

    def __init__(
        self,
        store: KeyStore,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        signing_key: bytes = b"",
        failures: FailureLimiter | None = None,
        known_ttl: float = 3600.0,
        refusal_delay: float = 0.0,
    ) -> None:
        self.store = store
        self.signing_key = signing_key
        self.ttl = ttl
        self.max_entries = max_entries
        self.failures = failures or FailureLimiter(0, 1)
        self.known_ttl = known_ttl
        # A refusal of the failure limit is answered after this long (at most the retry delay): a flooding
        # client that waits for answers then sends a call a second instead of hundreds, and the wait costs
        # the gateway a timer.
        self.refusal_delay = refusal_delay
        self._cache: dict[str, tuple[KeyInfo, float]] = {}
        self._known: dict[str, float] = {}  # token digest -> until when it counts as known good

    async def authenticate(self, metadata: Mapping[str, str], peer: str = "") -> KeyInfo:
        token = tokens.bearer_token(dict(metadata))
        host = f"peer {peer_host(peer)}" if peer else ""
        if token is None:
            await self._throttle(host, "")
            self._failed(host, "")
            raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
        # Keyed by a hash of the whole token: a wrong secret for a cached key id never hits.
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None:
            info, until = hit
            if now < until and info.usable(utcnow()):
                return info
            self._cache.pop(digest, None)
        parsed = tokens.parse_token(token)
        key = f"key id {parsed[0]}" if parsed is not None else ""
        if self._known.get(digest, 0.0) < now:
            await self._throttle(host, key)
        try:
            if token.startswith(tokens.SHORT_PREFIX):
                info = await asyncio.to_thread(self._verify_short_lived, token)
            else:
                info = await asyncio.to_thread(self.store.verify, token)
        except Unauthenticated:
            self._failed(host, key)
            raise
        if len(self._known) >= self.max_entries:
            self._known = {d: t for d, t in self._known.items() if t > now}
            if len(self._known) >= self.max_entries:
                self._known.clear()
        self._known[digest] = now + self.known_ttl
        if self.ttl > 0:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[digest] = (info, time.monotonic() + self.ttl)
        return info

    async def _throttle(self, *keys: str) -> None:
        for key in keys:
            retry = self.failures.blocked(key) if key else None
            if retry is not None:
                if self.refusal_delay > 0:
                    await asyncio.sleep(min(self.refusal_delay, retry))
                raise LimitExceeded(
                    f"too many failed authentications for {key}: at most {self.failures.rate * 60:g} per minute "
                    f"(burst {self.failures.burst}); retry in {retry:.0f} s with a valid token",
                    retry_after=retry,
                    reason="AUTH_RATE_LIMITED",
                    metadata={"limited": key},
                )

    def _failed(self, *keys: str) -> None:
        for key in keys:
            if key:
                self.failures.failed(key)

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache (after revoking it)."""
        for digest in [d for d, (info, _) in self._cache.items() if info.id == key_id]:
            self._cache.pop(digest, None)

    def _verify_short_lived(self, token: str) -> KeyInfo:
        """The key a short-lived token was made from, narrowed to the token's role and lifetime."""
        data = tokens.parse_short_lived(self.signing_key, token) if self.signing_key else None
        now = utcnow()
        if data is None or data["e"] <= now.timestamp() or data["r"] not in ROLES:
            raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
        parent = self.store.by_id(str(data["k"]))
        if parent is None or parent.project != data["p"] or not parent.usable(now):
            raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
        role = data["r"] if ROLES.index(data["r"]) <= ROLES.index(parent.role) else parent.role
        return dataclasses.replace(parent, role=role, token_expire_time=datetime.fromtimestamp(data["e"], UTC))
