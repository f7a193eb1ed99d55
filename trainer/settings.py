"""Trainer settings: the shared ones plus TRAINYARD_TRAINER_* and TRAINYARD_DEVICE."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from kernel.settings import Settings


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class TrainerSettings(Settings):
    # Node name reported with every event.
    trainer_name: str = Field(default_factory=_default_name)
    # Task types this node pulls (comma-separated in the environment), e.g. "classification,detection".
    trainer_task_types: Annotated[list[str], NoDecode] = [
        "classification",
        "detection",
        "segmentation",
        "instance_segmentation",
    ]
    # Local cache of images and weights, keyed by sha256.
    trainer_cache_dir: Path = Path()
    # Bound of the cache in bytes; files of the running job are kept even above it.
    trainer_cache_max_bytes: int = Field(default=20 * 1024**3, ge=0)
    # "auto" (CUDA when present), "cpu" or "cuda" / "cuda:N".
    device: str = "auto"
    # Seconds JetStream waits for an ack (heartbeats keep a running job's message alive).
    trainer_ack_wait: float = Field(default=60.0, gt=1)
    # Deliveries of a job before it is given up.
    trainer_max_deliver: int = Field(default=3, ge=1)
    # Seconds an unreachable object store is waited for (retries with backoff) before a transfer fails.
    trainer_object_store_retry_s: float = Field(default=120.0, ge=0)
    # Seconds between in_progress() heartbeats (and heartbeat events: the training service's lease).
    trainer_heartbeat_s: float = Field(default=10.0, gt=0)
    # Seconds between progress events.
    trainer_progress_interval_s: float = Field(default=1.0, ge=0)
    # DataLoader workers; -1 picks 0 on CPU and 4 on CUDA.
    trainer_num_workers: int = -1
    # torch intra-op threads when training on CPU; 0 = every core this process may use. With several
    # trainers on one host give each cores // trainers (oversubscribed threads slow training down ~60x).
    trainer_threads: int = Field(default=0, ge=0)

    # Address other trainers reach this one at when it is node 0 of a multi-node job (its rank 0 listens
    # there); empty: the address this host's name resolves to (set the pod IP on Kubernetes).
    trainer_advertise_address: str = ""
    # Seconds node 0 of a multi-node job waits for the other nodes to join (they start together or not at all).
    trainer_rendezvous_timeout_s: float = Field(default=120.0, gt=0)
    # Seconds a data-parallel run's processes wait for each other (joining the group, any collective).
    trainer_distributed_timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("trainer_task_types", mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):
            value = [v.strip() for v in value.replace(";", ",").split(",")]
        return [v for v in value if v]

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu") and not value.startswith("cuda"):
            raise ValueError("expected auto, cpu, cuda or cuda:N")
        return value

    def cpu_threads(self) -> int:
        """Threads for torch on CPU: trainer_threads, else every core available to this process."""
        if self.trainer_threads:
            return self.trainer_threads
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, cores)

    def advertise_address(self) -> str:
        if self.trainer_advertise_address:
            return self.trainer_advertise_address
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"

    def cache_dir(self) -> Path:
        return self.trainer_cache_dir if str(self.trainer_cache_dir) not in ("", ".") else self.home / "trainer-cache"
