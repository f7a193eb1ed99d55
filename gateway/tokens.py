"""Bearer tokens: `ty_<key_id>_<secret>`; only the secret's sha256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import jwt

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


# -- short-lived tokens: tyt_<JWT> (HS256 with the gateway's signing key, PyJWT) ---------------------------
# Claims: k (the key it acts as), p (project), r (role), exp (unix time). Tokens of the earlier hand-made format
# (tyt_<payload>.<hmac>) are refused: they lived at most a day (gateway.servicer.MAX_TOKEN_TTL); a client makes a new one.
SHORT_PREFIX = "tyt_"
_ALGORITHM = "HS256"


def sign_short_lived(signing_key: bytes, *, key_id: str, project: str, role: str, expires: int) -> str:
    """A token acting as key `key_id` in `project` with `role` until unix time `expires`."""
    claims = {"k": key_id, "p": project, "r": role, "exp": expires}
    return SHORT_PREFIX + jwt.encode(claims, signing_key, algorithm=_ALGORITHM)


def parse_short_lived(signing_key: bytes, token: str) -> dict | None:
    """The payload {k, p, r, e} of a short-lived token that is signed with the key and has not expired, else None."""
    if not token.startswith(SHORT_PREFIX) or len(token) > 2048:
        return None
    try:
        data = jwt.decode(
            token[len(SHORT_PREFIX) :], signing_key, algorithms=[_ALGORITHM], options={"require": ["exp"]}
        )
    except jwt.InvalidTokenError:
        return None
    if not all(isinstance(data.get(k), str) for k in "kpr") or not isinstance(data["exp"], int):
        return None
    return {"k": data["k"], "p": data["p"], "r": data["r"], "e": data["exp"]}
