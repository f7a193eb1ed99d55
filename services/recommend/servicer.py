"""RecommendationService servicer: gather candidates and dataset statistics, then rank."""

from __future__ import annotations

import grpc

from services.common.channels import call_metadata, internal_channel
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.common.settings import Settings
from services.recommend.ranking import DatasetStats, rank
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2, dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc
from trainyard.recommend.v1 import recommend_service_pb2, recommend_service_pb2_grpc

DEVICE_CLASSES = ("cpu", "gpu")


def validate(request: recommend_service_pb2.RecommendRequest) -> None:
    bad: dict[str, str] = {}
    if request.task_type == common_pb2.TASK_TYPE_UNSPECIFIED:
        bad["task_type"] = "required"
    elif request.task_type not in common_pb2.TaskType.values():
        bad["task_type"] = f"unknown value {request.task_type}"
    if request.data_type not in common_pb2.DataType.values():
        bad["data_type"] = f"unknown value {request.data_type}"
    if request.preference not in common_pb2.TrainingPreference.values():
        bad["preference"] = f"unknown value {request.preference}"
    if request.max_params < 0:
        bad["max_params"] = "must be >= 0"
    if request.max_training_seconds < 0:
        bad["max_training_seconds"] = "must be >= 0"
    if request.device_class and request.device_class not in DEVICE_CLASSES:
        bad["device_class"] = f"must be one of {', '.join(DEVICE_CLASSES)}"
    if not 0 <= request.max_suggestions <= 20:
        bad["max_suggestions"] = "must be between 1 and 20 (0 for the default 5)"
    if bad:
        raise InvalidArgument(bad)


def dataset_stats(dataset: dataset_pb2.Dataset) -> DatasetStats:
    version = dataset.latest_version
    counts = [c.count for c in version.classes if c.count > 0]
    imbalance = max(counts) / min(counts) if counts else 1.0
    return DatasetStats(train_cases=version.split_counts.train, num_classes=len(version.classes), imbalance=imbalance)


class RecommendationServicer(recommend_service_pb2_grpc.RecommendationServiceServicer):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.datasets = dataset_service_pb2_grpc.DatasetServiceStub(
            internal_channel(settings.dataset_address, settings)
        )
        self.zoo = modelzoo_service_pb2_grpc.ModelZooServiceStub(internal_channel(settings.modelzoo_address, settings))

    async def _dataset(self, dataset_id: str, task_type: int) -> dataset_pb2.Dataset:
        try:
            response = await self.datasets.GetDataset(
                dataset_service_pb2.GetDatasetRequest(dataset_id=dataset_id),
                metadata=call_metadata(self.settings),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"dataset {dataset_id!r} not found") from None
            raise Unavailable(f"dataset service: {exc.details()}") from None
        dataset = response.dataset
        if task_type not in dataset.task_types:
            kinds = ", ".join(common_pb2.TaskType.Name(t) for t in dataset.task_types) or "none"
            raise FailedPrecondition(
                f"dataset {dataset_id!r} cannot train {common_pb2.TaskType.Name(task_type)}: "
                f"its annotations fit {kinds}"
            )
        return dataset

    async def _candidates(self, task_type: int) -> list[modelzoo_pb2.Model]:
        models: list[modelzoo_pb2.Model] = []
        token = ""
        try:
            while True:
                page = await self.zoo.ListModels(
                    modelzoo_service_pb2.ListModelsRequest(task_type=task_type, page_size=1000, page_token=token),
                    metadata=call_metadata(self.settings),
                    timeout=10,
                )
                models.extend(page.models)
                token = page.next_page_token
                if not token:
                    return models
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"model zoo: {exc.details()}") from None

    async def Recommend(self, request, context):
        validate(request)
        stats = DatasetStats()
        if request.dataset_id:
            stats = dataset_stats(await self._dataset(request.dataset_id, request.task_type))
        suggestions = rank(
            await self._candidates(request.task_type),
            preference=request.preference,
            data_type=request.data_type,
            stats=stats,
            device_class=request.device_class or "cpu",
            max_params=request.max_params,
            max_training_seconds=request.max_training_seconds,
            limit=request.max_suggestions or 5,
        )
        if not suggestions:
            raise FailedPrecondition("no zoo model fits the task type and the constraints")
        return recommend_service_pb2.RecommendResponse(suggestions=suggestions)
