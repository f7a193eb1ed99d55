"""The inference service's behaviour: check the request, find the model's ONNX file, decode the images,
predict (services.inference.predictor)."""

from __future__ import annotations

import asyncio

from kernel import errors, identity
from kernel.imaging import BadImage, decode_upload
from services.inference.predictor import Sessions, predict, prepare
from services.inference.resolver import Resolver
from services.inference.settings import InferenceSettings
from trainyard.inference.v1 import inference_pb2, inference_service_pb2


def model_info(ref, loaded) -> inference_pb2.ModelInfo:
    m = loaded.meta
    return inference_pb2.ModelInfo(
        model_id=ref.model_id,
        task_type=m.task_type,
        class_names=m.class_names,
        input_size=m.input_size,
        mean=m.mean,
        std=m.std,
        threshold=m.threshold,
        onnx_sha256=ref.sha256,
    )


class InferenceDomain:
    def __init__(self, settings: InferenceSettings, resolver: Resolver, sessions: Sessions) -> None:
        self.settings, self.resolver, self.sessions = settings, resolver, sessions

    async def _load(self, model_id: str):
        if not model_id.strip():
            raise errors.InvalidArgument({"model_id": "required"})
        ref = await self.resolver.onnx(identity.current().project, model_id.strip())
        try:
            loaded = await self.sessions.get(ref.sha256, ref.size_bytes, lambda: self.resolver.read(ref))
        except ValueError as exc:  # metadata missing or a damaged file
            raise errors.FailedPrecondition(f"model {model_id!r}: {exc}", reason="ONNX_UNUSABLE") from None
        return ref, loaded

    async def model_info(self, model_id: str) -> inference_pb2.ModelInfo:
        ref, loaded = await self._load(model_id)
        return model_info(ref, loaded)

    def _check(self, req: inference_service_pb2.PredictRequest) -> dict[str, str]:
        s, bad = self.settings, {}
        if not req.model_id.strip():
            bad["model_id"] = "required"
        if not req.images:
            bad["images"] = "required: 1 or more images"
        elif len(req.images) > s.inference_max_images:
            bad["images"] = f"at most {s.inference_max_images} images per request, got {len(req.images)}"
        if req.HasField("threshold") and not 0.0 <= req.threshold <= 1.0:
            bad["threshold"] = f"must be in [0, 1], got {req.threshold}"
        if not 0 <= req.top_k <= 1000:
            bad["top_k"] = f"must be in 0..1000, got {req.top_k}"
        for i, image in enumerate(req.images[: s.inference_max_images]):
            label = image.name or f"image {i}"
            source = image.WhichOneof("source")
            if source is None:
                bad[f"images[{i}]"] = f"{label}: set image bytes or a case"
            elif source == "image" and len(image.image) > s.inference_max_image_bytes:
                bad[f"images[{i}]"] = (
                    f"{label}: {len(image.image):,} bytes is over the limit of {s.inference_max_image_bytes:,}"
                )
            elif source == "case" and not (image.case.dataset_version_id and image.case.case_id):
                bad[f"images[{i}]"] = f"{label}: a case needs dataset_version_id and case_id"
        return bad

    def _decode_prepare(self, data: bytes, meta):
        image = decode_upload(data, self.settings.inference_max_pixels)
        return image, prepare(image, meta)

    async def _decode(self, i: int, image: inference_pb2.ImageInput, meta):
        """The image decoded and prepared for the model, in a thread (Pillow releases the GIL: a request's
        images are decoded and resized in parallel)."""
        data = image.image
        if image.WhichOneof("source") == "case":
            data = await self.resolver.case_image(image.case.dataset_version_id, image.case.case_id)
        try:
            return await asyncio.to_thread(self._decode_prepare, data, meta)
        except BadImage as exc:
            raise errors.InvalidArgument(
                {f"images[{i}]": f"{image.name or image.case.case_id or 'image'}: {exc}"}
            ) from None

    async def predict(self, req: inference_service_pb2.PredictRequest) -> inference_service_pb2.PredictResponse:
        bad = self._check(req)
        if bad:
            raise errors.InvalidArgument(bad)
        ref, loaded = await self._load(req.model_id)
        decoded = await asyncio.gather(*(self._decode(i, image, loaded.meta) for i, image in enumerate(req.images)))
        names = [image.name or image.case.case_id or f"image {i}" for i, image in enumerate(req.images)]
        threshold = req.threshold if req.HasField("threshold") else loaded.meta.threshold
        images, batch = [d[0] for d in decoded], [d[1] for d in decoded]
        predictions = await predict(loaded, images, names, threshold, req.top_k, req.draw, batch=batch)
        return inference_service_pb2.PredictResponse(predictions=predictions, model=model_info(ref, loaded))
