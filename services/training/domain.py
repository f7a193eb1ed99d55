"""The training service's behaviour: validate, resolve against the dataset service and the zoo,
store, queue, cancel and watch tasks.

The collaborators are passed in (TaskStore over SQL, clients of the other services, a job
publisher, the watch notifier), so tests can run it with any implementation of each.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from kernel import contract, datasetstats, errors, fields, identity, recipes
from kernel.messaging import cancel_subject, jobs_subject
from kernel.objectstore import ARTIFACTS_BUCKET
from services.training import hyperparams, search_space, tuning
from services.training.clients import DatasetClient, ModelZooClient, Recommender
from services.training.evaluations import EvaluationsDomain, EvaluationStore, is_evaluation_id
from services.training.store import NewTask, TaskStore, is_final, task_prefix
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_pb2
from trainyard.events.v1 import events_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2
from trainyard.recommend.v1 import recommend_pb2, recommend_service_pb2
from trainyard.training.v1 import training_pb2, training_service_pb2

log = logging.getLogger(__name__)

C = common_pb2
# Task types a trainer runs, with the annotations a dataset needs for them (any one of them).
SUPPORTED_TASK_TYPES = {
    C.TASK_TYPE_CLASSIFICATION: ((C.ANNOTATION_TYPE_LABEL,), "image-level class labels"),
    C.TASK_TYPE_DETECTION: ((C.ANNOTATION_TYPE_BOX, C.ANNOTATION_TYPE_POLYGON), "bounding boxes"),
    C.TASK_TYPE_SEGMENTATION: ((C.ANNOTATION_TYPE_MASK,), "per-pixel class masks"),
    C.TASK_TYPE_INSTANCE_SEGMENTATION: ((C.ANNOTATION_TYPE_POLYGON,), "instance outlines (polygons or RLE masks)"),
}
BUILDABLE_LIBRARIES = ("torchvision", "timm", "combo")
MAX_NAME, MAX_DESCRIPTION, MAX_REQUEST_ID = fields.MAX_NAME, fields.MAX_DESCRIPTION, fields.MAX_REQUEST_ID
WATCH_POLL_S = 2.0


class JobPublisher(Protocol):
    async def publish_job(self, subject: str, payload: bytes, msg_id: str) -> None: ...

    async def publish_cancel(self, subject: str, payload: bytes) -> None: ...


class JetStreamPublisher:
    """Publishes to JetStream and waits for the stream's ack."""

    def __init__(self, js) -> None:
        self.js = js

    async def publish_job(self, subject: str, payload: bytes, msg_id: str) -> None:
        await self.js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id}, timeout=10)

    async def publish_cancel(self, subject: str, payload: bytes) -> None:
        await self.js.publish(subject, payload, timeout=10)

    async def clear_cancel(self, subject: str) -> None:
        """Forget an earlier cancel request (a continued task runs again)."""
        from kernel.messaging import CONTROL_STREAM

        try:
            await self.js.purge_stream(CONTROL_STREAM, subject=subject)
        except Exception as exc:  # noqa: BLE001 - nothing to purge
            log.debug("no cancel to purge", extra={"subject": subject, "error": str(exc)})


class ArtifactStore:
    """Reads, existence checks (minio client) and presigned GETs on the public endpoint (`public`, a minio
    client for the address clients reach; None: no links are handed out, clients read through the service)."""

    def __init__(self, client, public=None) -> None:
        self.client = client
        self.public = public

    def presign(self, bucket: str, key: str, seconds: int):
        from datetime import UTC, datetime, timedelta

        if self.public is None:
            return "", None
        url = self.public.presigned_get_object(bucket, key, expires=timedelta(seconds=seconds))
        return url, datetime.now(UTC) + timedelta(seconds=seconds)

    def exists(self, bucket: str, key: str) -> bool:
        from kernel import objectstore

        return objectstore.exists(self.client, bucket, key)

    def prefix_bytes(self, bucket: str, prefix: str) -> int:
        """Bytes of every object under the prefix."""
        return sum(o.size or 0 for o in self.client.list_objects(bucket, prefix=prefix, recursive=True))

    def delete_prefix(self, bucket: str, prefix: str) -> tuple[int, int]:
        """Delete every object under the prefix; (objects, bytes) deleted. Raises on the first failure, so a
        retry deletes the rest."""
        from minio.deleteobjects import DeleteObject

        objects = list(self.client.list_objects(bucket, prefix=prefix, recursive=True))
        for error in self.client.remove_objects(bucket, [DeleteObject(o.object_name) for o in objects]):
            raise errors.Unavailable(
                f"could not delete {bucket}/{error.name} from the object store ({error.code}: {error.message}); "
                "nothing was forgotten: retry the delete",
                reason="OBJECT_STORE_UNAVAILABLE",
            )
        return len(objects), sum(o.size or 0 for o in objects)

    def read(self, bucket: str, key: str, offset: int, length: int) -> bytes:
        response = self.client.get_object(bucket, key, offset=offset, length=length)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()


class TaskNotifier:
    """In-process wake-ups for watchers: one asyncio.Condition per watched task."""

    def __init__(self) -> None:
        self._conditions: weakref.WeakValueDictionary[str, asyncio.Condition] = weakref.WeakValueDictionary()

    def condition(self, task_id: str) -> asyncio.Condition:
        cond = self._conditions.get(task_id)
        if cond is None:
            cond = asyncio.Condition()
            self._conditions[task_id] = cond
        return cond

    async def notify(self, task_id: str) -> None:
        cond = self._conditions.get(task_id)
        if cond is not None:
            async with cond:
                cond.notify_all()


def request_violations(req: training_service_pb2.CreateTrainingTaskRequest) -> dict[str, str]:
    """Every problem with the request that can be seen without asking another service."""
    bad: dict[str, str] = {}
    bad.update(
        fields.text_violations(
            {"name": ("name", req.name), "description": ("description", req.description)}, required={"name"}
        )
    )
    if req.task_type == C.TASK_TYPE_UNSPECIFIED:
        bad["task_type"] = "required"
    elif req.task_type not in C.TaskType.values():
        bad["task_type"] = f"unknown task type {req.task_type}"
    if not req.dataset_id.strip():
        bad["dataset_id"] = "required"
    selection = req.WhichOneof("model_selection")
    if selection is None:
        bad["model_selection"] = "required: set model_id, preset_id, auto_select or suggestion"
    elif selection == "model_id" and not req.model_id.strip():
        bad["model_id"] = "must not be empty"
    elif selection == "preset_id" and not req.preset_id.strip():
        bad["preset_id"] = "must not be empty"
    elif selection in ("auto_select", "suggestion"):
        chosen = getattr(req, selection)
        if chosen.data_type not in C.DataType.values():
            bad[f"{selection}.data_type"] = f"unknown data type {chosen.data_type}"
        if chosen.preference not in C.TrainingPreference.values():
            bad[f"{selection}.preference"] = f"unknown preference {chosen.preference}"
        if req.data_type and chosen.data_type and req.data_type != chosen.data_type:
            bad["data_type"] = (
                f"{C.DataType.Name(req.data_type)} contradicts {selection}.data_type "
                f"{C.DataType.Name(chosen.data_type)}; leave it unset"
            )
    if selection == "suggestion":
        suggestion = req.suggestion
        if not suggestion.model_id.strip():
            bad["suggestion.model_id"] = "required: the suggested zoo model"
        if suggestion.transfer_strategy not in C.TransferStrategy.values():
            bad["suggestion.transfer_strategy"] = f"unknown transfer strategy {suggestion.transfer_strategy}"
        texts = {"suggestion.rationale": ("description", suggestion.rationale)}
        texts |= {f"suggestion.factors[{i}]": ("description", f) for i, f in enumerate(suggestion.factors)}
        bad.update(fields.text_violations(texts))
    if req.data_type not in C.DataType.values():
        bad["data_type"] = f"unknown data type {req.data_type}"
    if req.transfer_strategy not in C.TransferStrategy.values():
        bad["transfer_strategy"] = f"unknown transfer strategy {req.transfer_strategy}"
    if len(req.request_id) > MAX_REQUEST_ID:
        bad["request_id"] = f"at most {MAX_REQUEST_ID} characters"
    layers = [("hyperparameters", req.hyperparameters)]
    if selection == "suggestion":
        layers.append(("suggestion.hyperparameters", req.suggestion.hyperparameters))
    bad.update(hyperparams.request_violations(layers, req.task_type))
    bad.update(hyperparams.resources_violations(req.resources))
    if req.HasField("search") and req.task_type in C.TaskType.values():
        bad.update(search_space.violations(req.search, req.task_type, req.hyperparameters))
    return bad


def check_dataset(dataset: dataset_pb2.Dataset, version: dataset_pb2.DatasetVersion, task_type: int) -> None:
    """FailedPrecondition naming the dataset and what it lacks for the task type."""
    type_name = contract.task_name(task_type)
    annotations, needs = SUPPORTED_TASK_TYPES[task_type]
    label = f"dataset {dataset.id!r} ({dataset.name})" if dataset.name else f"dataset {dataset.id!r}"
    if task_type not in dataset.task_types or not set(annotations) & set(version.annotation_types):
        have = ", ".join(
            C.AnnotationType.Name(a).removeprefix("ANNOTATION_TYPE_").lower() for a in version.annotation_types
        )
        raise errors.FailedPrecondition(
            f"{label} cannot train {type_name}: it has no {needs} (annotations: {have or 'none'})",
            reason="DATASET_CANNOT_TRAIN_TASK_TYPE",
            metadata={"dataset_id": dataset.id, "task_type": type_name},
        )
    if not version.manifest.key:
        raise errors.FailedPrecondition(
            f"{label} version {version.id!r} has no manifest", metadata={"dataset_id": dataset.id}
        )
    if task_type == C.TASK_TYPE_CLASSIFICATION and len(version.classes) < 2:
        raise errors.FailedPrecondition(
            f"{label} cannot train classification: it has {len(version.classes)} class(es), at least 2 are needed",
            reason="DATASET_CANNOT_TRAIN_TASK_TYPE",
            metadata={"dataset_id": dataset.id},
        )
    if version.split_counts.train == 0:
        raise errors.FailedPrecondition(f"{label} has no cases in the train split", metadata={"dataset_id": dataset.id})


def check_model(model: modelzoo_pb2.Model, task_type: int, strategy: int) -> None:
    if task_type not in model.task_types:
        serves = ", ".join(contract.task_name(t) for t in model.task_types) or "nothing"
        raise errors.FailedPrecondition(
            f"model {model.id!r} does not serve {contract.task_name(task_type)} (it serves {serves})",
            reason="MODEL_CANNOT_TRAIN_TASK_TYPE",
            metadata={"model_id": model.id},
        )
    if model.library not in BUILDABLE_LIBRARIES:
        raise errors.FailedPrecondition(f"model {model.id!r} comes from {model.library!r}, which no trainer builds")
    if strategy != C.TRANSFER_STRATEGY_FROM_SCRATCH and model.weight_status != modelzoo_pb2.WEIGHT_STATUS_IN_STORE:
        # Never a silent fallback: without weights a task trains from scratch only when asked to.
        weights_of = model.backbone_model_id or model.id
        raise errors.FailedPrecondition(
            f"the pre-trained weights of model {model.id!r} are not in the store and no configured source "
            f"provides them: configure one (TRAINYARD_MODELZOO_WEIGHT_SOURCES) and run `trainyard models pull "
            f"{weights_of}` (ModelZooService.PullWeights), or upload them with `trainyard models import FILE "
            f"--model {weights_of}`; or train from scratch explicitly (transfer_strategy "
            "TRANSFER_STRATEGY_FROM_SCRATCH, CLI --from-scratch)",
            reason="WEIGHTS_NOT_IN_STORE",
            metadata={"model_id": model.id},
        )


def _suggestion_rationale(suggestion: recommend_pb2.Suggestion) -> str:
    lines = [suggestion.rationale.strip()] if suggestion.rationale.strip() else []
    lines += [f"- {f}" for f in suggestion.factors]
    return "\n".join(lines) or f"suggestion {suggestion.model_id} (score {suggestion.score:.2f})"


def _as_in_store(model: modelzoo_pb2.Model) -> modelzoo_pb2.Model:
    out = modelzoo_pb2.Model()
    out.CopyFrom(model)
    out.weight_status = modelzoo_pb2.WEIGHT_STATUS_IN_STORE
    return out


def build_job(
    task_type: int,
    project: str,
    model: modelzoo_pb2.Model,
    dataset: dataset_pb2.Dataset,
    version: dataset_pb2.DatasetVersion,
    hp: common_pb2.Hyperparameters,
    strategy: int,
) -> events_pb2.TrainingJob:
    spec = events_pb2.ModelSpec(
        model_id=model.id,
        library=model.library,
        architecture=model.architecture,
        mean=list(model.mean) or contract.IMAGENET_MEAN,
        std=list(model.std) or contract.IMAGENET_STD,
        pretrained_num_classes=model.pretrained_num_classes,
    )
    if strategy != C.TRANSFER_STRATEGY_FROM_SCRATCH:
        spec.weights.CopyFrom(model.weights)
        # zoo fields that newer zoo stubs carry (guarded: the zoo adds them in this wave)
        backbone = getattr(model, "backbone_weights", None)
        if backbone is not None and backbone.key:
            spec.backbone_weights.CopyFrom(backbone)
        if getattr(model, "task_id", "") and list(getattr(model, "class_names", [])):
            spec.weights_class_names.extend(model.class_names)
    classes = sorted(version.classes, key=lambda c: c.index)
    return events_pb2.TrainingJob(
        project=project,
        task_type=task_type,
        model=spec,
        dataset=events_pb2.DatasetSpec(
            dataset_id=dataset.id,
            version_id=version.id,
            manifest=version.manifest,
            class_names=[c.name for c in classes],
        ),
        hyperparameters=hp,
        transfer_strategy=strategy,
        output_bucket=ARTIFACTS_BUCKET,
    )


class TrainingDomain:
    def __init__(
        self,
        *,
        store: TaskStore,
        datasets: DatasetClient,
        zoo: ModelZooClient,
        recommender: Recommender | None,
        publisher: JobPublisher,
        notifier: TaskNotifier | None = None,
        artifacts: ArtifactStore | None = None,
        bus_connected: Callable[[], bool] = lambda: True,
        watch_bus_grace_s: float = 3.0,
        max_active_tasks: int = 0,
        storage_quota_bytes: int = 0,
    ) -> None:
        # Per-project quotas (0: none): tasks that have not ended, and bytes the project's tasks keep.
        self.max_active_tasks = max_active_tasks
        self.storage_quota_bytes = storage_quota_bytes
        # Whether this service reaches the message bus now (events reach watchers only through it), and for
        # how long a watch waits for it before it ends UNAVAILABLE with the cursor to resume from.
        self.bus_connected = bus_connected
        self.watch_bus_grace_s = watch_bus_grace_s
        self.artifacts = artifacts
        self.store = store
        self.datasets = datasets
        self.zoo = zoo
        self.recommender = recommender
        self.publisher = publisher
        self.notifier = notifier or TaskNotifier()
        self.tuner = tuning.Tuner(self)
        self.evaluations = EvaluationsDomain(
            store=EvaluationStore(store.engine),
            tasks=store,
            datasets=datasets,
            zoo=zoo,
            publisher=publisher,
            notifier=self.notifier,
            client=getattr(artifacts, "client", None),
        )

    # -- create ----------------------------------------------------------------------------

    async def create(self, req: training_service_pb2.CreateTrainingTaskRequest) -> training_pb2.TrainingTask:
        project = identity.current().project
        bad = request_violations(req)
        if bad:
            raise errors.InvalidArgument(bad)
        if req.request_id and not req.validate_only:
            existing = await asyncio.to_thread(self.store.find_by_request_id, project, req.request_id)
            if existing is not None:
                return await self.enqueue_if_pending(existing)
        if req.task_type not in SUPPORTED_TASK_TYPES:
            raise errors.FailedPrecondition(
                f"no trainer runs {contract.task_name(req.task_type)} tasks yet; supported: "
                + ", ".join(contract.task_name(t) for t in SUPPORTED_TASK_TYPES),
                reason="TASK_TYPE_NOT_SUPPORTED",
            )
        if req.validate_only:
            return self._preview(await self._resolve(req, project, fetch=False))
        await self._check_quotas(project)
        new = await self._resolve(req, project)
        if new.search is not None:
            task, _created = await asyncio.to_thread(self.tuner.create_study, new)
        else:
            task, _created = await asyncio.to_thread(self.store.insert_pending, new)
        return await self.enqueue_if_pending(task)

    @staticmethod
    def _preview(new: NewTask) -> training_pb2.TrainingTask:
        """The task a validate_only request would create: resolved, not stored."""
        task = training_pb2.TrainingTask(
            project=new.project,
            name=new.name,
            description=new.description,
            task_type=new.task_type,
            dataset_id=new.dataset_id,
            dataset_version_id=new.dataset_version_id,
            model_id=new.model_id,
            mode=new.mode,
            transfer_strategy=new.transfer_strategy,
            hyperparameters=new.hyperparameters,
            selection_rationale=new.selection_rationale,
            preset_id=new.preset_id,
            data_type=new.data_type,
        )
        if new.auto_select is not None:
            task.auto_select.CopyFrom(new.auto_select)
        if new.suggestion is not None:
            task.suggestion.CopyFrom(new.suggestion)
        if new.resources is not None:
            task.resources.CopyFrom(new.resources)
        if new.search is not None:
            task.search.CopyFrom(new.search)
        return task

    async def _resolve(
        self, req: training_service_pb2.CreateTrainingTaskRequest, project: str, *, fetch: bool = True
    ) -> NewTask:
        dataset = await self.datasets.get_dataset(req.dataset_id)
        if req.dataset_version_id:
            version = await self.datasets.get_dataset_version(req.dataset_version_id)
            if version.dataset_id != dataset.id:
                raise errors.NotFound(f"dataset version {req.dataset_version_id!r} not found in dataset {dataset.id!r}")
        else:
            version = dataset.latest_version
            if not version.id:
                raise errors.FailedPrecondition(f"dataset {dataset.id!r} has no version yet")
        check_dataset(dataset, version, req.task_type)

        hp = req.hyperparameters
        strategy = req.transfer_strategy
        rationale = ""
        auto: training_pb2.AutoSelect | None = None
        suggestion: recommend_pb2.Suggestion | None = None
        mode = training_pb2.TRAINING_MODE_SELECTION_GENERAL
        preset_id = ""
        data_type = req.data_type
        preference = C.TRAINING_PREFERENCE_BALANCED
        selection = req.WhichOneof("model_selection")
        if selection == "auto_select":
            auto = req.auto_select
            suggestion = await self._auto_select(req)
            selection = "suggestion"
        elif selection == "suggestion":
            suggestion = req.suggestion
        if suggestion is not None:
            # used whole: the suggested model, strategy and hyperparameters, the request's own values on top
            model_id = suggestion.model_id.strip()
            strategy = req.transfer_strategy or suggestion.transfer_strategy
            hp = hyperparams.merge(req.hyperparameters, suggestion.hyperparameters)
            rationale = _suggestion_rationale(suggestion)
            data_type = data_type or suggestion.data_type
            preference = suggestion.preference or preference
            if model_id.startswith("trained/"):
                mode = training_pb2.TRAINING_MODE_SELECTION_RETRAINING
        elif selection == "preset_id":
            preset = await self.zoo.get_preset(req.preset_id.strip())
            if preset.task_type != req.task_type:
                raise errors.FailedPrecondition(
                    f"preset {preset.id!r} trains {contract.task_name(preset.task_type)}, not {contract.task_name(req.task_type)}",
                    reason="PRESET_CANNOT_TRAIN_TASK_TYPE",
                )
            defaults = common_pb2.Hyperparameters()
            defaults.CopyFrom(preset.hyperparameters)
            if preset.augmentation and not defaults.augmentation:
                defaults.augmentation = preset.augmentation
            if preset.input_size and not defaults.image_size:
                defaults.image_size = preset.input_size
            hp = hyperparams.merge(req.hyperparameters, defaults)
            strategy = req.transfer_strategy or preset.transfer_strategy
            model_id, preset_id = preset.model_id, preset.id
            mode = training_pb2.TRAINING_MODE_SELECTION_SPECIALIZED
            rationale = f"specialized preset {preset.id}: {preset.name}"
            data_type = data_type or preset.data_type
        else:
            model_id = req.model_id.strip()
            if model_id.startswith("trained/"):
                mode = training_pb2.TRAINING_MODE_SELECTION_RETRAINING
        if mode == training_pb2.TRAINING_MODE_SELECTION_RETRAINING and not data_type:
            data_type = await asyncio.to_thread(self.store.data_type_of, project, model_id.removeprefix("trained/"))
        model = await self.zoo.get_model(model_id)
        # the zero fields take the model's recipe on this dataset, whichever way the model was chosen
        recipe = recipes.recipe(
            model,
            contract.task_name(req.task_type),
            datasetstats.from_version(version),
            preference,
            recipes.DEVICE_CLASS,
            data_type,
            strategy,
            hp.batch_size,
            contract.world_size(req.resources),
        )
        strategy = strategy or recipe.transfer_strategy
        logs: tuple[str, ...] = ()
        if fetch and strategy != C.TRANSFER_STRATEGY_FROM_SCRATCH and req.task_type in model.task_types:
            model, logs = await self._fetch_weights(model)
        if not fetch and model.weight_status == modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE:
            # a preview: the real create fetches them first; judge the model as if they were in the store
            model = _as_in_store(model)
        check_model(model, req.task_type, strategy)
        hp = hyperparams.resolve(hp, model.default_input_size, recipe.hyperparameters)
        bad = hyperparams.resources_violations(req.resources, hp.batch_size)
        if bad:
            raise errors.InvalidArgument(bad)
        search = None
        if req.HasField("search"):
            search = search_space.resolve(req.search, req.task_type, model)
            # again with the defaults filled in: the model's ranges and the resolved epochs
            bad = search_space.resolved_violations(search) or search_space.violations(search, req.task_type, hp)
            if bad:
                raise errors.InvalidArgument(bad)
        job = build_job(req.task_type, project, model, dataset, version, hp, strategy)
        job.resources.CopyFrom(req.resources)
        return NewTask(
            search=search,
            project=project,
            request_id=req.request_id,
            name=req.name,
            description=req.description,
            task_type=req.task_type,
            dataset_id=dataset.id,
            dataset_version_id=version.id,
            model_id=model.id,
            mode=mode,
            preset_id=preset_id,
            auto_select=auto,
            transfer_strategy=strategy,
            hyperparameters=hp,
            selection_rationale=rationale,
            job=job,
            resources=req.resources,
            logs=logs,
            data_type=data_type,
            suggestion=suggestion,
        )

    async def _fetch_weights(self, model: modelzoo_pb2.Model) -> tuple[modelzoo_pb2.Model, tuple[str, ...]]:
        """Weights a configured source provides (IMPORTABLE) are pulled into the store before the task
        is queued; the task's log says where from. A failed pull fails the request with its code."""
        if model.weight_status != modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE:
            return model, ()
        weights_of = model.backbone_model_id or model.id
        started = time.monotonic()
        pull = await self.zoo.pull_weights(model.id)
        if pull.state == modelzoo_pb2.PULL_STATE_FAILED:
            cls = errors.Unavailable if pull.error_code == "UNAVAILABLE" else errors.FailedPrecondition
            raise cls(
                f"the pre-trained weights of model {model.id!r} could not be fetched: {pull.error_message} "
                f"(retry with `trainyard models pull {weights_of}`, or train from scratch explicitly: "
                "transfer_strategy TRANSFER_STRATEGY_FROM_SCRATCH, CLI --from-scratch)",
                reason=pull.error_reason or "WEIGHTS_PULL_FAILED",
                metadata={"model_id": model.id},
            )
        model = await self.zoo.get_model(model.id)
        w = pull.weights
        how = "fetched" if pull.state == modelzoo_pb2.PULL_STATE_STORED else "found in the store"
        line = (
            f"pre-trained weights of {weights_of} {how} before queueing: {w.size_bytes / 2**20:.1f} MiB, "
            f"sha256 {w.sha256[:12]}, from {pull.url} ({time.monotonic() - started:.1f} s)"
        )
        return model, (line,)

    async def _auto_select(self, req) -> recommend_pb2.Suggestion:
        """The top suggestion of the recommender for this request."""
        if self.recommender is None:
            raise errors.Unavailable("auto_select needs the recommendation service, which is not configured")
        resp = await self.recommender.recommend(
            recommend_service_pb2.RecommendRequest(
                task_type=req.task_type,
                dataset_id=req.dataset_id,
                data_type=req.auto_select.data_type,
                preference=req.auto_select.preference,
                device_class=recipes.DEVICE_CLASS,
            )
        )
        if not resp.suggestions:
            raise errors.FailedPrecondition(
                "auto_select found no model for this task and dataset; choose a model_id instead",
                reason="NO_SUGGESTION",
            )
        return resp.suggestions[0]

    async def enqueue_if_pending(self, task: training_pb2.TrainingTask) -> training_pb2.TrainingTask:
        """Publish a PENDING task's job and mark it QUEUED (a search: advance its trials); the task as stored after.
        Public for the tuner (its trials) and the reconciler (tasks left PENDING)."""
        if task.HasField("search"):
            # a search's own job is only the template of its trials; the tuner queues those
            await self.tuner.advance(task.id)
            return await asyncio.to_thread(self.store.get, task.project, task.id)
        if task.state != training_pb2.TASK_STATE_PENDING:
            return task
        job = await asyncio.to_thread(self.store.job, task.id)
        try:
            await self.publisher.publish_job(jobs_subject(contract.task_name(task.task_type)), job, f"{task.id}-1")
        except Exception as exc:  # noqa: BLE001 - the task stays PENDING; a retry re-publishes
            log.warning("could not queue the job", extra={"task_id": task.id, "error": str(exc)})
            raise errors.Unavailable(
                f"training task {task.id!r} was stored but could not be queued ({exc}); retry with the same request_id"
            ) from exc
        await asyncio.to_thread(self.store.mark_queued, task.id)
        await self.notifier.notify(task.id)
        return await asyncio.to_thread(self.store.get, task.project, task.id)

    # -- read ------------------------------------------------------------------------------

    async def get(self, task_id: str) -> training_pb2.TrainingTask:
        return await asyncio.to_thread(self.store.get, identity.current().project, task_id)

    async def list(self, state: int, page_size: int, page_token: str, model_id: str = "", active_only: bool = False):
        return await asyncio.to_thread(
            self.store.list, identity.current().project, state, page_size, page_token, model_id, active_only
        )

    # -- quotas and deleting ---------------------------------------------------------------

    async def _check_quotas(self, project: str, storage: bool = True) -> None:
        """RESOURCE_EXHAUSTED (QUOTA_EXCEEDED) when the project is at its active-task or storage quota."""
        if self.max_active_tasks:
            active = await asyncio.to_thread(self.store.active_count, project)
            if active >= self.max_active_tasks:
                raise errors.ResourceExhausted(
                    f"project {project!r} has {active} training tasks that have not ended, its quota "
                    f"(training_max_active_tasks_per_project {self.max_active_tasks}); wait for one to end or "
                    "cancel one",
                    reason="QUOTA_EXCEEDED",
                    metadata={"quota": "active_tasks", "limit": str(self.max_active_tasks), "used": str(active)},
                )
        if storage and self.storage_quota_bytes and self.artifacts is not None:
            used = await asyncio.to_thread(self._project_bytes, project)
            if used >= self.storage_quota_bytes:
                raise errors.ResourceExhausted(
                    f"project {project!r} keeps {used} bytes of training artifacts and checkpoints, over its "
                    f"quota (training_storage_quota_bytes_per_project {self.storage_quota_bytes}); delete ended "
                    "tasks (DeleteTrainingTask) to make room",
                    reason="QUOTA_EXCEEDED",
                    metadata={"quota": "storage_bytes", "limit": str(self.storage_quota_bytes), "used": str(used)},
                )

    def _project_bytes(self, project: str) -> int:
        """Bytes the project's tasks keep in the object store: ended tasks measured once, running ones afresh."""
        known, unmeasured = self.store.stored_bytes(project)
        for task_id in unmeasured:
            size = self.artifacts.prefix_bytes(ARTIFACTS_BUCKET, task_prefix(task_id))
            self.store.set_stored_bytes(task_id, size)  # kept only for an ended task
            known += size
        return known

    async def delete(self, task_id: str) -> training_service_pb2.DeleteTrainingTaskResponse:
        """Delete an ended task, its trials (a search), their objects and rows: objects first, so a failure
        part-way leaves rows a retry finds again."""
        project = identity.current().project
        ids = await asyncio.to_thread(self.store.deletable, project, task_id)
        model_id = f"trained/{task_id}"
        users, _ = await asyncio.to_thread(self.store.list, project, 0, 50, "", model_id, True)
        if users:
            raise errors.FailedPrecondition(
                f"training task {task_id!r} cannot be deleted: task(s) {', '.join(t.id for t in users[:5])} start "
                f"from its trained model {model_id} and have not ended",
                reason="MODEL_IN_USE",
                metadata={"model_id": model_id},
            )
        if self.zoo is not None:
            try:
                await self.zoo.get_model(model_id)
            except errors.NotFound:
                pass
            else:
                raise errors.FailedPrecondition(
                    f"training task {task_id!r} cannot be deleted while its trained model {model_id} is in the "
                    "zoo (its weights are this task's): DeleteTrainedModel first",
                    reason="TRAINED_MODEL_IN_ZOO",
                    metadata={"model_id": model_id},
                )
        response = training_service_pb2.DeleteTrainingTaskResponse(deleted_task_ids=ids)
        if self.artifacts is not None:
            for one in ids:
                count, size = await asyncio.to_thread(self.artifacts.delete_prefix, ARTIFACTS_BUCKET, task_prefix(one))
                response.deleted_objects += count
                response.deleted_bytes += size
        await asyncio.to_thread(self.store.delete, project, ids)
        log.info(
            "training task deleted",
            extra={"task_id": task_id, "project": project, "tasks": len(ids), "bytes": response.deleted_bytes},
        )
        return response

    # -- cancel ----------------------------------------------------------------------------

    async def cancel(self, task_id: str) -> training_pb2.TrainingTask:
        project = identity.current().project
        await asyncio.to_thread(self.store.check_cancellable, project, task_id)
        await self.publisher.publish_cancel(
            cancel_subject(task_id), events_pb2.CancelJob(task_id=task_id).SerializeToString()
        )
        task, _events = await asyncio.to_thread(self.store.cancel, project, task_id)
        await self.notifier.notify(task_id)
        await self.tuner.on_cancelled(task)
        return await asyncio.to_thread(self.store.get, project, task_id)

    # -- continue ------------------------------------------------------------------------------

    async def continue_task(self, task_id: str, additional_epochs: int) -> training_pb2.TrainingTask:
        project = identity.current().project
        bad = {} if task_id else {"task_id": "required"}
        if not 1 <= additional_epochs <= 1000:
            bad["additional_epochs"] = f"must be in 1..1000, got {additional_epochs}"
        if bad:
            raise errors.InvalidArgument(bad)
        task = await asyncio.to_thread(self.store.get, project, task_id)
        if is_final(task.state):
            await self._check_quotas(project, storage=False)  # it runs again
        if task.HasField("search"):
            raise errors.FailedPrecondition(
                f"training task {task_id!r} is a hyperparameter search; continue its best trial's task instead",
                reason="SEARCH_CANNOT_CONTINUE",
            )
        if self.artifacts is not None and task.state in (
            training_pb2.TASK_STATE_SUCCEEDED,
            training_pb2.TASK_STATE_CANCELLED,
            training_pb2.TASK_STATE_FAILED,
        ):
            has = await asyncio.to_thread(
                self.artifacts.exists, ARTIFACTS_BUCKET, f"{task_prefix(task_id)}checkpoints/last.pt"
            )
            if not has:
                raise errors.FailedPrecondition(
                    f"training task {task_id!r} has no checkpoint to continue from; create a new task instead",
                    reason="NO_CHECKPOINT",
                )
        task, job = await asyncio.to_thread(self.store.continue_task, project, task_id, additional_epochs)
        clear = getattr(self.publisher, "clear_cancel", None)
        if clear is not None:
            await clear(cancel_subject(task_id))
        await self.publisher.publish_job(
            jobs_subject(contract.task_name(task.task_type)),
            job,
            f"{task_id}-{task.attempt + 1}-c{task.hyperparameters.epochs}",
        )
        await self.notifier.notify(task_id)
        return task

    # -- search ------------------------------------------------------------------------------------

    async def list_trials(self, task_id: str, page_size: int, page_token: str):
        return await self.tuner.list_trials(identity.current().project, task_id, page_size, page_token)

    async def hyperparameter_schema(self, model_id: str, task_type: int):
        if task_type not in C.TaskType.values():
            raise errors.InvalidArgument({"task_type": f"unknown task type {task_type}"})
        model = await self.zoo.get_model(model_id.strip()) if model_id.strip() else None
        if not task_type:
            task_type = model.task_types[0] if model is not None and model.task_types else C.TASK_TYPE_CLASSIFICATION
        return training_service_pb2.GetHyperparameterSchemaResponse(
            parameters=search_space.schema(task_type, model),
            objective_metrics=search_space.objective_metrics(task_type),
            default_objective_metric=search_space.PRIMARY_METRIC.get(task_type, ""),
        )

    # -- artifacts -----------------------------------------------------------------------------

    async def artifact_links(self, task_id: str, expires_in_seconds: int) -> list[training_service_pb2.ArtifactLink]:
        if not 0 <= expires_in_seconds <= 86400:
            raise errors.InvalidArgument({"expires_in_seconds": f"must be in 0..86400, got {expires_in_seconds}"})
        if self.artifacts is None:
            raise errors.Unavailable("the object store is not configured for artifact links")
        task = await asyncio.to_thread(self.store.get, identity.current().project, task_id)
        seconds = expires_in_seconds or 900
        links = []
        for art in task.artifacts:
            url, expires = await asyncio.to_thread(self.artifacts.presign, art.object.bucket, art.object.key, seconds)
            link = training_service_pb2.ArtifactLink(name=art.name, url=url, size_bytes=art.object.size_bytes)
            if expires is not None:
                link.expire_time.FromDatetime(expires)
            links.append(link)
        return links

    async def read_artifact(self, task_id: str, name: str, chunk_size: int = 1 << 20):
        """The bytes of one of the task's artifacts, in chunks: (chunk, size, sha256)."""
        if not name:
            raise errors.InvalidArgument({"name": "required: an artifact name of the task, e.g. model.onnx"})
        if self.artifacts is None:
            raise errors.Unavailable("the object store is not configured for artifact downloads")
        task = await asyncio.to_thread(self.store.get, identity.current().project, task_id)
        art = next((a for a in task.artifacts if a.name == name), None)
        if art is None:
            names = ", ".join(a.name for a in task.artifacts) or "none"
            raise errors.NotFound(
                f"training task {task_id!r} has no artifact {name!r} (it has: {names})", metadata={"name": name}
            )
        offset, size = 0, art.object.size_bytes
        while True:
            length = min(chunk_size, size - offset) if size else chunk_size
            chunk = await asyncio.to_thread(self.artifacts.read, art.object.bucket, art.object.key, offset, length)
            if chunk:
                yield chunk, size, art.object.sha256
            offset += len(chunk)
            if not chunk or (size and offset >= size):
                return

    # -- watch -----------------------------------------------------------------------------

    async def watch(
        self, task_id: str, from_start: bool, after_sequence: int = 0
    ) -> AsyncIterator[training_pb2.TaskEvent]:
        """The task's events: its history (from_start), or those after `after_sequence` (a cursor: the last
        TaskEvent.sequence a client received), then new ones until the task ends. With the message bus out
        of reach for watch_bus_grace_s no event can arrive: the watch ends UNAVAILABLE naming the cursor."""
        project = identity.current().project
        task = await asyncio.to_thread(self.store.get, project, task_id)
        if after_sequence < 0:
            raise errors.InvalidArgument({"after_sequence": f"must be >= 0, got {after_sequence}"})
        after = after_sequence
        if not from_start and not after_sequence:
            events = await asyncio.to_thread(self.store.events_after, project, task_id, 0)
            after = events[-1].sequence if events else 0
            if is_final(task.state):
                last_state = next((e for e in reversed(events) if e.WhichOneof("event") == "task"), None)
                if last_state is not None:
                    yield last_state
                return
        if after_sequence and is_final(task.state):  # resumed on an ended task: what is left, then the end
            for ev in await asyncio.to_thread(self.store.events_after, project, task_id, after):
                yield ev
            return
        cond = self.notifier.condition(task_id)
        bus_lost: float | None = None
        while True:
            async with cond:
                events = await asyncio.to_thread(self.store.events_after, project, task_id, after)
                if not events:
                    bus_lost = self._check_bus(task_id, after, bus_lost)
                    try:
                        await asyncio.wait_for(cond.wait(), WATCH_POLL_S if bus_lost is None else 0.25)
                    except TimeoutError:
                        pass
                    continue
            for ev in events:
                yield ev
                after = ev.sequence
            states = [e for e in events if e.WhichOneof("event") == "task"]
            if states and is_final(states[-1].task.state):
                # ended: only log lines may follow the final state (a continued task has a later state)
                task = await asyncio.to_thread(self.store.get, project, task_id)
                if is_final(task.state):
                    return

    def _check_bus(self, task_id: str, after: int, lost_since: float | None) -> float | None:
        """When the bus went out of reach (None while reachable); past the grace, UNAVAILABLE."""
        if self.bus_connected():
            return None
        now = time.monotonic()
        if lost_since is None:
            return now
        if now - lost_since >= self.watch_bus_grace_s:
            raise errors.Unavailable(
                f"the message bus is out of reach of the training service (for {now - lost_since:.1f} s): no "
                f"event of task {task_id} can arrive; watch again with after_sequence={after} to resume from "
                "the last event received",
                reason="MESSAGE_BUS_UNAVAILABLE",
                metadata={"task_id": task_id, "after_sequence": str(after)},
            )
        return lost_since

    # -- trainer events --------------------------------------------------------------------

    async def apply_trainer_event(self, event: events_pb2.TrainerEvent, source_seq: int | None) -> int:
        if event.WhichOneof("event") == "heartbeat":  # read from the stream by the reconcile sweep, not stored
            return 0
        if is_evaluation_id(event.task_id):  # an evaluation job's events
            await self.evaluations.apply_trainer_event(event)
            return 1
        added = await asyncio.to_thread(self.store.apply_trainer_event, event, source_seq)
        if added:
            await self.notifier.notify(event.task_id)
            if event.WhichOneof("event") == "succeeded":
                await self.register_trained_model(event.task_id)
        # also for a redelivered event: the tuner's step is idempotent and may not have run before
        await self.tuner.on_trainer_event(event)
        return len(added)

    async def register_trained_model(self, task_id: str) -> None:
        """The trained model joins the task's project's zoo as trained/<task_id> (BRIEF2 contract 3).
        A failure is logged on the task; training itself succeeded."""
        register = getattr(self.zoo, "register_trained_model", None)
        if register is None or not hasattr(modelzoo_service_pb2, "RegisterTrainedModelRequest"):
            return
        task, job = await asyncio.to_thread(self.store.task_and_job, task_id)
        if task.search_task_id:
            return  # a trial: only the search's best model joins the zoo, as the search task's
        weights = next((a.object for a in task.artifacts if a.name == "model.pt"), None)
        if weights is None:
            return
        request = modelzoo_service_pb2.RegisterTrainedModelRequest(
            task_id=task.id,
            name=task.name,
            base_model_id=task.model_id,
            task_type=task.task_type,
            library=job.model.library,
            architecture=job.model.architecture,
            class_names=list(job.dataset.class_names),
            dataset_id=task.dataset_id,
            dataset_version_id=task.dataset_version_id,
            metrics=dict(task.metrics),
            weights=weights,
            default_input_size=task.hyperparameters.image_size,
            mean=list(job.model.mean),
            std=list(job.model.std),
            request_id=f"register-{task.id}",
        )
        token = identity.set_current(identity.Identity(project=task.project, principal="training-service"))
        try:
            model = await register(request)
            await asyncio.to_thread(self.store.add_log, task.id, f"the trained model joined the zoo as {model.id}")
        except Exception as exc:  # noqa: BLE001 - reported on the task, never fails it
            log.warning("could not register the trained model", extra={"task_id": task_id, "error": str(exc)})
            await asyncio.to_thread(
                self.store.add_log, task.id, f"the trained model could not be added to the zoo: {exc}"
            )
        finally:
            identity._current.reset(token)
        await self.notifier.notify(task_id)
