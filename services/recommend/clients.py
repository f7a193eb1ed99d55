"""The services the recommendation service asks (dataset, zoo, training), over gRPC as the current caller.

Each call raises the domain errors (NotFound naming the dataset, from_rpc_error for the rest), so the domain
speaks no grpc.
"""

from __future__ import annotations

import grpc

from kernel.channels import call_metadata, call_timeout, internal_channel
from kernel.errors import NotFound, from_rpc_error
from kernel.settings import Settings
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2, dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc
from trainyard.training.v1 import training_pb2, training_service_pb2, training_service_pb2_grpc


class GrpcDatasetClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stub = dataset_service_pb2_grpc.DatasetServiceStub(internal_channel(settings.dataset_address, settings))

    async def get_dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        try:
            response = await self.stub.GetDataset(
                dataset_service_pb2.GetDatasetRequest(dataset_id=dataset_id),
                metadata=call_metadata(self.settings),
                timeout=call_timeout(10),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"dataset {dataset_id!r} not found") from None
            raise from_rpc_error(exc, "dataset service") from None
        return response.dataset


class GrpcModelZooClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(internal_channel(settings.modelzoo_address, settings))

    async def list_models(self, task_type: int) -> list[modelzoo_pb2.Model]:
        """Every zoo model that serves task_type (all pages)."""
        models: list[modelzoo_pb2.Model] = []
        token = ""
        try:
            while True:
                page = await self.stub.ListModels(
                    modelzoo_service_pb2.ListModelsRequest(task_type=task_type, page_size=1000, page_token=token),
                    metadata=call_metadata(self.settings),
                    timeout=call_timeout(10),
                )
                models.extend(page.models)
                token = page.next_page_token
                if not token:
                    return models
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "model zoo") from None


class GrpcTrainingClient:
    def __init__(self, settings: Settings, address: str = "") -> None:
        self.settings = settings
        self.stub = training_service_pb2_grpc.TrainingServiceStub(
            internal_channel(address or settings.training_address, settings)
        )

    async def list_tasks(self, state: int, page_token: str) -> tuple[list[training_pb2.TrainingTask], str]:
        """One page (200) of the caller's tasks in state, and the next page's token."""
        try:
            page = await self.stub.ListTrainingTasks(
                training_service_pb2.ListTrainingTasksRequest(state=state, page_size=200, page_token=page_token),
                metadata=call_metadata(self.settings),
                timeout=call_timeout(10),
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "training service") from None
        return list(page.tasks), page.next_page_token
