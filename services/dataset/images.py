"""Image decoding and normalisation with Pillow, shared by the importer and the previews."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

EXIF_ORIENTATION = 0x0112
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)
# Formats stored as re-encoded images keep their format when Pillow can write the mode; else PNG.
_CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "PPM": "image/x-portable-anymap",
}


class ImageError(ValueError):
    """An image that cannot be used; the message says why."""


@dataclass(frozen=True)
class DecodedImage:
    data: bytes | None  # the bytes to store; None: the file decoded from, unchanged
    sha256: str  # of the bytes to store
    size: int  # of the bytes to store
    width: int  # after EXIF orientation
    height: int
    format: str  # Pillow format name of data
    mode: str
    content_type: str
    reencoded: bool  # True when EXIF orientation had to be applied


def is_image_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def decode_image(source: bytes | Path, *, max_pixels: int = 100_000_000) -> DecodedImage:
    """Fully decode an image (bytes, or a file for a large one), apply its EXIF orientation and pick the
    bytes to store.

    The original bytes are kept when no rotation is needed (data is None for a file: the file is kept);
    otherwise the rotated image is re-encoded in its own format when possible, else as PNG. Raises ImageError.
    """
    try:
        with warnings.catch_warnings():
            # our own max_pixels is the limit; Pillow still refuses > 2x its MAX_IMAGE_PIXELS
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(source if isinstance(source, Path) else io.BytesIO(source))
            fmt = im.format or "PNG"
            if im.width <= 0 or im.height <= 0:
                raise ImageError("image has no pixels")
            if im.width * im.height > max_pixels:
                raise ImageError(f"image is {im.width}x{im.height}, over the limit of {max_pixels} pixels")
            im.load()
            orientation = _orientation(im)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or malformed data
        raise ImageError(f"cannot decode image: {exc}") from None
    if orientation in (1, None) or orientation not in range(2, 9):
        if isinstance(source, Path):
            digest, size = _file_sha256(source)
            data = None
        else:
            digest, size, data = hashlib.sha256(source).hexdigest(), len(source), source
        return DecodedImage(
            data=data,
            sha256=digest,
            size=size,
            width=im.width,
            height=im.height,
            format=fmt,
            mode=im.mode,
            content_type=_CONTENT_TYPES.get(fmt, "application/octet-stream"),
            reencoded=False,
        )
    rotated = ImageOps.exif_transpose(im)
    out, out_fmt = _encode(rotated, fmt)
    return DecodedImage(
        data=out,
        sha256=hashlib.sha256(out).hexdigest(),
        size=len(out),
        width=rotated.width,
        height=rotated.height,
        format=out_fmt,
        mode=rotated.mode,
        content_type=_CONTENT_TYPES.get(out_fmt, "image/png"),
        reencoded=True,
    )


def _file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _orientation(im: Image.Image) -> int | None:
    try:
        value = im.getexif().get(EXIF_ORIENTATION)
    except Exception:  # noqa: BLE001 - a broken EXIF block means no orientation
        return None
    return int(value) if isinstance(value, int) else None


def _encode(im: Image.Image, fmt: str) -> tuple[bytes, str]:
    """Encode without EXIF (orientation is applied); same format when Pillow can, else PNG."""
    im.info.pop("exif", None)
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF", "BMP"):
        buf = io.BytesIO()
        try:
            kwargs = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
            im.save(buf, format=fmt, **kwargs)
            return buf.getvalue(), fmt
        except (OSError, ValueError, KeyError):
            pass
    buf = io.BytesIO()
    png = (
        im
        if im.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16")
        else im.convert("RGBA" if "A" in im.mode else "RGB")
    )
    png.save(buf, format="PNG")
    return buf.getvalue(), "PNG"


GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def is_grayscale(data: bytes | Path, tolerance: int = 8) -> bool:
    """True for single-channel images and colour images whose pixels are all grey (R = G = B)."""
    try:
        im = Image.open(data if isinstance(data, Path) else io.BytesIO(data))
        if im.mode in GREY_MODES:
            return True
        im.draft("RGB", (64, 64))
        small = im.convert("RGB")
        small.thumbnail((64, 64))
    except (OSError, ValueError, SyntaxError):
        return False
    arr = np.asarray(small, dtype=np.int16)
    return bool(
        np.abs(arr[..., 0] - arr[..., 1]).max() <= tolerance and np.abs(arr[..., 1] - arr[..., 2]).max() <= tolerance
    )
