"""The recommendation service over gRPC: dataset statistics in, outcomes from the training service
change the ranking, constraints get field errors.

The dataset, zoo and training services are small in-test gRPC servers with fixed answers (the
ranking's own inputs), so the test checks the recommend service's RPC path: what it asks for,
with which identity, and what it makes of the answers.
"""

from __future__ import annotations

import grpc
import pytest

from kernel import identity
from kernel.errors import field_violations
from kernel.settings import Settings
from services.recommend import domain as recommend_domain
from services.recommend.app import start
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2, dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc
from trainyard.recommend.v1 import recommend_service_pb2 as rpb
from trainyard.recommend.v1 import recommend_service_pb2_grpc
from trainyard.training.v1 import training_pb2, training_service_pb2, training_service_pb2_grpc

CLS = common_pb2.TASK_TYPE_CLASSIFICATION


def zoo_model(arch: str, top1: float, gflops: float, params: float) -> modelzoo_pb2.Model:
    return modelzoo_pb2.Model(
        id=f"tv/{arch}.imagenet1k_v1",
        family=arch,
        architecture=arch,
        library="torchvision",
        task_types=[CLS],
        num_params=int(params),
        gflops=gflops,
        default_input_size=224,
        pretrain_dataset="imagenet-1k",
        reference_metrics=[common_pb2.Metric(name="top1", value=top1)],
        weight_status=modelzoo_pb2.WEIGHT_STATUS_IN_STORE,
    )


MODELS = [
    zoo_model("mobilenet_v2", 71.9, 0.30, 3.5e6),
    zoo_model("resnet18", 69.8, 1.81, 11.7e6),
    zoo_model("resnet50", 80.9, 4.09, 25.6e6),
    zoo_model("efficientnet_b0", 77.7, 0.39, 5.3e6),
]


def dataset_message(dataset_id: str) -> dataset_pb2.Dataset:
    version = dataset_pb2.DatasetVersion(
        id=f"{dataset_id}-v1",
        split_counts=dataset_pb2.SplitCounts(train=400, val=100),
        classes=[dataset_pb2.ClassInfo(index=i, name=f"c{i}", count=100) for i in range(5)],
    )
    if "statistics" in dataset_pb2.DatasetVersion.DESCRIPTOR.fields_by_name:
        version.statistics.grayscale_fraction = 0.5
        version.statistics.width.p50 = 64
        version.statistics.height.p50 = 48
    return dataset_pb2.Dataset(id=dataset_id, task_types=[CLS], latest_version=version)


class Datasets(dataset_service_pb2_grpc.DatasetServiceServicer):
    async def GetDataset(self, request, context):
        if not request.dataset_id.startswith("ds-"):
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such dataset")
        return dataset_service_pb2.GetDatasetResponse(dataset=dataset_message(request.dataset_id))


class Zoo(modelzoo_service_pb2_grpc.ModelZooServiceServicer):
    async def ListModels(self, request, context):
        return modelzoo_service_pb2.ListModelsResponse(models=[m for m in MODELS if request.task_type in m.task_types])


class Training(training_service_pb2_grpc.TrainingServiceServicer):
    def __init__(self) -> None:
        self.tasks: dict[str, list[training_pb2.TrainingTask]] = {}
        self.requests: list[tuple[str, int]] = []

    async def ListTrainingTasks(self, request, context):
        project = dict(context.invocation_metadata()).get(identity.PROJECT_KEY, "")
        self.requests.append((project, request.state))
        tasks = [t for t in self.tasks.get(project, []) if t.state == request.state]
        return training_service_pb2.ListTrainingTasksResponse(tasks=tasks)


def finished(task_id: str, model_id: str, top1: float) -> training_pb2.TrainingTask:
    task = training_pb2.TrainingTask(
        id=task_id,
        task_type=CLS,
        dataset_id="ds-old",
        model_id=model_id,
        state=training_pb2.TASK_STATE_SUCCEEDED,
        hyperparameters=common_pb2.Hyperparameters(epochs=5, image_size=128, batch_size=16, learning_rate=1e-3),
    )
    task.metrics["val_top1"] = top1
    task.start_time.FromSeconds(1_700_000_000)
    task.end_time.FromSeconds(1_700_000_300)
    return task


@pytest.fixture
async def platform(monkeypatch):
    monkeypatch.setattr(recommend_domain, "OUTCOME_CACHE_SECONDS", 0.0)
    training = Training()
    deps = grpc.aio.server()
    dataset_service_pb2_grpc.add_DatasetServiceServicer_to_server(Datasets(), deps)
    modelzoo_service_pb2_grpc.add_ModelZooServiceServicer_to_server(Zoo(), deps)
    training_service_pb2_grpc.add_TrainingServiceServicer_to_server(training, deps)
    port = deps.add_insecure_port("127.0.0.1:0")
    await deps.start()
    address = f"127.0.0.1:{port}"
    running = await start(
        Settings(listen="127.0.0.1:0", dataset_address=address, modelzoo_address=address, training_address=address)
    )
    channel = grpc.aio.insecure_channel(running.address)
    try:
        yield recommend_service_pb2_grpc.RecommendationServiceStub(channel), training
    finally:
        await channel.close()
        await running.stop()
        await deps.stop(None)


def as_project(project: str) -> tuple[tuple[str, str], ...]:
    return ((identity.PROJECT_KEY, project),)


async def test_dataset_statistics_feed_the_suggestion(platform):
    stub, _ = platform
    reply = await stub.Recommend(
        rpb.RecommendRequest(task_type=CLS, dataset_id="ds-new", preference=common_pb2.TRAINING_PREFERENCE_BALANCED)
    )
    assert reply.suggestions and reply.outcomes_considered == 0
    assert any("400 training / 100 validation images" in f for f in reply.dataset_factors)
    top = reply.suggestions[0]
    assert top.expected_seconds_per_epoch > 0 and top.throughput_source in ("measured", "interpolated")
    assert top.rationale.startswith("#1 for preference 'balanced'") and "prior only" in top.rationale
    if "statistics" in dataset_pb2.DatasetVersion.DESCRIPTOR.fields_by_name:
        assert any("median image 64x48 px" in f for f in reply.dataset_factors)
        assert top.hyperparameters.image_size == 96  # small images are not upscaled to 224


async def test_outcomes_of_the_callers_project_change_the_ranking(platform):
    stub, training = platform
    request = rpb.RecommendRequest(
        task_type=CLS, dataset_id="ds-new", preference=common_pb2.TRAINING_PREFERENCE_BALANCED
    )
    before = await stub.Recommend(request, metadata=as_project("alpha"))
    leader, other = before.suggestions[0].model_id, before.suggestions[1].model_id
    # Project alpha trained both on a similar dataset: the leader did badly, the other very well.
    training.tasks["alpha"] = [finished("t-1", leader, 0.35), finished("t-2", other, 0.99)]
    after = await stub.Recommend(request, metadata=as_project("alpha"))
    assert after.outcomes_considered == 2
    assert after.suggestions[0].model_id == other
    assert after.suggestions[0].outcomes_used >= 1 and "finished task(s)" in after.suggestions[0].rationale
    assert ("alpha", training_pb2.TASK_STATE_SUCCEEDED) in training.requests
    # Another project's outcomes do not leak into beta's ranking.
    beta = await stub.Recommend(request, metadata=as_project("beta"))
    assert beta.outcomes_considered == 0 and beta.suggestions[0].model_id == leader


async def test_bad_constraints_get_field_errors(platform):
    stub, _ = platform
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Recommend(
            rpb.RecommendRequest(
                task_type=CLS,
                max_training_seconds=float("nan"),
                max_latency_ms=-1,
                device_class="tpu",
                max_suggestions=21,
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(err.value)) == {
        "max_training_seconds",
        "max_latency_ms",
        "device_class",
        "max_suggestions",
    }
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Recommend(rpb.RecommendRequest(task_type=CLS, max_training_seconds=0.001))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "max_training_seconds excluded 4 of 4" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Recommend(rpb.RecommendRequest(task_type=CLS, dataset_id="missing"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
