"""The other services the training service asks, behind small interfaces.

The gRPC implementations forward the caller's identity; tests may pass any object with the
same async methods. Each raises the domain errors (NotFound naming the id, ...).
"""

from __future__ import annotations

from typing import Protocol

import grpc

from kernel import errors
from kernel.channels import call_metadata, call_timeout, internal_channel
from kernel.settings import Settings
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2, dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc
from trainyard.recommend.v1 import recommend_service_pb2, recommend_service_pb2_grpc

CALL_TIMEOUT_S = 30.0
# A weights pull before a task is queued may download hundreds of MB (the caller's deadline still caps it).
PULL_TIMEOUT_S = 3600.0


class DatasetClient(Protocol):
    async def get_dataset(self, dataset_id: str) -> dataset_pb2.Dataset: ...

    async def get_dataset_version(self, version_id: str) -> dataset_pb2.DatasetVersion: ...


class ModelZooClient(Protocol):
    async def get_model(self, model_id: str) -> modelzoo_pb2.Model: ...

    async def pull_weights(self, model_id: str) -> modelzoo_pb2.WeightsPull: ...


class Recommender(Protocol):
    async def recommend(
        self, request: recommend_service_pb2.RecommendRequest
    ) -> recommend_service_pb2.RecommendResponse: ...


class _Remote:
    def __init__(self, address: str, settings: Settings, name: str) -> None:
        if not address:
            raise errors.Unavailable(f"the {name} service address is not configured")
        self.settings = settings
        self.channel = internal_channel(address, settings)

    async def close(self) -> None:
        await self.channel.close()

    async def _call(self, rpc, request, what: str, not_found: str | None = None):
        """One call as the current caller; NOT_FOUND names the id, other failures are translated."""
        try:
            return await rpc(request, metadata=call_metadata(self.settings), timeout=call_timeout(CALL_TIMEOUT_S))
        except grpc.RpcError as exc:
            if not_found and exc.code() == grpc.StatusCode.NOT_FOUND:
                raise errors.NotFound(not_found) from None
            raise errors.from_rpc_error(exc, what) from None


class GrpcDatasetClient(_Remote):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.dataset_address, settings, "dataset")
        self.stub = dataset_service_pb2_grpc.DatasetServiceStub(self.channel)

    async def get_dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        request = dataset_service_pb2.GetDatasetRequest(dataset_id=dataset_id)
        resp = await self._call(self.stub.GetDataset, request, "dataset service", f"dataset {dataset_id!r} not found")
        return resp.dataset

    async def get_dataset_version(self, version_id: str) -> dataset_pb2.DatasetVersion:
        request = dataset_service_pb2.GetDatasetVersionRequest(version_id=version_id)
        not_found = f"dataset version {version_id!r} not found"
        resp = await self._call(self.stub.GetDatasetVersion, request, "dataset service", not_found)
        return resp.version


class GrpcModelZooClient(_Remote):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.modelzoo_address, settings, "modelzoo")
        self.stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(self.channel)

    async def get_model(self, model_id: str) -> modelzoo_pb2.Model:
        request = modelzoo_service_pb2.GetModelRequest(model_id=model_id)
        not_found = f"model {model_id!r} not found in the zoo"
        resp = await self._call(self.stub.GetModel, request, "model zoo service", not_found)
        return resp.model

    async def pull_weights(self, model_id: str) -> modelzoo_pb2.WeightsPull:
        """ModelZooService.PullWeights for one model, waited for: its final state (FAILED included)."""
        request = modelzoo_service_pb2.PullWeightsRequest(selection=modelzoo_pb2.WeightsSelection(model_ids=[model_id]))
        final = None
        try:
            stream = self.stub.PullWeights(
                request, metadata=call_metadata(self.settings), timeout=call_timeout(PULL_TIMEOUT_S)
            )
            async for response in stream:
                final = response.pull
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise errors.NotFound(f"model {model_id!r} not found in the zoo") from None
            raise errors.from_rpc_error(exc, "model zoo service") from None
        if final is None:
            raise errors.Unavailable(f"the model zoo ended the pull of {model_id!r} without a result")
        return final

    async def register_trained_model(self, request):
        """ModelZooService.RegisterTrainedModel (BRIEF2 contract 3), as the current identity."""
        resp = await self._call(self.stub.RegisterTrainedModel, request, "model zoo service")
        return resp.model

    async def get_preset(self, preset_id: str):
        request = modelzoo_service_pb2.GetPresetRequest(preset_id=preset_id)
        not_found = f"preset {preset_id!r} not found in the zoo"
        resp = await self._call(self.stub.GetPreset, request, "model zoo service", not_found)
        return resp.preset


class GrpcRecommender(_Remote):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.recommend_address, settings, "recommend")
        self.stub = recommend_service_pb2_grpc.RecommendationServiceStub(self.channel)

    async def recommend(
        self, request: recommend_service_pb2.RecommendRequest
    ) -> recommend_service_pb2.RecommendResponse:
        return await self._call(self.stub.Recommend, request, "recommendation service")


class LazyRemote:
    """Builds a gRPC client on first use, so a service without e.g. a recommend address still starts."""

    def __init__(self, factory) -> None:
        self._factory = factory
        self._client = None

    def _get(self):
        if self._client is None:
            self._client = self._factory()
        return self._client

    def __getattr__(self, name: str):
        return getattr(self._get(), name)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
