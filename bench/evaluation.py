"""9. evaluation throughput (trainer.evaluation.evaluate: predictions, metrics, per-case results, label errors)
against a bare PyTorch loop over the same images and model; 10. prediction through the gateway (the inference
service running a trained model's ONNX export) against bare onnxruntime on the same file, batch 1 and 16.
Both sides are measured alternately in the same run."""

from __future__ import annotations

import asyncio
import hashlib
import io
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.report import Result, percentile

CLASSES = ("red", "green", "blue")
COLOURS = {"red": (200, 40, 40), "green": (40, 190, 40), "blue": (40, 40, 210)}
SIZES = {"tiny": {"eval": 24, "rounds": 1, "calls": 10}, "quick": {"eval": 128, "rounds": 4, "calls": 60},
         "full": {"eval": 384, "rounds": 6, "calls": 200}}  # fmt: skip
IMAGE_SIZE = 160  # the model's input; photos are 320x240


def photo(colour, rng) -> bytes:
    arr = np.clip(np.array(colour) * rng.uniform(0.7, 1.1) + rng.normal(0, 30, (240, 320, 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(arr.astype("uint8")).save(buf, "JPEG", quality=90)
    return buf.getvalue()


# -- 9. evaluation ---------------------------------------------------------------------------------


def run_evaluation(mode: str) -> list[Result]:
    import torch
    import torchvision
    from torch.utils.data import DataLoader, Dataset

    from trainer import data, evaluation
    from trainer.storage import LocalStore

    n, rounds = SIZES[mode]["eval"], SIZES[mode]["rounds"]
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    store, cache = LocalStore(tmp / "store"), data.LocalCache(tmp / "cache", 1 << 32)
    cases, paths = [], []
    for i in range(n):
        label = i % len(CLASSES)
        payload = photo(COLOURS[CLASSES[label]], rng)
        digest = hashlib.sha256(payload).hexdigest()
        key = f"images/{digest[:2]}/{digest}"
        store.put_bytes("b", key, payload)
        cases.append({"id": f"c{i}", "image_key": key, "sha256": digest, "width": 320, "height": 240,
                      "split": "test", "label": label})  # fmt: skip
    items = data.fetch_items(cache, store, "b", cases)
    paths = [item.path for item in items]
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=len(CLASSES)).eval()
    mean, std, batch = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 32
    class_map = evaluation.ClassMap(list(CLASSES), list(CLASSES))
    device = torch.device("cpu")

    def platform() -> float:
        t0 = time.perf_counter()
        evaluation.evaluate(
            model, "classification", class_map, cases, items, image_size=IMAGE_SIZE, mean=mean, std=std,
            device=device, batch_size=batch, split=3, split_note="test split",
        )  # fmt: skip
        return n / (time.perf_counter() - t0)

    class Bare(Dataset):
        """What anyone would write: open, resize, normalise (torchvision transforms)."""

        transform = torchvision.transforms.Compose(
            [
                torchvision.transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
                torchvision.transforms.ToTensor(),
                torchvision.transforms.Normalize(mean, std),
            ]
        )

        def __len__(self) -> int:
            return n

        def __getitem__(self, i):
            with Image.open(paths[i]) as im:
                return self.transform(im.convert("RGB")), cases[i]["label"]

    @torch.inference_mode()
    def bare() -> float:
        t0 = time.perf_counter()
        correct = 0
        for images, labels in DataLoader(Bare(), batch_size=batch):
            correct += int((model(images).argmax(1) == labels).sum())
        return n / (time.perf_counter() - t0)

    platform(), bare()  # warm-up: first-call costs out of both
    ours, theirs = [], []
    for r in range(rounds):  # alternately, and each side first every other round (a busy machine drifts)
        if r % 2:
            theirs.append(bare())
            ours.append(platform())
        else:
            ours.append(platform())
            theirs.append(bare())
    return [
        Result(
            "9. evaluation",
            f"throughput, MobileNetV2 @{IMAGE_SIZE}, {n} 320x240 JPEGs, batch {batch} (metrics, per-case, label errors)",
            statistics.median(ours),
            "img/s",
            baseline=statistics.median(theirs),
            baseline_name="bare PyTorch loop (predictions only)",
            kind="ratio",
            target=0.9,
        )
    ]


# -- 10. prediction --------------------------------------------------------------------------------


def _archive(per_class: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for split, n in (("train", per_class), ("val", max(2, per_class // 3))):
            for name in CLASSES:
                for i in range(n):
                    zf.writestr(f"{split}/{name}/{name}{i}.jpg", photo(COLOURS[name], rng))
    return buf.getvalue()


async def run_predict(s, mode: str, say=print) -> list[Result]:
    """Train a MobileNetV2 at 224 px on the stack (its trainer), then time Predict through the gateway
    and bare onnxruntime on the downloaded model.onnx, alternately."""
    import onnxruntime as ort

    from kernel import objectstore
    from kernel.onnxmeta import OnnxMetadata
    from services.dataset.samples import upload_chunks
    from services.inference.predictor import prepare
    from trainyard.common.v1 import common_pb2
    from trainyard.dataset.v1 import dataset_service_pb2 as ds
    from trainyard.dataset.v1 import dataset_service_pb2_grpc
    from trainyard.inference.v1 import inference_pb2, inference_service_pb2, inference_service_pb2_grpc
    from trainyard.training.v1 import training_pb2, training_service_pb2_grpc
    from trainyard.training.v1 import training_service_pb2 as tr

    calls = SIZES[mode]["calls"]
    md = s.gateway_md()
    async with s.channel(s.gateway) as ch:
        datasets = dataset_service_pb2_grpc.DatasetServiceStub(ch)
        training = training_service_pb2_grpc.TrainingServiceStub(ch)
        inference = inference_service_pb2_grpc.InferenceServiceStub(ch)
        meta = ds.CreateDatasetMetadata(name="bench-predict")
        dataset = (await datasets.CreateDataset(upload_chunks(meta, _archive(6, 1)), metadata=md)).dataset
        task = (
            await training.CreateTrainingTask(
                tr.CreateTrainingTaskRequest(
                    name="bench-predict", task_type=common_pb2.TASK_TYPE_CLASSIFICATION, dataset_id=dataset.id,
                    model_id="tv/mobilenet_v2.imagenet1k_v1",
                    hyperparameters=common_pb2.Hyperparameters(epochs=1, batch_size=8, image_size=224),
                ),
                metadata=md,
            )
        ).task  # fmt: skip
        say(f"training {task.id} for the prediction benchmark ...")
        while task.state not in (training_pb2.TASK_STATE_SUCCEEDED, training_pb2.TASK_STATE_FAILED):
            await asyncio.sleep(1.0)
            task = (await training.GetTrainingTask(tr.GetTrainingTaskRequest(task_id=task.id), metadata=md)).task
        if task.state != training_pb2.TASK_STATE_SUCCEEDED:
            raise RuntimeError(f"the benchmark's training failed: {task.failure_reason}")
        ref = next(a.object for a in task.artifacts if a.name == "model.onnx")
        onnx_bytes = objectstore.get_bytes(objectstore.make_client(s.settings()), ref.bucket, ref.key)
        session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        meta_ = OnnxMetadata.parse(dict(session.get_modelmeta().custom_metadata_map))
        rng = np.random.default_rng(2)
        jpegs = [photo(COLOURS[CLASSES[i % 3]], rng) for i in range(16)]
        model_id = f"trained/{task.id}"

        def bare(images: list[bytes]) -> None:  # decode, prepare, run: what a user of the file alone does
            x = np.stack([prepare(Image.open(io.BytesIO(b)).convert("RGB"), meta_) for b in images])
            session.run(None, {"images": x})

        async def gateway(images: list[bytes]) -> None:
            request = inference_service_pb2.PredictRequest(
                model_id=model_id, images=[inference_pb2.ImageInput(image=b) for b in images]
            )
            await inference.Predict(request, metadata=md)

        direct_ch = s.channel(s.address("inference"))
        direct = inference_service_pb2_grpc.InferenceServiceStub(direct_ch)

        async def straight(images: list[bytes]) -> None:  # the inference service without the gateway
            request = inference_service_pb2.PredictRequest(
                model_id=model_id, images=[inference_pb2.ImageInput(image=b) for b in images]
            )
            await direct.Predict(request, metadata=s.direct_md())

        async def info() -> None:  # a call with no work: the transport's share
            await inference.GetModelInfo(inference_service_pb2.GetModelInfoRequest(model_id=model_id), metadata=md)

        await gateway(jpegs[:1])  # loads the session
        await straight(jpegs[:1])
        bare(jpegs[:1])
        out = []
        hops, infos = [], []
        for i in range(max(5, calls // 2)):
            t0 = time.perf_counter()
            await straight([jpegs[i % 16]])
            hops.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await info()
            infos.append(time.perf_counter() - t0)
        await direct_ch.close()
        for batch in (1, 16):
            ours, theirs = [], []
            for i in range(calls if batch == 1 else max(3, calls // 8)):
                images = jpegs[:batch] if batch > 1 else [jpegs[i % 16]]
                t0 = time.perf_counter()
                await gateway(images)
                ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await asyncio.to_thread(bare, images)
                theirs.append(time.perf_counter() - t0)
            if batch == 1:
                out.append(
                    Result(
                        "10. predict",
                        "p50 latency, batch 1, MobileNetV2 @224 (320x240 JPEG in)",
                        percentile(ours, 50) * 1000,
                        "ms",
                        baseline=percentile(theirs, 50) * 1000,
                        baseline_name="bare onnxruntime (decode, prepare, run)",
                        kind="delta",
                        target=3.0,
                        extra={
                            "p99_ms": percentile(ours, 99) * 1000,
                            "bare_p99_ms": percentile(theirs, 99) * 1000,
                            "service_direct_p50_ms": percentile(hops, 50) * 1000,
                            "model_info_via_gateway_p50_ms": percentile(infos, 50) * 1000,
                        },
                        note=f"the inference service called directly: p50 {percentile(hops, 50) * 1000:.1f} ms; "
                        f"GetModelInfo (no work) through the gateway: p50 {percentile(infos, 50) * 1000:.1f} ms",
                    )
                )
            else:
                out.append(
                    Result(
                        "10. predict",
                        "throughput, batch 16, MobileNetV2 @224",
                        16 / statistics.median(ours),
                        "img/s",
                        baseline=16 / statistics.median(theirs),
                        baseline_name="bare onnxruntime",
                        kind="ratio",
                        target=0.9,
                    )
                )
        return out
