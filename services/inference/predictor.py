"""Running exported ONNX models with onnxruntime (never torch): sessions cached by the file's sha256 and
bounded by memory, requests for the same model batched, images prepared the way the trainer evaluates them
(resize to the input size, scale to [0, 1], normalise) and the outputs turned into predictions."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from kernel import drawing, onnxmeta
from kernel.onnxmeta import DETECTION_TASKS, OnnxMetadata
from trainyard.inference.v1 import inference_pb2

log = logging.getLogger(__name__)

# A loaded model takes about this many times its file's size (weights, plus onnxruntime's arena).
SESSION_MEMORY_FACTOR = 2
DRAW_MAX_SIDE = 1024


@dataclass
class Loaded:
    sha256: str
    session: object  # onnxruntime.InferenceSession
    meta: OnnxMetadata
    cost: int
    input_name: str
    output_names: list[str]
    batcher: Batcher | None = None


class Sessions:
    """onnxruntime sessions by sha256, least recently used dropped past `max_bytes` (a model larger than
    the bound alone still loads: it is dropped first when another one comes)."""

    def __init__(self, max_bytes: int, threads: int = 0, window_s: float = 0.002, max_batch: int = 32) -> None:
        self.max_bytes, self.threads, self.window_s, self.max_batch = max_bytes, threads, window_s, max_batch
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._loading: dict[str, asyncio.Future] = {}

    @property
    def used_bytes(self) -> int:
        return sum(m.cost for m in self._loaded.values())

    async def get(self, sha256: str, size_bytes: int, read: Callable[[], bytes]) -> Loaded:
        if sha256 in self._loaded:
            self._loaded.move_to_end(sha256)
            return self._loaded[sha256]
        pending = self._loading.get(sha256)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._loading[sha256] = future
        try:
            loaded = await asyncio.to_thread(self._load, sha256, read)
            while self._loaded and self.used_bytes + loaded.cost > self.max_bytes:
                old_sha, old = self._loaded.popitem(last=False)
                if old.batcher is not None:
                    old.batcher.close()
                log.info("dropped a model session", extra={"sha256": old_sha, "bytes": old.cost})
            self._loaded[sha256] = loaded
            future.set_result(loaded)
            return loaded
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            self._loading.pop(sha256, None)

    def _load(self, sha256: str, read: Callable[[], bytes]) -> Loaded:
        import hashlib

        import onnxruntime as ort

        payload = read()
        if hashlib.sha256(payload).hexdigest() != sha256:
            raise ValueError("the stored ONNX file does not match its sha256")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
        meta = OnnxMetadata.parse(dict(session.get_modelmeta().custom_metadata_map))
        loaded = Loaded(
            sha256=sha256,
            session=session,
            meta=meta,
            cost=len(payload) * SESSION_MEMORY_FACTOR,
            input_name=session.get_inputs()[0].name,
            output_names=[o.name for o in session.get_outputs()],
        )
        if meta.task_type not in DETECTION_TASKS:  # detectors take one image per call: nothing to batch
            loaded.batcher = Batcher(loaded, self.window_s, self.max_batch)
        return loaded


@dataclass
class _Pending:
    images: np.ndarray
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


@dataclass
class Batcher:
    """Merges the images of concurrent requests for one model into onnxruntime runs of up to max_batch,
    waiting at most window_s after the first for others to join."""

    loaded: Loaded
    window_s: float
    max_batch: int
    _queue: list[_Pending] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _closed: bool = False

    async def run(self, images: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        pending = _Pending(images, loop.create_future(), loop)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="inference-batcher", daemon=True)
                self._thread.start()
            self._queue.append(pending)
            self._cond.notify()
        return await pending.future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _take(self) -> list[_Pending]:
        import time

        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed and not self._queue:
                return []
            deadline = time.monotonic() + self.window_s
            while sum(len(p.images) for p in self._queue) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken, count = [], 0
            while self._queue and (not taken or count + len(self._queue[0].images) <= self.max_batch):
                count += len(self._queue[0].images)
                taken.append(self._queue.pop(0))
            return taken

    def _work(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                return
            try:
                batch = np.concatenate([p.images for p in taken]) if len(taken) > 1 else taken[0].images
                (out,) = self.loaded.session.run(None, {self.loaded.input_name: batch})
                start = 0
                for p in taken:
                    part = out[start : start + len(p.images)]
                    start += len(p.images)
                    p.loop.call_soon_threadsafe(_resolve, p.future, part, None)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for p in taken:
                    p.loop.call_soon_threadsafe(_resolve, p.future, None, exc)


def _resolve(future: asyncio.Future, value, exc) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


def prepare(image: Image.Image, meta: OnnxMetadata) -> np.ndarray:
    """[3, S, S] float32: resized (bilinear, antialiased), in [0, 1], normalised unless a detector (which
    normalises inside)."""
    size = onnxmeta.resized(image.width, image.height, meta.input_size, meta.resize)
    arr = np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    if meta.task_type not in DETECTION_TASKS:
        arr = (arr - np.asarray(meta.mean, dtype=np.float32)) / np.asarray(meta.std, dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


async def predict(
    loaded: Loaded,
    images: list[Image.Image],
    names: list[str],
    threshold: float,
    top_k: int,
    draw: bool,
    batch: list[np.ndarray] | None = None,
) -> list[inference_pb2.Prediction]:
    """Predictions for the images; `batch` is them already prepared (prepare()), else done here. Detectors
    take one image at a time (each keeps its own aspect); the others run as one stacked batch."""
    meta = loaded.meta
    if batch is None:
        batch = [prepare(im, meta) for im in images]
    out = []
    if meta.task_type in DETECTION_TASKS:
        for image, name, x in zip(images, names, batch, strict=True):
            outputs = await asyncio.to_thread(loaded.session.run, None, {loaded.input_name: x})
            out.append(_detections(dict(zip(loaded.output_names, outputs, strict=True)), image, name, meta, threshold))
    else:
        logits = await loaded.batcher.run(np.stack(batch))
        for image, name, row in zip(images, names, logits, strict=True):
            if meta.task_type == "segmentation":
                out.append(_class_mask(row, image, name, meta))
            else:
                probs = _softmax(row.astype(np.float64), 0)
                order = np.argsort(-probs)[: top_k or 5]
                prediction = inference_pb2.Prediction(name=name, width=image.width, height=image.height)
                for i in order:
                    if probs[i] >= threshold:
                        prediction.classes.add(
                            class_name=meta.class_names[i], class_index=int(i), score=float(probs[i])
                        )
                out.append(prediction)
    if draw:
        for image, prediction in zip(images, out, strict=True):
            prediction.drawn_jpeg = await asyncio.to_thread(_draw, image, prediction, meta)
    return out


def _detections(outputs: dict, image: Image.Image, name: str, meta: OnnxMetadata, threshold: float):
    prediction = inference_pb2.Prediction(name=name, width=image.width, height=image.height)
    width, height = onnxmeta.resized(image.width, image.height, meta.input_size, meta.resize)
    sx, sy = image.width / width, image.height / height
    scores = outputs["scores"]
    for j in np.argsort(-scores):
        if scores[j] < threshold:
            break
        index = int(outputs["labels"][j]) - 1  # label 0 is the detector's background
        if not 0 <= index < len(meta.class_names):
            continue
        x0, y0, x1, y1 = (float(v) for v in outputs["boxes"][j])
        det = prediction.detections.add(
            class_name=meta.class_names[index],
            class_index=index,
            score=float(scores[j]),
            box=[x0 * sx, y0 * sy, x1 * sx, y1 * sy],
        )
        if "masks" in outputs:
            m = Image.fromarray((outputs["masks"][j, 0] * 255).astype(np.uint8)).resize(
                image.size, Image.Resampling.BILINEAR
            )
            det.mask_png = _png(((np.asarray(m) > 127) * 255).astype(np.uint8))
    return prediction


def _class_mask(logits: np.ndarray, image: Image.Image, name: str, meta: OnnxMetadata):
    classes = logits.argmax(0).astype(np.uint8)
    mask = np.asarray(Image.fromarray(classes).resize(image.size, Image.Resampling.NEAREST))
    counts = np.bincount(mask.reshape(-1), minlength=len(meta.class_names))
    prediction = inference_pb2.Prediction(name=name, width=image.width, height=image.height, class_mask_png=_png(mask))
    for i, count in enumerate(counts[: len(meta.class_names)]):
        if count:
            prediction.class_fractions[meta.class_names[i]] = float(count / mask.size)
    return prediction


def _draw(image: Image.Image, prediction: inference_pb2.Prediction, meta: OnnxMetadata) -> bytes:
    size = min(DRAW_MAX_SIDE, max(image.width, image.height))
    if prediction.class_mask_png:
        return drawing.render_case(image, {}, meta.class_names, size, mask_bytes=prediction.class_mask_png)
    if meta.task_type in DETECTION_TASKS:
        boxes = []
        for d in prediction.detections:
            box = {"class": d.class_index, "bbox": list(d.box), "text": f"{d.class_name} {d.score:.2f}"}
            boxes.append(box)
        return drawing.render_case(image, {"boxes": boxes}, meta.class_names, size)
    top = prediction.classes[0] if prediction.classes else None
    caption = f"{top.class_name} {top.score:.2f}" if top else "no class above the threshold"
    return drawing.render_case(image, {"caption": caption}, meta.class_names, size)
