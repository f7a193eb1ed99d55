"""Durable JetStream consumer of trainer events: applies each one to its task, then acks.

At least once: an event is acked only after it is stored; a redelivered one is recognised by
its stream sequence and skipped. A failure to apply naks it for a later retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats.errors
from google.protobuf.message import DecodeError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.common.messaging import EVENTS_STREAM, EVENTS_SUBJECT_PREFIX
from services.training.domain import TrainingDomain
from trainyard.events.v1 import events_pb2

log = logging.getLogger(__name__)

DURABLE = "training-service"


class EventConsumer:
    def __init__(self, js, domain: TrainingDomain, *, durable: str = DURABLE, batch: int = 64) -> None:
        self.js = js
        self.domain = domain
        self.durable = durable
        self.batch = batch
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self.sub = await self.js.pull_subscribe(
            f"{EVENTS_SUBJECT_PREFIX}.>",
            durable=self.durable,
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=30,
                max_ack_pending=1000,
            ),
        )
        self._task = asyncio.create_task(self._run(), name="training-event-consumer")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self.sub.fetch(self.batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep consuming through reconnects
                log.warning("fetching trainer events failed", extra={"error": str(exc)})
                await asyncio.sleep(1.0)
                continue
            for msg in msgs:
                await self._handle(msg)

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

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()
