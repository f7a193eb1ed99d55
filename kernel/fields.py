"""Limits on the text a request may carry, and the one validator of names and descriptions.

`check_lengths(request)` runs on every request a service (and the gateway's own AuthService) receives,
before any handler: a field too long is INVALID_ARGUMENT naming the field and the limit, never echoing
the value (a 1 MiB id echoed into an error broke the transport). Limits by field name, so a new RPC
needs no edit: ids (`id`, `*_id`, `*_ids`), `request_id`, `page_token`, names, descriptions, and a bound
for every other string.

`check_name` / `check_description` are what domain code calls for the names and descriptions it stores:
no control or format characters (NUL, bidirectional overrides such as U+202E, zero-width characters),
no leading or trailing spaces in a name.
"""

from __future__ import annotations

import unicodedata

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from kernel.errors import InvalidArgument

MAX_ID = 256
MAX_REQUEST_ID = 128
MAX_PAGE_TOKEN = 1024
MAX_NAME = 128
MAX_DESCRIPTION = 4096
MAX_TEXT = 4096  # any other string field (queries, members, object keys, choices, class names)
NAME_FIELDS = frozenset({"name", "display_name", "admin_key_name"})
_DESCRIPTION_WHITESPACE = frozenset("\n\t")


def limit_for(field: str) -> int:
    """The most characters a string field of this name may hold."""
    if field == "request_id":
        return MAX_REQUEST_ID
    if field == "page_token":
        return MAX_PAGE_TOKEN
    if field == "id" or field.endswith(("_id", "_ids")):
        return MAX_ID
    if field in NAME_FIELDS:
        return MAX_NAME
    if field == "description":
        return MAX_DESCRIPTION
    return MAX_TEXT


def length_violations(message: Message, prefix: str = "", depth: int = 0) -> dict[str, str]:
    """Field path -> violation for every string field (nested, repeated) over its limit."""
    out: dict[str, str] = {}
    if depth > 8:
        return out
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            limit = limit_for(field.name)
            values = value if _repeated(field) else [value]
            for i, item in enumerate(values):
                if len(item) > limit:
                    where = f"{path}[{i}]" if _repeated(field) else path
                    out[where] = f"must be at most {limit} characters, got {len(item)}"
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    if isinstance(key, str) and len(key) > MAX_TEXT:
                        out[f"{path}[key]"] = f"keys must be at most {MAX_TEXT} characters, got {len(key)}"
                    if isinstance(item, str) and len(item) > MAX_TEXT:
                        out[f"{path}[value]"] = f"must be at most {MAX_TEXT} characters, got {len(item)}"
                    elif isinstance(item, Message):
                        out.update(length_violations(item, f"{path}[].", depth + 1))
            elif _repeated(field):
                for i, item in enumerate(value):
                    out.update(length_violations(item, f"{path}[{i}].", depth + 1))
            else:
                out.update(length_violations(value, f"{path}.", depth + 1))
    return out


def _repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def check_lengths(message: Message | object) -> None:
    """INVALID_ARGUMENT naming every string field over its limit (see limit_for); anything but a message
    (raw bytes of a handler without a deserializer) passes."""
    if not isinstance(message, Message):
        return
    violations = length_violations(message)
    if violations:
        raise InvalidArgument(violations)


def _bad_character(value: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """A description of the first control or format character in value (None when there is none)."""
    for i, ch in enumerate(value):
        if ch in allowed:
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            name = unicodedata.name(ch, "a control character")
            return f"U+{ord(ch):04X} ({name}) at character {i + 1}"
    return None


def name_violation(value: str, *, required: bool = True, limit: int = MAX_NAME) -> str | None:
    """Why `value` is not a valid name (None when it is)."""
    if not value:
        return "required" if required else None
    if len(value) > limit:
        return f"must be 1..{limit} characters, got {len(value)}"
    if value != value.strip():
        return "must not start or end with spaces"
    bad = _bad_character(value)
    if bad is not None:
        return f"must not contain control or format characters: {bad}"
    return None


def description_violation(value: str, *, limit: int = MAX_DESCRIPTION) -> str | None:
    """Why `value` is not a valid description (None when it is): line breaks and tabs are fine."""
    if len(value) > limit:
        return f"must be at most {limit} characters, got {len(value)}"
    bad = _bad_character(value, _DESCRIPTION_WHITESPACE)
    if bad is not None:
        return f"must not contain control or format characters other than line breaks and tabs: {bad}"
    return None


def text_violations(
    fields: dict[str, tuple[str, str]], *, required: frozenset[str] | set[str] = frozenset()
) -> dict[str, str]:
    """Violations of several text fields at once: {path: (kind, value)}, kind "name" or "description"."""
    out: dict[str, str] = {}
    for path, (kind, value) in fields.items():
        if kind == "name":
            why = name_violation(value, required=path in required)
        else:
            why = description_violation(value)
        if why is not None:
            out[path] = why
    return out
