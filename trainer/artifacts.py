"""Exports and pictures of a trained model: TorchScript and ONNX (each loaded back and checked
against PyTorch's outputs), the confusion matrix and the training curves as PNG (matplotlib)."""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
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


def _tolerance(expected: torch.Tensor) -> float:
    """The largest difference allclose(atol=ATOL, rtol=RTOL) lets through anywhere in `expected` (box
    coordinates in pixels get more room than scores)."""
    return ATOL + RTOL * (float(expected.abs().max()) if expected.numel() else 0.0)


def _check(name: str, expected: torch.Tensor, got: torch.Tensor) -> tuple[float, float]:
    """(max abs difference, the tolerance it was held to)."""
    got = torch.as_tensor(got, dtype=expected.dtype)
    if got.shape != expected.shape:
        raise ExportError(f"{name} output shape {tuple(got.shape)} != PyTorch's {tuple(expected.shape)}")
    diff = float((got - expected).abs().max()) if expected.numel() else 0.0
    if not torch.allclose(got, expected, atol=ATOL, rtol=RTOL):
        raise ExportError(
            f"{name} outputs differ from PyTorch's by up to {diff:.2e} (tolerance {ATOL} + {RTOL} x value)"
        )
    return diff, _tolerance(expected)


def export_torchscript(model: nn.Module, example: torch.Tensor) -> tuple[bytes, tuple[float, float]]:
    """Traced TorchScript bytes, loaded back and compared with the eager model; (bytes, (max abs diff,
    tolerance))."""
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


def export_onnx(model: nn.Module, example: torch.Tensor) -> tuple[bytes, tuple[float, float]]:
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


# -- detectors (torchvision detection models, boxes and instance masks) -----------------------------

DETECTION_TASKS = ("detection", "instance_segmentation")
# Why a detector family has no ONNX export (recorded in metrics.json's "exports" instead of the file).
SSD_NO_ONNX = (
    "SSD / SSDlite post-processing (per-class top-k and batched NMS over data-dependent sizes) does not "
    "export to ONNX with this torch: the TorchScript exporter bakes in one image's candidate counts, and the "
    "dynamo exporter cannot guard the data-dependent NMS; use model.torchscript.pt or model.pt"
)


def onnx_unsupported(model: nn.Module, task: str) -> str | None:
    """The reason a model has no ONNX export, or None when it has one."""
    from torchvision.models.detection.ssd import SSD

    if task in DETECTION_TASKS and isinstance(model, SSD):
        return SSD_NO_ONNX
    return None


# Detections that must find a twin (same label, box, score and mask within ATOL) in the export's output.
# Not all: candidates whose scores or overlaps tie within float noise can come out of NMS either way.
MIN_MATCHED = 0.95


def check_detections(name: str, expected: dict, got: dict) -> tuple[float, float]:
    """One image's detections (boxes, labels, scores[, masks]) against PyTorch's: identical lists, or at
    least MIN_MATCHED of the detections of each side paired one to one within the tolerance; (the max abs
    diff, the tolerance: ATOL plus RTOL of the largest box coordinate)."""
    got = {k: torch.as_tensor(got[k]) for k in expected if k in got}
    if set(got) != set(expected):
        raise ExportError(f"{name} outputs {sorted(got)}, PyTorch's {sorted(expected)}")
    if all(got[k].shape == v.shape for k, v in expected.items()):
        try:
            checked = [_check(f"{name} {k}", v.float(), got[k].float()) for k, v in expected.items()]
            return max((d for d, _ in checked), default=0.0), max((t for _, t in checked), default=ATOL)
        except ExportError:
            pass  # same count, but a near-tie reordered them: pair them up below
    want_boxes, got_boxes = expected["boxes"].float(), got["boxes"].float()
    n, m = len(want_boxes), len(got_boxes)
    tolerance = _tolerance(want_boxes)
    close = (want_boxes[:, None, :] - got_boxes[None, :, :]).abs().amax(-1) <= tolerance
    close &= expected["labels"][:, None] == got["labels"][None, :]
    close &= (expected["scores"].float()[:, None] - got["scores"].float()[None, :]).abs() <= ATOL
    used, pairs = set(), []
    for i in range(n):
        j = next((int(j) for j in torch.nonzero(close[i]).flatten() if int(j) not in used), None)
        if j is not None:
            used.add(j)
            pairs.append((i, j))
    if len(pairs) < MIN_MATCHED * max(n, m):
        raise ExportError(
            f"{name} matches {len(pairs)} of PyTorch's {n} detections ({m} in the export); "
            f"at least {MIN_MATCHED:.0%} must agree within {ATOL}"
        )
    diff = 0.0
    for key, want in expected.items():
        for i, j in pairs:
            d = float((want[i].float() - got[key][j].float()).abs().max()) if want[i].numel() else 0.0
            if key == "masks" and d > ATOL:
                raise ExportError(f"{name} mask of detection {i} differs from PyTorch's by {d:.2e}")
            diff = max(diff, d)
    return diff, tolerance


def export_detector_torchscript(model: nn.Module, image: torch.Tensor) -> tuple[bytes, tuple[float, float]]:
    """torch.jit.script of a torchvision detector (its post-processing has data-dependent shapes, so
    tracing would freeze one image's detections); loaded back and run on `image` [3,H,W] against eager.
    The scripted model takes a list of images and returns (losses, detections) as torchvision's does."""
    model.eval()
    with torch.no_grad():
        expected = model([image])[0]
        try:
            scripted = torch.jit.script(model)
        except Exception as exc:  # noqa: BLE001 - reported in words, training still succeeded
            raise ExportError(f"TorchScript scripting failed: {type(exc).__name__}: {exc}") from exc
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
        data = buf.getvalue()
        loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        _, detections = loaded([image])
    return data, check_detections("TorchScript", expected, detections[0])


def export_detector_onnx(model: nn.Module, image: torch.Tensor) -> tuple[bytes, tuple[float, float]]:
    """ONNX of a torchvision detector: input "image" [3,H,W] (any H, W; one image per call), outputs named
    as the model's (boxes, labels, scores[, masks]) with a dynamic detection count; run with
    onnxruntime against eager PyTorch."""
    import onnx
    import onnxruntime as ort

    model.eval()
    with torch.no_grad():
        expected = model([image])[0]
    keys = list(expected)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                model,
                ([image],),
                str(path),
                input_names=["image"],
                output_names=keys,
                dynamic_axes={"image": {1: "height", 2: "width"}, **{k: {0: "detections"} for k in keys}},
                opset_version=17,
                dynamo=False,
            )
        except Exception as exc:  # noqa: BLE001 - reported in words, training still succeeded
            raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
        data = path.read_bytes()
    onnx.checker.check_model(onnx.load_from_string(data))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its shape-inference notes on the dynamic detection count are noise
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": image.numpy()})
    return data, check_detections("ONNX", expected, {k: torch.from_numpy(v) for k, v in zip(keys, got, strict=True)})


def with_metadata(onnx_bytes: bytes, props: dict[str, str]) -> bytes:
    """The ONNX file with `props` as its metadata_props (kernel.onnxmeta), so it can be used alone."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    onnx.helper.set_model_props(model, props)
    return model.SerializeToString()


def export_model(
    model: nn.Module, task: str, example: torch.Tensor, notes: dict, metadata: dict[str, str] | None = None
) -> list[tuple[str, bytes, str]]:
    """TorchScript and ONNX of a trained model, each checked against PyTorch: (name, bytes, content type)
    of those produced. `example` is a batch [N,3,H,W] (one image [3,H,W] for detectors). `notes` gets,
    per file, the max abs difference and tolerance, the error that stopped it, or why it cannot exist.
    `metadata` becomes the ONNX file's metadata_props."""
    if task in DETECTION_TASKS:
        net = model.to("cpu").eval()
        fns = (export_detector_torchscript, export_detector_onnx)
    else:
        net = exportable(model, task).to("cpu").eval()
        fns = (export_torchscript, export_onnx)
    out = []
    for name, fn, ctype in zip(
        ("model.torchscript.pt", "model.onnx"), fns, ("application/octet-stream", "application/onnx"), strict=True
    ):
        reason = onnx_unsupported(model, task) if name == "model.onnx" else None
        if reason:
            notes[name] = {"unsupported": reason}
            continue
        try:
            payload, (diff, tolerance) = fn(net, example)
        except Exception as exc:  # noqa: BLE001 - an export problem does not fail the training
            log.warning("export failed", extra={"file": name, "error": str(exc)})
            notes[name] = {"error": str(exc)}
            continue
        notes[name] = {"max_abs_diff": diff, "tolerance": tolerance}
        if name == "model.onnx" and metadata:
            payload = with_metadata(payload, metadata)
        out.append((name, payload, ctype))
    return out


# -- pictures --------------------------------------------------------------------------------------


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def confusion_matrix_png(matrix: list[list[int]], class_names: list[str]) -> bytes:
    """Rows are true classes, columns predictions; cells shaded by the share of their true class, counts
    written in them while they stay legible (matplotlib; its constrained layout keeps the labels and the
    title inside the picture)."""
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=float).reshape(len(matrix), -1)
    n = len(counts)
    names = [class_names[i] if i < len(class_names) else str(i) for i in range(n)]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(14.0, max(4.5, 0.35 * n + 3))
    font = max(4.0, min(10.0, 240 / max(n, 1)))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.suptitle("confusion matrix (rows: true, columns: predicted)")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    upright = n <= 4 and max(len(name) for name in names) <= 8
    ax.set_xticks(range(n), [name[:24] for name in names], rotation=0 if upright else 90, fontsize=font)
    ax.set_yticks(range(n), [name[:24] for name in names], fontsize=font)
    if n <= 25:
        for (i, j), count in np.ndenumerate(counts):
            ax.text(j, i, f"{count:g}", ha="center", va="center", fontsize=font,
                    color="white" if share[i, j] > 0.55 else "black")  # fmt: skip
    fig.colorbar(image, ax=ax, label="share of the true class", shrink=0.8)
    return _png(fig)


def curves_png(history: list[dict], width: int = 720, height: int = 360) -> bytes:
    """Per-epoch curves: losses in the left panel, the other validation metrics in the right one."""
    from matplotlib.figure import Figure

    names = sorted({k for h in history for k in h["values"]})
    panels = (
        ("loss", [n for n in names if n.endswith("loss")]),
        ("validation metrics", [n for n in names if n.startswith("val_") and not n.endswith("loss")]),
    )
    fig = Figure(figsize=(width / 100, height / 100), layout="constrained")
    for ax, (title, metrics) in zip(fig.subplots(1, 2), panels, strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        for metric in metrics:
            points = [(h["epoch"], h["values"][metric]) for h in history if metric in h["values"]]
            if points:
                epochs, values = zip(*points, strict=True)
                ax.plot(epochs, values, marker="o", markersize=3, label=metric)
        if ax.lines:
            ax.legend(fontsize=8)
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    return _png(fig)
