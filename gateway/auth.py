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
from services.common.errors import Unauthenticated


class Authenticator:
    """Verifies tokens against the key store; a verified key is trusted for `ttl` seconds.

    Revoking through this gateway takes effect at once (forget); a revocation made through
    another gateway replica takes effect here within `ttl`. Failures are never cached, so a key
    created a moment ago works immediately.
    """

    def __init__(self, store: KeyStore, ttl: float = 5.0, max_entries: int = 10_000, signing_key: bytes = b"") -> None:
        self.store = store
        self.signing_key = signing_key
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
        if token.startswith(tokens.SHORT_PREFIX):
            info = await asyncio.to_thread(self._verify_short_lived, token)
        else:
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
