"""The trainer node's NATS side: pull one job at a time, heartbeat, report, ack/nak/term.

    async with Worker(settings=settings) as worker:
        await worker.run()          # until shutdown() (SIGTERM) or stop_after jobs

Training runs in a worker thread (asyncio.to_thread); the event loop keeps the job's message
alive with in_progress() heartbeats, publishes the job's events in order, and watches the
cancel subject. Permanent failures are term()ed, retryable ones nak(delay)ed until the last
delivery; on shutdown the running job stops at its next step and is nak()ed so another
trainer resumes it from the last checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from typing import Any

import nats.errors
import nats.js.errors
import tenacity
from google.protobuf.message import DecodeError
from nats.js.api import AckPolicy, ConsumerConfig

from kernel import contract, messaging, objectstore
from trainer import distributed
from trainer.errors import JobCancelled, JobError, JobInterrupted, PermanentJobError
from trainer.settings import TrainerSettings
from trainer.storage import ObjectStore, S3Store
from trainyard.common.v1 import common_pb2
from trainyard.events.v1 import events_pb2

log = logging.getLogger(__name__)
# An event publish that JetStream did not answer is tried 5 times, 0.5 s more apart each time.
PUBLISH_TRANSIENT = (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError)
PUBLISH_RETRIES = tenacity.AsyncRetrying(
    retry=tenacity.retry_if_exception_type(PUBLISH_TRANSIENT),
    stop=tenacity.stop_after_attempt(5),
    wait=tenacity.wait_incrementing(start=0.5, increment=0.5),
    reraise=True,
)


def durable_name(task_type: str) -> str:
    """The shared pull consumer of a task type's jobs ("trainers" for classification)."""
    return messaging.trainers_durable(task_type)


def members_durable_name(task_type: str) -> str:
    """The shared pull consumer of a task type's multi-node member messages."""
    return messaging.members_durable(task_type)


# Seconds one long poll for a job waits on one subscription.
POLL_TIMEOUT_S = 2.0
# A busy trainer gives a job back after this delay. Every nak uses up one of the job's max_deliver
# deliveries, and JetStream serves the oldest pull request first: given back at once, the job would go
# to the next busy trainer's poll left over from before its job started, and be refused again until
# JetStream gives it up. Busy trainers renew no polls, so once the longest poll has run out only the
# polls of free trainers are left.
JOB_REFUSE_DELAY_S = POLL_TIMEOUT_S + 1.0
# A busy trainer gives a member message back after this delay, so it goes to a free trainer instead of
# bouncing between busy ones (member messages have no delivery limit: their run's state bounds them).
MEMBER_REFUSE_DELAY_S = 0.5


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, JobError) else text


class Control:
    """Stop requests the training thread checks at every step."""

    def __init__(self, shutdown: threading.Event) -> None:
        self.cancelled = threading.Event()
        self.shutdown = shutdown

    def check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled()
        if self.shutdown.is_set():
            raise JobInterrupted()

    def requested(self) -> bool:
        return self.cancelled.is_set() or self.shutdown.is_set()


class EventSink:
    """Publishes one job's TrainerEvents in order; thread-safe entry points for the training thread."""

    def __init__(self, js, loop: asyncio.AbstractEventLoop, task_id: str, attempt: int, node: str) -> None:
        self.js, self.loop = js, loop
        self.task_id, self.attempt, self.node = task_id, attempt, node
        self.queue: asyncio.Queue[events_pb2.TrainerEvent | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._pump())
        self.epoch = 0
        self.closing = False  # the final event is queued: nothing (no heartbeat) may follow it
        self._loop_thread = threading.get_ident()

    def make(self, **kind: Any) -> events_pb2.TrainerEvent:
        ev = events_pb2.TrainerEvent(task_id=self.task_id, attempt=self.attempt, trainer_node=self.node, **kind)
        ev.time.GetCurrentTime()
        return ev

    def emit(self, **kind: Any) -> None:
        """Queue an event (from any thread)."""
        ev = self.make(**kind)
        if threading.get_ident() == self._loop_thread:
            self.queue.put_nowait(ev)  # keeps the order of events queued on the loop itself
        else:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, ev)

    async def _pump(self) -> None:
        while True:
            ev = await self.queue.get()
            try:
                if ev is None:
                    return
                try:
                    await PUBLISH_RETRIES.copy()(  # a copy per call: a Retrying keeps its state
                        self.js.publish, messaging.events_subject(self.task_id), ev.SerializeToString(), timeout=10
                    )
                except PUBLISH_TRANSIENT:
                    log.error("could not publish a trainer event", extra={"task_id": self.task_id})
            finally:
                self.queue.task_done()

    async def close(self) -> None:
        """Publish everything queued, then stop."""
        self.closing = True
        await self.queue.put(None)
        with contextlib.suppress(Exception):
            await self.task

    # Reporter interface (called from the training thread)
    def progress(self, epoch: int, total_epochs: int, step: int, total_steps: int, ips: float, eta: float) -> None:
        self.epoch = epoch
        self.emit(
            progress=events_pb2.JobProgress(
                epoch=epoch,
                total_epochs=total_epochs,
                step=step,
                total_steps=total_steps,
                images_per_second=ips,
                eta_seconds=eta,
            )
        )

    def epoch_metrics(self, epoch: int, values: dict[str, float]) -> None:
        self.epoch = epoch
        self.emit(
            epoch_metrics=events_pb2.JobEpochMetrics(epoch=epoch, values={k: float(v) for k, v in values.items()})
        )

    def log(self, text: str) -> None:
        self.emit(log=text)


class Worker:
    def __init__(self, *, settings: TrainerSettings, store: ObjectStore | None = None, stop_after: int = 0) -> None:
        self.settings = settings
        self.store = store
        self.stop_after = stop_after  # stop after this many jobs (0: never); for tests and batch runs
        self.node = settings.trainer_name
        self._shutdown = threading.Event()
        self._stop = asyncio.Event()
        self.nc = None
        self.js = None
        self.subs: list = []
        self.jobs_done = 0
        self.outcomes: list[tuple[str, str]] = []  # (task_id, outcome) for logs and tests
        self.rank_pids: list[int] = []  # this node's processes of the running data-parallel job

    async def __aenter__(self) -> Worker:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.shutdown()
        await self.close()

    async def connect(self) -> None:
        from trainer import data
        from trainer.job import resolve_device

        self.device = resolve_device(self.settings.device)
        if self.device.type == "cpu":
            import torch

            torch.set_num_threads(self.settings.cpu_threads())
        self.cache = data.LocalCache(self.settings.cache_dir(), self.settings.trainer_cache_max_bytes)
        if self.store is None:
            self.store = S3Store(
                objectstore.make_client(self.settings, retries=1), retry_s=self.settings.trainer_object_store_retry_s
            )
        self.nc = await messaging.connect(self.settings.nats_url, f"trainer-{self.node}")
        self.js = self.nc.jetstream()
        await messaging.ensure_streams(self.js)
        for task_type in self.settings.trainer_task_types:
            sub = await self.js.pull_subscribe(
                messaging.jobs_subject(task_type),
                durable=durable_name(task_type),
                stream=messaging.JOBS_STREAM,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.settings.trainer_ack_wait,
                    max_deliver=self.settings.trainer_max_deliver,
                    max_ack_pending=-1,
                ),
            )
            self.subs.append(sub)
            members = await self.js.pull_subscribe(
                messaging.members_subject(task_type),
                durable=members_durable_name(task_type),
                stream=messaging.JOBS_STREAM,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.settings.trainer_ack_wait,
                    max_deliver=-1,
                    max_ack_pending=-1,
                ),
            )
            self.subs.append(members)
        log.info(
            "trainer ready",
            extra={"node": self.node, "device": str(self.device), "task_types": self.settings.trainer_task_types},
        )

    async def shutdown(self) -> None:
        """Stop pulling; a running job stops at its next step and goes back to the queue. Repeat-safe."""
        self._shutdown.set()
        self._stop.set()

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            for sub in self.subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=5)
            await self.nc.close()

    async def _fetch_one(self, sub) -> list:
        """One long poll for a job on one subscription ([] when none came)."""
        try:
            return await sub.fetch(1, timeout=POLL_TIMEOUT_S)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reconnects and the like
            log.warning("fetching jobs failed", extra={"error": str(exc)})
            await asyncio.sleep(1.0)
            return []

    async def run(self) -> None:
        """Long-poll every task type's queue at once, so a job is picked up as soon as it is published.

        A trainer runs one job at a time: a job that arrives on another queue while one runs is
        handed back (_refuse) for another trainer (or for this one, later) instead of being held.
        """
        if self.nc is None:
            await self.connect()
        polls: dict[asyncio.Task, Any] = {}
        try:
            while not self._stop.is_set():
                for sub in self.subs:
                    if sub not in polls.values():
                        polls[asyncio.create_task(self._fetch_one(sub))] = sub
                stop_wait = asyncio.create_task(self._stop.wait())
                done, _ = await asyncio.wait([*polls, stop_wait], return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                msgs = []
                for poll in done - {stop_wait}:
                    polls.pop(poll)
                    msgs.extend(poll.result())
                for i, msg in enumerate(msgs):
                    if i > 0 or self._stop.is_set():
                        await self._refuse(msg)
                        continue
                    await self._handle_while_refusing(msg, polls)
        finally:
            # Let open polls end on their own (a cancelled fetch can still be handed a job, which would
            # then wait out the ack wait) and give back anything they got.
            for result in await asyncio.gather(*polls, return_exceptions=True):
                for msg in result if isinstance(result, list) else []:
                    with contextlib.suppress(Exception):
                        await self._refuse(msg)

    @staticmethod
    async def _refuse(msg) -> None:
        """Hand a message this trainer will not run back to the queue, delayed for a free trainer to take."""
        member = msg.subject.startswith(messaging.members_subject(""))
        await msg.nak(delay=MEMBER_REFUSE_DELAY_S if member else JOB_REFUSE_DELAY_S)

    async def _handle_while_refusing(self, msg, polls: dict[asyncio.Task, Any]) -> None:
        """Run one job; jobs that other polls receive meanwhile go back to the queue (_refuse)."""
        job = asyncio.create_task(self.handle(msg))
        while not job.done():
            waiting = [p for p in polls if not p.done()]
            done, _ = await asyncio.wait([job, *waiting], return_when=asyncio.FIRST_COMPLETED)
            for poll in done - {job}:
                polls.pop(poll)
                for extra in poll.result():
                    await self._refuse(extra)
        await job
        self.jobs_done += 1
        if self.stop_after and self.jobs_done >= self.stop_after:
            self._stop.set()

    async def _cancel_requested(self, task_id: str) -> bool:
        try:
            await self.js.get_last_msg(messaging.CONTROL_STREAM, messaging.cancel_subject(task_id))
            return True
        except nats.js.errors.NotFoundError:
            return False

    async def handle(self, msg) -> str:
        """Run one job message to its end; returns the outcome ("succeeded", "failed", ...)."""
        try:
            job = events_pb2.TrainingJob.FromString(msg.data)
        except DecodeError:
            log.error("undecodable job message; terminating it", extra={"subject": msg.subject})
            await msg.term()
            return "undecodable"
        if job.HasField("assignment"):
            return await self._handle_member(job, msg)
        delivered = msg.metadata.num_delivered if msg.metadata else 1
        attempt = job.attempt_offset + delivered
        sink = EventSink(self.js, asyncio.get_running_loop(), job.task_id, attempt, self.node)
        control = Control(self._shutdown)

        async def on_cancel(_msg) -> None:
            control.cancelled.set()

        cancel_sub = await self.nc.subscribe(messaging.cancel_subject(job.task_id), cb=on_cancel)
        heartbeat = asyncio.create_task(self._heartbeat(msg, sink))
        outcome = "failed"
        try:
            if await self._cancel_requested(job.task_id):
                sink.emit(cancelled=events_pb2.JobCancelled(epoch=0))
                await msg.ack()
                outcome = "skipped-cancelled"
                return outcome
            outcome = await self._run(job, msg, sink, control, attempt)
            return outcome
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await heartbeat
            with contextlib.suppress(Exception):
                await cancel_sub.unsubscribe()
            await sink.close()
            self.outcomes.append((job.task_id, outcome))
            log.info("job ended", extra={"task_id": job.task_id, "attempt": attempt, "outcome": outcome})

    async def _run(self, job: events_pb2.TrainingJob, msg, sink: EventSink, control: Control, attempt: int) -> str:
        from trainer.evaluation_job import run_evaluation_job
        from trainer.job import run_job

        # an evaluation job (a model run over a dataset version) goes through the same queue, events and acks
        run = run_evaluation_job if job.HasField("evaluation") else run_job

        def started(resumed_from: int) -> None:
            sink.emit(started=events_pb2.JobStarted(resumed_from_epoch=resumed_from, device=str(self.device)))

        started_at = time.monotonic()
        run_id = ""
        try:
            placement = None
            if contract.nodes(job.resources) > 1:
                run_id = f"{job.task_id}.{attempt}"
                placement = await self._lead_run(job, attempt, sink, control)
            result = await asyncio.to_thread(
                run,
                job,
                store=self.store,
                cache=self.cache,
                device=self.device,
                reporter=sink,
                check_stop=control.check,
                on_resume=started,
                num_workers=self.settings.trainer_num_workers,
                progress_interval_s=self.settings.trainer_progress_interval_s,
                placement=placement,
                on_ranks=self._ranks_started,
                distributed_timeout_s=self.settings.trainer_distributed_timeout_s,
            )
        except JobCancelled:
            sink.emit(cancelled=events_pb2.JobCancelled(epoch=sink.epoch))
            await sink.close()
            await msg.ack()
            return "cancelled"
        except JobInterrupted:
            sink.emit(log=f"trainer {self.node} is shutting down; the job goes back to the queue")
            await sink.close()
            await msg.nak()
            return "interrupted"
        except Exception as exc:  # noqa: BLE001 - every failure is reported in words
            permanent = isinstance(exc, PermanentJobError)
            last = attempt - job.attempt_offset >= self.settings.trainer_max_deliver
            retryable = not permanent and not last
            reason = describe_error(exc)
            if not permanent:
                log.exception("job failed", extra={"task_id": job.task_id, "attempt": attempt})
            sink.emit(failed=events_pb2.JobFailed(reason=reason, retryable=retryable))
            await sink.close()
            if retryable:
                await msg.nak(delay=min(60.0, 5.0 * attempt))
            else:
                await msg.term()
            return "retrying" if retryable else "failed"
        finally:
            self.rank_pids = []
            if run_id:  # members still waiting give up; member messages taken later are dropped
                with contextlib.suppress(Exception):
                    await distributed.end_run(self.js, run_id)
        sink.emit(
            succeeded=events_pb2.JobSucceeded(
                metrics=result.metrics,
                artifacts=[
                    events_pb2.JobArtifact(
                        name=a.name,
                        object=common_pb2.ObjectRef(
                            bucket=a.bucket, key=a.key, sha256=a.sha256, size_bytes=a.size_bytes
                        ),
                    )
                    for a in result.artifacts
                ],
                evaluation=result.evaluation,
            )
        )
        await sink.close()
        await msg.ack()
        log.info("job succeeded", extra={"task_id": job.task_id, "seconds": round(time.monotonic() - started_at, 1)})
        return "succeeded"

    def _ranks_started(self, pids: list[int]) -> None:
        self.rank_pids = list(pids)

    async def _lead_run(
        self, job: events_pb2.TrainingJob, attempt: int, sink: EventSink, control: Control
    ) -> distributed.Placement:
        """Node 0 of a multi-node job: hand out the other nodes' places and wait until all joined
        (a cancel or shutdown meanwhile ends the wait: JobCancelled / JobInterrupted)."""
        nodes, timeout = job.resources.nodes, self.settings.trainer_rendezvous_timeout_s
        sink.log(f"node 0 of {nodes}: waiting up to {timeout:.0f}s for {nodes - 1} more trainer(s) to join")
        try:
            placement = await distributed.lead_run(
                self.js,
                job,
                attempt=attempt,
                subject=messaging.members_subject(contract.TASK_NAMES.get(job.task_type, "")),
                master_addr=self.settings.advertise_address(),
                timeout_s=timeout,
                should_stop=control.requested,
            )
        except distributed.StopRequested:
            control.check()
            raise
        sink.log(f"all {nodes} nodes joined; rank 0 listens on {placement.master_addr}:{placement.master_port}")
        return placement

    async def _handle_member(self, job: events_pb2.TrainingJob, msg) -> str:
        """Serve as one member node of a multi-node job. Node 0 reports for the task; a member only acks
        (done, stopped, or its run already over) or terms (failed: node 0's attempt fails and is retried)."""
        from trainer.job import run_job

        place = job.assignment
        where = {"task_id": job.task_id, "run_id": place.run_id, "node_rank": place.node_rank}
        control = Control(self._shutdown)

        async def on_cancel(_msg) -> None:
            control.cancelled.set()

        cancel_sub = await self.nc.subscribe(messaging.cancel_subject(job.task_id), cb=on_cancel)
        heartbeat = asyncio.create_task(self._heartbeat(msg, None))
        outcome = "member-failed"
        try:
            try:
                placement = await distributed.join_run(
                    self.js, place, timeout_s=self.settings.trainer_rendezvous_timeout_s, should_stop=control.requested
                )
            except distributed.RendezvousTimeout as exc:
                log.warning("could not join a multi-node run", extra={**where, "error": str(exc)})
                await msg.term()
                outcome = "member-timeout"
                return outcome
            except distributed.StopRequested:  # shutting down: another trainer can still join in our place
                if control.cancelled.is_set():
                    await msg.term()
                else:
                    await msg.nak()
                outcome = "member-stopped"
                return outcome
            if placement is None:
                await msg.ack()
                outcome = "member-stale"
                return outcome
            log.info("joined a multi-node run", extra=where)
            try:
                await asyncio.to_thread(
                    run_job,
                    job,
                    store=self.store,
                    cache=self.cache,
                    device=self.device,
                    check_stop=control.check,
                    num_workers=self.settings.trainer_num_workers,
                    progress_interval_s=self.settings.trainer_progress_interval_s,
                    export=False,
                    placement=placement,
                    on_ranks=self._ranks_started,
                    distributed_timeout_s=self.settings.trainer_distributed_timeout_s,
                )
                outcome = "member-done"
                await msg.ack()
            except (JobCancelled, JobInterrupted, distributed.DistributedError) as exc:
                outcome = "member-stopped" if not isinstance(exc, distributed.RankFailed) else "member-failed"
                log.warning("the multi-node run ended early", extra={**where, "error": describe_error(exc)})
                await msg.term()
            except Exception as exc:  # noqa: BLE001 - node 0 reports the attempt's failure
                log.exception("a member node failed", extra={**where, "error": describe_error(exc)})
                await msg.term()
            return outcome
        finally:
            self.rank_pids = []
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await heartbeat
            with contextlib.suppress(Exception):
                await cancel_sub.unsubscribe()
            self.outcomes.append((job.task_id, outcome))
            log.info("member ended", extra={**where, "outcome": outcome})

    async def _heartbeat(self, msg, sink: EventSink | None) -> None:
        """Keep the job's message (JetStream ack wait) and the task's lease (training service) alive.
        A member node of a multi-node run (no sink) keeps only its member message alive."""
        while True:
            await asyncio.sleep(self.settings.trainer_heartbeat_s)
            with contextlib.suppress(Exception):
                await msg.in_progress()
            if sink is not None and not sink.closing:
                sink.emit(heartbeat=events_pb2.JobHeartbeat(epoch=sink.epoch))


def main() -> None:
    from kernel.logs import setup_logging
    from kernel.settings import load_settings

    settings = load_settings(TrainerSettings)
    setup_logging("trainer", settings.log_level, settings.log_format)

    async def amain() -> None:
        async with Worker(settings=settings) as worker:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.shutdown()))
            await worker.run()

    asyncio.run(amain())
