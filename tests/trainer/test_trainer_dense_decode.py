"""Detection, instance and semantic segmentation decode a big JPEG at a power-of-two reduction that
still covers the square the transform resizes to, with boxes, polygons, RLE and semantic masks scaled
to match: the same training pairs as a full-size decode, from a fraction of the pixels. Dataset level,
no servers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from trainer.errors import PermanentJobError
from trainer.tasks import DetectionDataset, Item, SegmentationDataset, decode_rgb, dense_transform

W, H = 2400, 1800  # as shown (and annotated); the EXIF variant stores it rotated
S = 224  # the square the transform resizes to: 1800 // 224 = 8, so libjpeg's 1/8 (300x225) fits
REDUCED = (300, 225)
IGNORE, VOID = 255, 9


def hexagon() -> list[float]:
    angles = np.arange(6) * np.pi / 3
    return [float(v) for a in angles for v in (1550 + 330 * np.cos(a), 600 + 330 * np.sin(a))]


def scene() -> tuple[Image.Image, dict, np.ndarray]:
    """A smooth noisy photo with a rectangle (box only), a hexagon (polygon), a disc (RLE), and the
    matching semantic mask (classes 1-3, an ignored border, a void label)."""
    from pycocotools import mask as mask_util

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 120, (H // 16, W // 16, 3), dtype=np.uint8)
    img = Image.fromarray(noise).resize((W, H), Image.BILINEAR).filter(ImageFilter.GaussianBlur(4))
    draw = ImageDraw.Draw(img)
    rect = [200.0, 900.0, 900.0, 1500.0]
    draw.rectangle([rect[0], rect[1], rect[2] - 1, rect[3] - 1], fill=(230, 40, 40))
    hexa = hexagon()
    draw.polygon(hexa, fill=(40, 230, 40))
    yy, xx = np.mgrid[:H, :W]
    disc = ((xx - 1700) ** 2 + (yy - 1350) ** 2 <= 300**2).astype(np.uint8)
    arr = np.asarray(img).copy()
    arr[disc == 1] = (40, 40, 230)
    img = Image.fromarray(arr)
    rle = mask_util.encode(np.asfortranarray(disc))
    case = {
        "id": "c000001",
        "source_path": "big.jpg",
        "width": W,
        "height": H,
        "boxes": [
            {"class": 0, "bbox": rect},
            {"class": 1, "bbox": [1220.0, 300.0, 1880.0, 900.0], "polygons": [hexa]},
            {
                "class": 2,
                "bbox": [1400.0, 1050.0, 2000.0, 1650.0],
                "rle": {"size": [H, W], "counts": rle["counts"].decode()},
            },
        ],
    }
    semantic = np.zeros((H, W), np.uint8)
    semantic[900:1500, 200:900] = 1
    semantic[disc == 1] = 3
    mask_img = Image.fromarray(semantic)
    ImageDraw.Draw(mask_img).polygon(hexa, fill=2)
    semantic = np.asarray(mask_img).copy()
    semantic[:, :40] = IGNORE
    semantic[-60:, 1000:1300] = VOID
    return img, case, semantic


def write_jpeg(path, img: Image.Image, orientation: int = 1) -> None:
    """orientation 6: the camera wrote the picture rotated and says so in EXIF; the dataset service
    and the trainer show (and the annotations refer to) it upright."""
    stored, kw = img, {}
    if orientation == 6:
        stored = img.transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[0x0112] = 6
        kw["exif"] = exif
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=92, **kw)
    path.write_bytes(buf.getvalue())


@pytest.fixture(scope="module", params=[1, 6], ids=["upright", "exif6"])
def files(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"o{request.param}")
    img, case, semantic = scene()
    write_jpeg(tmp / "big.jpg", img, request.param)
    Image.fromarray(semantic, "L").save(tmp / "mask.png")
    return tmp / "big.jpg", tmp / "mask.png", case, semantic


class Seen:
    """The dense transform, remembering the size of what the dataset handed it."""

    def __init__(self, transform) -> None:
        self.transform, self.sizes = transform, []

    def __call__(self, image, target):
        self.sizes.append(tuple(image.shape[-2:]))
        if isinstance(target, dict) and "masks" in target:
            self.sizes.append(tuple(target["masks"].shape))
        elif not isinstance(target, dict):
            self.sizes.append(tuple(target.shape))
        return self.transform(image, target)


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.bool(), b.bool()
    return float((a & b).sum()) / max(1.0, float((a | b).sum()))


def test_decode_rgb_reduces_a_big_jpeg_and_reports_the_upright_full_size(files):
    path, *_ = files
    image, full = decode_rgb(path, S)
    assert image.size == REDUCED and full == (W, H)
    image, full = decode_rgb(path)
    assert image.size == (W, H) and full == (W, H)
    # a short side that only fits 1/4
    assert decode_rgb(path, 300)[0].size == (600, 450)


def test_detection_with_masks_at_a_reduction_matches_full_size(files):
    path, _, case, _ = files
    item = Item(path=path, case=case)
    seen = Seen(dense_transform(S, False))
    reduced_img, reduced = DetectionDataset([item], seen, with_masks=True, min_side=S)[0]
    # what the transform got: the reduced image and instance masks built at the reduced size
    assert seen.sizes == [REDUCED[::-1], (3, *REDUCED[::-1])]
    full_img, full = DetectionDataset([item], dense_transform(S, False), with_masks=True)[0]

    assert reduced_img.shape == full_img.shape == (3, S, S)
    assert (reduced_img - full_img).abs().mean() < 0.03  # same picture, same orientation
    assert reduced["labels"].tolist() == full["labels"].tolist() == [1, 2, 3]
    assert torch.allclose(reduced["boxes"], full["boxes"], atol=1.0), (reduced["boxes"], full["boxes"])
    expected = torch.tensor(case["boxes"][0]["bbox"]) * torch.tensor([S / W, S / H, S / W, S / H])
    assert torch.allclose(full["boxes"][0], expected, atol=1.0)
    assert reduced["masks"].shape == full["masks"].shape == (3, S, S)
    for k in range(3):  # rectangle (box mask), hexagon (polygon), disc (RLE)
        assert full["masks"][k].sum() > 500, k
        assert iou(reduced["masks"][k], full["masks"][k]) > 0.95, k


def test_semantic_segmentation_at_a_reduction_matches_full_size(files):
    path, mask_path, case, semantic = files
    item = Item(path=path, case=case, mask_path=mask_path)
    norm = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    seen = Seen(dense_transform(S, False, normalize=norm))
    reduced_img, reduced = SegmentationDataset([item], seen, min_side=S)[0]
    assert seen.sizes == [REDUCED[::-1], REDUCED[::-1]]
    full_img, full = SegmentationDataset([item], dense_transform(S, False, normalize=norm))[0]
    assert reduced.shape == full.shape == (S, S)
    assert set(reduced.unique().tolist()) <= {0, 1, 2, 3, IGNORE, VOID}
    assert set(reduced.unique().tolist()) == set(full.unique().tolist())
    assert float((reduced == full).float().mean()) > 0.98


def test_reduced_decode_still_refuses_masks_that_do_not_fit_the_image(files, tmp_path):
    """The size checks compare against the full-size image, not the reduced one."""
    from pycocotools import mask as mask_util

    path, _, case, semantic = files
    # a semantic mask at the reduced size is not this image's mask
    small = tmp_path / "small.png"
    Image.fromarray(semantic).resize(REDUCED, Image.NEAREST).save(small)
    with pytest.raises(PermanentJobError, match=f"mask is 300x225, image is {W}x{H}"):
        SegmentationDataset([Item(path=path, case=case, mask_path=small)], dense_transform(S, False), S)[0]
    # an RLE one row short
    rle = mask_util.encode(np.asfortranarray(np.ones((H - 1, W), np.uint8)))
    bad = dict(
        case, boxes=[{"class": 0, "bbox": [0, 0, 10, 10], "rle": {"size": rle["size"], "counts": rle["counts"]}}]
    )
    with pytest.raises(PermanentJobError, match=f"mask of size {W}x{H - 1}, but its image is {W}x{H}"):
        DetectionDataset([Item(path=path, case=bad)], dense_transform(S, False), True, S)[0]
