"""Exports and pictures of a trained model: TorchScript and ONNX (each loaded back and checked
against PyTorch's outputs), the confusion matrix and the training curves as PNG (Pillow only)."""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import nn

log = logging.getLogger(__name__)

ATOL = 1e-3
RTOL = 1e-3


class ExportError(Exception):
    """An export that failed or does not match PyTorch."""


class _DenseOutput(nn.Module):
    """A segmenter's {"out": logits} as a plain tensor, for tracing and ONNX."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out["out"] if isinstance(out, dict) else out


def exportable(model: nn.Module, task: str) -> nn.Module:
    return _DenseOutput(model) if task == "segmentation" else model


def _check(name: str, expected: torch.Tensor, got: torch.Tensor) -> float:
    got = torch.as_tensor(got, dtype=expected.dtype)
    if got.shape != expected.shape:
        raise ExportError(f"{name} output shape {tuple(got.shape)} != PyTorch's {tuple(expected.shape)}")
    diff = float((got - expected).abs().max()) if expected.numel() else 0.0
    if not torch.allclose(got, expected, atol=ATOL, rtol=RTOL):
        raise ExportError(f"{name} outputs differ from PyTorch's by up to {diff:.2e} (tolerance {ATOL})")
    return diff


def export_torchscript(model: nn.Module, example: torch.Tensor) -> tuple[bytes, float]:
    """Traced TorchScript bytes, loaded back and compared with the eager model; (bytes, max abs diff)."""
    model.eval()
    with torch.no_grad():
        expected = model(example)
        traced = torch.jit.trace(model, example, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        data = buf.getvalue()
        loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        diff = _check("TorchScript", expected, loaded(example))
    return data, diff


def export_onnx(model: nn.Module, example: torch.Tensor) -> tuple[bytes, float]:
    """ONNX bytes (dynamic batch), checked with onnx.checker and run with onnxruntime against PyTorch."""
    import onnx
    import onnxruntime as ort

    model.eval()
    with torch.no_grad():
        expected = model(example)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=["images"],
                output_names=["logits"],
                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        except Exception as exc:  # noqa: BLE001 - reported in words, training still succeeded
            raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
        data = path.read_bytes()
    onnx.checker.check_model(onnx.load_from_string(data))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"images": example.numpy()})
    return data, _check("ONNX", expected, torch.from_numpy(got))


# -- pictures --------------------------------------------------------------------------------------

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def confusion_matrix_png(matrix: list[list[int]], class_names: list[str]) -> bytes:
    """Rows are true classes, columns predictions; cells shaded by the row-normalised count."""
    n = len(matrix)
    cell = max(18, min(60, 600 // max(n, 1)))
    label_w = min(160, 8 + 7 * max((len(c) for c in class_names), default=4))
    top = 40
    img = Image.new("RGB", (label_w + cell * n + 20, top + cell * n + label_w), "white")
    draw = ImageDraw.Draw(img)
    draw.text((label_w, 6), "confusion matrix (rows: true, columns: predicted)", fill="black")
    for i, row in enumerate(matrix):
        total = max(sum(row), 1)
        draw.text(
            (4, top + i * cell + cell // 2 - 5), class_names[i][:22] if i < len(class_names) else str(i), fill="black"
        )
        for j, count in enumerate(row):
            shade = int(255 * (1 - count / total))
            x0, y0 = label_w + j * cell, top + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(shade, shade, 255), outline=(200, 200, 200))
            if cell >= 24:
                draw.text((x0 + 3, y0 + cell // 2 - 5), str(count), fill="black" if shade > 110 else "white")
    for j, name in enumerate(class_names[:n]):
        draw.text((label_w + j * cell + 2, top + n * cell + 4 + (j % 3) * 12), name[:10], fill="black")
    return _png(img)


def curves_png(history: list[dict], width: int = 720, height: int = 360) -> bytes:
    """Per-epoch curves: losses in the left panel, the other validation metrics in the right one."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    names = sorted({k for h in history for k in h["values"]})
    panels = [
        [n for n in names if n.endswith("loss")],
        [n for n in names if n.startswith("val_") and not n.endswith("loss")],
    ]
    epochs = [h["epoch"] for h in history]
    pw = width // 2
    for p, metrics in enumerate(panels):
        x0, y0, x1, y1 = p * pw + 50, 30, (p + 1) * pw - 15, height - 40
        draw.rectangle([x0, y0, x1, y1], outline="black")
        draw.text((x0, 8), "loss" if p == 0 else "validation metrics", fill="black")
        values = [h["values"][m] for h in history for m in metrics if m in h["values"]]
        if not values or not epochs:
            continue
        lo, hi = min(values), max(values)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        draw.text((x0 - 45, y0), f"{hi:.3g}", fill="black")
        draw.text((x0 - 45, y1 - 10), f"{lo:.3g}", fill="black")
        e0, e1 = min(epochs), max(max(epochs), min(epochs) + 1)
        for k, metric in enumerate(metrics):
            pts = [
                (
                    x0 + (h["epoch"] - e0) / (e1 - e0) * (x1 - x0),
                    y1 - (h["values"][metric] - lo) / (hi - lo) * (y1 - y0),
                )
                for h in history
                if metric in h["values"]
            ]
            color = PALETTE[k % len(PALETTE)]
            if len(pts) > 1:
                draw.line(pts, fill=color, width=2)
            for x, y in pts:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
            draw.text((x0 + 6, y0 + 4 + 12 * k), metric, fill=color)
        draw.text((x0, y1 + 6), f"epoch {e0}", fill="black")
        draw.text((x1 - 50, y1 + 6), f"epoch {max(epochs)}", fill="black")
    return _png(img)
