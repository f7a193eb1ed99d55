"""Authenticating a call: bearer token -> verified key, with a short cache so the hot path skips SQL."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping

from gateway import tokens
from gateway.keys import UNAUTHENTICATED_MESSAGE, KeyInfo, KeyStore, utcnow
from services.common.errors import Unauthenticated


class Authenticator:
    """Verifies tokens against the key store; a verified key is trusted for `ttl` seconds.

    Revoking through this gateway takes effect at once (forget); a revocation made through
    another gateway replica takes effect here within `ttl`. Failures are never cached, so a key
    created a moment ago works immediately.
    """

    def __init__(self, store: KeyStore, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[KeyInfo, float]] = {}

    async def authenticate(self, metadata: Mapping[str, str]) -> KeyInfo:
        token = tokens.bearer_token(dict(metadata))
        if token is None:
            raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
        # Keyed by a hash of the whole token: a wrong secret for a cached key id never hits.
        digest = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(digest)
        if hit is not None:
            info, until = hit
            if time.monotonic() < until and info.usable(utcnow()):
                return info
            self._cache.pop(digest, None)
        info = await asyncio.to_thread(self.store.verify, token)
        if self.ttl > 0:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[digest] = (info, time.monotonic() + self.ttl)
        return info

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache (after revoking it)."""
        for digest in [d for d, (info, _) in self._cache.items() if info.id == key_id]:
            self._cache.pop(digest, None)
