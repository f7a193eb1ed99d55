"""Decoding images the same way everywhere (dataset previews, the trainer, evaluations, inference):
EXIF orientation applied, any Pillow mode to 8-bit RGB; and a strict decode of untrusted uploads."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The largest image an upload may decode to (a 10,000 x 10,000 photo); Pillow's own bomb limit is far above.
MAX_PIXELS = 100_000_000


class BadImage(ValueError):
    """An image that cannot be used; the message says why."""


def open_rgb(data: bytes) -> Image.Image:
    """Open stored image bytes as an 8-bit RGB image (any mode; alpha over white)."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return to_rgb(ImageOps.exif_transpose(im))


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: high bit depths are scaled, transparency composited on white."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        return Image.fromarray(scaled.clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im, mask=im.getchannel("A"))
        return background
    return im.convert("RGB")


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Untrusted bytes as an upright 8-bit RGB image; BadImage saying why (empty, not an image, truncated,
    too many pixels). The size is checked from the header before the pixels are decoded."""
    if not data:
        raise BadImage("empty: no bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if im.width * im.height > max_pixels:
                raise BadImage(f"{im.width}x{im.height} is over the limit of {max_pixels:,} pixels")
            im.load()
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise BadImage(f"too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImage(f"cannot be decoded: {exc}") from None
    return to_rgb(ImageOps.exif_transpose(im))
