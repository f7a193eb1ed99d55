"""RecommendationService servicer: gather candidates, dataset statistics and past outcomes, then rank."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import grpc

from kernel import contract, identity
from kernel import datasetstats as dataset_stats
from kernel.channels import call_metadata, call_timeout, internal_channel
from kernel.datasetstats import DatasetStats
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound, from_rpc_error
from kernel.settings import Settings
from services.recommend.outcomes import MAX_OUTCOMES, Outcome, family_of, quality_metric
from services.recommend.ranking import rank
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2, dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc
from trainyard.recommend.v1 import recommend_service_pb2, recommend_service_pb2_grpc
from trainyard.training.v1 import training_pb2, training_service_pb2, training_service_pb2_grpc

log = logging.getLogger(__name__)

DEVICE_CLASSES = ("cpu", "gpu")
# Past outcomes are re-read at most this often per project.
OUTCOME_CACHE_SECONDS = 10.0


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
        bad["max_params"] = "must be >= 0 (0 for no limit)"
    for name in ("max_training_seconds", "max_latency_ms"):
        value = getattr(request, name)
        if not math.isfinite(value) or value < 0:
            bad[name] = "must be a finite number >= 0 (0 for no limit)"
    if request.device_class and request.device_class not in DEVICE_CLASSES:
        bad["device_class"] = f"must be one of {', '.join(DEVICE_CLASSES)}"
    if not 0 <= request.max_suggestions <= 20:
        bad["max_suggestions"] = "must be between 1 and 20 (0 for the default 5)"
    if bad:
        raise InvalidArgument(bad)


class RecommendationServicer(recommend_service_pb2_grpc.RecommendationServiceServicer):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.datasets = dataset_service_pb2_grpc.DatasetServiceStub(
            internal_channel(settings.dataset_address, settings)
        )
        self.zoo = modelzoo_service_pb2_grpc.ModelZooServiceStub(internal_channel(settings.modelzoo_address, settings))
        # Without a training service address the ranking runs on priors only.
        self.training = (
            training_service_pb2_grpc.TrainingServiceStub(internal_channel(settings.training_address, settings))
            if settings.training_address
            else None
        )
        self._outcomes: dict[str, tuple[float, list[Outcome]]] = {}
        self._dataset_stats: dict[tuple[str, str], DatasetStats] = {}

    async def _dataset(self, dataset_id: str, task_type: int) -> dataset_pb2.Dataset:
        try:
            response = await self.datasets.GetDataset(
                dataset_service_pb2.GetDatasetRequest(dataset_id=dataset_id),
                metadata=call_metadata(self.settings),
                timeout=call_timeout(10),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"dataset {dataset_id!r} not found") from None
            raise from_rpc_error(exc, "dataset service") from None
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
                    timeout=call_timeout(10),
                )
                models.extend(page.models)
                token = page.next_page_token
                if not token:
                    return models
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "model zoo") from None

    def use_training(self, address: str) -> None:
        """Learn from the training service at address (for in-process stacks that start it after this one)."""
        self.training = training_service_pb2_grpc.TrainingServiceStub(internal_channel(address, self.settings))
        self._outcomes.clear()

    async def _stats_of(self, dataset_id: str) -> DatasetStats | None:
        """Statistics of a past task's dataset (latest version), cached; None when it is gone."""
        key = (identity.current().project, dataset_id)
        if key not in self._dataset_stats:
            try:
                response = await self.datasets.GetDataset(
                    dataset_service_pb2.GetDatasetRequest(dataset_id=dataset_id),
                    metadata=call_metadata(self.settings),
                    timeout=call_timeout(10),
                )
            except grpc.aio.AioRpcError:
                return None
            self._dataset_stats[key] = dataset_stats.from_dataset(response.dataset)
        return self._dataset_stats[key]

    async def _load_outcomes(self) -> list[Outcome]:
        """SUCCEEDED tasks of the caller's project (newest MAX_OUTCOMES), as ranking outcomes."""
        tasks: list[training_pb2.TrainingTask] = []
        token = ""
        while len(tasks) < MAX_OUTCOMES:
            page = await self.training.ListTrainingTasks(
                training_service_pb2.ListTrainingTasksRequest(
                    state=training_pb2.TASK_STATE_SUCCEEDED, page_size=200, page_token=token
                ),
                metadata=call_metadata(self.settings),
                timeout=call_timeout(10),
            )
            tasks.extend(page.tasks)
            token = page.next_page_token
            if not token:
                break
        outcomes = []
        for task in tasks[:MAX_OUTCOMES]:
            kind = contract.task_name(task.task_type)
            achieved = quality_metric(kind, dict(task.metrics))
            if achieved is None or not task.model_id:
                continue
            stats = await self._stats_of(task.dataset_id) if task.dataset_id else None
            seconds = 0.0
            if task.HasField("start_time") and task.HasField("end_time"):
                seconds = max(0.0, task.end_time.ToDatetime().timestamp() - task.start_time.ToDatetime().timestamp())
            hp = task.hyperparameters
            outcomes.append(
                Outcome(
                    task_id=task.id,
                    task_type=kind,
                    model_id=task.model_id,
                    family=family_of(task.model_id),
                    stats=stats or DatasetStats(),
                    metric=achieved[0],
                    value=achieved[1],
                    seconds=seconds,
                    epochs=hp.epochs,
                    image_size=hp.image_size,
                    batch_size=hp.batch_size,
                    learning_rate=hp.learning_rate,
                    data_type=task.data_type,
                )
            )
        return outcomes

    async def outcomes(self) -> list[Outcome]:
        """Cached past outcomes of the caller's project; empty (priors only) when training is unreachable."""
        if self.training is None:
            return []
        project = identity.current().project
        cached = self._outcomes.get(project)
        if cached and time.monotonic() - cached[0] < OUTCOME_CACHE_SECONDS:
            return cached[1]
        try:
            outcomes = await self._load_outcomes()
        except grpc.aio.AioRpcError as exc:
            log.warning("past outcomes unavailable; ranking on priors", extra={"error": exc.details()})
            return []
        self._outcomes[project] = (time.monotonic(), outcomes)
        return outcomes

    async def Recommend(self, request, context):
        validate(request)
        stats = DatasetStats()
        if request.dataset_id:
            stats = dataset_stats.from_dataset(await self._dataset(request.dataset_id, request.task_type))
        candidates, outcomes = await asyncio.gather(self._candidates(request.task_type), self.outcomes())
        kind = contract.task_name(request.task_type)
        outcomes = [o for o in outcomes if o.task_type == kind]
        suggestions = await asyncio.to_thread(
            rank,
            candidates,
            preference=request.preference,
            data_type=request.data_type,
            stats=stats,
            device_class=request.device_class or "cpu",
            max_params=request.max_params,
            max_training_seconds=request.max_training_seconds,
            max_latency_ms=request.max_latency_ms,
            limit=request.max_suggestions or 5,
            task_type=kind,
            outcomes=outcomes,
            dataset_id=request.dataset_id,
        )
        if not suggestions:
            raise FailedPrecondition("no zoo model serves this task type")
        return recommend_service_pb2.RecommendResponse(
            suggestions=suggestions,
            dataset_factors=stats.describe() if request.dataset_id else [],
            outcomes_considered=len(outcomes),
        )
