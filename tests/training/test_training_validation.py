"""CreateTrainingTask validation and defaults, and the task store's event handling (SQLite, no network)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from kernel import contract, db, errors
from services.training import hyperparams
from services.training.domain import TrainingDomain, request_violations
from services.training.store import TaskStore
from trainyard.common.v1 import common_pb2 as C
from trainyard.dataset.v1 import dataset_pb2
from trainyard.events.v1 import events_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2
from trainyard.recommend.v1 import recommend_pb2, recommend_service_pb2
from trainyard.training.v1 import training_pb2 as T
from trainyard.training.v1 import training_service_pb2 as pb

MIGRATIONS = Path(__file__).parent.parent.parent / "services" / "training" / "migrations"


def test_every_bad_hyperparameter_is_reported():
    hp = C.Hyperparameters(
        epochs=1001,
        batch_size=5000,
        learning_rate=-1,
        backbone_lr_multiplier=11,
        weight_decay=2,
        image_size=8,
        optimizer=99,
        warmup_epochs=-1,
        label_smoothing=1.0,
    )
    bad = hyperparams.violations(hp)
    assert set(bad) == {
        f"hyperparameters.{f}"
        for f in (
            "epochs",
            "batch_size",
            "learning_rate",
            "backbone_lr_multiplier",
            "weight_decay",
            "image_size",
            "optimizer",
            "warmup_epochs",
            "label_smoothing",
        )
    }
    assert "1..1000" in bad["hyperparameters.epochs"]
    assert hyperparams.violations(C.Hyperparameters(learning_rate=math.nan)) == {
        "hyperparameters.learning_rate": hyperparams.violations(C.Hyperparameters(learning_rate=math.nan))[
            "hyperparameters.learning_rate"
        ]
    }
    assert "hyperparameters.warmup_epochs" in hyperparams.violations(C.Hyperparameters(epochs=2, warmup_epochs=3))


def test_zero_values_take_the_defaults():
    assert hyperparams.violations(C.Hyperparameters()) == {}
    hp = hyperparams.resolve(C.Hyperparameters(), default_image_size=256)
    assert (hp.epochs, hp.batch_size, hp.learning_rate, hp.image_size) == (10, 32, 1e-3, 256)
    assert hp.optimizer == C.OPTIMIZER_ADAMW and hp.backbone_lr_multiplier == 1.0 and hp.seed == 42
    kept = hyperparams.resolve(C.Hyperparameters(epochs=3, image_size=64, optimizer=C.OPTIMIZER_SGD), 224)
    assert (kept.epochs, kept.image_size, kept.optimizer) == (3, 64, C.OPTIMIZER_SGD)


def test_user_values_override_a_suggestion():
    merged = hyperparams.merge(C.Hyperparameters(epochs=3), C.Hyperparameters(epochs=20, learning_rate=0.01))
    assert merged.epochs == 3 and merged.learning_rate == 0.01


def test_request_violations_collects_all_fields():
    req = pb.CreateTrainingTaskRequest(
        name="x" * 129, description="d" * 4097, hyperparameters=C.Hyperparameters(batch_size=-1, epochs=-2)
    )
    bad = request_violations(req)
    assert set(bad) == {
        "name",
        "description",
        "task_type",
        "dataset_id",
        "model_selection",
        "hyperparameters.batch_size",
        "hyperparameters.epochs",
    }
    assert "name" in request_violations(pb.CreateTrainingTaskRequest(name="   "))


# -- the domain with injected collaborators -----------------------------------------------


def make_dataset(labels: bool = True) -> dataset_pb2.Dataset:
    version = dataset_pb2.DatasetVersion(
        id="v1",
        dataset_id="ds1",
        number=1,
        manifest=C.ObjectRef(bucket="trainyard-datasets", key="manifests/ds1/v1.json", sha256="ab" * 32),
        case_count=20,
        split_counts=dataset_pb2.SplitCounts(train=16, val=4),
        classes=[dataset_pb2.ClassInfo(index=1, name="dog"), dataset_pb2.ClassInfo(index=0, name="cat")],
        annotation_types=[C.ANNOTATION_TYPE_LABEL] if labels else [C.ANNOTATION_TYPE_BOX],
    )
    return dataset_pb2.Dataset(
        id="ds1",
        name="pets",
        task_types=[C.TASK_TYPE_CLASSIFICATION] if labels else [C.TASK_TYPE_DETECTION],
        latest_version=version,
    )


def make_model(model_id: str = "tv/mobilenet_v2.imagenet1k_v1", in_store: bool = True) -> modelzoo_pb2.Model:
    return modelzoo_pb2.Model(
        id=model_id,
        library="torchvision",
        architecture="mobilenet_v2",
        task_types=[C.TASK_TYPE_CLASSIFICATION],
        default_input_size=224,
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
        pretrained_num_classes=1000,
        weight_status=modelzoo_pb2.WEIGHT_STATUS_IN_STORE if in_store else modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE,
        weights=C.ObjectRef(bucket="trainyard-weights", key="weights/x.pth", sha256="cd" * 32, size_bytes=10)
        if in_store
        else None,
    )


class FakeDatasets:
    def __init__(self, *datasets: dataset_pb2.Dataset) -> None:
        self.datasets = {d.id: d for d in datasets}

    async def get_dataset(self, dataset_id):
        if dataset_id not in self.datasets:
            raise errors.NotFound(f"dataset {dataset_id!r} not found")
        return self.datasets[dataset_id]

    async def get_dataset_version(self, version_id):
        for d in self.datasets.values():
            if d.latest_version.id == version_id:
                return d.latest_version
        raise errors.NotFound(f"dataset version {version_id!r} not found")


class FakeZoo:
    """Models by id; `fetchable` maps an IMPORTABLE model to the IN_STORE model a pull makes of it
    (a pull of any other fails as a 404 at the source would)."""

    def __init__(self, *models: modelzoo_pb2.Model, fetchable: dict | None = None) -> None:
        self.models = {m.id: m for m in models}
        self.fetchable = dict(fetchable or {})
        self.pulled: list[str] = []

    async def get_model(self, model_id):
        if model_id not in self.models:
            raise errors.NotFound(f"model {model_id!r} not found in the zoo")
        return self.models[model_id]

    async def pull_weights(self, model_id):
        self.pulled.append(model_id)
        url = f"http://mirror.test/models/{model_id}.pth"
        if model_id not in self.fetchable:
            return modelzoo_pb2.WeightsPull(
                model_id=model_id,
                state=modelzoo_pb2.PULL_STATE_FAILED,
                error_code="FAILED_PRECONDITION",
                error_reason="WEIGHTS_NOT_FOUND_AT_SOURCES",
                error_message=f"{url}: HTTP 404 Not Found",
            )
        self.models[model_id] = self.fetchable[model_id]
        return modelzoo_pb2.WeightsPull(
            model_id=model_id, state=modelzoo_pb2.PULL_STATE_STORED, url=url, weights=self.models[model_id].weights
        )


class FakeRecommender:
    def __init__(self) -> None:
        self.requests = []

    async def recommend(self, request):
        self.requests.append(request)
        return recommend_service_pb2.RecommendResponse(
            suggestions=[
                recommend_pb2.Suggestion(
                    model_id="tv/mobilenet_v2.imagenet1k_v1",
                    transfer_strategy=C.TRANSFER_STRATEGY_LINEAR_PROBE,
                    hyperparameters=C.Hyperparameters(epochs=7, learning_rate=0.01),
                    rationale="small and fast on CPU",
                    factors=["preference fastest"],
                )
            ]
        )


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.jobs: list[tuple[str, bytes, str]] = []
        self.cancels: list[str] = []
        self.fail = fail

    async def publish_job(self, subject, payload, msg_id):
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("nats down")
        self.jobs.append((subject, payload, msg_id))

    async def publish_cancel(self, subject, payload):
        self.cancels.append(subject)


@pytest.fixture
def store(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path}/training.db")
    db.migrate(engine, MIGRATIONS, "alembic_version_training")
    yield TaskStore(engine)
    engine.dispose()


def make_domain(store, publisher=None, datasets=None, zoo=None):
    return TrainingDomain(
        store=store,
        datasets=datasets or FakeDatasets(make_dataset(), make_dataset_nolabels()),
        zoo=zoo or FakeZoo(make_model(), make_model("tv/resnet18.imagenet1k_v1", in_store=False)),
        recommender=FakeRecommender(),
        publisher=publisher or RecordingPublisher(),
    )


def make_dataset_nolabels():
    d = make_dataset(labels=False)
    d.id = "boxes"
    d.latest_version.dataset_id = "boxes"
    d.latest_version.id = "vb"
    return d


def good_request(**kw) -> pb.CreateTrainingTaskRequest:
    base = dict(
        name="first",
        task_type=C.TASK_TYPE_CLASSIFICATION,
        dataset_id="ds1",
        model_id="tv/mobilenet_v2.imagenet1k_v1",
        hyperparameters=C.Hyperparameters(epochs=2),
    )
    base.update(kw)
    return pb.CreateTrainingTaskRequest(**base)


async def test_zero_hyperparameters_take_the_models_recipe_on_the_dataset(store):
    """Two models with different recipes resolve an empty request differently; set values win; a model
    chosen by hand trains with the recipe auto select would give it on the same dataset
    (kernel.recipes, the recommender's suggestions use it too)."""
    from kernel import datasetstats, recipes

    cnn = make_model()
    cnn.family = "mobilenet_v2"
    vit = make_model("tv/vit_b_16.imagenet1k_v1")
    vit.family = "vit"
    domain = make_domain(store, zoo=FakeZoo(cnn, vit))
    empty = C.Hyperparameters()
    a = await domain.create(good_request(hyperparameters=empty))
    b = (await domain.create(good_request(model_id=vit.id, hyperparameters=empty))).hyperparameters
    expected = recipes.recipe(cnn, "classification", datasetstats.from_version(make_dataset().latest_version))
    assert a.transfer_strategy == expected.transfer_strategy == C.TRANSFER_STRATEGY_LINEAR_PROBE  # 16 images
    for name in ("optimizer", "learning_rate", "weight_decay", "batch_size", "epochs", "early_stopping_patience"):
        assert getattr(a.hyperparameters, name) == getattr(expected.hyperparameters, name), name
    a = a.hyperparameters
    assert (a.optimizer, a.backbone_lr_multiplier, a.warmup_epochs) == (C.OPTIMIZER_SGD, 1.0, 0)
    assert (b.optimizer, b.weight_decay, b.label_smoothing) == (C.OPTIMIZER_ADAMW, pytest.approx(0.05), 0.1)
    assert a.image_size == b.image_size == 224 and a.early_stopping_patience == recipes.EARLY_STOPPING_PATIENCE
    mine = await domain.create(good_request(model_id=vit.id, hyperparameters=C.Hyperparameters(learning_rate=3e-4)))
    assert mine.hyperparameters.learning_rate == pytest.approx(3e-4) and mine.hyperparameters.weight_decay == 0.05
    # a strategy asked for gets the recipe for that strategy: a random head learns at the full rate
    tuned = await domain.create(
        good_request(hyperparameters=empty, transfer_strategy=C.TRANSFER_STRATEGY_FINE_TUNE_ALL)
    )
    assert tuned.transfer_strategy == C.TRANSFER_STRATEGY_FINE_TUNE_ALL
    assert (tuned.hyperparameters.optimizer, tuned.hyperparameters.backbone_lr_multiplier) == (C.OPTIMIZER_ADAMW, 0.1)


async def test_create_resolves_defaults_and_queues_a_self_contained_job(store):
    publisher = RecordingPublisher()
    domain = make_domain(store, publisher)
    task = await domain.create(good_request())
    assert task.state == T.TASK_STATE_QUEUED
    assert task.hyperparameters.epochs == 2 and task.hyperparameters.image_size == 224
    # 16 training images: a quarter of them per batch, and the linear probe only (kernel.recipes)
    assert task.hyperparameters.batch_size == 4 and task.transfer_strategy == C.TRANSFER_STRATEGY_LINEAR_PROBE
    assert task.dataset_version_id == "v1"
    [(subject, payload, msg_id)] = publisher.jobs
    assert subject == "trainyard.jobs.classification" and msg_id == f"{task.id}-1"
    job = events_pb2.TrainingJob.FromString(payload)
    assert job.task_id == task.id and job.output_prefix == f"tasks/{task.id}/"
    assert job.model.weights.sha256 == "cd" * 32 and job.model.pretrained_num_classes == 1000
    assert list(job.dataset.class_names) == ["cat", "dog"]  # index order
    assert job.dataset.manifest.key == "manifests/ds1/v1.json"
    states = [e.task.state for e in store.events_after("default", task.id) if e.WhichOneof("event") == "task"]
    assert states == [T.TASK_STATE_PENDING, T.TASK_STATE_QUEUED]


async def test_invalid_requests_store_and_queue_nothing(store):
    publisher = RecordingPublisher()
    domain = make_domain(store, publisher)
    with pytest.raises(errors.InvalidArgument) as exc:
        await domain.create(good_request(name="", hyperparameters=C.Hyperparameters(learning_rate=20, image_size=4)))
    assert set(exc.value.violations) == {"name", "hyperparameters.learning_rate", "hyperparameters.image_size"}
    with pytest.raises(errors.NotFound, match="nope"):
        await domain.create(good_request(dataset_id="nope"))
    with pytest.raises(errors.NotFound, match="tv/unknown"):
        await domain.create(good_request(model_id="tv/unknown"))
    with pytest.raises(errors.FailedPrecondition, match="'boxes'.*no image-level class labels"):
        await domain.create(good_request(dataset_id="boxes"))
    # importable weights are pulled first; a failed pull fails the request, naming the URL and the choices
    with pytest.raises(errors.FailedPrecondition, match=r"mirror.test/models/.*404.*models pull.*--from-scratch"):
        await domain.create(good_request(model_id="tv/resnet18.imagenet1k_v1"))
    assert publisher.jobs == [] and store.list("default")[0] == []
    # from scratch needs no weights
    task = await domain.create(
        good_request(model_id="tv/resnet18.imagenet1k_v1", transfer_strategy=C.TRANSFER_STRATEGY_FROM_SCRATCH)
    )
    assert events_pb2.TrainingJob.FromString(publisher.jobs[0][1]).model.weights.key == ""
    assert task.state == T.TASK_STATE_QUEUED


async def test_fetchable_weights_are_pulled_before_the_task_is_queued_and_logged(store):
    publisher = RecordingPublisher()
    stored = make_model("tv/resnet18.imagenet1k_v1")
    zoo = FakeZoo(make_model(), make_model("tv/resnet18.imagenet1k_v1", in_store=False), fetchable={stored.id: stored})
    domain = make_domain(store, publisher, zoo=zoo)
    task = await domain.create(good_request(model_id=stored.id))
    assert zoo.pulled == [stored.id]
    job = events_pb2.TrainingJob.FromString(publisher.jobs[0][1])
    assert job.model.weights == stored.weights and task.pretrained_weights == stored.weights
    logs = [e.log for e in store.events_after("default", task.id) if e.log]
    assert len(logs) == 1 and "fetched before queueing" in logs[0] and "mirror.test/models/" in logs[0], logs
    # weights already in the store: no pull; from scratch: no pull either, and no weights in the job
    await domain.create(good_request(model_id=stored.id))
    await domain.create(good_request(model_id=stored.id, transfer_strategy=C.TRANSFER_STRATEGY_FROM_SCRATCH))
    assert zoo.pulled == [stored.id]


async def test_a_model_no_source_provides_fails_naming_the_pull_command(store):
    unavailable = make_model("tv/resnet18.imagenet1k_v1", in_store=False)
    unavailable.weight_status = modelzoo_pb2.WEIGHT_STATUS_UNAVAILABLE
    zoo = FakeZoo(unavailable)
    domain = make_domain(store, zoo=zoo)
    with pytest.raises(errors.FailedPrecondition) as err:
        await domain.create(good_request(model_id=unavailable.id))
    assert err.value.reason == "WEIGHTS_NOT_IN_STORE" and zoo.pulled == []
    for needed in (
        "trainyard models pull tv/resnet18.imagenet1k_v1",
        "TRANSFER_STRATEGY_FROM_SCRATCH",
        "--from-scratch",
    ):
        assert needed in err.value.message
    task = await domain.create(
        good_request(model_id=unavailable.id, transfer_strategy=C.TRANSFER_STRATEGY_FROM_SCRATCH)
    )
    assert task.transfer_strategy == C.TRANSFER_STRATEGY_FROM_SCRATCH and not task.HasField("pretrained_weights")


async def test_compute_resources_are_validated_stored_and_sent_to_the_trainer(store):
    publisher = RecordingPublisher()
    domain = make_domain(store, publisher)
    with pytest.raises(errors.InvalidArgument) as exc:
        await domain.create(good_request(resources=C.ComputeResources(processes_per_node=65, nodes=-1)))
    assert set(exc.value.violations) == {"resources.processes_per_node", "resources.nodes"}
    assert "1..64" in exc.value.violations["resources.processes_per_node"]
    with pytest.raises(errors.InvalidArgument) as exc:  # 64 x 64 processes
        await domain.create(good_request(resources=C.ComputeResources(processes_per_node=64, nodes=64)))
    assert "at most 256" in exc.value.violations["resources.processes_per_node"]
    # a global batch asked for must split evenly over 2 x 3 processes; the recipe's is rounded up to do so
    with pytest.raises(errors.InvalidArgument) as exc:
        await domain.create(
            good_request(
                resources=C.ComputeResources(processes_per_node=3, nodes=2),
                hyperparameters=C.Hyperparameters(epochs=2, batch_size=4),
            )
        )
    assert "batch_size 4" in exc.value.violations["resources.processes_per_node"]
    assert publisher.jobs == [] and store.list("default")[0] == []
    six = await domain.create(
        good_request(resources=C.ComputeResources(processes_per_node=3, nodes=2), hyperparameters=C.Hyperparameters())
    )
    assert six.hyperparameters.batch_size == 6
    publisher.jobs.clear()

    task = await domain.create(good_request(resources=C.ComputeResources(processes_per_node=4, nodes=2)))
    assert (task.resources.processes_per_node, task.resources.nodes) == (4, 2)
    assert store.get("default", task.id).resources == task.resources
    job = events_pb2.TrainingJob.FromString(publisher.jobs[0][1])
    assert (job.resources.processes_per_node, job.resources.nodes) == (4, 2)
    assert not job.HasField("assignment")
    single = await domain.create(good_request(name="single"))
    assert not single.HasField("resources") and contract.world_size(single.resources) == 1


async def test_auto_select_takes_the_top_suggestion_unless_the_user_set_values(store):
    domain = make_domain(store)
    req = good_request(hyperparameters=C.Hyperparameters(epochs=3))
    req.auto_select.CopyFrom(T.AutoSelect(data_type=C.DATA_TYPE_MEDICAL, preference=C.TRAINING_PREFERENCE_FASTEST))
    task = await domain.create(req)
    sent = domain.recommender.requests[0]
    assert (sent.task_type, sent.dataset_id, sent.data_type, sent.device_class) == (
        C.TASK_TYPE_CLASSIFICATION,
        "ds1",
        C.DATA_TYPE_MEDICAL,
        "cpu",
    )
    assert task.model_id == "tv/mobilenet_v2.imagenet1k_v1"
    assert task.transfer_strategy == C.TRANSFER_STRATEGY_LINEAR_PROBE
    assert task.hyperparameters.epochs == 3 and task.hyperparameters.learning_rate == pytest.approx(0.01)
    assert "small and fast" in task.selection_rationale
    assert task.auto_select.preference == C.TRAINING_PREFERENCE_FASTEST


async def test_request_id_is_idempotent_even_concurrently(store):
    publisher = RecordingPublisher()
    domain = make_domain(store, publisher)
    tasks = await asyncio.gather(*[domain.create(good_request(request_id="r-1")) for _ in range(4)])
    assert len({t.id for t in tasks}) == 1
    assert len(store.list("default")[0]) == 1
    assert {m for _, _, m in publisher.jobs} == {f"{tasks[0].id}-1"}  # JetStream dedups the duplicates


async def test_a_publish_failure_leaves_a_pending_task_a_retry_queues(store):
    failing = RecordingPublisher(fail=True)
    with pytest.raises(errors.Unavailable):
        await make_domain(store, failing).create(good_request(request_id="r-2"))
    [task] = store.list("default")[0]
    assert task.state == T.TASK_STATE_PENDING
    retried = await make_domain(store).create(good_request(request_id="r-2"))
    assert retried.id == task.id and retried.state == T.TASK_STATE_QUEUED


def trainer_event(task_id: str, attempt: int = 1, **kind) -> events_pb2.TrainerEvent:
    ev = events_pb2.TrainerEvent(task_id=task_id, attempt=attempt, trainer_node="node-a", **kind)
    ev.time.GetCurrentTime()
    return ev


async def test_trainer_events_apply_once_and_in_attempt_order(store):
    domain = make_domain(store)
    task = await domain.create(good_request())
    tid = task.id
    assert store.apply_trainer_event(trainer_event(tid, started=events_pb2.JobStarted(device="cpu")), 10)
    assert store.apply_trainer_event(trainer_event(tid, started=events_pb2.JobStarted(device="cpu")), 10) == []
    got = store.get("default", tid)
    assert got.state == T.TASK_STATE_RUNNING and got.trainer_node == "node-a" and got.attempt == 1
    store.apply_trainer_event(
        trainer_event(tid, progress=events_pb2.JobProgress(epoch=1, total_epochs=2, step=5, total_steps=10)), 11
    )
    assert store.get("default", tid).progress.fraction == pytest.approx(0.25)
    store.apply_trainer_event(trainer_event(tid, failed=events_pb2.JobFailed(reason="s3 timeout", retryable=True)), 12)
    assert store.get("default", tid).state == T.TASK_STATE_QUEUED
    store.apply_trainer_event(trainer_event(tid, 2, started=events_pb2.JobStarted(resumed_from_epoch=1)), 13)
    for seq, epoch in ((14, 1), (15, 2), (16, 2)):  # the same epoch again (a resume republishes) adds nothing
        store.apply_trainer_event(
            trainer_event(tid, 2, epoch_metrics=events_pb2.JobEpochMetrics(epoch=epoch, values={"val_top1": 0.5})), seq
        )
    metric_events = [e for e in store.events_after("default", tid) if e.HasField("epoch_metrics")]
    assert [e.epoch_metrics.epoch for e in metric_events] == [1, 2]
    # an epoch trained again (its checkpoint was lost) replaces the earlier values
    retrained = events_pb2.JobEpochMetrics(epoch=2, values={"val_top1": 0.75})
    assert store.apply_trainer_event(trainer_event(tid, 2, epoch_metrics=retrained), 20)
    assert [dict(e.values) for e in store.get("default", tid).epoch_metrics] == [{"val_top1": 0.5}, {"val_top1": 0.75}]
    # an event of the older attempt does not override the newer one
    assert store.apply_trainer_event(trainer_event(tid, 1, failed=events_pb2.JobFailed(reason="old")), 17) == []
    store.apply_trainer_event(
        trainer_event(
            tid,
            2,
            succeeded=events_pb2.JobSucceeded(
                metrics={"val_top1": 0.9},
                artifacts=[events_pb2.JobArtifact(name="model.pt", object=C.ObjectRef(bucket="b", key="k"))],
            ),
        ),
        18,
    )
    got = store.get("default", tid)
    assert got.state == T.TASK_STATE_SUCCEEDED and got.attempt == 2 and got.metrics["val_top1"] == 0.9
    assert [e.epoch for e in got.epoch_metrics] == [1, 2] and got.artifacts[0].name == "model.pt"
    assert got.end_time.seconds > 0 and got.progress.fraction == 1.0
    # final states stay final
    store.apply_trainer_event(trainer_event(tid, 3, failed=events_pb2.JobFailed(reason="late")), 19)
    assert store.get("default", tid).state == T.TASK_STATE_SUCCEEDED
    seqs = [e.sequence for e in store.events_after("default", tid)]
    assert seqs == list(range(1, len(seqs) + 1))
    with pytest.raises(errors.FailedPrecondition, match="already ended"):
        await domain.cancel(tid)


async def test_watch_replays_history_then_follows_until_final(store):
    domain = make_domain(store)
    task = await domain.create(good_request())
    seen = []

    async def watch():
        async for ev in domain.watch(task.id, from_start=True):
            seen.append(ev)

    watcher = asyncio.create_task(watch())
    async with asyncio.timeout(5):
        while len(seen) < 2:  # the history (pending, queued) is out: the watch follows from here
            await asyncio.sleep(0.01)
    await domain.apply_trainer_event(trainer_event(task.id, started=events_pb2.JobStarted()), 1)
    await domain.apply_trainer_event(trainer_event(task.id, log="hello"), 2)
    cancelled = await domain.cancel(task.id)
    await asyncio.wait_for(watcher, 5)
    assert cancelled.state == T.TASK_STATE_CANCELLED and domain.publisher.cancels == [
        f"trainyard.control.cancel.{task.id}"
    ]
    kinds = [e.WhichOneof("event") for e in seen]
    assert kinds == ["task", "task", "task", "log", "task"]
    assert [e.sequence for e in seen] == [1, 2, 3, 4, 5]
    assert seen[-1].task.state == T.TASK_STATE_CANCELLED
    with pytest.raises(errors.NotFound):
        await domain.get("missing")


async def test_list_pages_newest_first_with_state_filter(store):
    domain = make_domain(store)
    ids = [(await domain.create(good_request(name=f"t{i}"))).id for i in range(5)]
    await domain.cancel(ids[0])
    page, token = store.list("default", page_size=2)
    assert [t.id for t in page] == ids[::-1][:2] and token
    page2, token2 = store.list("default", page_size=2, page_token=token)
    page3, token3 = store.list("default", page_size=2, page_token=token2)
    assert [t.id for t in page + page2 + page3] == ids[::-1] and token3 == ""
    assert [t.id for t in store.list("default", state=T.TASK_STATE_CANCELLED)[0]] == [ids[0]]
    assert store.list("other-project")[0] == []
    with pytest.raises(errors.InvalidArgument) as exc:
        store.list("default", page_token="garbage!")
    assert "page_token" in exc.value.violations


async def test_a_suggestion_is_validated_used_whole_and_recorded(store):
    from trainyard.recommend.v1 import recommend_pb2

    publisher = RecordingPublisher()
    domain = make_domain(store, publisher)
    suggestion = recommend_pb2.Suggestion(
        model_id="tv/mobilenet_v2.imagenet1k_v1",
        transfer_strategy=C.TRANSFER_STRATEGY_LINEAR_PROBE,
        hyperparameters=C.Hyperparameters(epochs=4, batch_size=6, learning_rate=0.02, image_size=64),
        rank=2,
        data_type=C.DATA_TYPE_AERIAL,
        preference=C.TRAINING_PREFERENCE_FASTEST,
        rationale="#2 for preference 'fastest'",
        factors=["small and fast"],
    )
    bad = good_request(
        suggestion=recommend_pb2.Suggestion(model_id="", hyperparameters=C.Hyperparameters(epochs=-1)),
        data_type=C.DATA_TYPE_MEDICAL,
    )
    bad.suggestion.data_type = C.DATA_TYPE_AERIAL
    with pytest.raises(errors.InvalidArgument) as exc:
        await domain.create(bad)
    assert {"suggestion.model_id", "suggestion.hyperparameters.epochs", "data_type"} <= set(exc.value.violations)
    # a preview stores and queues nothing, and shows what the task would be
    plan = await domain.create(good_request(suggestion=suggestion, validate_only=True, request_id="p-1"))
    assert not plan.id and plan.hyperparameters.learning_rate == pytest.approx(0.02)
    assert store.list("default")[0] == [] and publisher.jobs == []
    task = await domain.create(good_request(suggestion=suggestion, hyperparameters=C.Hyperparameters(epochs=1)))
    assert task.transfer_strategy == C.TRANSFER_STRATEGY_LINEAR_PROBE and task.suggestion == suggestion
    hp = task.hyperparameters
    assert (hp.epochs, hp.batch_size, hp.image_size) == (1, 6, 64) and hp.learning_rate == pytest.approx(0.02)
    assert task.data_type == C.DATA_TYPE_AERIAL and task.mode == T.TRAINING_MODE_SELECTION_GENERAL
    assert "#2 for preference 'fastest'" in task.selection_rationale and "- small and fast" in task.selection_rationale
    assert store.get("default", task.id).suggestion == suggestion  # stored, not only returned
    # retraining its trained model inherits what the images showed
    assert store.data_type_of("default", task.id) == C.DATA_TYPE_AERIAL
