"""Who is calling: set by the gateway as metadata, read by the services.

Internal services trust identity metadata only when it comes with the internal token the
gateway holds. The gateway strips any of these keys a client sends.
"""

from __future__ import annotations

import contextvars
import hmac
from dataclasses import dataclass

PROJECT_KEY = "x-trainyard-project"
PRINCIPAL_KEY = "x-trainyard-principal"
ROLE_KEY = "x-trainyard-role"
OPERATOR_KEY = "x-trainyard-platform-operator"
INTERNAL_TOKEN_KEY = "x-trainyard-internal-token"
IDENTITY_KEYS = (PROJECT_KEY, PRINCIPAL_KEY, ROLE_KEY, OPERATOR_KEY, INTERNAL_TOKEN_KEY)

DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class Identity:
    project: str = DEFAULT_PROJECT
    principal: str = "anonymous"
    role: str = "admin"
    # A platform operator may change what every project shares (the public pre-trained weights).
    operator: bool = False


_current: contextvars.ContextVar[Identity] = contextvars.ContextVar("trainyard_identity", default=Identity())  # noqa: B039 - frozen


def current() -> Identity:
    return _current.get()


def set_current(identity: Identity) -> contextvars.Token:
    return _current.set(identity)


def from_metadata(metadata: dict[str, str], internal_token: str) -> Identity | None:
    """The identity in the metadata, or None when the internal token is required and wrong."""
    if internal_token and not hmac.compare_digest(metadata.get(INTERNAL_TOKEN_KEY, ""), internal_token):
        return None
    return Identity(
        project=metadata.get(PROJECT_KEY) or DEFAULT_PROJECT,
        principal=metadata.get(PRINCIPAL_KEY) or "anonymous",
        role=metadata.get(ROLE_KEY) or "admin",
        operator=metadata.get(OPERATOR_KEY) == "1",
    )


def outgoing_metadata(identity: Identity, internal_token: str) -> tuple[tuple[str, str], ...]:
    """Metadata that carries an identity on a call to another internal service."""
    md = [(PROJECT_KEY, identity.project), (PRINCIPAL_KEY, identity.principal), (ROLE_KEY, identity.role)]
    if identity.operator:
        md.append((OPERATOR_KEY, "1"))
    if internal_token:
        md.append((INTERNAL_TOKEN_KEY, internal_token))
    return tuple(md)
