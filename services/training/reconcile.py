"""Reconcile task states with the queue, so no task waits forever on a trainer that is gone.

The training service learns what a task does only from trainer events. A trainer that dies (SIGKILL,
a lost host) sends nothing more, and a crash between storing a task and queueing its job leaves the
task PENDING. A sweep runs at start and every `interval_s`:

- PENDING for longer than `pending_grace_s`: its job is published again (same Nats-Msg-Id, so a job
  that did reach the queue is not duplicated within the dedup window) and the task becomes QUEUED.
- RUNNING with no trainer event for `lease_s` (trainers send a heartbeat every trainer_heartbeat_s),
  judged by the last message on the task's events subject, so events not applied yet count too:
  - the job is still in the queue with deliveries left: QUEUED again, with the reason; JetStream
    redelivers it after the ack wait and the next trainer resumes from the last checkpoint;
  - the job is in the queue but the vanished trainer had its last delivery (the consumer's
    max_deliver): FAILED with the reason, and the job message is deleted;
  - the job is no longer in the queue (acked or terminated, its final event never came): FAILED.
- QUEUED whose newer delivery sent heartbeats but never `started` and then went silent for `lease_s` (a
  trainer that died early): FAILED as above when that was the last delivery or the job is gone; else left
  QUEUED for the redelivery.
  A task whose last trainer event is final is left alone: the event consumer is catching up.
  A hyperparameter search task runs no job of its own (services/training/tuning.py follows its trials,
  which are reconciled like any task).

The sweep sees only deliveries that sent something. A trainer that dies before its first heartbeat on a
job's last allowed delivery leaves no trace but JetStream's max-deliveries advisory (kept in a stream,
handed over by consumer.MaxDeliveriesConsumer): `job_given_up` fails that task at once, unless it has
ended, a newer run of it is queued, or that delivery did report (then the lease above judges it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import nats.js.errors
from sqlmodel import Session, select

from kernel import contract, errors, messaging
from services.training.domain import TrainingDomain
from services.training.models import TrainingTaskRow
from services.training.store import is_final, to_proto, utcnow
from trainyard.events.v1 import events_pb2
from trainyard.training.v1 import training_pb2

log = logging.getLogger(__name__)

S = training_pb2
FINAL_KINDS = ("succeeded", "cancelled")
NO_MESSAGE_FOUND = 10057  # JetStream's err_code for deleting a message that is not there
TaskAndJob = tuple[training_pb2.TrainingTask, events_pb2.TrainingJob]


@dataclass
class SweepResult:
    """Task ids each sweep acted on (for logs and tests)."""

    republished: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class Stale:
    """A task whose trainer went silent: the attempt and node of the silent delivery."""

    task: training_pb2.TrainingTask
    job: events_pb2.TrainingJob
    seen: datetime
    attempt: int
    node: str


@dataclass
class QueuedJob:
    seq: int
    attempt_offset: int


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _is_final(event: events_pb2.TrainerEvent) -> bool:
    kind = event.WhichOneof("event")
    return kind in FINAL_KINDS or (kind == "failed" and not event.failed.retryable)


class Reconciler:
    def __init__(
        self,
        js,
        domain: TrainingDomain,
        *,
        lease_s: float = 300.0,
        interval_s: float = 30.0,
        pending_grace_s: float = 30.0,
    ) -> None:
        self.js = js
        self.domain = domain
        self.engine = domain.store.engine
        self.lease_s = lease_s
        self.interval_s = interval_s
        self.pending_grace_s = pending_grace_s
        self.sweeps = 0  # sweeps done (tests poll it)
        self._task: asyncio.Task | None = None

    # -- the loop ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="training-reconcile")

    async def _run(self) -> None:
        while True:
            try:
                result = await self.sweep()
                if result.republished or result.requeued or result.failed:
                    log.info("reconciled tasks", extra=result.__dict__)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS or the database away: the next sweep retries
                log.warning("reconcile sweep failed", extra={"error": str(exc)})
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # -- one sweep ---------------------------------------------------------------------------

    async def sweep(self) -> SweepResult:
        self.sweeps += 1
        result = SweepResult()
        now = datetime.now(UTC)
        pending, running, queued = await asyncio.to_thread(self._candidates)
        for task in pending:
            if (now - _utc(task.create_time.ToDatetime())).total_seconds() < self.pending_grace_s:
                continue
            try:
                await self.domain.enqueue_if_pending(task)
                result.republished.append(task.id)
            except Exception as exc:  # noqa: BLE001 - stays PENDING for the next sweep
                log.warning("could not queue a pending task", extra={"task_id": task.id, "error": str(exc)})

        stale: list[Stale] = []
        for task, job in running + queued:
            if task.HasField("search"):
                continue  # a hyperparameter search runs no job itself: the tuner follows its trials
            last = await self._last_event(task.id)
            if last is not None and _is_final(last[1]):
                continue  # the final event is in the stream; the consumer applies it
            if task.state == S.TASK_STATE_QUEUED:
                # Only a QUEUED task whose newer delivery began (heartbeats) but never reported `started`.
                if last is None or last[1].attempt <= task.attempt:
                    continue
                seen, attempt, node = last[0], last[1].attempt, last[1].trainer_node
            else:
                since = task.start_time if task.HasField("start_time") else task.create_time
                seen = last[0] if last is not None else _utc(since.ToDatetime())
                attempt, node = task.attempt, task.trainer_node
            if (now - seen).total_seconds() >= self.lease_s:
                stale.append(Stale(task, job, seen, max(attempt, task.attempt), node))
        if not stale:
            return result

        queued_jobs = await self._queued_jobs({contract.task_name(s.task.task_type) for s in stale})
        for item in stale:
            task, job = item.task, item.job
            type_name = contract.task_name(task.task_type)
            silent = f"trainer {item.node or '(unknown)'} sent nothing for {(now - item.seen).total_seconds():.0f} s"
            queued_job = queued_jobs.get(task.id)
            if queued_job is not None and queued_job.attempt_offset < job.attempt_offset:
                queued_job = None  # an older run's message; this run's job is gone
            if queued_job is None:
                reason = f"{silent} and its job is no longer queued (the final report was lost)"
                if await self._move(task, S.TASK_STATE_FAILED, reason):
                    result.failed.append(task.id)
                continue
            max_deliver = await self._max_deliver(type_name)
            used = item.attempt - job.attempt_offset
            if max_deliver > 0 and used >= max_deliver:
                reason = f"{silent} on the last of {max_deliver} deliveries; the task is given up"
                if await self._move(task, S.TASK_STATE_FAILED, reason):
                    result.failed.append(task.id)
                    with contextlib.suppress(Exception):
                        await self.js.delete_msg(messaging.JOBS_STREAM, queued_job.seq)
                continue
            if task.state == S.TASK_STATE_QUEUED:
                continue  # already waiting for the redelivery
            reason = (
                f"{silent}; requeued: the job is redelivered to the next trainer "
                "(which resumes from the last checkpoint)"
            )
            if await self._move(task, S.TASK_STATE_QUEUED, reason):
                result.requeued.append(task.id)
        return result

    # -- a job JetStream gave up --------------------------------------------------------------

    async def job_given_up(self, stream_seq: int, consumer: str, deliveries: int) -> str:
        """The trainers' `consumer` will not deliver the job at `stream_seq` again: its last delivery
        ended with no ack, nak or term. Returns what was done (for logs and tests):

        - "failed": no trainer reported on that delivery; the task is FAILED and the message deleted;
        - "ended": the task has ended (or a final event waits in the stream, or a newer run of it is
          queued); the dead message is deleted, the task left as it is;
        - "left": that delivery sent events, so the lease sweep judges it (its reason names the trainer);
        - "gone": the message was deleted already (another replica, a redelivered advisory);
        - "ignored": not a trainers' job message of a task of this service.
        Any replica may handle the same advisory, any number of times: the move is conditional.
        """
        try:
            msg = await self.js.get_msg(messaging.JOBS_STREAM, seq=stream_seq)
        except nats.js.errors.NotFoundError:
            return "gone"
        type_name = (msg.subject or "").rsplit(".", 1)[-1]
        if msg.subject != messaging.jobs_subject(type_name) or consumer != messaging.trainers_durable(type_name):
            return "ignored"  # a member message of a multi-node run, or some other consumer's business
        try:
            job = events_pb2.TrainingJob.FromString(msg.data or b"")
        except Exception:  # noqa: BLE001 - a broken message: the trainers term it
            return "ignored"
        if not job.task_id:
            return "ignored"
        if job.HasField("evaluation"):  # an evaluation job: fail the evaluation that waits on it
            await self.domain.evaluations.given_up(job.task_id, deliveries)
            await self._delete_job(stream_seq)
            return "failed"
        for _ in range(3):  # again when the task moved on meanwhile (an event applied, another replica)
            outcome = await self._give_up(job, deliveries)
            if outcome in ("failed", "ended"):  # no consumer delivers it again: only clutter in the queue
                await self._delete_job(stream_seq)
            if outcome != "raced":
                log.info(
                    "job given up by JetStream",
                    extra={"task_id": job.task_id, "deliveries": deliveries, "outcome": outcome},
                )
                return outcome
        return "left"  # still moving: the sweep has it

    async def _give_up(self, job: events_pb2.TrainingJob, deliveries: int) -> str:
        try:
            task, current = await asyncio.to_thread(self.domain.store.task_and_job, job.task_id)
        except errors.NotFound:
            return "ignored"
        last = await self._last_event(task.id)
        if (
            is_final(task.state)
            or job.attempt_offset < current.attempt_offset
            or (last is not None and _is_final(last[1]))
        ):
            return "ended"
        attempt = job.attempt_offset + deliveries  # the attempt number of the given-up delivery
        if task.attempt >= attempt or (last is not None and last[1].attempt >= attempt):
            return "left"
        times = f"{deliveries} time{'s' if deliveries != 1 else ''}"
        reason = (
            f"the job was delivered {times} (the trainers' max_deliver) and no trainer finished it: "
            "nothing was heard of the last delivery (its trainer lost before its first heartbeat, or the "
            "job handed back unstarted by a busy trainer); the task is given up"
        )
        return "failed" if await self._move(task, S.TASK_STATE_FAILED, reason) else "raced"

    # -- JetStream ---------------------------------------------------------------------------

    async def _delete_job(self, seq: int) -> None:
        """Delete a job message; one already deleted (by another replica, say) is fine."""
        try:
            await self.js.delete_msg(messaging.JOBS_STREAM, seq)
        except nats.js.errors.APIError as exc:
            if exc.err_code != NO_MESSAGE_FOUND:
                raise

    async def _last_event(self, task_id: str) -> tuple[datetime, events_pb2.TrainerEvent] | None:
        try:
            msg = await self.js.get_last_msg(messaging.EVENTS_STREAM, messaging.events_subject(task_id))
        except nats.js.errors.NotFoundError:
            return None
        event = events_pb2.TrainerEvent.FromString(msg.data or b"")
        when = msg.time or (event.time.ToDatetime() if event.HasField("time") else None)
        return (_utc(when), event) if when is not None else None

    async def _queued_jobs(self, type_names: set[str]) -> dict[str, QueuedJob]:
        """The job messages still in the work queue, by task id (the newest run of each)."""
        info = await self.js.stream_info(messaging.JOBS_STREAM)
        out: dict[str, QueuedJob] = {}
        if not info.state.messages:
            return out
        for name in type_names:
            seq = info.state.first_seq
            while True:
                try:
                    msg = await self.js.get_msg(
                        messaging.JOBS_STREAM, seq=seq, subject=messaging.jobs_subject(name), next=True
                    )
                except nats.js.errors.NotFoundError:
                    break
                try:
                    job = events_pb2.TrainingJob.FromString(msg.data or b"")
                except Exception:  # noqa: BLE001 - a broken message is the trainers' problem
                    job = None
                if job is not None:
                    prev = out.get(job.task_id)
                    if prev is None or job.attempt_offset >= prev.attempt_offset:
                        out[job.task_id] = QueuedJob(msg.seq, job.attempt_offset)
                seq = msg.seq + 1
        return out

    async def _max_deliver(self, type_name: str) -> int:
        """The trainers' consumer's max_deliver; -1 (unlimited) when no trainer made it yet."""
        try:
            info = await self.js.consumer_info(messaging.JOBS_STREAM, messaging.trainers_durable(type_name))
        except nats.js.errors.NotFoundError:
            return -1
        return info.config.max_deliver or -1

    # -- SQL ---------------------------------------------------------------------------------

    def _candidates(self) -> tuple[list[training_pb2.TrainingTask], list[TaskAndJob], list[TaskAndJob]]:
        """PENDING tasks, RUNNING (task, job) pairs and QUEUED ones."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(TrainingTaskRow).where(
                    TrainingTaskRow.state.in_(  # type: ignore[attr-defined]
                        [S.TASK_STATE_PENDING, S.TASK_STATE_RUNNING, S.TASK_STATE_QUEUED]
                    )
                )
            ).all()
            pending = [to_proto(r) for r in rows if r.state == S.TASK_STATE_PENDING]
            by_state: dict[int, list[TaskAndJob]] = {S.TASK_STATE_RUNNING: [], S.TASK_STATE_QUEUED: []}
            for r in rows:
                if r.state in by_state:
                    by_state[r.state].append((to_proto(r), events_pb2.TrainingJob.FromString(r.job or b"")))
            return pending, by_state[S.TASK_STATE_RUNNING], by_state[S.TASK_STATE_QUEUED]

    async def _move(self, task: training_pb2.TrainingTask, state: int, reason: str) -> bool:
        moved = await asyncio.to_thread(self._move_row, task.id, task.state, task.attempt, state, reason)
        if moved:
            log.warning(
                "task reconciled",
                extra={"task_id": task.id, "state": training_pb2.TaskState.Name(state), "reason": reason},
            )
            await self.domain.notifier.notify(task.id)
        return moved

    def _move_row(self, task_id: str, from_state: int, attempt: int, state: int, reason: str) -> bool:
        """from_state -> state, only if no trainer event moved the task on since the sweep looked."""
        store = self.domain.store
        with Session(self.engine) as session:
            store._lock(session, task_id)
            row = session.exec(select(TrainingTaskRow).where(TrainingTaskRow.id == task_id).with_for_update()).one()
            if row.state != from_state or row.attempt != attempt:
                return False
            now = utcnow()
            row.state = state
            row.failure_reason = reason
            if state == S.TASK_STATE_FAILED:
                row.end_time = now
            store._append(session, row, now, None, log=reason)
            store._state_event(session, row, now)
            session.add(row)
            session.commit()
            return True
