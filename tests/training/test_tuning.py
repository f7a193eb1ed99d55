"""Automatic hyperparameter search with the real services, NATS, S3 and SQL and in-process trainers:
a four-trial search on two trainers picks the best trial and its model joins the zoo; a median pruner
stops a clearly bad trial early; bad specs get field violations; a cancelled search stops its trials;
a time budget ends a search; the study lives in SQL, so a restarted training service carries on
without losing a trial; a trainer killed mid-trial loses nothing (the trial's job is redelivered)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from test_trainer_integration import trainer_settings
from test_training_service import MOBILENET, make_dataset, request, stack  # noqa: F401 - fixture

from kernel.errors import field_violations
from services.dataset.app import start as start_dataset
from services.modelzoo.app import start as start_modelzoo
from services.training import search_space
from services.training.app import start as start_training
from trainer.worker import Worker
from trainyard.common.v1 import common_pb2 as C
from trainyard.dataset.v1 import dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mpb
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
from trainyard.training.v1 import training_pb2 as T
from trainyard.training.v1 import training_service_pb2 as pb
from trainyard.training.v1 import training_service_pb2_grpc

pytestmark = pytest.mark.integration

TINY = C.Hyperparameters(epochs=2, batch_size=8, image_size=32, early_stopping_patience=0)


async def get(training, task_id: str) -> T.TrainingTask:
    return (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task_id))).task


async def trials_of(training, task_id: str) -> list[T.Trial]:
    return list((await training.ListTrials(pb.ListTrialsRequest(task_id=task_id))).trials)


async def until_ended(training, task_id: str, timeout: float = 150.0) -> T.TrainingTask:
    async with asyncio.timeout(timeout):
        while True:
            task = await get(training, task_id)
            if task.state in (T.TASK_STATE_SUCCEEDED, T.TASK_STATE_FAILED, T.TASK_STATE_CANCELLED):
                return task
            await asyncio.sleep(0.3)


class Trainers:
    """In-process trainer nodes, each pulling jobs from the shared queue."""

    def __init__(self, settings, tmp_path, count: int = 1) -> None:
        self.workers = []
        for i in range(count):
            ts = trainer_settings(settings, tmp_path / f"node{i}").model_copy(update={"trainer_name": f"node-{i}"})
            self.workers.append(Worker(settings=ts))
        self.runners: list[asyncio.Task] = []

    async def __aenter__(self) -> Trainers:
        for worker in self.workers:
            await worker.connect()
            self.runners.append(asyncio.create_task(worker.run()))
        return self

    async def __aexit__(self, *exc) -> None:
        for worker in self.workers:
            await worker.shutdown()
        await asyncio.wait_for(asyncio.gather(*self.runners, return_exceptions=True), 60)
        for worker in self.workers:
            await worker.close()

    def outcomes(self) -> dict[str, str]:
        return {task_id: outcome for w in self.workers for task_id, outcome in w.outcomes}


def search_request(dataset_id: str, search: T.HyperparameterSearch, **kw) -> pb.CreateTrainingTaskRequest:
    # every epoch trains (no probe, no early stopping), so the trials' epoch counts are the searched ones
    kw.setdefault("transfer_strategy", C.TRANSFER_STRATEGY_FINE_TUNE_ALL)
    return request(dataset_id, name="search", search=search, **kw)


async def test_four_trial_search_picks_the_best_and_registers_it(stack, settings, tmp_path):  # noqa: F811
    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "tune-shapes")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    search = T.HyperparameterSearch(
        method=T.SEARCH_METHOD_RANDOM,
        parameters=[T.SearchParameter(name="learning_rate", low=1e-4, high=3e-2, log=True)],
        max_trials=4,
        parallelism=2,
        seed=7,
    )
    task = (await training.CreateTrainingTask(search_request(dataset_id, search, hyperparameters=TINY))).task
    assert task.state == T.TASK_STATE_QUEUED
    assert task.search.objective_metric == "val_top1"
    assert task.search.direction == T.OBJECTIVE_DIRECTION_MAXIMIZE
    queued = await trials_of(training, task.id)
    assert [t.number for t in queued] == [0, 1]  # parallelism 2: two trials on the queue at once
    assert all(t.state == T.TRIAL_STATE_QUEUED for t in queued)

    async with Trainers(settings, tmp_path, count=2) as trainers:
        done = await until_ended(training, task.id)
    assert done.state == T.TASK_STATE_SUCCEEDED, done.failure_reason

    trials = await trials_of(training, task.id)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == T.TRIAL_STATE_COMPLETE for t in trials), [(t.state, t.reason) for t in trials]
    assert len({t.task_id for t in trials}) == 4
    rates = [next(p.number for p in t.parameters if p.name == "learning_rate") for t in trials]
    assert all(1e-4 <= r <= 3e-2 for r in rates) and len(set(rates)) == 4
    for t, rate in zip(trials, rates, strict=True):
        assert t.hyperparameters.learning_rate == pytest.approx(rate)
        assert t.hyperparameters.epochs == 2 and len(t.epoch_metrics) == 2
        assert t.objective_value == pytest.approx(t.metrics["val_top1"])
    best = max(trials, key=lambda t: (t.objective_value, -t.number))
    assert [t.number for t in trials if t.best] == [best.number]
    # the search's result is the best trial's
    assert dict(done.metrics) == pytest.approx(dict(best.metrics))
    best_task = await get(training, best.task_id)
    assert {a.name: a.object.key for a in done.artifacts} == {a.name: a.object.key for a in best_task.artifacts}
    assert done.hyperparameters.learning_rate == pytest.approx(best.hyperparameters.learning_rate)
    # and its evaluation (on the val split: the dataset has no test split) is the best trial's
    assert done.evaluation_id and done.evaluation_id == best_task.evaluation_id
    assert done.evaluation.case_count > 0 and done.evaluation.split_note.startswith("val split")
    # trials are separate jobs spread over the trainers; they do not crowd the task list
    nodes = {(await get(training, t.task_id)).trainer_node for t in trials}
    assert nodes == {"node-0", "node-1"}
    assert set(trainers.outcomes().values()) == {"succeeded"}
    listed = (await training.ListTrainingTasks(pb.ListTrainingTasksRequest())).tasks
    assert [t.id for t in listed] == [task.id]
    trial_task = await get(training, trials[0].task_id)
    assert trial_task.search_task_id == task.id and trial_task.trial_number == 0
    # the best model joined the zoo as the search's trained model; the trials did not
    model = (await zoo.GetModel(mpb.GetModelRequest(model_id=f"trained/{task.id}"))).model
    assert model.task_id == task.id and model.metrics["val_top1"] == pytest.approx(best.metrics["val_top1"])
    with pytest.raises(grpc.RpcError) as exc:
        await zoo.GetModel(mpb.GetModelRequest(model_id=f"trained/{trials[0].task_id}"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    # the search's history tells the story
    logs = []
    async for r in training.WatchTrainingTask(pb.WatchTrainingTaskRequest(task_id=task.id, from_start=True)):
        if r.event.WhichOneof("event") == "log":
            logs.append(r.event.log)
    assert sum("queued as task" in line for line in logs) == 4
    assert any(line.startswith(f"search done (4 complete): best trial {best.number}") for line in logs), logs
    # paging
    page = await training.ListTrials(pb.ListTrialsRequest(task_id=task.id, page_size=3))
    rest = await training.ListTrials(pb.ListTrialsRequest(task_id=task.id, page_token=page.next_page_token))
    assert [t.number for t in page.trials] + [t.number for t in rest.trials] == [0, 1, 2, 3]
    assert not rest.next_page_token
    # a search cannot continue (its best trial's task can)
    with pytest.raises(grpc.RpcError) as exc:
        await training.ContinueTrainingTask(pb.ContinueTrainingTaskRequest(task_id=task.id, additional_epochs=1))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_median_pruner_stops_a_diverging_trial_early(stack, settings, tmp_path):  # noqa: F811
    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "tune-prune")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    epochs = 4
    # grid in order: two sane learning rates complete first, then one that wrecks the pretrained network
    search = T.HyperparameterSearch(
        method=T.SEARCH_METHOD_GRID,
        parameters=[T.SearchParameter(name="learning_rate", choices=["0.001", "0.002", "2"])],
        objective_metric="val_loss",
        pruning=T.Pruning(method=T.PRUNING_METHOD_MEDIAN, warmup_epochs=1, startup_trials=2),
    )
    hp = C.Hyperparameters(
        epochs=epochs, batch_size=8, image_size=32, optimizer=C.OPTIMIZER_SGD, early_stopping_patience=0
    )
    task = (await training.CreateTrainingTask(search_request(dataset_id, search, hyperparameters=hp))).task
    assert task.search.max_trials == 3 and task.search.direction == T.OBJECTIVE_DIRECTION_MINIMIZE
    async with Trainers(settings, tmp_path) as trainers:
        done = await until_ended(training, task.id)
    assert done.state == T.TASK_STATE_SUCCEEDED, done.failure_reason
    trials = await trials_of(training, task.id)
    assert [t.state for t in trials] == [T.TRIAL_STATE_COMPLETE, T.TRIAL_STATE_COMPLETE, T.TRIAL_STATE_PRUNED], [
        (t.state, t.reason, [dict(e.values).get("val_loss") for e in t.epoch_metrics]) for t in trials
    ]
    bad = trials[2]
    assert 2 <= bad.pruned_epoch < epochs and "pruned after epoch" in bad.reason
    # its job was stopped on the trainer before its last epoch, through the ordinary cancel path
    assert trainers.outcomes()[bad.task_id] == "cancelled"
    bad_task = await get(training, bad.task_id)
    assert bad_task.state == T.TASK_STATE_CANCELLED and len(bad_task.epoch_metrics) < epochs
    best = min(trials[:2], key=lambda t: t.objective_value)
    assert best.best and dict(done.metrics) == pytest.approx(dict(best.metrics))


async def test_bad_search_specs_get_field_violations(stack):  # noqa: F811
    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "tune-bad")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    bad = T.HyperparameterSearch(
        max_trials=2000,
        parallelism=-1,
        objective_metric="val_map",
        parameters=[
            T.SearchParameter(name="learning_rate", low=1e-3, high=1e-4),
            T.SearchParameter(name="weight_decay", low=-1, high=0.1),
            T.SearchParameter(name="epochs", low=1, high=3),
            T.SearchParameter(name="optimizer", choices=["sgd", "lion"]),
            T.SearchParameter(name="batch_size", low=8, high=64, log=True, step=8),
        ],
        pruning=T.Pruning(method=T.PRUNING_METHOD_SUCCESSIVE_HALVING, reduction_factor=1, warmup_epochs=2),
    )
    with pytest.raises(grpc.RpcError) as exc:
        await training.CreateTrainingTask(search_request(dataset_id, bad, hyperparameters=TINY))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(exc.value)) == {
        "search.max_trials",
        "search.parallelism",
        "search.objective_metric",
        "search.parameters[0].high",
        "search.parameters[1].low",
        "search.parameters[2].name",
        "search.parameters[3].choices[1]",
        "search.parameters[4].step",
        "search.pruning.reduction_factor",
        "search.pruning.warmup_epochs",
    }
    # a grid needs discrete values; a float range without a step has none
    grid = T.HyperparameterSearch(
        method=T.SEARCH_METHOD_GRID, parameters=[T.SearchParameter(name="weight_decay", low=0.0, high=0.1)]
    )
    with pytest.raises(grpc.RpcError) as exc:
        await training.CreateTrainingTask(search_request(dataset_id, grid, hyperparameters=TINY))
    assert set(field_violations(exc.value)) == {"search.parameters[0].step"}
    # a default-range parameter of a grid is refused once resolved (the default is a log range)
    grid = T.HyperparameterSearch(method=T.SEARCH_METHOD_GRID, parameters=[T.SearchParameter(name="learning_rate")])
    with pytest.raises(grpc.RpcError) as exc:
        await training.CreateTrainingTask(search_request(dataset_id, grid, hyperparameters=TINY))
    assert set(field_violations(exc.value)) == {"search.parameters[0]"}
    assert not (await training.ListTrainingTasks(pb.ListTrainingTasksRequest())).tasks  # nothing stored

    # the schema says what may be searched, its ranges and the model's defaults
    schema = await training.GetHyperparameterSchema(pb.GetHyperparameterSchemaRequest(model_id=MOBILENET))
    specs = {p.name: p for p in schema.parameters}
    assert specs["learning_rate"].searchable and specs["learning_rate"].minimum_exclusive
    assert specs["learning_rate"].default_search.log and specs["learning_rate"].default_search.low > 0
    assert not specs["epochs"].searchable and specs["epochs"].maximum == 1000
    assert specs["optimizer"].choices == ["sgd", "adam", "adamw"] and specs["optimizer"].default_choice == "adamw"
    assert specs["image_size"].default_number == 224
    assert schema.default_objective_metric == "val_top1" and "val_loss" in schema.objective_metrics
    with pytest.raises(grpc.RpcError) as exc:
        await training.GetHyperparameterSchema(pb.GetHyperparameterSchemaRequest(model_id="no/such-model"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    # every field of Hyperparameters has a spec
    assert set(specs) == {f.name for f in C.Hyperparameters.DESCRIPTOR.fields} == set(search_space.PARAMS)


async def test_cancelling_a_search_cancels_its_trials(stack, settings, tmp_path):  # noqa: F811
    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "tune-cancel")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    search = T.HyperparameterSearch(max_trials=5, parallelism=2)
    task = (await training.CreateTrainingTask(search_request(dataset_id, search, hyperparameters=TINY))).task
    assert [p.name for p in task.search.parameters] == ["learning_rate", "weight_decay", "label_smoothing"]
    trials = await trials_of(training, task.id)
    assert len(trials) == 2
    cancelled = (await training.CancelTrainingTask(pb.CancelTrainingTaskRequest(task_id=task.id))).task
    assert cancelled.state == T.TASK_STATE_CANCELLED
    trials = await trials_of(training, task.id)
    assert [t.state for t in trials] == [T.TRIAL_STATE_CANCELLED] * 2
    for t in trials:
        assert (await get(training, t.task_id)).state == T.TASK_STATE_CANCELLED
    # the queued jobs are skipped by the trainer that pulls them (the queue is left clean)
    async with Trainers(settings, tmp_path) as trainers:
        async with asyncio.timeout(60):
            while not {t.task_id for t in trials} <= set(trainers.outcomes()):
                await asyncio.sleep(0.2)
    assert {trainers.outcomes()[t.task_id] for t in trials} == {"skipped-cancelled"}
    assert len(await trials_of(training, task.id)) == 2  # no trial was started after the cancel


@pytest.fixture
async def services(settings, zoo_settings):
    """Dataset and zoo services; the test starts and stops the training service itself."""
    dataset = await start_dataset(settings)
    zoo = await start_modelzoo(zoo_settings)
    channels = [grpc.aio.insecure_channel(s.address) for s in (dataset, zoo)]
    try:
        yield (
            settings.model_copy(update={"dataset_address": dataset.address, "modelzoo_address": zoo.address}),
            dataset_service_pb2_grpc.DatasetServiceStub(channels[0]),
            modelzoo_service_pb2_grpc.ModelZooServiceStub(channels[1]),
        )
    finally:
        for channel in channels:
            await channel.close()
        for running in (zoo, dataset):
            await running.stop()


async def test_search_survives_a_training_service_restart(services, settings, tmp_path):
    wired, datasets, zoo = services
    dataset_id = await make_dataset(datasets, "tune-restart")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    search = T.HyperparameterSearch(
        method=T.SEARCH_METHOD_TPE,
        parameters=[
            T.SearchParameter(name="learning_rate", low=1e-4, high=1e-2, log=True),
            T.SearchParameter(name="optimizer", choices=["sgd", "adamw"]),
        ],
        max_trials=3,
        parallelism=1,
    )

    first = await start_training(wired)
    channel = grpc.aio.insecure_channel(first.address)
    training = training_service_pb2_grpc.TrainingServiceStub(channel)
    task = (await training.CreateTrainingTask(search_request(dataset_id, search, hyperparameters=TINY))).task
    async with Trainers(settings, tmp_path) as trainers:
        # the service goes away while trial 0 trains: its events wait in JetStream
        async with asyncio.timeout(60):
            while True:
                trials = await trials_of(training, task.id)
                if trials and (await get(training, trials[0].task_id)).state == T.TASK_STATE_RUNNING:
                    break
                await asyncio.sleep(0.1)
        await channel.close()
        await first.stop()
        second = await start_training(wired)
        channel = grpc.aio.insecure_channel(second.address)
        training = training_service_pb2_grpc.TrainingServiceStub(channel)
        try:
            done = await until_ended(training, task.id)
            trials = await trials_of(training, task.id)
        finally:
            await channel.close()
            await second.stop()
    assert done.state == T.TASK_STATE_SUCCEEDED, done.failure_reason
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == T.TRIAL_STATE_COMPLETE for t in trials), [(t.state, t.reason) for t in trials]
    assert sorted(trainers.outcomes()) == sorted(t.task_id for t in trials)  # each trial trained once
    best = max(trials, key=lambda t: t.objective_value)
    assert best.best and dict(done.metrics) == pytest.approx(dict(best.metrics))


async def test_time_budget_ends_the_search(stack, settings, tmp_path):  # noqa: F811
    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "tune-time")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    # no trainer runs: the budget runs out while trial 0 waits on the queue
    search = T.HyperparameterSearch(max_trials=3, max_duration_seconds=1)
    task = (await training.CreateTrainingTask(search_request(dataset_id, search, hyperparameters=TINY))).task
    done = await until_ended(training, task.id, timeout=30)
    assert done.state == T.TASK_STATE_FAILED and done.failure_reason.startswith("no trial completed"), done
    trials = await trials_of(training, task.id)
    assert [(t.state, t.reason) for t in trials] == [(T.TRIAL_STATE_CANCELLED, "the search's time budget was spent")]
    assert (await get(training, trials[0].task_id)).state == T.TASK_STATE_CANCELLED
    async with Trainers(settings, tmp_path) as trainers:  # the cancelled job leaves the queue unrun
        async with asyncio.timeout(60):
            while trials[0].task_id not in trainers.outcomes():
                await asyncio.sleep(0.2)
    assert trainers.outcomes()[trials[0].task_id] == "skipped-cancelled"


@pytest.mark.slow
async def test_search_survives_a_trainer_being_killed(stack, settings, tmp_path):  # noqa: F811
    import collections
    import signal
    import subprocess
    import sys

    from test_trainer_kill import ACK_WAIT, REPO, drop_consumer, trainer_env

    from kernel import objectstore

    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "tune-kill")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    await drop_consumer(settings)
    search = T.HyperparameterSearch(
        method=T.SEARCH_METHOD_GRID,
        parameters=[T.SearchParameter(name="learning_rate", choices=["0.001", "0.003"])],
    )
    hp = C.Hyperparameters(epochs=3, batch_size=4, image_size=32, early_stopping_patience=0)
    proc = None
    try:
        task = (await training.CreateTrainingTask(search_request(dataset_id, search, hyperparameters=hp))).task
        first = (await trials_of(training, task.id))[0]
        s3 = objectstore.make_client(settings)
        ckpt = f"tasks/{first.task_id}/checkpoints/last.pt"
        log = (tmp_path / "doomed.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainer"],
            env=trainer_env(settings, tmp_path),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        async with asyncio.timeout(120):  # trial 0 has a checkpoint and its first epoch's metrics
            while True:
                assert proc.poll() is None, (tmp_path / "doomed.log").read_text()[-3000:]
                got = await get(training, first.task_id)
                if got.epoch_metrics and objectstore.exists(s3, objectstore.ARTIFACTS_BUCKET, ckpt):
                    break
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        log.close()
        assert got.trainer_node == "doomed-trainer"
        survivor = trainer_settings(settings, tmp_path).model_copy(
            update={"trainer_name": "survivor", "trainer_ack_wait": ACK_WAIT, "trainer_task_types": ["classification"]}
        )
        async with Worker(settings=survivor) as worker:
            runner = asyncio.create_task(worker.run())
            try:
                done = await until_ended(training, task.id, timeout=150)
            finally:
                await worker.shutdown()
                await asyncio.wait_for(runner, 60)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(30)
        await drop_consumer(settings, purge=True)
    assert done.state == T.TASK_STATE_SUCCEEDED, done.failure_reason
    trials = await trials_of(training, task.id)
    assert [(t.number, t.state) for t in trials] == [(0, T.TRIAL_STATE_COMPLETE), (1, T.TRIAL_STATE_COMPLETE)]
    resumed = await get(training, trials[0].task_id)
    assert resumed.trainer_node == "survivor" and resumed.attempt >= 2  # the same trial, redelivered
    assert [m.epoch for m in resumed.epoch_metrics] == [1, 2, 3]
    names = collections.Counter(a.name for a in resumed.artifacts)
    assert max(names.values()) == 1
    assert dict(collections.Counter(t for t, _ in worker.outcomes)) == {t.task_id: 1 for t in trials}


# -- the decisions, without servers ------------------------------------------------------------------


def _run_sequentially(search: T.HyperparameterSearch, curves: list[list[float]]) -> list:
    """Trials one after another as the tuner drives them: report each epoch, ask the pruner, store its attrs."""
    from services.training import tuning

    trials: list[tuning.TrialRecord] = []
    for number, curve in enumerate(curves):
        trial = tuning.TrialRecord(number, f"t{number}", T.TRIAL_STATE_RUNNING, tuning.ask(search, trials, number), {})
        trials.append(trial)
        for epoch, value in enumerate(curve, start=1):
            trial.intermediate[epoch] = value
            prune, trial.system_attrs = tuning.should_prune(search, trials, number)
            if prune:
                trial.state, trial.pruned_epoch = T.TRIAL_STATE_PRUNED, epoch
                break
        else:
            trial.state, trial.value = T.TRIAL_STATE_COMPLETE, curve[-1]
    return trials


def test_pruners_median_and_successive_halving():
    good = [[0.5, 0.6, 0.7, 0.8], [0.55, 0.65, 0.75, 0.85], [0.6, 0.7, 0.8, 0.9]]
    bad = [0.1, 0.1, 0.1, 0.1]
    median = search_space.resolve(
        T.HyperparameterSearch(
            method=T.SEARCH_METHOD_RANDOM,
            pruning=T.Pruning(method=T.PRUNING_METHOD_MEDIAN, warmup_epochs=1, startup_trials=2),
        ),
        C.TASK_TYPE_CLASSIFICATION,
        None,
    )
    trials = _run_sequentially(median, [*good, bad])
    assert [t.state for t in trials] == [T.TRIAL_STATE_COMPLETE] * 3 + [T.TRIAL_STATE_PRUNED]
    assert trials[3].pruned_epoch == 2  # the first epoch after the warm-up
    # no startup trials completed yet: nothing is pruned, however bad
    assert _run_sequentially(median, [bad, *good])[0].state == T.TRIAL_STATE_COMPLETE

    asha = search_space.resolve(
        T.HyperparameterSearch(
            method=T.SEARCH_METHOD_RANDOM,
            pruning=T.Pruning(method=T.PRUNING_METHOD_SUCCESSIVE_HALVING, min_epochs=1, reduction_factor=2),
        ),
        C.TASK_TYPE_CLASSIFICATION,
        None,
    )
    trials = _run_sequentially(asha, [*good, bad])
    assert [t.state for t in trials[:3]] == [T.TRIAL_STATE_COMPLETE] * 3
    assert trials[3].state == T.TRIAL_STATE_PRUNED and trials[3].pruned_epoch == 1
    assert "completed_rung_0" in trials[0].system_attrs  # the rungs live in the stored trials


def test_ask_is_reproducible_and_best_follows_the_direction():
    from services.training import tuning

    search = search_space.resolve(T.HyperparameterSearch(method=T.SEARCH_METHOD_TPE), C.TASK_TYPE_CLASSIFICATION, None)
    first = [tuning.ask(search, [], n) for n in range(3)]
    assert first == [tuning.ask(search, [], n) for n in range(3)]  # same seed and number: same values
    assert len({p["learning_rate"] for p in first}) == 3
    for p in first:
        assert 1e-4 <= p["learning_rate"] <= 1e-2 and 0 <= p["label_smoothing"] <= 0.2
    hp = search_space.apply(TINY, {"learning_rate": 0.01, "optimizer": "sgd", "augmentation": "strong"})
    assert (hp.learning_rate, hp.optimizer, hp.augmentation, hp.epochs) == (0.01, C.OPTIMIZER_SGD, "strong", 2)
    records = [
        tuning.TrialRecord(0, "a", T.TRIAL_STATE_COMPLETE, {}, {}, value=0.3),
        tuning.TrialRecord(1, "b", T.TRIAL_STATE_COMPLETE, {}, {}, value=0.9),
        tuning.TrialRecord(2, "c", T.TRIAL_STATE_PRUNED, {}, {1: 5.0}, value=5.0),
    ]
    assert tuning.best_trial(records, maximize=True).number == 1
    assert tuning.best_trial(records, maximize=False).number == 0
    grid = search_space.resolve(
        T.HyperparameterSearch(
            method=T.SEARCH_METHOD_GRID,
            parameters=[
                T.SearchParameter(name="batch_size", low=8, high=24, step=8),
                T.SearchParameter(name="optimizer", choices=["sgd", "adamw"]),
            ],
        ),
        C.TASK_TYPE_CLASSIFICATION,
        None,
    )
    assert grid.max_trials == 6
    assert [tuning.ask(grid, [], n) for n in range(6)] == [
        {"batch_size": b, "optimizer": o} for b in (8, 16, 24) for o in ("sgd", "adamw")
    ]


def test_one_replica_at_a_time_holds_a_study(database_url):
    """Two training-service replicas share the database: the study's lease lets one move it on."""
    from pathlib import Path

    from kernel import db
    from services.training import tuning
    from services.training.models import TrainingStudyRow, TrainingTaskRow
    from services.training.store import TaskStore, utcnow

    engine = db.make_engine(database_url)
    db.migrate(engine, Path(tuning.__file__).parent / "migrations", "alembic_version_training")
    store = tuning.StudyStore(TaskStore(engine))
    from sqlmodel import Session

    with Session(engine) as session:
        session.add(
            TrainingTaskRow(id="s1", project="p", name="s", task_type=1, dataset_id="d", state=1, create_time=utcnow())
        )
        session.flush()
        session.add(TrainingStudyRow(task_id="s1", objective_metric="val_top1", maximize=True, max_trials=2,
                                     parallelism=1, create_time=utcnow()))  # fmt: skip
        session.commit()
    try:
        assert store.acquire("s1", "a", 60) is True
        assert store.acquire("s1", "a", 60) is True  # renewed by its holder
        assert store.acquire("s1", "b", 60) is False
        store.release("s1", "a")
        assert store.acquire("s1", "b", -1) is True  # b takes it; a lease that has run out...
        assert store.acquire("s1", "a", 60) is True  # ...is taken over (a replica died mid-step)
        assert store.acquire("nope", "a", 60) is None
    finally:
        engine.dispose()


def test_every_default_range_is_valid():
    """A parameter named without a range takes its default one, valid even for one-epoch trials."""
    from services.training import hyperparams

    hp = hyperparams.resolve(C.Hyperparameters(epochs=1), 224)
    for task_type in search_space.PRIMARY_METRIC:
        names = [n for n, p in search_space.PARAMS.items() if p.searchable]
        if task_type != C.TASK_TYPE_CLASSIFICATION:
            names.remove("label_smoothing")
        spec = T.HyperparameterSearch(parameters=[T.SearchParameter(name=n) for n in names])
        resolved = search_space.resolve(spec, task_type, None)
        assert not search_space.violations(resolved, task_type, hp), task_type
        assert all(p.choices or p.high > p.low for p in resolved.parameters)


def test_a_word_given_as_a_numeric_choice_says_what_the_parameter_takes():
    # `trainyard train start --search ... --param learning_rate=abc` sends "abc" as a choice
    spec = T.HyperparameterSearch(
        parameters=[T.SearchParameter(name="learning_rate", choices=["abc"]), T.SearchParameter(name="epochs")]
    )
    bad = search_space.violations(spec, C.TASK_TYPE_CLASSIFICATION, C.Hyperparameters(epochs=3))
    assert bad["search.parameters[0].choices[0]"] == (
        "'abc' is not a number: learning_rate takes numbers as choices, or a range low:high"
    )
