"""What a weight file is, read from its first bytes: a torch checkpoint or a safetensors file.

One owner for the question, asked by the zoo (which never imports torch) before it stores a file and
by the trainer before it loads one. torch.save writes a zip archive (or, in the legacy format, a
pickle); safetensors starts with the little-endian length of its JSON header, then the header.
"""

from __future__ import annotations

from pathlib import Path

TORCH = "torch"
SAFETENSORS = "safetensors"
SUFFIXES = {TORCH: ".pth", SAFETENSORS: ".safetensors"}
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the header


def file_format(path: Path | str) -> str:
    """TORCH, SAFETENSORS, or "" when the file is neither."""
    with open(path, "rb") as f:
        head = f.read(9)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return TORCH
    if len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= _MAX_SAFETENSORS_HEADER:
        return SAFETENSORS
    return ""
