"""Cases drawn as thumbnails: a label banner, class-coloured boxes with their labels, translucent polygons,
RLE and semantic masks. The dataset previews, the evaluation error browser (ground truth beside
prediction) and the inference service's drawn predictions all use it."""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from kernel.imaging import open_rgb


@lru_cache(maxsize=16)
def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=px)
    except (OSError, TypeError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _image(image: bytes | Image.Image) -> Image.Image:
    return image.convert("RGB") if isinstance(image, Image.Image) else open_rgb(image)


def render_thumbnail(image_bytes: bytes | Image.Image, label: str, size: int, quality: int = 85) -> bytes:
    """A JPEG whose longest side is `size`, with `label` on a dark banner along the bottom."""
    im = _image(image_bytes)
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


PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
)  # fmt: skip


def class_colour(index: int) -> tuple[int, int, int]:
    base = PALETTE[index % len(PALETTE)]
    shift = (index // len(PALETTE)) * 37
    return tuple((v + shift) % 256 for v in base)  # type: ignore[return-value]


def colour_hex(index: int) -> str:
    r, g, b = class_colour(index)
    return f"#{r:02x}{g:02x}{b:02x}"


def render_case(
    image_bytes: bytes | Image.Image,
    case: dict[str, Any],
    classes: list[str],
    size: int,
    *,
    mask_bytes: bytes | None = None,
    ignore_index: int = 255,
    quality: int = 85,
) -> bytes:
    """A JPEG thumbnail with the case's annotations drawn: a label banner, class-coloured boxes with
    their labels, translucent polygons / RLE / semantic masks, and a legend of the mask's classes.
    A case may carry "caption" (the banner's text instead of its label) and boxes "text" (instead of
    the class name, e.g. with a score)."""
    if "label" in case or "caption" in case:
        return render_thumbnail(image_bytes, case.get("caption") or classes[case["label"]], size, quality)
    im = _image(image_bytes)
    scale = size / max(im.width, im.height)
    w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
    im = im.resize((w, h), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC).convert("RGBA")
    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = _font(max(8, min(16, size // 16)))
    legend: list[int] = []
    if mask_bytes is not None:
        import numpy as np

        mask = Image.open(io.BytesIO(mask_bytes))
        mask.load()
        arr = np.asarray(mask.convert("L").resize((w, h), Image.Resampling.NEAREST))
        rgba = np.zeros((h, w, 4), np.uint8)
        for value in np.unique(arr).tolist():
            if (
                value == ignore_index
                or value >= len(classes)
                or classes[value].lower() in ("background", "bg", "_background_")
            ):
                continue
            rgba[arr == value] = (*class_colour(value), 110)
            legend.append(value)
        overlay = Image.alpha_composite(overlay, Image.fromarray(rgba, "RGBA"))
        draw = ImageDraw.Draw(overlay)
    for box in case.get("boxes") or ():
        cls = box["class"]
        colour = class_colour(cls)
        for poly in box.get("polygons") or ():
            pts = [(poly[i] * scale, poly[i + 1] * scale) for i in range(0, len(poly) - 1, 2)]
            if len(pts) >= 3:
                draw.polygon(pts, fill=(*colour, 90), outline=(*colour, 255))
        if box.get("rle"):
            import numpy as np
            from pycocotools import mask as mask_utils

            rle = {"size": box["rle"]["size"], "counts": box["rle"]["counts"].encode()}
            m = Image.fromarray(mask_utils.decode(rle) * 255).resize((w, h), Image.Resampling.NEAREST)
            layer = Image.new("RGBA", (w, h), (*colour, 90))
            overlay.paste(layer, (0, 0), m)
            draw = ImageDraw.Draw(overlay)
        x0, y0, x1, y1 = (v * scale for v in box["bbox"])
        draw.rectangle((x0, y0, x1, y1), outline=(*colour, 255), width=max(1, size // 128))
        text = box.get("text") or (classes[cls] if 0 <= cls < len(classes) else str(cls))
        tw = draw.textlength(text, font=font)
        th = font.size if hasattr(font, "size") else 10
        ty = y0 - th - 2 if y0 - th - 2 >= 0 else y0
        draw.rectangle((x0, ty, x0 + tw + 4, ty + th + 2), fill=(*colour, 200))
        draw.text((x0 + 2, ty + 1), text, font=font, fill=(0, 0, 0, 255))
    if legend:  # the mask's classes, top-left
        th = font.size if hasattr(font, "size") else 10
        for row, value in enumerate(legend[:8]):
            y = 2 + row * (th + 4)
            draw.rectangle((2, y, 2 + th, y + th), fill=(*class_colour(value), 255))
            draw.rectangle(
                (th + 4, y, th + 8 + draw.textlength(classes[value], font=font), y + th), fill=(0, 0, 0, 150)
            )
            draw.text((th + 6, y), classes[value], font=font, fill=(255, 255, 255, 255))
    out = Image.alpha_composite(im, overlay).convert("RGB")
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def side_by_side(
    left_jpeg: bytes, right_jpeg: bytes, titles: tuple[str, str] = ("ground truth", "prediction")
) -> bytes:
    """Two drawn panels in one JPEG, each titled above."""
    left, right = Image.open(io.BytesIO(left_jpeg)).convert("RGB"), Image.open(io.BytesIO(right_jpeg)).convert("RGB")
    font = _font(11)
    top = 14
    out = Image.new("RGB", (left.width + right.width + 4, max(left.height, right.height) + top), "white")
    draw = ImageDraw.Draw(out)
    out.paste(left, (0, top))
    out.paste(right, (left.width + 4, top))
    draw.text((2, 1), titles[0], font=font, fill=(0, 0, 0))
    draw.text((left.width + 6, 1), titles[1], font=font, fill=(0, 0, 0))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=85)
    return buf.getvalue()
