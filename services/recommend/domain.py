"""The recommendation service's behaviour: gather candidates, dataset statistics and past outcomes, then rank.

The other services are reached through the clients passed in (services/recommend/clients.py over gRPC; tests
may pass any object with the same async methods), which raise the domain errors.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Protocol

from kernel import contract, identity
from kernel import datasetstats as dataset_stats
from kernel.datasetstats import DatasetStats
from kernel.errors import FailedPrecondition, InvalidArgument, TrainyardError
from services.recommend.outcomes import MAX_OUTCOMES, Outcome, family_of, quality_metric
from services.recommend.ranking import rank
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2
from trainyard.recommend.v1 import recommend_service_pb2
from trainyard.training.v1 import training_pb2

log = logging.getLogger(__name__)

DEVICE_CLASSES = ("cpu", "gpu")
# Past outcomes are re-read at most this often per project.
OUTCOME_CACHE_SECONDS = 10.0


class DatasetClient(Protocol):
    async def get_dataset(self, dataset_id: str) -> dataset_pb2.Dataset: ...


class ModelZooClient(Protocol):
    async def list_models(self, task_type: int) -> list[modelzoo_pb2.Model]: ...


class TrainingClient(Protocol):
    async def list_tasks(self, state: int, page_token: str) -> tuple[list[training_pb2.TrainingTask], str]: ...


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


class RecommendationDomain:
    def __init__(self, *, datasets: DatasetClient, zoo: ModelZooClient, training: TrainingClient | None) -> None:
        self.datasets = datasets
        self.zoo = zoo
        # Without a training service the ranking runs on priors only.
        self.training = training
        self._outcomes: dict[str, tuple[float, list[Outcome]]] = {}
        self._dataset_stats: dict[tuple[str, str], DatasetStats] = {}

    async def _dataset(self, dataset_id: str, task_type: int) -> dataset_pb2.Dataset:
        dataset = await self.datasets.get_dataset(dataset_id)
        if task_type not in dataset.task_types:
            kinds = ", ".join(common_pb2.TaskType.Name(t) for t in dataset.task_types) or "none"
            raise FailedPrecondition(
                f"dataset {dataset_id!r} cannot train {common_pb2.TaskType.Name(task_type)}: "
                f"its annotations fit {kinds}"
            )
        return dataset

    def use_training(self, training: TrainingClient) -> None:
        """Learn from this training service (for in-process stacks that start it after this one)."""
        self.training = training
        self._outcomes.clear()

    async def _stats_of(self, dataset_id: str) -> DatasetStats | None:
        """Statistics of a past task's dataset (latest version), cached; None when it is gone."""
        key = (identity.current().project, dataset_id)
        if key not in self._dataset_stats:
            try:
                dataset = await self.datasets.get_dataset(dataset_id)
            except TrainyardError:
                return None
            self._dataset_stats[key] = dataset_stats.from_dataset(dataset)
        return self._dataset_stats[key]

    async def _load_outcomes(self) -> list[Outcome]:
        """SUCCEEDED tasks of the caller's project (newest MAX_OUTCOMES), as ranking outcomes."""
        tasks: list[training_pb2.TrainingTask] = []
        token = ""
        while len(tasks) < MAX_OUTCOMES:
            page, token = await self.training.list_tasks(training_pb2.TASK_STATE_SUCCEEDED, token)
            tasks.extend(page)
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
        except TrainyardError as exc:
            log.warning("past outcomes unavailable; ranking on priors", extra={"error": exc.message})
            return []
        self._outcomes[project] = (time.monotonic(), outcomes)
        return outcomes

    async def recommend(
        self, request: recommend_service_pb2.RecommendRequest
    ) -> recommend_service_pb2.RecommendResponse:
        validate(request)
        stats = DatasetStats()
        if request.dataset_id:
            stats = dataset_stats.from_dataset(await self._dataset(request.dataset_id, request.task_type))
        candidates, outcomes = await asyncio.gather(self.zoo.list_models(request.task_type), self.outcomes())
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
