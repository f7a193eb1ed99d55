"""Training tasks in SQL: storing, reading, paging, and applying trainer events.

Plain synchronous code (the servicer calls it through asyncio.to_thread). Every change of a task
appends TaskEvent rows with a per-task sequence, so WatchTrainingTask can replay the history.
Trainer events are applied at least once: a JetStream sequence already applied is skipped, an
event of an older attempt never overrides a newer one, and final states are never left.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from kernel import errors
from services.training import hyperparams
from services.training.evaluations import automatic_evaluation
from services.training.models import TrainingTaskEventRow, TrainingTaskRow
from trainyard.common.v1 import common_pb2
from trainyard.events.v1 import events_pb2
from trainyard.recommend.v1 import recommend_pb2
from trainyard.training.v1 import training_pb2

log = logging.getLogger(__name__)

S = training_pb2
FINAL_STATES = frozenset({S.TASK_STATE_SUCCEEDED, S.TASK_STATE_FAILED, S.TASK_STATE_CANCELLED})
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_task_id() -> str:
    return "tt" + uuid.uuid4().hex[:22]


def is_final(state: int) -> bool:
    return state in FINAL_STATES


def task_prefix(task_id: str) -> str:
    """Where a task's checkpoints and artifacts live in the artifacts bucket (TrainingJob.output_prefix)."""
    return f"tasks/{task_id}/"


@dataclass
class NewTask:
    """Everything CreateTrainingTask resolved, ready to store."""

    project: str
    request_id: str
    name: str
    description: str
    task_type: int
    dataset_id: str
    dataset_version_id: str
    model_id: str
    mode: int
    auto_select: training_pb2.AutoSelect | None
    transfer_strategy: int
    hyperparameters: common_pb2.Hyperparameters
    selection_rationale: str
    job: events_pb2.TrainingJob
    id: str = ""
    preset_id: str = ""
    resources: common_pb2.ComputeResources | None = None
    search: training_pb2.HyperparameterSearch | None = None  # a hyperparameter search task
    search_task_id: str = ""  # a trial: its search task
    trial_number: int | None = None
    logs: tuple[str, ...] = ()  # what resolving it did (a weights pull), the task's first log lines
    data_type: int = 0
    suggestion: recommend_pb2.Suggestion | None = None  # the recommendation it was created from


def to_proto(row: TrainingTaskRow) -> training_pb2.TrainingTask:
    task = training_pb2.TrainingTask(
        id=row.id,
        project=row.project,
        name=row.name,
        description=row.description,
        task_type=row.task_type,
        dataset_id=row.dataset_id,
        dataset_version_id=row.dataset_version_id,
        model_id=row.model_id,
        preset_id=row.preset_id or "",
        mode=row.mode,
        transfer_strategy=row.transfer_strategy,
        state=row.state,
        failure_reason=row.failure_reason,
        trainer_node=row.trainer_node,
        attempt=row.attempt,
        metrics=json.loads(row.metrics or "{}"),
        selection_rationale=row.selection_rationale,
        data_type=row.data_type or 0,
    )
    if row.suggestion:
        task.suggestion.ParseFromString(row.suggestion)
    if row.auto_select:
        task.auto_select.ParseFromString(row.auto_select)
    if row.search:
        task.search.ParseFromString(row.search)
    if row.search_task_id:
        task.search_task_id = row.search_task_id
        task.trial_number = row.trial_number or 0
    if row.evaluation_id:
        task.evaluation_id = row.evaluation_id
        task.evaluation.ParseFromString(row.evaluation or b"")
    task.hyperparameters.ParseFromString(row.hyperparameters or b"")
    if row.resources:
        task.resources.ParseFromString(row.resources)
    if row.progress:
        task.progress.ParseFromString(row.progress)
    for entry in json.loads(row.epoch_metrics or "[]"):
        task.epoch_metrics.add(epoch=entry["epoch"], values=entry["values"])
    for art in json.loads(row.artifacts or "[]"):
        task.artifacts.add(
            name=art["name"],
            object=common_pb2.ObjectRef(
                bucket=art["bucket"], key=art["key"], sha256=art.get("sha256", ""), size_bytes=art.get("size_bytes", 0)
            ),
        )
    if row.job:
        model = events_pb2.TrainingJob.FromString(row.job).model
        started_from = model.weights if model.weights.key else model.backbone_weights
        if started_from.key:
            task.pretrained_weights.CopyFrom(started_from)
    task.create_time.FromDatetime(row.create_time)
    if row.start_time:
        task.start_time.FromDatetime(row.start_time)
    if row.end_time:
        task.end_time.FromDatetime(row.end_time)
    return task


def _artifacts_json(artifacts) -> str:
    """The artifacts column (to_proto reads it back) of training Artifact or trainer JobArtifact messages:
    both are a name and an ObjectRef."""
    return json.dumps(
        [
            {
                "name": a.name,
                "bucket": a.object.bucket,
                "key": a.object.key,
                "sha256": a.object.sha256,
                "size_bytes": a.object.size_bytes,
            }
            for a in artifacts
        ]
    )


def _encode_token(row: TrainingTaskRow) -> str:
    raw = json.dumps([row.create_time.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        created, task_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        when = datetime.fromisoformat(created)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)), str(task_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise errors.InvalidArgument({"page_token": "not a token from a previous ListTrainingTasks response"}) from exc


class TaskStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reading ---------------------------------------------------------------------------

    @staticmethod
    def _lock(session: Session, task_id: str) -> None:
        """Take the task's write lock before reading it (a no-op UPDATE: row lock on PostgreSQL,
        the database write lock on SQLite, where SELECT ... FOR UPDATE does nothing)."""
        session.execute(
            sa.update(TrainingTaskRow)
            .where(TrainingTaskRow.id == task_id)
            .values(last_sequence=TrainingTaskRow.last_sequence)
        )

    def _row(self, session: Session, project: str, task_id: str, *, lock: bool = False) -> TrainingTaskRow:
        if lock:
            self._lock(session, task_id)
        query = select(TrainingTaskRow).where(TrainingTaskRow.id == task_id, TrainingTaskRow.project == project)
        if lock:
            query = query.with_for_update()
        row = session.exec(query).first()
        if row is None:
            raise errors.NotFound(f"training task {task_id!r} not found")
        return row

    def data_type_of(self, project: str, task_id: str) -> int:
        """What the images of the project's task showed (DataType); 0 when unknown or the task is gone."""
        with Session(self.engine) as session:
            query = select(TrainingTaskRow.data_type).where(
                TrainingTaskRow.id == task_id, TrainingTaskRow.project == project
            )
            return int(session.exec(query).first() or 0)

    def get(self, project: str, task_id: str) -> training_pb2.TrainingTask:
        with Session(self.engine) as session:
            return to_proto(self._row(session, project, task_id))

    def find_by_request_id(self, project: str, request_id: str) -> training_pb2.TrainingTask | None:
        if not request_id:
            return None
        with Session(self.engine) as session:
            row = session.exec(
                select(TrainingTaskRow).where(
                    TrainingTaskRow.project == project, TrainingTaskRow.request_id == request_id
                )
            ).first()
            return to_proto(row) if row else None

    def task_and_job(self, task_id: str) -> tuple[training_pb2.TrainingTask, events_pb2.TrainingJob]:
        with Session(self.engine) as session:
            row = session.get(TrainingTaskRow, task_id)
            if row is None:
                raise errors.NotFound(f"training task {task_id!r} not found")
            return to_proto(row), events_pb2.TrainingJob.FromString(row.job)

    def add_log(self, task_id: str, text: str) -> None:
        with Session(self.engine) as session:
            self._lock(session, task_id)
            row = session.exec(select(TrainingTaskRow).where(TrainingTaskRow.id == task_id).with_for_update()).one()
            self._append(session, row, utcnow(), None, log=text)
            session.add(row)
            session.commit()

    def job(self, task_id: str) -> bytes:
        with Session(self.engine) as session:
            row = session.get(TrainingTaskRow, task_id)
            return row.job if row else b""

    def list(
        self,
        project: str,
        state: int = 0,
        page_size: int = 0,
        page_token: str = "",
        model_id: str = "",
        active_only: bool = False,
    ) -> tuple[list[training_pb2.TrainingTask], str]:
        if page_size < 0:
            raise errors.InvalidArgument({"page_size": f"must be >= 0, got {page_size}"})
        if state and state not in training_pb2.TaskState.values():
            raise errors.InvalidArgument({"state": f"unknown state {state}"})
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        query = select(TrainingTaskRow).where(TrainingTaskRow.project == project)
        if model_id:  # every task holding the model's weights, a search's trials included
            query = query.where(TrainingTaskRow.model_id == model_id)
        else:  # a search's trials are listed by ListTrials, not here
            query = query.where(TrainingTaskRow.search_task_id.is_(None))
        if state:
            query = query.where(TrainingTaskRow.state == state)
        if active_only:
            query = query.where(TrainingTaskRow.state.not_in(FINAL_STATES))
        if page_token:
            created, last_id = _decode_token(page_token)
            query = query.where(
                sa.or_(
                    TrainingTaskRow.create_time < created,
                    sa.and_(TrainingTaskRow.create_time == created, TrainingTaskRow.id < last_id),
                )
            )
        query = query.order_by(TrainingTaskRow.create_time.desc(), TrainingTaskRow.id.desc()).limit(size + 1)
        with Session(self.engine) as session:
            rows = list(session.exec(query))
        more = len(rows) > size
        rows = rows[:size]
        return [to_proto(r) for r in rows], (_encode_token(rows[-1]) if more and rows else "")

    def events_after(self, project: str, task_id: str, after: int = 0) -> list[training_pb2.TaskEvent]:
        with Session(self.engine) as session:
            self._row(session, project, task_id)
            rows = session.exec(
                select(TrainingTaskEventRow)
                .where(TrainingTaskEventRow.task_id == task_id, TrainingTaskEventRow.sequence > after)
                .order_by(TrainingTaskEventRow.sequence)
            )
            return [training_pb2.TaskEvent.FromString(r.event) for r in rows]

    # -- writing ---------------------------------------------------------------------------

    def _append(
        self, session: Session, row: TrainingTaskRow, when: datetime, source_seq: int | None = None, **event
    ) -> training_pb2.TaskEvent:
        row.last_sequence += 1
        ev = training_pb2.TaskEvent(sequence=row.last_sequence, **event)
        ev.time.FromDatetime(when)
        session.add(
            TrainingTaskEventRow(
                task_id=row.id,
                sequence=row.last_sequence,
                source_seq=source_seq,
                time=when,
                event=ev.SerializeToString(),
            )
        )
        return ev

    def _state_event(
        self, session: Session, row: TrainingTaskRow, when: datetime, source_seq: int | None = None
    ) -> training_pb2.TaskEvent:
        return self._append(session, row, when, source_seq, task=to_proto(row))

    def insert_pending(
        self, new: NewTask, also: Callable[[Session, TrainingTaskRow], None] | None = None
    ) -> tuple[training_pb2.TrainingTask, bool]:
        """Store a PENDING task; (task, created). A concurrent twin with the same request_id wins once.
        `also` adds rows that belong to the task in the same transaction (a search's study, a trial)."""
        now = utcnow()
        row = TrainingTaskRow(
            id=new.id or new_task_id(),
            project=new.project,
            request_id=new.request_id or None,
            name=new.name,
            description=new.description,
            task_type=new.task_type,
            dataset_id=new.dataset_id,
            dataset_version_id=new.dataset_version_id,
            model_id=new.model_id,
            preset_id=new.preset_id,
            mode=new.mode,
            auto_select=new.auto_select.SerializeToString() if new.auto_select is not None else None,
            transfer_strategy=new.transfer_strategy,
            hyperparameters=new.hyperparameters.SerializeToString(),
            resources=new.resources.SerializeToString() if new.resources is not None else b"",
            state=S.TASK_STATE_PENDING,
            selection_rationale=new.selection_rationale,
            create_time=now,
            search=new.search.SerializeToString() if new.search is not None else None,
            search_task_id=new.search_task_id or None,
            trial_number=new.trial_number,
            data_type=new.data_type,
            suggestion=new.suggestion.SerializeToString() if new.suggestion is not None else None,
        )
        new.job.task_id = row.id
        new.job.output_prefix = task_prefix(row.id)
        row.job = new.job.SerializeToString()
        try:
            with Session(self.engine) as session:
                session.add(row)
                session.flush()
                if also is not None:
                    also(session, row)
                self._state_event(session, row, now)
                for line in new.logs:
                    self._append(session, row, now, None, log=line)
                session.commit()
                return to_proto(row), True
        except IntegrityError:
            existing = self.find_by_request_id(new.project, new.request_id)
            if existing is None:
                raise
            return existing, False

    def mark_queued(self, task_id: str) -> list[training_pb2.TaskEvent]:
        with Session(self.engine) as session:
            self._lock(session, task_id)
            row = session.exec(select(TrainingTaskRow).where(TrainingTaskRow.id == task_id).with_for_update()).one()
            if row.state != S.TASK_STATE_PENDING:
                return []
            row.state = S.TASK_STATE_QUEUED
            row.attempt = max(row.attempt, 0)
            ev = self._state_event(session, row, utcnow())
            session.add(row)
            session.commit()
            return [ev]

    def cancel(
        self, project: str, task_id: str, reason: str = "cancelled by the user"
    ) -> tuple[training_pb2.TrainingTask, list[training_pb2.TaskEvent]]:
        with Session(self.engine) as session:
            row = self._row(session, project, task_id, lock=True)
            if is_final(row.state):
                raise errors.FailedPrecondition(
                    f"training task {task_id!r} has already ended ({training_pb2.TaskState.Name(row.state)})"
                )
            now = utcnow()
            row.state = S.TASK_STATE_CANCELLED
            row.failure_reason = reason
            row.end_time = now
            ev = self._state_event(session, row, now)
            session.add(row)
            session.commit()
            return to_proto(row), [ev]

    def continue_task(
        self, project: str, task_id: str, additional_epochs: int
    ) -> tuple[training_pb2.TrainingTask, bytes]:
        """Raise the epochs of an ended task and put it back to QUEUED; (task, job to publish)."""
        with Session(self.engine) as session:
            row = self._row(session, project, task_id, lock=True)
            if row.state not in (S.TASK_STATE_SUCCEEDED, S.TASK_STATE_CANCELLED, S.TASK_STATE_FAILED):
                raise errors.FailedPrecondition(
                    f"training task {task_id!r} has not ended ({training_pb2.TaskState.Name(row.state)}); "
                    "only a succeeded, cancelled or failed task can continue"
                )
            # resolved again: a task stored before its hyperparameters were resolved whole gets the rest
            hp = hyperparams.resolve(common_pb2.Hyperparameters.FromString(row.hyperparameters or b""))
            hp.epochs += additional_epochs
            if hp.epochs > 1000:
                raise errors.InvalidArgument(
                    {"additional_epochs": f"the task would train {hp.epochs} epochs; at most 1000 in all"}
                )
            job = events_pb2.TrainingJob.FromString(row.job)
            job.hyperparameters.CopyFrom(hp)
            job.attempt_offset = row.attempt
            row.hyperparameters = hp.SerializeToString()
            row.job = job.SerializeToString()
            now = utcnow()
            row.state = S.TASK_STATE_QUEUED
            row.failure_reason = ""
            row.end_time = None
            row.stored_bytes = None  # measured again when it ends again
            self._append(
                session, row, now, None, log=f"continued for {additional_epochs} more epoch(s), {hp.epochs} in all"
            )
            self._state_event(session, row, now)
            session.add(row)
            session.commit()
            return to_proto(row), row.job

    def update_search_task(
        self,
        task_id: str,
        *,
        state: int = 0,
        reason: str | None = None,
        logs: Iterable[str] = (),
        progress: training_pb2.Progress | None = None,
        result: training_pb2.TrainingTask | None = None,
    ) -> bool:
        """Log lines, progress, a new state and, for SUCCEEDED, the result (metrics, per-epoch metrics,
        artifacts and hyperparameters of the best trial) on a search task that has not ended."""
        with Session(self.engine) as session:
            self._lock(session, task_id)
            row = session.exec(select(TrainingTaskRow).where(TrainingTaskRow.id == task_id).with_for_update()).one()
            if is_final(row.state):
                return False
            now = utcnow()
            for line in logs:
                self._append(session, row, now, None, log=line)
            if progress is not None:
                row.progress = progress.SerializeToString()
                self._append(session, row, now, None, progress=progress)
            if result is not None:
                row.metrics = json.dumps(dict(result.metrics))
                row.epoch_metrics = json.dumps(
                    [{"epoch": e.epoch, "values": dict(e.values)} for e in result.epoch_metrics]
                )
                row.artifacts = _artifacts_json(result.artifacts)
                row.hyperparameters = result.hyperparameters.SerializeToString()
                row.evaluation_id = result.evaluation_id  # the best trial's automatic evaluation
                row.evaluation = result.evaluation.SerializeToString() if result.evaluation_id else b""
            if state and state != row.state:
                row.state = state
                if reason is not None:
                    row.failure_reason = reason
                if state == S.TASK_STATE_RUNNING:
                    row.start_time = row.start_time or now
                if is_final(state):
                    row.end_time = now
                self._state_event(session, row, now)
            session.add(row)
            session.commit()
            return True

    # -- lifecycle: deleting, and what a project holds (quotas) ----------------------------------

    def active_count(self, project: str) -> int:
        """The project's tasks that have not ended (a search counts once, not per trial)."""
        query = select(sa.func.count()).where(
            TrainingTaskRow.project == project,
            TrainingTaskRow.search_task_id.is_(None),
            TrainingTaskRow.state.not_in(FINAL_STATES),
        )
        with Session(self.engine) as session:
            return int(session.exec(query).one())

    def stored_bytes(self, project: str) -> tuple[int, list[str]]:
        """(bytes the project's measured tasks keep, ids of tasks not measured yet: running, or ended since)."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(TrainingTaskRow.id, TrainingTaskRow.stored_bytes, TrainingTaskRow.state).where(
                    TrainingTaskRow.project == project
                )
            ).all()
        known = sum(n for _, n, state in rows if n is not None and is_final(state))
        return known, [task_id for task_id, n, state in rows if n is None or not is_final(state)]

    def set_stored_bytes(self, task_id: str, size: int) -> None:
        """Record what an ended task keeps (a running one is measured afresh every time)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(TrainingTaskRow, task_id)
            if row is not None and is_final(row.state):
                row.stored_bytes = size
                session.add(row)

    def deletable(self, project: str, task_id: str) -> list[str]:
        """The ids DeleteTrainingTask removes: the task and, for a search, its trials. FAILED_PRECONDITION
        for a task that has not ended or is a trial; NOT_FOUND for an unknown one."""
        with Session(self.engine) as session:
            row = self._row(session, project, task_id)
            if row.search_task_id:
                raise errors.FailedPrecondition(
                    f"training task {task_id!r} is trial {row.trial_number} of search {row.search_task_id!r}; "
                    "delete the search",
                    reason="TRIAL_OF_A_SEARCH",
                    metadata={"search_task_id": row.search_task_id},
                )
            if not is_final(row.state):
                raise errors.FailedPrecondition(
                    f"training task {task_id!r} has not ended ({training_pb2.TaskState.Name(row.state)}); "
                    "cancel it first",
                    reason="TASK_NOT_ENDED",
                )
            trials = session.exec(select(TrainingTaskRow).where(TrainingTaskRow.search_task_id == task_id)).all()
            running = [t.id for t in trials if not is_final(t.state)]
            if running:
                raise errors.FailedPrecondition(
                    f"search {task_id!r} still has trials running ({', '.join(running[:5])}); cancel it first",
                    reason="TASK_NOT_ENDED",
                )
            return [task_id, *(t.id for t in trials)]

    def delete(self, project: str, task_ids: list[str]) -> None:
        """Remove the tasks' rows (events, trials, study, task) in one transaction."""
        from services.training.models import TrainingEvaluationRow, TrainingStudyRow, TrainingTrialRow

        with Session(self.engine) as session, session.begin():
            session.execute(sa.delete(TrainingTaskEventRow).where(TrainingTaskEventRow.task_id.in_(task_ids)))
            # their automatic evaluations: the results lived under the tasks' prefixes, deleted with them
            session.execute(
                sa.delete(TrainingEvaluationRow).where(
                    TrainingEvaluationRow.task_id.in_(task_ids), TrainingEvaluationRow.automatic.is_(True)
                )
            )
            session.execute(sa.delete(TrainingTrialRow).where(TrainingTrialRow.study_task_id.in_(task_ids)))
            session.execute(sa.delete(TrainingStudyRow).where(TrainingStudyRow.task_id.in_(task_ids)))
            # trials first: their search's row is what they point at
            for ids in (task_ids[1:], task_ids[:1]):
                if ids:
                    session.execute(
                        sa.delete(TrainingTaskRow).where(
                            TrainingTaskRow.id.in_(ids), TrainingTaskRow.project == project
                        )
                    )

    def check_cancellable(self, project: str, task_id: str) -> training_pb2.TrainingTask:
        task = self.get(project, task_id)
        if is_final(task.state):
            raise errors.FailedPrecondition(
                f"training task {task_id!r} has already ended ({training_pb2.TaskState.Name(task.state)})"
            )
        return task

    def apply_trainer_event(
        self, event: events_pb2.TrainerEvent, source_seq: int | None = None
    ) -> list[training_pb2.TaskEvent]:
        """Apply one trainer event; returns the task events it added (none for a duplicate or stale one)."""
        kind = event.WhichOneof("event")
        with Session(self.engine) as session:
            self._lock(session, event.task_id)
            row = session.exec(
                select(TrainingTaskRow).where(TrainingTaskRow.id == event.task_id).with_for_update()
            ).first()
            if row is None or kind is None:
                log.warning("trainer event for an unknown task", extra={"task_id": event.task_id, "kind": kind})
                return []
            if source_seq is not None:
                seen = session.exec(
                    select(TrainingTaskEventRow.id).where(
                        TrainingTaskEventRow.task_id == row.id, TrainingTaskEventRow.source_seq == source_seq
                    )
                ).first()
                if seen is not None:
                    return []
            if is_final(row.state) or event.attempt < row.attempt:
                log.info(
                    "ignored trainer event",
                    extra={"task_id": row.id, "kind": kind, "attempt": event.attempt, "task_attempt": row.attempt},
                )
                return []
            when = event.time.ToDatetime(tzinfo=UTC) if event.HasField("time") else utcnow()
            out = list(self._apply(session, row, event, kind, when, source_seq))
            session.add(row)
            session.commit()
            return out

    def _apply(
        self,
        session: Session,
        row: TrainingTaskRow,
        event: events_pb2.TrainerEvent,
        kind: str,
        when: datetime,
        seq: int | None,
    ) -> Iterable[training_pb2.TaskEvent]:
        newer_attempt = event.attempt > row.attempt
        if event.attempt:
            row.attempt = max(row.attempt, event.attempt)
        if event.trainer_node:
            row.trainer_node = event.trainer_node
        if kind == "started":
            row.state = S.TASK_STATE_RUNNING
            row.start_time = row.start_time or when
            row.failure_reason = ""
            yield self._state_event(session, row, when, seq)
            if event.started.resumed_from_epoch:
                yield self._append(
                    session,
                    row,
                    when,
                    None,
                    log=f"resumed from the checkpoint of epoch {event.started.resumed_from_epoch}",
                )
        elif kind == "progress":
            p = event.progress
            if row.state in (S.TASK_STATE_QUEUED, S.TASK_STATE_PENDING) and newer_attempt:
                row.state = S.TASK_STATE_RUNNING
                yield self._state_event(session, row, when, None)
            total = max(p.total_epochs * p.total_steps, 1)
            fraction = min(max(((p.epoch - 1) * p.total_steps + p.step) / total, 0.0), 1.0)
            progress = training_pb2.Progress(
                epoch=p.epoch,
                total_epochs=p.total_epochs,
                step=p.step,
                total_steps=p.total_steps,
                images_per_second=p.images_per_second,
                eta_seconds=p.eta_seconds,
                fraction=fraction,
            )
            row.progress = progress.SerializeToString()
            yield self._append(session, row, when, seq, progress=progress)
        elif kind == "epoch_metrics":
            # By epoch: a trainer republishes its checkpoint's epochs on resume; the same values again
            # add nothing, an epoch trained again (after a lost checkpoint) replaces the old values.
            epoch, values = event.epoch_metrics.epoch, dict(event.epoch_metrics.values)
            entries = json.loads(row.epoch_metrics or "[]")
            if any(e["epoch"] == epoch and e["values"] == values for e in entries):
                return
            entries = [e for e in entries if e["epoch"] != epoch]
            entries.append({"epoch": epoch, "values": values})
            entries.sort(key=lambda e: e["epoch"])
            row.epoch_metrics = json.dumps(entries)
            yield self._append(
                session,
                row,
                when,
                seq,
                epoch_metrics=training_pb2.EpochMetrics(epoch=epoch, values=values),
            )
        elif kind == "log":
            yield self._append(session, row, when, seq, log=event.log)
        elif kind == "succeeded":
            row.state = S.TASK_STATE_SUCCEEDED
            row.metrics = json.dumps(dict(event.succeeded.metrics))
            row.artifacts = _artifacts_json(event.succeeded.artifacts)
            if row.progress:
                progress = training_pb2.Progress.FromString(row.progress)
                progress.fraction = 1.0
                progress.eta_seconds = 0.0
                row.progress = progress.SerializeToString()
            row.end_time = when
            if event.succeeded.HasField("evaluation"):  # evaluated right after training: an Evaluation of its own
                evaluation = automatic_evaluation(row, event.succeeded, when)
                session.add(evaluation)
                row.evaluation_id = evaluation.id
                row.evaluation = event.succeeded.evaluation.SerializeToString()
            yield self._state_event(session, row, when, seq)
        elif kind == "failed":
            if event.failed.retryable:
                row.state = S.TASK_STATE_QUEUED
                row.failure_reason = f"attempt {event.attempt} failed, retrying: {event.failed.reason}"
            else:
                row.state = S.TASK_STATE_FAILED
                row.failure_reason = event.failed.reason
                row.end_time = when
            yield self._state_event(session, row, when, seq)
        elif kind == "cancelled":
            row.state = S.TASK_STATE_CANCELLED
            row.failure_reason = row.failure_reason or "cancelled"
            row.end_time = when
            yield self._state_event(session, row, when, seq)
