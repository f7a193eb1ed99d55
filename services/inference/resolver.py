"""Which ONNX file a model id stands for, and the image of a dataset case: asked of the model zoo, the
training service and the dataset service as the caller (so another project's model or dataset is NOT_FOUND),
then read from the object store."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import grpc

from kernel import errors, objectstore
from kernel.channels import call_metadata, call_timeout, internal_channel
from kernel.settings import Settings
from trainyard.dataset.v1 import dataset_service_pb2, dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2, modelzoo_service_pb2_grpc
from trainyard.training.v1 import training_service_pb2, training_service_pb2_grpc

CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OnnxRef:
    model_id: str
    task_id: str
    bucket: str
    key: str
    sha256: str
    size_bytes: int


class Resolver:
    def __init__(self, settings: Settings, client, ttl_s: float = 30.0) -> None:
        self.settings, self.client, self.ttl_s = settings, client, ttl_s
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._models: dict[tuple[str, str], tuple[float, OnnxRef]] = {}
        self._manifests: dict[tuple[str, str], dict] = {}

    def _channel(self, name: str) -> grpc.aio.Channel:
        if name not in self._channels:
            address = getattr(self.settings, f"{name}_address")
            if not address:
                raise errors.Unavailable(f"the {name} service address is not configured")
            self._channels[name] = internal_channel(address, self.settings)
        return self._channels[name]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def _call(self, rpc, request, what: str):
        try:
            return await rpc(request, metadata=call_metadata(self.settings), timeout=call_timeout(CALL_TIMEOUT_S))
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc, what) from None

    async def onnx(self, project: str, model_id: str) -> OnnxRef:
        """The model's ONNX export; NOT_FOUND for an unknown model (or another project's), FAILED_PRECONDITION
        with the reason when it has none."""
        cached = self._models.get((project, model_id))
        if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        zoo = modelzoo_service_pb2_grpc.ModelZooServiceStub(self._channel("modelzoo"))
        model = (
            await self._call(zoo.GetModel, modelzoo_service_pb2.GetModelRequest(model_id=model_id), "model zoo service")
        ).model
        if not model.task_id:
            raise errors.FailedPrecondition(
                f"model {model_id!r} is a catalog model without an ONNX export; predictions run the ONNX file a "
                "training exports, so train it first and predict with trained/<task id>",
                reason="MODEL_HAS_NO_ONNX",
                metadata={"model_id": model_id},
            )
        training = training_service_pb2_grpc.TrainingServiceStub(self._channel("training"))
        task = (
            await self._call(
                training.GetTrainingTask,
                training_service_pb2.GetTrainingTaskRequest(task_id=model.task_id),
                "training service",
            )
        ).task
        onnx = next((a.object for a in task.artifacts if a.name == "model.onnx"), None)
        if onnx is None:
            raise errors.FailedPrecondition(
                f"model {model_id!r} has no ONNX export: {await self._why_no_onnx(task)}",
                reason="MODEL_HAS_NO_ONNX",
                metadata={"model_id": model_id},
            )
        ref = OnnxRef(model_id, task.id, onnx.bucket, onnx.key, onnx.sha256, onnx.size_bytes)
        self._models[(project, model_id)] = (time.monotonic(), ref)
        return ref

    async def _why_no_onnx(self, task) -> str:
        """The reason metrics.json records for the missing export (SSD's post-processing, a failed export)."""
        metrics = next((a.object for a in task.artifacts if a.name == "metrics.json"), None)
        if metrics is None:
            return "its training stored no export"
        try:
            report = await asyncio.to_thread(objectstore.get_json, self.client, metrics.bucket, metrics.key)
        except Exception:  # noqa: BLE001 - the reason is a courtesy; the code says enough
            return "its training stored no ONNX file"
        note = report.get("exports", {}).get("model.onnx", {})
        return note.get("unsupported") or note.get("error") or "its training stored no ONNX file"

    def read(self, ref: OnnxRef) -> bytes:
        return objectstore.get_bytes(self.client, ref.bucket, ref.key)

    async def case_image(self, version_id: str, case_id: str) -> bytes:
        """The stored image of a case of a dataset version of the caller's project."""
        datasets = dataset_service_pb2_grpc.DatasetServiceStub(self._channel("dataset"))
        version = (
            await self._call(
                datasets.GetDatasetVersion,
                dataset_service_pb2.GetDatasetVersionRequest(version_id=version_id),
                "dataset service",
            )
        ).version
        ref = version.manifest
        manifest = self._manifests.get((ref.key, ref.sha256))
        if manifest is None:
            manifest = json.loads(await asyncio.to_thread(objectstore.get_bytes, self.client, ref.bucket, ref.key))
            if len(self._manifests) > 16:
                self._manifests.clear()
            self._manifests[(ref.key, ref.sha256)] = manifest
        case = next((c for c in manifest.get("cases", []) if c.get("id") == case_id), None)
        if case is None:
            raise errors.NotFound(
                f"dataset version {version_id!r} has no case {case_id!r}", metadata={"case_id": case_id}
            )
        bucket = manifest.get("images_bucket") or ref.bucket
        return await asyncio.to_thread(objectstore.get_bytes, self.client, bucket, case["image_key"])
