"""Preview thumbnails: a deterministic sample of cases, each drawn with its label on a banner."""

from __future__ import annotations

import io
import random
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from services.common.errors import InvalidArgument
from services.dataset.images import open_rgb

DEFAULT_COUNT = 8
MAX_COUNT = 64
DEFAULT_THUMBNAIL = 128
MIN_THUMBNAIL, MAX_THUMBNAIL = 32, 512
SPLIT_NAMES = ("train", "val", "test")


def validate_preview_args(count: int, thumbnail_size: int, split: str | None) -> tuple[int, int]:
    """(count, thumbnail_size) with defaults applied for zero values; InvalidArgument otherwise."""
    violations = {}
    count = count or DEFAULT_COUNT
    size = thumbnail_size or DEFAULT_THUMBNAIL
    if not 1 <= count <= MAX_COUNT:
        violations["count"] = f"must be between 1 and {MAX_COUNT}, got {count}"
    if not MIN_THUMBNAIL <= size <= MAX_THUMBNAIL:
        violations["thumbnail_size"] = f"must be between {MIN_THUMBNAIL} and {MAX_THUMBNAIL}, got {size}"
    if split is not None and split not in SPLIT_NAMES:
        violations["split"] = f"must be train, val or test, got {split!r}"
    if violations:
        raise InvalidArgument(violations)
    return count, size


def sample_cases(cases: list[dict[str, Any]], count: int, seed: int, split: str | None = None) -> list[dict[str, Any]]:
    """The same seed gives the same cases, in case-id order."""
    pool = sorted((c for c in cases if split is None or c["split"] == split), key=lambda c: c["id"])
    if len(pool) <= count:
        return pool
    chosen = random.Random(seed).sample(range(len(pool)), count)
    return [pool[i] for i in sorted(chosen)]


@lru_cache(maxsize=16)
def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=px)
    except (OSError, TypeError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def render_thumbnail(image_bytes: bytes, label: str, size: int, quality: int = 85) -> bytes:
    """A JPEG whose longest side is `size`, with `label` on a dark banner along the bottom."""
    im = open_rgb(image_bytes)
    scale = size / max(im.width, im.height)
    w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
    im = im.resize((w, h), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    banner = max(12, min(40, size // 7))
    font = _font(max(8, banner - 4))
    overlay = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    top = max(0, h - banner)
    draw.rectangle((0, top, w, h), fill=(0, 0, 0, 170))
    text = _fit(draw, label, font, w - 6)
    draw.text((3, top + banner / 2), text, font=font, fill=(255, 255, 255, 255), anchor="lm")
    im = Image.alpha_composite(im.convert("RGBA"), overlay).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
