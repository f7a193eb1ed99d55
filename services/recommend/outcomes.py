"""Learning from outcomes: finished training tasks of the caller's project feed back into the ranking.

Where outcomes come from (design choice): the recommendation service reads them on demand from
TrainingService.ListTrainingTasks(state=SUCCEEDED) with the caller's identity, rather than keeping
its own SQL table fed by NATS events. The training service's store is already the source of truth
for exactly what is needed (model id, dataset id, resolved hyperparameters, final metrics, start
and end times) and it already scopes tasks to the caller's project. A copy fed by trainer events
would have to rebuild that context from events that carry only task ids and metrics, handle
redelivery and ordering, and add a database and a migration to a service that is otherwise
stateless; it could also drift from the tasks users see. The cost is one paged RPC per Recommend,
bounded (newest MAX_OUTCOMES tasks) and cached for a few seconds per project.

How they change the ranking: a candidate's expected quality on this dataset starts from a prior
(its published reference quality) and is pulled towards the metrics that the same network (full
weight) or the same family (half weight) achieved before, each outcome weighted by how similar its
dataset's statistics are to this one (kernel.datasetstats.similarity). The prior counts as
PRIOR_WEIGHT pseudo-outcomes, so one close outcome moves the estimate about halfway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kernel.datasetstats import DatasetStats, similarity

MAX_OUTCOMES = 500
PRIOR_WEIGHT = 1.0
FAMILY_WEIGHT = 0.5
# Final metric that measures quality, per task type short name, in order of preference.
QUALITY_METRICS = {
    "classification": ("val_top1", "val_f1_macro"),
    "detection": ("val_map", "val_map_50"),
    "segmentation": ("val_miou", "val_pixel_acc"),
    "instance_segmentation": ("val_mask_map", "val_map"),
}


@dataclass(frozen=True)
class Outcome:
    """One finished training task, as the ranking sees it."""

    task_id: str
    task_type: str
    model_id: str
    family: str
    stats: DatasetStats
    metric: str
    value: float
    seconds: float
    epochs: int
    image_size: int
    batch_size: int
    learning_rate: float
    data_type: int = 0  # what the task's images showed (DataType; 0: not said, natural photos)


@dataclass(frozen=True)
class Evidence:
    """What past outcomes say about one candidate on one dataset."""

    weight: float  # effective number of outcomes (similarity x relation weights)
    quality: float  # similarity-weighted mean achieved metric
    count: int
    best: Outcome | None  # the most similar outcome of the same network

    def blend(self, prior: float) -> float:
        """Expected quality: the prior pulled towards the observed mean by the evidence weight."""
        return (PRIOR_WEIGHT * prior + self.weight * self.quality) / (PRIOR_WEIGHT + self.weight)


def quality_metric(task_type: str, metrics: dict[str, float]) -> tuple[str, float] | None:
    for name in QUALITY_METRICS.get(task_type, ()):
        value = metrics.get(name)
        if value is not None and math.isfinite(value):
            return name, float(value)
    return None


def family_of(model_id: str) -> str:
    """'tv/resnet18.imagenet1k_v1' -> 'resnet'; the network name without digits and tags."""
    arch = model_id.split("/", 1)[-1].split(".", 1)[0]
    return arch.rstrip("0123456789_").split("_")[0] or arch


def network_of(model_id: str) -> str:
    """'tv/resnet18.imagenet1k_v1' -> 'tv/resnet18' (the same network with any pretrain tag)."""
    return model_id.split(".", 1)[0]


def evidence(outcomes: list[Outcome], model_id: str, stats: DatasetStats, task_type: str) -> Evidence | None:
    network, family = network_of(model_id), family_of(model_id)
    total, weighted, count, best, best_sim = 0.0, 0.0, 0, None, -1.0
    for outcome in outcomes:
        if outcome.task_type != task_type:
            continue
        if network_of(outcome.model_id) == network:
            relation = 1.0
        elif outcome.family == family:
            relation = FAMILY_WEIGHT
        else:
            continue
        sim = similarity(stats, outcome.stats)
        weight = relation * sim
        if weight < 0.05:
            continue
        total += weight
        weighted += weight * outcome.value
        count += 1
        if relation == 1.0 and sim > best_sim:
            best, best_sim = outcome, sim
    if not count:
        return None
    return Evidence(weight=total, quality=weighted / total, count=count, best=best)
