"""Durable JetStream consumers of the training service.

EventConsumer applies trainer events to their tasks. At least once: an event is acked only after it
is stored; a redelivered one is recognised by its stream sequence and skipped. A failure to apply naks
it for a later retry.

MaxDeliveriesConsumer hands JetStream's max-deliveries advisories for the trainers' consumers to the
reconciler, which fails a task whose job was given up with no word from its last trainer.

Service replicas share each durable, so a message goes to one replica at a time; what each does with
it is conditional on the task's row, so a redelivery (or a second replica) changes nothing more.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging

import nats.errors
from google.protobuf.message import DecodeError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from kernel.messaging import (
    EVENTS_STREAM,
    EVENTS_SUBJECT_PREFIX,
    MAX_DELIVERIES_STREAM,
    MAX_DELIVERIES_SUBJECT,
)
from services.training.domain import TrainingDomain
from services.training.reconcile import Reconciler
from trainyard.events.v1 import events_pb2

log = logging.getLogger(__name__)

DURABLE = "training-service"
MAX_DELIVERIES_DURABLE = "training-service-max-deliveries"


class _PullLoop(abc.ABC):
    """Fetch batches from a durable pull consumer and hand each message to _handle until stopped."""

    subject = stream = durable = what = ""

    def __init__(self, js, *, batch: int = 64) -> None:
        self.js = js
        self.batch = batch
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self.sub = await self.js.pull_subscribe(
            self.subject,
            durable=self.durable,
            stream=self.stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=30,
                max_ack_pending=1000,
            ),
        )
        self._task = asyncio.create_task(self._run(), name=f"training-{self.durable}")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self.sub.fetch(self.batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep consuming through reconnects
                log.warning(f"fetching {self.what} failed", extra={"error": str(exc)})
                await asyncio.sleep(1.0)
                continue
            for msg in msgs:
                await self._handle(msg)

    @abc.abstractmethod
    async def _handle(self, msg) -> None:
        """Ack, nak or term one message (each consumer decides what a failure means for its messages)."""

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()


class EventConsumer(_PullLoop):
    subject, stream, durable, what = f"{EVENTS_SUBJECT_PREFIX}.>", EVENTS_STREAM, DURABLE, "trainer events"

    def __init__(self, js, domain: TrainingDomain, *, durable: str = DURABLE, batch: int = 64) -> None:
        super().__init__(js, batch=batch)
        self.domain = domain
        self.durable = durable

    async def _handle(self, msg) -> None:
        try:
            event = events_pb2.TrainerEvent.FromString(msg.data)
        except DecodeError:
            log.error("undecodable trainer event", extra={"subject": msg.subject})
            await msg.term()
            return
        try:
            await self.domain.apply_trainer_event(event, msg.metadata.sequence.stream)
        except Exception:  # noqa: BLE001 - retried later
            log.exception("applying a trainer event failed", extra={"task_id": event.task_id})
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
            return
        with contextlib.suppress(Exception):
            await msg.ack()


class MaxDeliveriesConsumer(_PullLoop):
    subject, stream, durable = MAX_DELIVERIES_SUBJECT, MAX_DELIVERIES_STREAM, MAX_DELIVERIES_DURABLE
    what = "max-deliveries advisories"

    def __init__(self, js, reconciler: Reconciler, *, batch: int = 16) -> None:
        super().__init__(js, batch=batch)
        self.reconciler = reconciler

    async def _handle(self, msg) -> None:
        try:
            advisory = json.loads(msg.data)
            stream_seq, consumer = int(advisory["stream_seq"]), str(advisory["consumer"])
            deliveries = int(advisory.get("deliveries") or 0)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("malformed max-deliveries advisory", extra={"subject": msg.subject, "error": str(exc)})
            await msg.term()
            return
        try:
            await self.reconciler.job_given_up(stream_seq, consumer, deliveries)
        except Exception:  # noqa: BLE001 - NATS or the database away: retried later
            log.exception("handling a max-deliveries advisory failed", extra={"stream_seq": stream_seq})
            with contextlib.suppress(Exception):
                await msg.nak(delay=5.0)
            return
        with contextlib.suppress(Exception):
            await msg.ack()
