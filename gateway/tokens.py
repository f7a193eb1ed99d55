"""Bearer tokens: `ty_<key_id>_<secret>`; only the secret's sha256 is stored."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
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


# -- short-lived tokens: tyt_<base64url payload>.<base64url hmac-sha256> ---------------------------
SHORT_PREFIX = "tyt_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_short_lived(signing_key: bytes, *, key_id: str, project: str, role: str, expires: int) -> str:
    """A token acting as key `key_id` in `project` with `role` until unix time `expires`."""
    payload = _b64(json.dumps({"k": key_id, "p": project, "r": role, "e": expires}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(signing_key, payload.encode(), hashlib.sha256).digest())
    return f"{SHORT_PREFIX}{payload}.{signature}"


def parse_short_lived(signing_key: bytes, token: str) -> dict | None:
    """The verified payload {k, p, r, e} of a short-lived token, else None (expiry is the caller's check)."""
    if not token.startswith(SHORT_PREFIX) or len(token) > 2048:
        return None
    payload, sep, signature = token[len(SHORT_PREFIX) :].partition(".")
    if not sep:
        return None
    expected = _b64(hmac.new(signing_key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        data = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(data, dict) or not all(k in data for k in "kpre") or not isinstance(data["e"], int):
        return None
    return data
