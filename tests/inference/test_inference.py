"""The inference service's engine on real (tiny, generated) ONNX files: metadata read back, sessions cached
by sha256 and bounded by memory, concurrent requests batched into fewer onnxruntime runs, predictions."""

from __future__ import annotations

import asyncio
import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from kernel.imaging import BadImage, decode_upload
from kernel.onnxmeta import OnnxMetadata
from services.inference import predictor


def tiny_classifier(classes: list[str], size: int = 8, seed: int = 0) -> bytes:
    """images [N,3,S,S] -> logits [N,C]: a mean per channel, then a linear map (red -> class 0 ...)."""
    weight = np.eye(3, len(classes), dtype=np.float32) * 10 + np.random.default_rng(seed).normal(
        0, 0.01, (3, len(classes))
    ).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["images", "axes"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(classes)])],
        [numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes"), numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    meta = OnnxMetadata("classification", classes, size, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], 0.2, "m", "t")
    helper.set_model_props(model, meta.props())
    return model.SerializeToString()


def test_metadata_round_trips_and_names_what_is_missing():
    payload = tiny_classifier(["red", "green", "blue"])
    props = {p.key: p.value for p in onnx.load_from_string(payload).metadata_props}
    meta = OnnxMetadata.parse(props)
    assert meta.class_names == ["red", "green", "blue"] and meta.input_size == 8 and meta.threshold == 0.2
    del props["trainyard.class_names"]
    with pytest.raises(ValueError, match="trainyard.class_names"):
        OnnxMetadata.parse(props)


async def test_sessions_are_bounded_by_memory_and_requests_batched():
    files = {f"m{i}": tiny_classifier(["red", "green", "blue"], seed=i) for i in range(3)}
    shas = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    cost = len(files["m0"]) * predictor.SESSION_MEMORY_FACTOR
    sessions = predictor.Sessions(max_bytes=int(cost * 2.5))
    loads: list[str] = []

    def reader(name):
        def read():
            loads.append(name)
            return files[name]

        return read

    first = await sessions.get(shas["m0"], 0, reader("m0"))
    assert await sessions.get(shas["m0"], 0, reader("m0")) is first and loads == ["m0"]  # cached
    await asyncio.gather(sessions.get(shas["m1"], 0, reader("m1")), sessions.get(shas["m1"], 0, reader("m1")))
    assert loads == ["m0", "m1"]  # two callers at once load it once
    await sessions.get(shas["m2"], 0, reader("m2"))
    assert sessions.used_bytes <= cost * 2.5 and shas["m0"] not in sessions._loaded  # least recently used went
    with pytest.raises(ValueError, match="sha256"):
        await sessions.get("0" * 64, 0, reader("m0"))

    loaded = await sessions.get(shas["m2"], 0, reader("m2"))
    runs: list[int] = []
    real_run = loaded.session.run

    class Counting:
        def run(self, names, feeds):
            runs.append(len(feeds["images"]))
            return real_run(names, feeds)

    loaded.session = loaded.batcher.loaded.session = Counting()
    colours = {"red": (220, 10, 10), "green": (10, 220, 10), "blue": (10, 10, 220)}
    images = [Image.new("RGB", (20, 12), colours[name]) for name in ("red", "green", "blue") * 8]
    results = await asyncio.gather(
        *(predictor.predict(loaded, [im], [f"i{k}"], 0.0, 1, draw=False) for k, im in enumerate(images))
    )
    assert [r[0].classes[0].class_name for r in results] == ["red", "green", "blue"] * 8
    assert sum(runs) == 24 and len(runs) < 24  # requests that queued while a batch ran went together
    drawn = await predictor.predict(loaded, images[:1], ["x"], 0.0, 2, draw=True)
    assert drawn[0].drawn_jpeg.startswith(b"\xff\xd8") and len(drawn[0].classes) == 2


def test_untrusted_images_are_refused_with_the_reason():
    with pytest.raises(BadImage, match="empty"):
        decode_upload(b"")
    with pytest.raises(BadImage, match="not a recognised image format"):
        decode_upload(b"hello")
    import io

    buf = io.BytesIO()
    Image.new("RGB", (300, 200)).save(buf, "PNG")
    with pytest.raises(BadImage, match="over the limit"):
        decode_upload(buf.getvalue(), max_pixels=300 * 199)
    with pytest.raises(BadImage, match="cannot be decoded"):
        decode_upload(buf.getvalue()[:100])
    assert decode_upload(buf.getvalue()).size == (300, 200)
