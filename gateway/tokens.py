"""Bearer tokens: `ty_<key_id>_<secret>`; only the secret's sha256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "ty"
_KEY_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")


def parse_token(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed token, else None."""
    prefix, sep, rest = token.partition("_")
    if prefix != PREFIX or not sep:
        return None
    key_id, sep, secret = rest.partition("_")
    if not sep or not _KEY_ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
        return None
    return key_id, secret


def format_token(key_id: str, secret: str) -> str:
    return f"{PREFIX}_{key_id}_{secret}"


def new_key_id() -> str:
    return secrets.token_hex(8)


def new_secret() -> str:
    # 256 bits of randomness: a plain sha256 of it is a safe verifier (no password stretching needed).
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def bearer_token(metadata: dict[str, str]) -> str | None:
    """The token of an `authorization: Bearer <token>` header, else None."""
    value = metadata.get("authorization")
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
