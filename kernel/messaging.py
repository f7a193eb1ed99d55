"""NATS JetStream: the jobs work queue, trainer events and control messages.

Streams are created (or updated) idempotently by every process that uses them.
"""

from __future__ import annotations

import dataclasses
import os

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

JOBS_STREAM = "TRAINYARD_JOBS"
JOBS_SUBJECT_PREFIX = "trainyard.jobs"  # trainyard.jobs.<task_type>, one message per training attempt
EVENTS_STREAM = "TRAINYARD_EVENTS"
EVENTS_SUBJECT_PREFIX = "trainyard.events"  # trainyard.events.<task_id>
CONTROL_STREAM = "TRAINYARD_CONTROL"
CANCEL_SUBJECT_PREFIX = "trainyard.control.cancel"  # trainyard.control.cancel.<task_id>
TRAINERS_DURABLE = "trainers"
# JetStream's advisory when a consumer gives a message up: its last allowed delivery (max_deliver) ended
# with no ack, nak or term, e.g. its trainer died before its first heartbeat. Kept in a stream so the
# training service learns of it even when it was down at the time (services/training/reconcile.py).
MAX_DELIVERIES_STREAM = "TRAINYARD_JOBS_GIVEN_UP"
MAX_DELIVERIES_SUBJECT = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.*"  # .<consumer>

DAY_SECONDS = 24 * 3600


def jobs_subject(task_type_name: str) -> str:
    return f"{JOBS_SUBJECT_PREFIX}.{task_type_name}"


def trainers_durable(task_type_name: str) -> str:
    """The trainers' shared pull consumer of a task type's jobs ("trainers" for classification)."""
    return TRAINERS_DURABLE if task_type_name == "classification" else f"{TRAINERS_DURABLE}-{task_type_name}"


def members_durable(task_type_name: str) -> str:
    """The trainers' shared pull consumer of a task type's multi-node member messages."""
    return f"{trainers_durable(task_type_name)}-members"


def members_subject(task_type_name: str) -> str:
    """Member messages of multi-node jobs (trainer.distributed): trainyard.jobs.members.<task_type>."""
    return f"{JOBS_SUBJECT_PREFIX}.members.{task_type_name}"


def events_subject(task_id: str) -> str:
    return f"{EVENTS_SUBJECT_PREFIX}.{task_id}"


def cancel_subject(task_id: str) -> str:
    return f"{CANCEL_SUBJECT_PREFIX}.{task_id}"


STREAMS = (
    # Work queue: a message is removed once a trainer acks it.
    StreamConfig(
        name=JOBS_STREAM,
        subjects=[f"{JOBS_SUBJECT_PREFIX}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=120.0,
    ),
    StreamConfig(
        name=EVENTS_STREAM,
        subjects=[f"{EVENTS_SUBJECT_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * DAY_SECONDS,
    ),
    StreamConfig(
        name=CONTROL_STREAM,
        subjects=["trainyard.control.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=DAY_SECONDS,
    ),
    StreamConfig(
        name=MAX_DELIVERIES_STREAM,
        subjects=[MAX_DELIVERIES_SUBJECT],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * DAY_SECONDS,
    ),
)


async def connect(url: str, name: str) -> NATS:
    return await nats.connect(
        servers=[u.strip() for u in url.split(",")],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
    )


def replicas_from_env() -> int:
    """TRAINYARD_NATS_REPLICAS (Settings.nats_replicas), 1 when unset: copies of each stream in a cluster."""
    value = os.environ.get("TRAINYARD_NATS_REPLICAS", "").strip()
    return int(value) if value.isdigit() and 1 <= int(value) <= 5 else 1


async def ensure_streams(js: JetStreamContext, replicas: int | None = None) -> None:
    """Create or update the platform's streams with `replicas` copies each (3 on a 3-node cluster).

    replicas None: TRAINYARD_NATS_REPLICAS or 1. A stream that already has more replicas keeps them,
    so a process started without the setting never scales a clustered stream down.
    """
    replicas = replicas if replicas is not None else replicas_from_env()
    for base in STREAMS:
        config = dataclasses.replace(base, num_replicas=replicas)
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:  # exists with another config: bring it up to date
            current = (await js.stream_info(config.name)).config.num_replicas or 1
            await js.update_stream(dataclasses.replace(config, num_replicas=max(current, replicas)))
