"""Automatic hyperparameter search. A search task runs trials; each trial is an ordinary training task
whose job goes on the jobs queue (so trials spread over the trainers, and a crashed trainer's trial is
redelivered and resumes as any job does).

The study lives in SQL: training_studies (objective, budget) and training_trials (parameters,
per-epoch objective values, state, value). Every decision rebuilds an in-memory Optuna study from
those rows and asks it for the next trial's parameters, or its pruner whether a running trial should
stop, so a restarted service loses no trial and SQLite and PostgreSQL work alike.

Tuner.advance(search task) is the one step that moves a search on and is safe to repeat: it reads
each unfinished trial's task (a trial's state is a projection of its task), prunes, fills free slots
up to the parallelism, and ends the search when the budget is spent. Trainer events of a trial, a
cancel, and a periodic tick (time budget, recovery after a restart) all call it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from kernel import errors
from kernel.messaging import cancel_subject
from services.training import search_space
from services.training.models import TrainingStudyRow, TrainingTaskRow, TrainingTrialRow
from services.training.store import NewTask, TaskStore, is_final, to_proto, utcnow
from trainyard.events.v1 import events_pb2
from trainyard.training.v1 import training_pb2, training_service_pb2

if TYPE_CHECKING:
    from services.training.domain import TrainingDomain

log = logging.getLogger(__name__)

T = training_pb2
ACTIVE = (T.TRIAL_STATE_QUEUED, T.TRIAL_STATE_RUNNING)
TICK_S = 5.0
LEASE_S = 30.0  # longer than any step; a replica that dies mid-step holds the search this long
LEASE_WAIT_S = 10.0
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# A search with no complete trial gives up after this many failed ones (a broken dataset or model
# fails every trial alike).
MAX_FAILURES_WITHOUT_SUCCESS = 3


@dataclass
class TrialRecord:
    """A stored trial, as Optuna sees it."""

    number: int
    task_id: str
    state: int
    params: dict[str, Any]
    intermediate: dict[int, float]
    system_attrs: dict[str, Any] = field(default_factory=dict)
    value: float | None = None
    pruned_epoch: int = 0
    reason: str = ""

    @classmethod
    def from_row(cls, row: TrainingTrialRow) -> TrialRecord:
        return cls(
            number=row.number,
            task_id=row.task_id,
            state=row.state,
            params=json.loads(row.params),
            intermediate={int(k): float(v) for k, v in json.loads(row.intermediate).items()},
            system_attrs=json.loads(row.system_attrs),
            value=row.value,
            pruned_epoch=row.pruned_epoch,
            reason=row.reason,
        )


# -- Optuna ---------------------------------------------------------------------------------------


def _distributions(search: T.HyperparameterSearch) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for p in search.parameters:
        param = search_space.PARAMS[p.name]
        if p.choices or search.method == T.SEARCH_METHOD_GRID:
            out[p.name] = CategoricalDistribution(search_space.grid_values(p))
        elif param.kind == search_space.INT:
            out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
        else:
            out[p.name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step or None)
    return out


def _study(search: T.HyperparameterSearch, trials: list[TrialRecord], sampler=None):
    """An in-memory Optuna study holding the stored trials (Optuna trial ids equal trial numbers)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if search.direction == T.OBJECTIVE_DIRECTION_MAXIMIZE else "minimize"
    study = optuna.create_study(direction=direction, sampler=sampler or optuna.samplers.RandomSampler(seed=0))
    dists = _distributions(search)
    states = {
        T.TRIAL_STATE_QUEUED: TrialState.RUNNING,
        T.TRIAL_STATE_RUNNING: TrialState.RUNNING,
        T.TRIAL_STATE_COMPLETE: TrialState.COMPLETE,
        T.TRIAL_STATE_PRUNED: TrialState.PRUNED,
        T.TRIAL_STATE_FAILED: TrialState.FAIL,
        T.TRIAL_STATE_CANCELLED: TrialState.FAIL,
    }
    for t in sorted(trials, key=lambda t: t.number):
        state = states[t.state]
        params = {k: v for k, v in t.params.items() if k in dists}
        study.add_trial(
            create_trial(
                state=state,
                value=t.value if state == TrialState.COMPLETE else None,
                params=params,
                distributions={k: dists[k] for k in params},
                intermediate_values={k: v for k, v in t.intermediate.items()},
                system_attrs=dict(t.system_attrs),
            )
        )
    return study


def ask(search: T.HyperparameterSearch, trials: list[TrialRecord], number: int) -> dict[str, Any]:
    """The parameters of trial `number`: the grid's next point, or a sample of the method's sampler
    (seeded by the search's seed and the trial number, so a trial's values are reproducible)."""
    if search.method == T.SEARCH_METHOD_GRID:
        return search_space.grid_points(search)[number]
    import optuna

    seed = (search.seed + number) % (2**32)
    if search.method == T.SEARCH_METHOD_RANDOM:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # constant_liar: running trials count as bad guesses, so parallel trials spread out
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = _study(search, trials, sampler)
        trial = study.ask(_distributions(search))
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in trial.params.items()}


def should_prune(search: T.HyperparameterSearch, trials: list[TrialRecord], number: int) -> tuple[bool, dict]:
    """The pruner's verdict on running trial `number` from its per-epoch values; (prune, its system attrs)."""
    import optuna

    method = search.pruning.method
    if method in (T.PRUNING_METHOD_UNSPECIFIED, T.PRUNING_METHOD_NONE):
        return False, {}
    warmup = search.pruning.warmup_epochs
    if method == T.PRUNING_METHOD_MEDIAN:
        # steps are 1-based epochs: n_warmup_steps = warmup + 1 allows pruning from epoch warmup + 1
        pruner = optuna.pruners.MedianPruner(n_startup_trials=search.pruning.startup_trials, n_warmup_steps=warmup + 1)
    else:
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(search.pruning.min_epochs, warmup + 1),
            reduction_factor=search.pruning.reduction_factor,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = _study(search, trials)
        frozen = study.get_trials(deepcopy=False)[number]
        verdict = bool(pruner.prune(study, frozen))
        attrs = study.get_trials(deepcopy=False)[number].system_attrs
    return verdict, dict(attrs)


def best_trial(trials: list[TrialRecord], maximize: bool) -> TrialRecord | None:
    done = [t for t in trials if t.state == T.TRIAL_STATE_COMPLETE and t.value is not None]
    if not done:
        return None
    pick = max if maximize else min
    return pick(done, key=lambda t: (t.value, -t.number) if maximize else (t.value, t.number))


def describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


# -- SQL --------------------------------------------------------------------------------------------


@dataclass
class StudyView:
    task: training_pb2.TrainingTask
    study: TrainingStudyRow
    trials: list[TrialRecord]


def _encode_token(number: int) -> str:
    return base64.urlsafe_b64encode(f"trial:{number}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind != "trial":
            raise ValueError(kind)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise errors.InvalidArgument({"page_token": "not a token from a previous ListTrials response"}) from exc


class StudyStore:
    """Studies and trials in SQL (plain synchronous code; the tuner calls it through to_thread)."""

    def __init__(self, tasks: TaskStore) -> None:
        self.tasks = tasks
        self.engine = tasks.engine

    @staticmethod
    def study_row(task_id: str, search: T.HyperparameterSearch) -> TrainingStudyRow:
        now = utcnow()
        return TrainingStudyRow(
            task_id=task_id,
            objective_metric=search.objective_metric,
            maximize=search.direction == T.OBJECTIVE_DIRECTION_MAXIMIZE,
            max_trials=search.max_trials,
            parallelism=search.parallelism,
            deadline=now + timedelta(seconds=search.max_duration_seconds) if search.max_duration_seconds else None,
            create_time=now,
        )

    def load(self, task_id: str) -> StudyView | None:
        with Session(self.engine) as session:
            study = session.get(TrainingStudyRow, task_id)
            task = session.get(TrainingTaskRow, task_id)
            if study is None or task is None:
                return None
            rows = session.exec(
                select(TrainingTrialRow)
                .where(TrainingTrialRow.study_task_id == task_id)
                .order_by(TrainingTrialRow.number)
            ).all()
            return StudyView(task=to_proto(task), study=study, trials=[TrialRecord.from_row(r) for r in rows])

    def study_of_trial(self, trial_task_id: str) -> str | None:
        with Session(self.engine) as session:
            return session.exec(
                select(TrainingTrialRow.study_task_id).where(TrainingTrialRow.task_id == trial_task_id)
            ).first()

    def active_studies(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.exec(select(TrainingStudyRow.task_id).where(TrainingStudyRow.ended.is_(False))))

    def trial_tasks(self, task_ids: list[str]) -> dict[str, training_pb2.TrainingTask]:
        if not task_ids:
            return {}
        with Session(self.engine) as session:
            rows = session.exec(select(TrainingTaskRow).where(TrainingTaskRow.id.in_(task_ids))).all()
            return {r.id: to_proto(r) for r in rows}

    def save_trial(self, study_task_id: str, trial: TrialRecord, ended: bool) -> None:
        with Session(self.engine) as session:
            row = session.exec(
                select(TrainingTrialRow).where(
                    TrainingTrialRow.study_task_id == study_task_id, TrainingTrialRow.number == trial.number
                )
            ).one()
            row.state = trial.state
            row.intermediate = json.dumps({str(k): v for k, v in sorted(trial.intermediate.items())})
            row.system_attrs = json.dumps(trial.system_attrs)
            row.value = trial.value
            row.pruned_epoch = trial.pruned_epoch
            row.reason = trial.reason
            if ended and row.end_time is None:
                row.end_time = utcnow()
            session.add(row)
            session.commit()

    def acquire(self, task_id: str, owner: str, seconds: float) -> bool | None:
        """Take (or renew) the study's lease unless another replica holds an unexpired one;
        None when there is no such study."""
        now = utcnow()
        with Session(self.engine) as session:
            result = session.execute(
                sa.update(TrainingStudyRow)
                .where(
                    TrainingStudyRow.task_id == task_id,
                    sa.or_(
                        TrainingStudyRow.lease_until.is_(None),
                        TrainingStudyRow.lease_until < now,
                        TrainingStudyRow.lease_owner == owner,
                    ),
                )
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
            )
            session.commit()
            if result.rowcount == 1:
                return True
            return False if session.get(TrainingStudyRow, task_id) is not None else None

    def release(self, task_id: str, owner: str) -> None:
        with Session(self.engine) as session:
            session.execute(
                sa.update(TrainingStudyRow)
                .where(TrainingStudyRow.task_id == task_id, TrainingStudyRow.lease_owner == owner)
                .values(lease_until=None)
            )
            session.commit()

    def end_study(self, task_id: str) -> None:
        with Session(self.engine) as session:
            session.execute(sa.update(TrainingStudyRow).where(TrainingStudyRow.task_id == task_id).values(ended=True))
            session.commit()

    def add_trial(self, new: NewTask, number: int, params: dict[str, Any]) -> training_pb2.TrainingTask:
        """The trial's task (PENDING) and its trial row, in one transaction."""

        def also(session: Session, row: TrainingTaskRow) -> None:
            session.add(
                TrainingTrialRow(
                    study_task_id=new.search_task_id,
                    number=number,
                    task_id=row.id,
                    state=T.TRIAL_STATE_QUEUED,
                    params=json.dumps(params),
                    create_time=row.create_time,
                )
            )

        task, _created = self.tasks.insert_pending(new, also)
        return task

    def list_trials(
        self, project: str, task_id: str, page_size: int, page_token: str
    ) -> training_service_pb2.ListTrialsResponse:
        if page_size < 0:
            raise errors.InvalidArgument({"page_size": f"must be >= 0, got {page_size}"})
        after = _decode_token(page_token) if page_token else -1
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        self.tasks.get(project, task_id)  # NOT_FOUND outside the caller's project
        with Session(self.engine) as session:
            study = session.get(TrainingStudyRow, task_id)
            if study is None:
                return training_service_pb2.ListTrialsResponse()
            everything = [
                TrialRecord.from_row(r)
                for r in session.exec(select(TrainingTrialRow).where(TrainingTrialRow.study_task_id == task_id))
            ]
            rows = session.exec(
                select(TrainingTrialRow)
                .where(TrainingTrialRow.study_task_id == task_id, TrainingTrialRow.number > after)
                .order_by(TrainingTrialRow.number)
                .limit(size + 1)
            ).all()
        more = len(rows) > size
        rows = rows[:size]
        tasks = self.trial_tasks([r.task_id for r in rows])
        best = best_trial(everything, study.maximize)
        out = training_service_pb2.ListTrialsResponse(
            objective_metric=study.objective_metric,
            direction=T.OBJECTIVE_DIRECTION_MAXIMIZE if study.maximize else T.OBJECTIVE_DIRECTION_MINIMIZE,
            next_page_token=_encode_token(rows[-1].number) if more and rows else "",
        )
        for row in rows:
            out.trials.append(trial_proto(TrialRecord.from_row(row), row, tasks.get(row.task_id), best))
        return out


def trial_proto(
    record: TrialRecord, row: TrainingTrialRow, task: training_pb2.TrainingTask | None, best: TrialRecord | None
) -> T.Trial:
    trial = T.Trial(
        number=record.number,
        task_id=record.task_id,
        state=record.state,
        pruned_epoch=record.pruned_epoch,
        reason=record.reason,
        best=best is not None and best.number == record.number,
    )
    for name, value in record.params.items():
        if isinstance(value, str):
            trial.parameters.add(name=name, text=value)
        else:
            trial.parameters.add(name=name, number=float(value))
    if record.value is not None:
        trial.objective_value = record.value
    if task is not None:
        trial.hyperparameters.CopyFrom(task.hyperparameters)
        trial.epoch_metrics.extend(task.epoch_metrics)
        if record.state == T.TRIAL_STATE_COMPLETE:
            trial.metrics.update(task.metrics)
    trial.create_time.FromDatetime(_aware(row.create_time))
    if row.end_time is not None:
        trial.end_time.FromDatetime(_aware(row.end_time))
    return trial


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- the driver -------------------------------------------------------------------------------------


def sync_trial(trial: TrialRecord, task: training_pb2.TrainingTask | None, metric: str) -> bool:
    """Bring an unfinished trial up to date with its task; True when its state or values changed."""
    before = (trial.state, dict(trial.intermediate), trial.value, trial.reason)
    if task is None:
        trial.state, trial.reason = T.TRIAL_STATE_FAILED, "its training task is missing"
        return True
    for entry in task.epoch_metrics:
        if metric in entry.values:
            trial.intermediate[entry.epoch] = float(entry.values[metric])
    if task.state == T.TASK_STATE_SUCCEEDED:
        value = task.metrics.get(metric)
        if value is None or not math.isfinite(value):
            trial.state = T.TRIAL_STATE_FAILED
            trial.reason = f"it did not report a finite {metric} (got {value})"
        else:
            trial.state, trial.value = T.TRIAL_STATE_COMPLETE, float(value)
    elif task.state == T.TASK_STATE_FAILED:
        trial.state, trial.reason = T.TRIAL_STATE_FAILED, task.failure_reason
    elif task.state == T.TASK_STATE_CANCELLED:
        trial.state, trial.reason = T.TRIAL_STATE_CANCELLED, task.failure_reason or "cancelled"
    elif task.state == T.TASK_STATE_RUNNING:
        trial.state = T.TRIAL_STATE_RUNNING
    return before != (trial.state, trial.intermediate, trial.value, trial.reason)


class Tuner:
    """Moves searches on. One per training service; every step is safe to repeat after a crash."""

    def __init__(self, domain: TrainingDomain, *, tick_s: float = TICK_S) -> None:
        self.domain = domain
        self.store = StudyStore(domain.store)
        self.tick_s = tick_s
        self._locks: dict[str, asyncio.Lock] = {}
        self._ticker: asyncio.Task | None = None
        self.owner = uuid.uuid4().hex  # this replica, for the study leases

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every unfinished search (after a restart), then tick for time budgets."""
        self._ticker = asyncio.create_task(self._tick(), name="search-ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
                pass

    async def _tick(self) -> None:
        while True:
            try:
                for task_id in await asyncio.to_thread(self.store.active_studies):
                    await self.advance(task_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - next tick retries
                log.exception("advancing searches failed")
            await asyncio.sleep(self.tick_s)

    # -- hooks of the domain ------------------------------------------------------------------------

    def create_study(self, new: NewTask) -> tuple[training_pb2.TrainingTask, bool]:
        """Store a search task and its study in one transaction (sync)."""
        return self.domain.store.insert_pending(
            new, lambda session, row: session.add(StudyStore.study_row(row.id, new.search))
        )

    async def on_trainer_event(self, event: events_pb2.TrainerEvent) -> None:
        if event.WhichOneof("event") in (None, "progress", "log", "heartbeat"):
            return
        study = await asyncio.to_thread(self.store.study_of_trial, event.task_id)
        if study is not None:
            await self.advance(study)

    async def on_cancelled(self, task: training_pb2.TrainingTask) -> None:
        """A search task was cancelled (its trials stop) or one trial was (the search goes on)."""
        if task.HasField("search"):
            await self.advance(task.id)
        elif task.search_task_id:
            await self.advance(task.search_task_id)

    # -- the step ----------------------------------------------------------------------------------

    async def advance(self, task_id: str) -> None:
        """One step of the search, by one replica at a time: an asyncio lock within this process and
        the study's lease in SQL across replicas (waited for; the tick retries a step that gave up)."""
        lock = self._locks.setdefault(task_id, asyncio.Lock())
        async with lock:
            for _ in range(int(LEASE_WAIT_S / 0.1)):
                got = await asyncio.to_thread(self.store.acquire, task_id, self.owner, LEASE_S)
                if got is None:
                    return  # not a search
                if got:
                    break
                await asyncio.sleep(0.1)
            else:
                log.info("another replica holds the search", extra={"task_id": task_id})
                return
            try:
                await self._advance(task_id)
            finally:
                await asyncio.to_thread(self.store.release, task_id, self.owner)

    async def _advance(self, task_id: str) -> None:
        view = await asyncio.to_thread(self.store.load, task_id)
        if view is None or view.study.ended:
            return
        search, study, trials = view.task.search, view.study, view.trials
        logs: list[str] = []
        active = [t for t in trials if t.state in ACTIVE]
        tasks = await asyncio.to_thread(self.store.trial_tasks, [t.task_id for t in active])

        # 1. each unfinished trial follows its task; a running one may be pruned
        for trial in active:
            task = tasks.get(trial.task_id)
            seen = len(trial.intermediate)
            changed = sync_trial(trial, task, study.objective_metric)
            if trial.state == T.TRIAL_STATE_RUNNING and len(trial.intermediate) > seen:
                prune, attrs = should_prune(search, trials, trial.number)
                trial.system_attrs = attrs
                changed = True
                if prune:
                    epoch = max(trial.intermediate)
                    value = trial.intermediate[epoch]
                    trial.state, trial.pruned_epoch = T.TRIAL_STATE_PRUNED, epoch
                    trial.value = value if math.isfinite(value) else None
                    trial.reason = f"pruned after epoch {epoch}: {study.objective_metric} {value:.4g}"
            if changed:
                ended = trial.state not in ACTIVE
                await asyncio.to_thread(self.store.save_trial, task_id, trial, ended)
                if ended:
                    logs.append(self._ended_line(trial, trials, study))
            if trial.state == T.TRIAL_STATE_PRUNED and task is not None and not is_final(task.state):
                await self._stop_trial(task, trial.reason)

        # 2. a cancelled (or otherwise ended) search stops its trials
        if is_final(view.task.state):
            await self._cancel_active(task_id, trials, tasks, "the search was cancelled")
            await asyncio.to_thread(self.store.end_study, task_id)
            await self.domain.notifier.notify(task_id)
            return

        # 3. the budget
        now = utcnow()
        out_of_time = study.deadline is not None and now >= _aware(study.deadline)
        if out_of_time:
            for trial in await self._cancel_active(task_id, trials, tasks, "the search's time budget was spent"):
                logs.append(f"trial {trial.number} stopped: the time budget was spent")
        failed = sum(t.state == T.TRIAL_STATE_FAILED for t in trials)
        complete = sum(t.state == T.TRIAL_STATE_COMPLETE for t in trials)
        hopeless = not complete and failed >= min(MAX_FAILURES_WITHOUT_SUCCESS, study.max_trials)
        can_start = not out_of_time and not hopeless and len(trials) < study.max_trials

        # 4. free slots get new trials
        queued: list[training_pb2.TrainingTask] = []
        template = None
        while can_start and sum(t.state in ACTIVE for t in trials) < study.parallelism:
            number = len(trials)
            params = await asyncio.to_thread(ask, search, trials, number)
            if template is None:
                template = (await asyncio.to_thread(self.domain.store.task_and_job, task_id))[1]
            new = self._trial_task(view.task, template, number, params)
            trial_task = await asyncio.to_thread(self.store.add_trial, new, number, params)
            trials.append(TrialRecord(number, trial_task.id, T.TRIAL_STATE_QUEUED, params, {}))
            queued.append(trial_task)
            logs.append(f"trial {number} queued as task {trial_task.id}: {describe(params)}")
            can_start = len(trials) < study.max_trials
        # a trial stored but not yet published (a crash in between) is published now
        for trial in trials:
            task = tasks.get(trial.task_id)
            if trial.state == T.TRIAL_STATE_QUEUED and task is not None and task.state == T.TASK_STATE_PENDING:
                queued.append(task)
        for trial_task in queued:
            await self.domain.enqueue_if_pending(trial_task)

        # 5. the search's own state
        still = [t for t in trials if t.state in ACTIVE]
        ended = len(trials) - len(still)
        progress = T.Progress(
            epoch=ended, total_epochs=study.max_trials, fraction=min(ended / max(study.max_trials, 1), 1.0)
        )
        if not still and not can_start:
            await self._finish(view, trials, logs, progress, hopeless)
            return
        state = 0
        if view.task.state == T.TASK_STATE_PENDING:
            state = T.TASK_STATE_QUEUED
        if any(t.state == T.TRIAL_STATE_RUNNING for t in trials) and view.task.state != T.TASK_STATE_RUNNING:
            state = T.TASK_STATE_RUNNING
        old = view.task.progress
        changed_progress = (old.epoch, old.total_epochs) != (progress.epoch, progress.total_epochs)
        if logs or state or changed_progress:
            await asyncio.to_thread(
                self.domain.store.update_search_task,
                task_id,
                state=state,
                logs=logs,
                progress=progress if changed_progress else None,
            )
            await self.domain.notifier.notify(task_id)

    @staticmethod
    def _trial_task(
        search_task: training_pb2.TrainingTask, template: events_pb2.TrainingJob, number: int, params: dict[str, Any]
    ) -> NewTask:
        hp = search_space.apply(search_task.hyperparameters, params)
        job = events_pb2.TrainingJob()
        job.CopyFrom(template)
        job.hyperparameters.CopyFrom(hp)
        return NewTask(
            project=search_task.project,
            request_id=f"trial:{search_task.id}:{number}",
            name=f"{search_task.name[:110]} / trial {number}",
            description=f"trial {number} of search {search_task.id}",
            task_type=search_task.task_type,
            dataset_id=search_task.dataset_id,
            dataset_version_id=search_task.dataset_version_id,
            model_id=search_task.model_id,
            mode=search_task.mode,
            auto_select=None,
            transfer_strategy=search_task.transfer_strategy,
            hyperparameters=hp,
            selection_rationale="",
            job=job,
            preset_id=search_task.preset_id,
            resources=search_task.resources if search_task.HasField("resources") else None,
            search_task_id=search_task.id,
            trial_number=number,
            data_type=search_task.data_type,
        )

    def _ended_line(self, trial: TrialRecord, trials: list[TrialRecord], study: TrainingStudyRow) -> str:
        name = T.TrialState.Name(trial.state).removeprefix("TRIAL_STATE_").lower()
        if trial.state == T.TRIAL_STATE_COMPLETE:
            best = best_trial(trials, study.maximize)
            mark = " (best so far)" if best is not None and best.number == trial.number else ""
            return f"trial {trial.number} complete: {study.objective_metric} {trial.value:.4g}{mark}"
        return f"trial {trial.number} {name}: {trial.reason}"

    async def _cancel_active(
        self,
        task_id: str,
        trials: list[TrialRecord],
        tasks: dict[str, training_pb2.TrainingTask],
        reason: str,
    ) -> list[TrialRecord]:
        """Cancel the search's unfinished trials with the reason and stop their tasks; returns those trials."""
        cancelled = [t for t in trials if t.state in ACTIVE]
        for trial in cancelled:
            trial.state, trial.reason = T.TRIAL_STATE_CANCELLED, reason
            await asyncio.to_thread(self.store.save_trial, task_id, trial, True)
            if (task := tasks.get(trial.task_id)) is not None and not is_final(task.state):
                await self._stop_trial(task, trial.reason)
        return cancelled

    async def _stop_trial(self, task: training_pb2.TrainingTask, reason: str) -> None:
        """The cancel path of any task: tell its trainer, then mark it CANCELLED."""
        try:
            await self.domain.publisher.publish_cancel(
                cancel_subject(task.id), events_pb2.CancelJob(task_id=task.id).SerializeToString()
            )
            await asyncio.to_thread(self.domain.store.cancel, task.project, task.id, reason)
        except errors.FailedPrecondition:
            pass  # it ended meanwhile
        await self.domain.notifier.notify(task.id)

    async def _finish(
        self, view: StudyView, trials: list[TrialRecord], logs: list[str], progress: T.Progress, hopeless: bool
    ) -> None:
        study, task_id = view.study, view.task.id
        best = best_trial(trials, study.maximize)
        counts = {
            name: sum(t.state == state for t in trials)
            for name, state in (
                ("complete", T.TRIAL_STATE_COMPLETE),
                ("pruned", T.TRIAL_STATE_PRUNED),
                ("failed", T.TRIAL_STATE_FAILED),
                ("cancelled", T.TRIAL_STATE_CANCELLED),
            )
        }
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        if best is None:
            first = next((t.reason for t in trials if t.state == T.TRIAL_STATE_FAILED), "")
            why = "stopped after repeated failures; " if hopeless else ""
            reason = f"no trial completed ({why}{summary or 'no trials'})" + (
                f"; first failure: {first}" if first else ""
            )
            await asyncio.to_thread(
                self.domain.store.update_search_task,
                task_id,
                state=T.TASK_STATE_FAILED,
                reason=reason,
                logs=logs,
                progress=progress,
            )
        else:
            result = (await asyncio.to_thread(self.store.trial_tasks, [best.task_id]))[best.task_id]
            logs.append(
                f"search done ({summary}): best trial {best.number} (task {best.task_id}) with "
                f"{study.objective_metric} {best.value:.4g}: {describe(best.params)}"
            )
            await asyncio.to_thread(
                self.domain.store.update_search_task,
                task_id,
                state=T.TASK_STATE_SUCCEEDED,
                reason="",
                logs=logs,
                progress=progress,
                result=result,
            )
        await asyncio.to_thread(self.store.end_study, task_id)
        await self.domain.notifier.notify(task_id)
        if best is not None:
            await self.domain.register_trained_model(task_id)

    # -- reads ---------------------------------------------------------------------------------------

    async def list_trials(self, project: str, task_id: str, page_size: int, page_token: str):
        return await asyncio.to_thread(self.store.list_trials, project, task_id, page_size, page_token)
