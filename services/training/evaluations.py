"""Evaluations: a model of the project run over a dataset version's cases, as a job on the trainers' queue
(trainer.evaluation_job), with its own state and progress; and the automatic one a trainer makes right
after each training (made into an Evaluation here when its task succeeds).

Their per-case results and suspected label errors live in the object store (evaluation_cases.json, written
by the trainer); ListEvaluationCases and ListLabelErrors page through them, worst first, and draw ground
truth beside prediction with the same drawing as the dataset previews (kernel.drawing).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from kernel import contract, drawing, errors, identity, objectstore
from kernel.messaging import cancel_subject, jobs_subject
from kernel.objectstore import ARTIFACTS_BUCKET
from services.training.models import TrainingEvaluationRow
from trainyard.common.v1 import common_pb2
from trainyard.events.v1 import events_pb2
from trainyard.training.v1 import evaluation_pb2, training_service_pb2

log = logging.getLogger(__name__)

E = evaluation_pb2
C = common_pb2
ID_PREFIX = "ev"  # trainer events of evaluation jobs carry the evaluation id as their task_id
FINAL = frozenset({E.EVALUATION_STATE_SUCCEEDED, E.EVALUATION_STATE_FAILED, E.EVALUATION_STATE_CANCELLED})
MAX_LOGS = 200
DEFAULT_PAGE, MAX_PAGE = 50, 500
DEFAULT_CASES_PAGE, MAX_CASES_PAGE = 20, 200
DEFAULT_THUMBNAIL, MIN_THUMBNAIL, MAX_THUMBNAIL = 160, 32, 512
MAX_BATCH = 256
WATCH_POLL_S = 2.0
CASES_ARTIFACT, REPORT_ARTIFACT = "evaluation_cases.json", "evaluation.json"
SPLIT_NAMES = {C.SPLIT_TRAIN: "train", C.SPLIT_VAL: "val", C.SPLIT_TEST: "test"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_evaluation_id() -> str:
    return ID_PREFIX + uuid.uuid4().hex[:22]


def is_evaluation_id(value: str) -> bool:
    return value.startswith(ID_PREFIX)


def _artifacts(artifacts) -> str:
    return json.dumps(
        [
            {"name": a.name, "bucket": a.object.bucket, "key": a.object.key, "sha256": a.object.sha256,
             "size_bytes": a.object.size_bytes}
            for a in artifacts
        ]
    )  # fmt: skip


def automatic_evaluation(task_row, succeeded: events_pb2.JobSucceeded, when: datetime) -> TrainingEvaluationRow:
    """The Evaluation of what a trainer evaluated right after training a task (trainer.job)."""
    summary = succeeded.evaluation
    return TrainingEvaluationRow(
        id=new_evaluation_id(),
        project=task_row.project,
        model_id=f"trained/{task_row.id}",
        task_id=task_row.id,
        task_type=task_row.task_type,
        dataset_id=task_row.dataset_id,
        dataset_version_id=task_row.dataset_version_id,
        splits=json.dumps([summary.split] if summary.split else []),
        automatic=True,
        state=E.EVALUATION_STATE_SUCCEEDED,
        trainer_node=task_row.trainer_node,
        attempt=task_row.attempt,
        summary=summary.SerializeToString(),
        artifacts=_artifacts([a for a in succeeded.artifacts if a.name in (CASES_ARTIFACT, REPORT_ARTIFACT)]),
        create_time=when,
        start_time=when,
        end_time=when,
        last_sequence=1,
    )


def _utc(when: datetime | None) -> datetime | None:
    return None if when is None else (when if when.tzinfo else when.replace(tzinfo=UTC))


def to_proto(row: TrainingEvaluationRow) -> E.Evaluation:
    ev = E.Evaluation(
        id=row.id,
        project=row.project,
        model_id=row.model_id,
        task_id=row.task_id,
        dataset_id=row.dataset_id,
        dataset_version_id=row.dataset_version_id,
        splits=json.loads(row.splits or "[]"),
        state=row.state,
        failure_reason=row.failure_reason,
        automatic=row.automatic,
        trainer_node=row.trainer_node,
    )
    if row.progress:
        ev.progress.ParseFromString(row.progress)
    if row.summary:
        ev.summary.ParseFromString(row.summary)
    ev.create_time.FromDatetime(_utc(row.create_time))
    if row.start_time:
        ev.start_time.FromDatetime(_utc(row.start_time))
    if row.end_time:
        ev.end_time.FromDatetime(_utc(row.end_time))
    return ev


def _token(offset: int, scope: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([scope, offset]).encode()).decode()


def _offset(token: str, scope: str, field: str = "page_token") -> int:
    if not token:
        return 0
    try:
        got_scope, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
        if got_scope != scope or not isinstance(offset, int) or offset < 0:
            raise ValueError(token)
        return offset
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise errors.InvalidArgument({field: "not a token from a previous response of this call"}) from None


def _page_size(value: int, default: int, most: int) -> int:
    if value < 0:
        raise errors.InvalidArgument({"page_size": f"must be >= 0, got {value}"})
    return min(value or default, most)


class EvaluationStore:
    """Evaluations in SQL; plain synchronous code (called through asyncio.to_thread)."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def _row(self, session: Session, project: str, evaluation_id: str) -> TrainingEvaluationRow:
        row = session.exec(
            select(TrainingEvaluationRow).where(
                TrainingEvaluationRow.id == evaluation_id, TrainingEvaluationRow.project == project
            )
        ).first()
        if row is None:
            raise errors.NotFound(f"evaluation {evaluation_id!r} not found", metadata={"evaluation_id": evaluation_id})
        return row

    def get(self, project: str, evaluation_id: str) -> E.Evaluation:
        with Session(self.engine) as session:
            return to_proto(self._row(session, project, evaluation_id))

    def get_row(self, project: str, evaluation_id: str) -> TrainingEvaluationRow:
        with Session(self.engine) as session:
            row = self._row(session, project, evaluation_id)
            session.expunge(row)
            return row

    def find_by_request_id(self, project: str, request_id: str) -> E.Evaluation | None:
        with Session(self.engine) as session:
            row = session.exec(
                select(TrainingEvaluationRow).where(
                    TrainingEvaluationRow.project == project, TrainingEvaluationRow.request_id == request_id
                )
            ).first()
            return to_proto(row) if row else None

    def insert(self, row: TrainingEvaluationRow) -> tuple[E.Evaluation, bool]:
        try:
            with Session(self.engine) as session:
                session.add(row)
                session.commit()
                return to_proto(row), True
        except IntegrityError:
            existing = self.find_by_request_id(row.project, row.request_id or "")
            if existing is None:
                raise
            return existing, False

    def delete(self, evaluation_id: str) -> None:
        with Session(self.engine) as session:
            session.execute(sa.delete(TrainingEvaluationRow).where(TrainingEvaluationRow.id == evaluation_id))
            session.commit()

    def list(self, project: str, model_id: str, page_size: int, page_token: str) -> tuple[list[E.Evaluation], str]:
        size = _page_size(page_size, DEFAULT_PAGE, MAX_PAGE)
        scope = f"evaluations:{project}:{model_id}"
        offset = _offset(page_token, scope)
        query = select(TrainingEvaluationRow).where(TrainingEvaluationRow.project == project)
        if model_id:
            query = query.where(TrainingEvaluationRow.model_id == model_id)
        query = query.order_by(TrainingEvaluationRow.create_time.desc(), TrainingEvaluationRow.id.desc())
        with Session(self.engine) as session:
            rows = list(session.exec(query.offset(offset).limit(size + 1)))
        more = len(rows) > size
        return [to_proto(r) for r in rows[:size]], (_token(offset + size, scope) if more else "")

    def logs_after(self, project: str, evaluation_id: str, seen: int) -> tuple[E.Evaluation, int, list[str], int]:
        """(evaluation, its change counter, log lines after the first `seen`, lines in all)."""
        with Session(self.engine) as session:
            row = self._row(session, project, evaluation_id)
            lines = json.loads(row.logs or "[]")
            return to_proto(row), row.last_sequence, lines[seen:], len(lines)

    def cancel(self, project: str, evaluation_id: str) -> E.Evaluation:
        with Session(self.engine) as session:
            row = self._row(session, project, evaluation_id)
            if row.state in FINAL:
                raise errors.FailedPrecondition(
                    f"evaluation {evaluation_id!r} has already ended ({E.EvaluationState.Name(row.state)})"
                )
            row.state, row.failure_reason, row.end_time = (
                E.EVALUATION_STATE_CANCELLED,
                "cancelled by the user",
                utcnow(),
            )
            row.last_sequence += 1
            session.add(row)
            session.commit()
            return to_proto(row)

    def apply_trainer_event(self, event: events_pb2.TrainerEvent) -> bool:
        """Apply one trainer event of an evaluation job; False for an unknown, ended or stale one."""
        kind = event.WhichOneof("event")
        with Session(self.engine) as session:
            row = session.exec(
                select(TrainingEvaluationRow).where(TrainingEvaluationRow.id == event.task_id).with_for_update()
            ).first()
            if row is None or kind is None or row.state in FINAL or event.attempt < row.attempt:
                return False
            when = event.time.ToDatetime(tzinfo=UTC) if event.HasField("time") else utcnow()
            row.attempt = max(row.attempt, event.attempt)
            row.trainer_node = event.trainer_node or row.trainer_node
            if kind == "started":
                row.state, row.start_time, row.failure_reason = E.EVALUATION_STATE_RUNNING, row.start_time or when, ""
            elif kind == "progress":
                p = event.progress
                row.state = E.EVALUATION_STATE_RUNNING
                row.progress = E.EvaluationProgress(
                    step=p.step,
                    total_steps=p.total_steps,
                    images_per_second=p.images_per_second,
                    eta_seconds=p.eta_seconds,
                    fraction=min(1.0, p.step / max(1, p.total_steps)),
                ).SerializeToString()
            elif kind == "log":
                row.logs = json.dumps([*json.loads(row.logs or "[]"), event.log][-MAX_LOGS:])
            elif kind == "succeeded":
                row.state, row.end_time = E.EVALUATION_STATE_SUCCEEDED, when
                row.summary = event.succeeded.evaluation.SerializeToString()
                row.artifacts = _artifacts(event.succeeded.artifacts)
            elif kind == "failed":
                row.state = E.EVALUATION_STATE_QUEUED if event.failed.retryable else E.EVALUATION_STATE_FAILED
                row.failure_reason = event.failed.reason
                row.end_time = None if event.failed.retryable else when
            elif kind == "cancelled":
                row.state, row.end_time = E.EVALUATION_STATE_CANCELLED, when
                row.failure_reason = row.failure_reason or "cancelled"
            else:  # heartbeats change nothing a client sees
                return False
            row.last_sequence += 1
            session.add(row)
            session.commit()
            return True


class JsonCache:
    """Parsed JSON documents of the object store by (bucket, key, sha256): paging re-reads the same one."""

    def __init__(self, client, entries: int = 8) -> None:
        self.client, self.entries = client, entries
        self._docs: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, bucket: str, key: str, sha256: str) -> dict:
        ident = (bucket, key, sha256)
        with self._lock:
            if ident in self._docs:
                self._docs.move_to_end(ident)
                return self._docs[ident]
        doc = objectstore.get_json(self.client, bucket, key)
        with self._lock:
            self._docs[ident] = doc
            while len(self._docs) > self.entries:
                self._docs.popitem(last=False)
        return doc


def _kind_name(kind: int) -> str:
    return E.CaseErrorKind.Name(kind).removeprefix("CASE_ERROR_KIND_")


class EvaluationsDomain:
    """CreateEvaluation .. ListLabelErrors. `tasks` is the TaskStore (a trained model's task: its job, data
    and default threshold); `client` a minio client for the results."""

    def __init__(self, *, store: EvaluationStore, tasks, datasets, zoo, publisher, notifier, client=None) -> None:
        self.store, self.tasks, self.datasets, self.zoo = store, tasks, datasets, zoo
        self.publisher, self.notifier, self.client = publisher, notifier, client
        self.docs = JsonCache(client) if client is not None else None

    # -- create -----------------------------------------------------------------------------------

    async def create(self, req: training_service_pb2.CreateEvaluationRequest) -> E.Evaluation:
        from services.training.domain import SUPPORTED_TASK_TYPES

        project = identity.current().project
        bad = {}
        for name in ("model_id", "dataset_id"):
            if not getattr(req, name).strip():
                bad[name] = "required"
        for i, split in enumerate(req.splits):
            if split not in SPLIT_NAMES:
                bad[f"splits[{i}]"] = f"must be SPLIT_TRAIN, SPLIT_VAL or SPLIT_TEST, got {split}"
        if not 0 <= req.batch_size <= MAX_BATCH:
            bad["batch_size"] = f"must be in 0..{MAX_BATCH}, got {req.batch_size}"
        if len(req.request_id) > 256:
            bad["request_id"] = "at most 256 characters"
        if bad:
            raise errors.InvalidArgument(bad)
        if req.request_id:
            existing = await asyncio.to_thread(self.store.find_by_request_id, project, req.request_id)
            if existing is not None:
                return existing
        model = await self.zoo.get_model(req.model_id.strip())
        if not model.task_id or not model.class_names:
            raise errors.FailedPrecondition(
                f"model {model.id!r} is a catalog model: the zoo does not know its pre-trained head's classes, so "
                "they cannot be matched to a dataset's; evaluate a model trained here (trained/<task id>)",
                reason="MODEL_HAS_NO_CLASSES",
                metadata={"model_id": model.id},
            )
        task_type = model.task_types[0] if model.task_types else C.TASK_TYPE_UNSPECIFIED
        dataset = await self.datasets.get_dataset(req.dataset_id.strip())
        if req.dataset_version_id:
            version = await self.datasets.get_dataset_version(req.dataset_version_id)
            if version.dataset_id != dataset.id:
                raise errors.NotFound(f"dataset version {req.dataset_version_id!r} not found in dataset {dataset.id!r}")
        else:
            version = dataset.latest_version
        label = f"dataset {dataset.id!r} ({dataset.name})"
        if task_type not in dataset.task_types:
            needs = SUPPORTED_TASK_TYPES.get(task_type, ((), "annotations of that kind"))[1]
            raise errors.FailedPrecondition(
                f"model {model.id!r} does {contract.task_name(task_type)}, but {label} has no {needs}",
                reason="DATASET_WRONG_TASK_TYPE",
                metadata={"dataset_id": dataset.id, "task_type": contract.task_name(task_type)},
            )
        classes = [c.name for c in sorted(version.classes, key=lambda c: c.index)]
        unknown = [c for c in classes if c not in model.class_names]
        if unknown:
            raise errors.FailedPrecondition(
                f"model {model.id!r} does not know the class(es) {', '.join(map(repr, unknown))} of {label}; "
                f"it knows {', '.join(model.class_names)}",
                reason="CLASS_NOT_IN_MODEL",
                metadata={"model_id": model.id, "classes": ",".join(unknown)[:500]},
            )
        counts = {C.SPLIT_TRAIN: version.split_counts.train, C.SPLIT_VAL: version.split_counts.val,
                  C.SPLIT_TEST: version.split_counts.test}  # fmt: skip
        empty = [SPLIT_NAMES[s] for s in req.splits if not counts[s]]
        if empty:
            raise errors.FailedPrecondition(
                f"{label} version {version.id!r} has no cases in the {', '.join(empty)} split",
                reason="EMPTY_SPLIT",
            )
        trained_task, trained_job = await asyncio.to_thread(self.tasks.task_and_job, model.task_id)
        batch = req.batch_size or min(MAX_BATCH, trained_job.hyperparameters.batch_size or 16)
        evaluation_id = new_evaluation_id()
        job = events_pb2.TrainingJob(
            task_id=evaluation_id,
            project=project,
            task_type=task_type,
            model=events_pb2.ModelSpec(
                model_id=model.id,
                library=model.library,
                architecture=model.architecture,
                weights=model.weights,
                mean=list(model.mean) or list(trained_job.model.mean) or contract.IMAGENET_MEAN,
                std=list(model.std) or list(trained_job.model.std) or contract.IMAGENET_STD,
                weights_class_names=list(model.class_names),
            ),
            dataset=events_pb2.DatasetSpec(
                dataset_id=dataset.id, version_id=version.id, manifest=version.manifest, class_names=classes
            ),
            hyperparameters=common_pb2.Hyperparameters(
                image_size=model.default_input_size or trained_job.hyperparameters.image_size, batch_size=batch
            ),
            output_bucket=ARTIFACTS_BUCKET,
            output_prefix=f"evaluations/{evaluation_id}/",
            evaluation=events_pb2.EvaluationSpec(
                splits=list(req.splits),
                trained_on=trained_job.dataset,
                threshold=trained_task.evaluation.default_threshold if trained_task.evaluation_id else 0.0,
            ),
        )
        row = TrainingEvaluationRow(
            id=evaluation_id,
            project=project,
            request_id=req.request_id or None,
            model_id=model.id,
            task_id=model.task_id,
            task_type=task_type,
            dataset_id=dataset.id,
            dataset_version_id=version.id,
            splits=json.dumps(list(req.splits)),
            state=E.EVALUATION_STATE_QUEUED,
            job=job.SerializeToString(),
            create_time=utcnow(),
            logs=json.dumps([f"queued: {model.id} on {label} version {version.number}"]),
            last_sequence=1,
        )
        evaluation, created = await asyncio.to_thread(self.store.insert, row)
        if not created:
            return evaluation
        try:
            await self.publisher.publish_job(
                jobs_subject(contract.task_name(task_type)), job.SerializeToString(), f"{evaluation_id}-1"
            )
        except Exception as exc:  # noqa: BLE001 - nothing half written: the evaluation goes again
            await asyncio.to_thread(self.store.delete, evaluation_id)
            raise errors.Unavailable(f"the evaluation could not be queued ({exc}); retry") from exc
        return evaluation

    # -- read, watch, cancel ----------------------------------------------------------------------

    async def get(self, evaluation_id: str) -> E.Evaluation:
        return await asyncio.to_thread(self.store.get, identity.current().project, evaluation_id)

    async def list(self, model_id: str, page_size: int, page_token: str):
        return await asyncio.to_thread(self.store.list, identity.current().project, model_id, page_size, page_token)

    async def cancel(self, evaluation_id: str) -> E.Evaluation:
        project = identity.current().project
        current = await asyncio.to_thread(self.store.get, project, evaluation_id)
        if current.state not in FINAL:
            await self.publisher.publish_cancel(
                cancel_subject(evaluation_id), events_pb2.CancelJob(task_id=evaluation_id).SerializeToString()
            )
        evaluation = await asyncio.to_thread(self.store.cancel, project, evaluation_id)
        await self.notifier.notify(evaluation_id)
        return evaluation

    async def watch(self, evaluation_id: str) -> AsyncIterator[training_service_pb2.WatchEvaluationResponse]:
        project = identity.current().project
        sent_seq, sent_logs = -1, 0
        cond = self.notifier.condition(evaluation_id)
        while True:
            async with cond:
                evaluation, seq, lines, total = await asyncio.to_thread(
                    self.store.logs_after, project, evaluation_id, sent_logs
                )
                if seq == sent_seq and not lines:
                    try:
                        await asyncio.wait_for(cond.wait(), WATCH_POLL_S)
                    except TimeoutError:
                        pass
                    continue
            for line in lines:
                yield training_service_pb2.WatchEvaluationResponse(log=line)
            sent_logs = total
            if seq != sent_seq:
                sent_seq = seq
                yield training_service_pb2.WatchEvaluationResponse(evaluation=evaluation)
            if evaluation.state in FINAL:
                return

    async def given_up(self, evaluation_id: str, deliveries: int) -> None:
        """JetStream will not deliver the evaluation's job again: its last trainer went silent."""
        failed = events_pb2.TrainerEvent(
            task_id=evaluation_id,
            attempt=1 << 30,
            failed=events_pb2.JobFailed(
                reason=f"no trainer finished the evaluation in {deliveries} deliveries (the last one went silent)"
            ),
        )
        await self.apply_trainer_event(failed)

    async def apply_trainer_event(self, event: events_pb2.TrainerEvent) -> None:
        if await asyncio.to_thread(self.store.apply_trainer_event, event):
            await self.notifier.notify(event.task_id)

    # -- results ----------------------------------------------------------------------------------

    def _document(self, row: TrainingEvaluationRow) -> dict:
        if row.state != E.EVALUATION_STATE_SUCCEEDED:
            raise errors.FailedPrecondition(
                f"evaluation {row.id!r} has no results: it is {E.EvaluationState.Name(row.state)}",
                reason="EVALUATION_NOT_SUCCEEDED",
            )
        ref = next((a for a in json.loads(row.artifacts or "[]") if a["name"] == CASES_ARTIFACT), None)
        if ref is None or self.docs is None:
            raise errors.FailedPrecondition(f"evaluation {row.id!r} has no per-case results stored")
        return self.docs.get(ref["bucket"], ref["key"], ref.get("sha256", ""))

    def _thumbnail(self, size: int) -> int:
        size = size or DEFAULT_THUMBNAIL
        if not MIN_THUMBNAIL <= size <= MAX_THUMBNAIL:
            raise errors.InvalidArgument({"thumbnail_size": f"must be in {MIN_THUMBNAIL}..{MAX_THUMBNAIL}, got {size}"})
        return size

    async def cases(self, req: training_service_pb2.ListEvaluationCasesRequest):
        project = identity.current().project
        size = _page_size(req.page_size, DEFAULT_CASES_PAGE, MAX_CASES_PAGE)
        thumb = self._thumbnail(req.thumbnail_size)
        if req.kind not in E.CaseErrorKind.values():
            raise errors.InvalidArgument({"kind": f"unknown error kind {req.kind}"})
        row = await asyncio.to_thread(self.store.get_row, project, req.evaluation_id)
        doc = await asyncio.to_thread(self._document, row)
        known = [*doc["classes"], *[c for c in doc["model_classes"] if c not in doc["classes"]]]
        for field in ("class_name", "predicted_class"):
            value = getattr(req, field)
            if value and value not in known:
                raise errors.InvalidArgument({field: f"unknown class {value!r}; the classes are {', '.join(known)}"})
        kind = _kind_name(req.kind) if req.kind else ""
        # a case "has" a class it is labelled with or that the model answered (classification: its top-1)
        answered = 1 if doc["task"] == "classification" else None
        chosen = [
            c
            for c in doc["cases"]
            if (not kind or kind in c["kinds"])
            and (not req.class_name or req.class_name in c["true_classes"]
                 or any(p["class_name"] == req.class_name for p in c["predictions"][:answered]))
            and (not req.predicted_class or req.predicted_class in c.get("predicted_classes", []))
        ]  # fmt: skip
        scope = f"cases:{row.id}:{req.class_name}:{req.kind}:{req.predicted_class}"
        offset = _offset(req.page_token, scope)
        page = chosen[offset : offset + size]
        out = []
        for record in page:
            result = E.CaseResult(
                case_id=record["id"],
                source_path=record.get("source_path", ""),
                split=getattr(C, f"SPLIT_{record.get('split', '').upper()}", 0),
                true_classes=record["true_classes"],
                predictions=[
                    E.PredictedObject(
                        class_name=p["class_name"], class_index=p["class_index"], score=p["score"], box=p.get("box", [])
                    )
                    for p in record["predictions"]
                ],
                kinds=[E.CaseErrorKind.Value("CASE_ERROR_KIND_" + k) for k in record["kinds"]],
                error_score=record["error_score"],
                summary=record.get("summary", ""),
                predicted_classes=record.get("predicted_classes", []),
            )
            if record.get("iou") is not None:
                result.iou = record["iou"]
            if req.include_previews:
                result.preview_jpeg = await asyncio.to_thread(self._draw, doc, record, thumb)
            out.append(result)
        more = offset + size < len(chosen)
        return training_service_pb2.ListEvaluationCasesResponse(
            cases=out, next_page_token=_token(offset + size, scope) if more else "", total_size=len(chosen)
        )

    async def label_errors(self, req: training_service_pb2.ListLabelErrorsRequest):
        project = identity.current().project
        size = _page_size(req.page_size, DEFAULT_CASES_PAGE, MAX_CASES_PAGE)
        thumb = self._thumbnail(req.thumbnail_size)
        row = await asyncio.to_thread(self.store.get_row, project, req.evaluation_id)
        doc = await asyncio.to_thread(self._document, row)
        scope = f"label-errors:{row.id}"
        offset = _offset(req.page_token, scope)
        entries = doc.get("label_errors", [])
        by_id = {c["id"]: c for c in doc["cases"]} if req.include_previews else {}
        out = []
        for e in entries[offset : offset + size]:
            item = E.LabelError(
                case_id=e["case_id"],
                source_path=e.get("source_path", ""),
                kind=e["kind"],
                given_label=e.get("given_label", ""),
                suggested_label=e.get("suggested_label", ""),
                score=e["score"],
                evidence=e.get("evidence", ""),
                box=e.get("box", []),
            )
            if req.include_previews and e["case_id"] in by_id:
                item.preview_jpeg = await asyncio.to_thread(self._draw, doc, by_id[e["case_id"]], thumb, e)
            out.append(item)
        more = offset + size < len(entries)
        return training_service_pb2.ListLabelErrorsResponse(
            label_errors=out,
            next_page_token=_token(offset + size, scope) if more else "",
            total_size=len(entries),
            method=doc.get("label_error_method", ""),
        )

    def _draw(self, doc: dict, record: dict, size: int, label_error: dict | None = None) -> bytes:
        """Ground truth (left) and prediction (right) on the case's image, as the dataset previews draw."""
        columns = [*doc["classes"], *[c for c in doc["model_classes"] if c not in doc["classes"]]]
        image = objectstore.get_bytes(self.client, doc["images_bucket"], record["image_key"])
        task = doc["task"]
        if task == "classification":
            truth = {"caption": f"given: {columns[record['label']]}"}
            top = record["predictions"][0] if record["predictions"] else None
            pred = {"caption": f"model: {top['class_name']} {top['score']:.2f}" if top else "model: -"}
            left = drawing.render_case(image, truth, columns, size)
            right = drawing.render_case(image, pred, columns, size)
        elif task == "segmentation":
            gt_mask = objectstore.get_bytes(self.client, doc["images_bucket"], record["mask_key"])
            pred_mask = objectstore.get_bytes(
                self.client, doc.get("artifacts_bucket", ARTIFACTS_BUCKET), record["pred_mask_key"]
            )
            left = drawing.render_case(image, {}, columns, size, mask_bytes=gt_mask)
            right = drawing.render_case(image, {}, columns, size, mask_bytes=pred_mask)
        else:
            truth = {"boxes": record.get("boxes", [])}
            boxes = []
            for p in record["predictions"]:
                box = {
                    "class": columns.index(p["class_name"]),
                    "bbox": p["box"],
                    "text": f"{p['class_name']} {p['score']:.2f}",
                }
                if p.get("rle"):
                    box["rle"] = p["rle"]
                boxes.append(box)
            if label_error is not None and label_error.get("kind") == "missing_box" and label_error.get("box"):
                boxes.append({"class": columns.index(label_error["suggested_label"]), "bbox": label_error["box"],
                              "text": "missing label?"})  # fmt: skip
            left = drawing.render_case(image, truth, columns, size)
            right = drawing.render_case(image, {"boxes": boxes}, columns, size)
        return drawing.side_by_side(left, right, ("given labels", "model"))
