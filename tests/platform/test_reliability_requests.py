"""Malformed CreateTrainingTask requests: every field out of range is INVALID_ARGUMENT naming that field,
and nothing is stored or queued (domain with a real SQLite task store; no network)."""

from __future__ import annotations

import math
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from test_training_validation import (
    FakeDatasets,
    FakeRecommender,
    FakeZoo,
    RecordingPublisher,
    make_dataset,
    make_model,
)

from kernel import db, errors
from services.training.domain import MAX_DESCRIPTION, MAX_NAME, MAX_REQUEST_ID, TrainingDomain
from services.training.hyperparams import MAX_TIME_BUDGET_S
from services.training.store import TaskStore
from trainyard.common.v1 import common_pb2 as C
from trainyard.training.v1 import training_service_pb2 as pb

MIGRATIONS = Path(__file__).parent.parent.parent / "services" / "training" / "migrations"


def base(**kw) -> pb.CreateTrainingTaskRequest:
    req = pb.CreateTrainingTaskRequest(
        name="ok",
        task_type=C.TASK_TYPE_CLASSIFICATION,
        dataset_id="ds1",
        model_id="tv/mobilenet_v2.imagenet1k_v1",
        hyperparameters=C.Hyperparameters(epochs=2),
        request_id="r-1",
    )
    for k, v in kw.items():
        setattr(req, k, v)
    return req


def hp(**kw) -> pb.CreateTrainingTaskRequest:
    req = base()
    for k, v in kw.items():
        setattr(req.hyperparameters, k, v)
    return req


def search(pruning: dict | None = None, **kw) -> pb.CreateTrainingTaskRequest:
    req = base()
    req.search.SetInParent()
    for k, v in kw.items():
        setattr(req.search, k, v)
    for k, v in (pruning or {}).items():
        setattr(req.search.pruning, k, v)
    return req


def resources(**kw) -> pb.CreateTrainingTaskRequest:
    req = base()
    for k, v in kw.items():
        setattr(req.resources, k, v)
    return req


def suggested(**kw) -> pb.CreateTrainingTaskRequest:
    req = base(model_id="")
    req.suggestion.model_id = "tv/mobilenet_v2.imagenet1k_v1"
    for k, v in kw.items():
        if k == "hyperparameters":
            req.suggestion.hyperparameters.CopyFrom(v)
        else:
            setattr(req.suggestion, k, v)
    return req


def auto(**kw) -> pb.CreateTrainingTaskRequest:
    req = base()
    for k, v in kw.items():
        setattr(req.auto_select, k, v)
    return req


# (field violation expected, request)
CASES = [
    ("name", base(name="")),
    ("name", base(name="   ")),
    ("name", base(name="n" * (MAX_NAME + 1))),
    ("description", base(description="d" * (MAX_DESCRIPTION + 1))),
    ("task_type", base(task_type=C.TASK_TYPE_UNSPECIFIED)),
    ("task_type", base(task_type=999)),
    ("dataset_id", base(dataset_id="")),
    ("model_id", base(model_id="")),
    ("preset_id", base(preset_id=" ")),
    ("auto_select.data_type", auto(data_type=999)),
    ("auto_select.preference", auto(preference=-3)),
    ("transfer_strategy", base(transfer_strategy=77)),
    ("data_type", base(data_type=999)),
    ("suggestion.model_id", suggested(model_id=" ")),
    ("suggestion.transfer_strategy", suggested(transfer_strategy=77)),
    ("suggestion.hyperparameters.epochs", suggested(hyperparameters=C.Hyperparameters(epochs=-1))),
    ("request_id", base(request_id="r" * (MAX_REQUEST_ID + 1))),
    ("hyperparameters.epochs", hp(epochs=-1)),
    ("hyperparameters.epochs", hp(epochs=1001)),
    ("hyperparameters.batch_size", hp(batch_size=-2)),
    ("hyperparameters.batch_size", hp(batch_size=4097)),
    ("hyperparameters.learning_rate", hp(learning_rate=-0.1)),
    ("hyperparameters.learning_rate", hp(learning_rate=math.inf)),
    ("hyperparameters.learning_rate", hp(learning_rate=math.nan)),
    ("hyperparameters.backbone_lr_multiplier", hp(backbone_lr_multiplier=11)),
    ("hyperparameters.weight_decay", hp(weight_decay=1.5)),
    ("hyperparameters.image_size", hp(image_size=8)),
    ("hyperparameters.image_size", hp(image_size=4096)),
    ("hyperparameters.image_width", hp(image_width=4096)),
    ("hyperparameters.time_budget_seconds", hp(time_budget_seconds=MAX_TIME_BUDGET_S + 1)),
    ("hyperparameters.optimizer", hp(optimizer=99)),
    ("hyperparameters.warmup_epochs", hp(warmup_epochs=-1)),
    ("hyperparameters.warmup_epochs", hp(epochs=2, warmup_epochs=3)),
    ("hyperparameters.label_smoothing", hp(label_smoothing=1.0)),
    ("hyperparameters.lr_schedule", hp(lr_schedule=42)),
    ("hyperparameters.lr_step_epochs", hp(lr_step_epochs=1001)),
    ("hyperparameters.lr_step_gamma", hp(lr_step_gamma=2.0)),
    ("hyperparameters.augmentation", hp(augmentation="extreme-nonsense")),
    ("hyperparameters.class_weighting", hp(class_weighting=55)),
    ("hyperparameters.early_stopping_patience", hp(early_stopping_patience=-1)),
    ("hyperparameters.early_stopping_metric", hp(early_stopping_metric="DROP TABLE; --")),
    ("resources.processes_per_node", resources(processes_per_node=-1)),
    ("resources.nodes", resources(nodes=65)),
    ("search.method", search(method=99)),
    ("search.parameters", search(method=3)),  # a grid with nothing to grid over
    ("search.max_trials", search(max_trials=-1)),
    ("search.max_trials", search(max_trials=1001)),
    ("search.parallelism", search(parallelism=65)),
    ("search.max_duration_seconds", search(max_duration_seconds=-5)),
    ("search.objective_metric", search(objective_metric="val_map")),
    ("search.direction", search(direction=9)),
    ("search.pruning.method", search({"method": 9})),
    ("search.pruning.warmup_epochs", search({"warmup_epochs": 2})),
    ("search.pruning.startup_trials", search({"startup_trials": -1})),
    ("search.pruning.min_epochs", search({"min_epochs": 3})),
    ("search.pruning.reduction_factor", search({"reduction_factor": 1})),
]
# any value is in range (NotFound / any int64)
UNCHECKED = {"dataset_version_id", "hyperparameters.seed", "search.seed", "validate_only"}


def test_every_request_field_has_an_out_of_range_case():
    def names(desc, prefix=""):
        for f in desc.fields:
            full = prefix + f.name
            nested = ("Hyperparameters", "AutoSelect", "ComputeResources", "HyperparameterSearch", "Pruning")
            if f.message_type is not None and f.message_type.name in nested:
                yield from names(f.message_type, full + ".")
            else:
                yield full

    covered = {field for field, _ in CASES}
    covered |= {field.split(".")[0] for field in covered}  # a message checked field by field (suggestion)
    all_fields = set(names(pb.CreateTrainingTaskRequest.DESCRIPTOR))
    missing = all_fields - covered - UNCHECKED
    assert not missing, f"no out-of-range case for {sorted(missing)}"


@pytest.fixture
def domain(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path}/training.db")
    db.migrate(engine, MIGRATIONS, "alembic_version_training")
    publisher = RecordingPublisher()
    store = TaskStore(engine)
    dom = TrainingDomain(
        store=store,
        datasets=FakeDatasets(make_dataset()),
        zoo=FakeZoo(make_model()),
        recommender=FakeRecommender(),
        publisher=publisher,
    )
    yield dom, store, publisher
    engine.dispose()


@pytest.mark.parametrize(("field", "request_"), CASES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CASES)])
async def test_out_of_range_field_is_invalid_argument_naming_it(domain, field, request_):
    dom, store, publisher = domain
    with pytest.raises(errors.InvalidArgument) as exc:
        await dom.create(request_)
    assert field in exc.value.violations, exc.value.violations
    # on the wire: INVALID_ARGUMENT with a BadRequest field violation for the field
    status = exc.value.to_status()
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    [(_key, raw)] = [m for m in status.trailing_metadata if m[0] == "grpc-status-details-bin"]
    detail = status_pb2.Status.FromString(raw).details[0]
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad)
    assert field in {v.field for v in bad.field_violations}
    # nothing stored, nothing queued
    assert publisher.jobs == []
    assert store.list("default")[0] == []
    assert store.find_by_request_id("default", request_.request_id) is None


async def test_the_base_request_is_valid_and_a_retry_creates_one_task(domain):
    dom, store, publisher = domain
    first = await dom.create(base())
    again = await dom.create(base())
    assert first.id == again.id
    assert len(store.list("default")[0]) == 1 and len(publisher.jobs) >= 1
