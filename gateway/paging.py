"""Paging of the gateway's List RPCs (API keys, projects, members, audit entries): offset page tokens."""

from __future__ import annotations

import base64
import binascii

from kernel.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def decode_page(token: str, rpc: str) -> int:
    """The offset a page token stands for (0 for none); `rpc` names the List call in the error."""
    if not token:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        offset = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        kind, offset = "", -1
    if kind != "o" or offset < 0:
        raise InvalidArgument({"page_token": f"not a token from a previous {rpc} response"})
    return offset


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument({"page_size": "must not be negative"})
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
