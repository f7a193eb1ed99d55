"""Pulls: fetching one catalog model's public weights in the background, watched by any number of callers.

A Pull holds the state of one model's fetch (queued, downloading with bytes done/total, checking,
stored or failed); watchers read its snapshots (a version number says what changed) or wait for its
end. The Puller runs at most N pulls at a time on its own threads and hands a second caller the pull
already running for the same model, so a model is never fetched twice at once. A pull runs to its end even when every watcher has gone (a client
whose deadline passed finds the weights stored, or the pull still going, when it asks again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from kernel.errors import TrainyardError, translate

log = logging.getLogger(__name__)

QUEUED = "queued"
DOWNLOADING = "downloading"
CHECKING = "checking"
STORED = "stored"
ALREADY_IN_STORE = "already_in_store"
FAILED = "failed"
FINAL = frozenset({STORED, ALREADY_IN_STORE, FAILED})
PROGRESS_EVERY_S = 0.5  # byte counts are published at most this often (state changes at once)


@dataclass(frozen=True)
class PullState:
    model_id: str  # the catalog model whose weights are fetched
    state: str = QUEUED
    url: str = ""
    bytes_done: int = 0
    bytes_total: int = 0
    weights: object | None = None  # zoo.StoredWeights when STORED / ALREADY_IN_STORE
    error: TrainyardError | None = None  # when FAILED
    version: int = 0

    @property
    def final(self) -> bool:
        return self.state in FINAL


class Pull:
    """One model's fetch: its current state and a condition its watchers wait on."""

    def __init__(self, model_id: str, state: str = QUEUED, weights: object | None = None) -> None:
        self._cond = threading.Condition()
        self._state = PullState(model_id, state, weights=weights)
        self._published_at = 0.0

    @property
    def model_id(self) -> str:
        return self._state.model_id

    def snapshot(self) -> PullState:
        with self._cond:
            return self._state

    def update(self, **changes) -> None:
        with self._cond:
            self._state = replace(self._state, **changes, version=self._state.version + 1)
            self._published_at = time.monotonic()
            self._cond.notify_all()

    def progress(self, done: int, total: int) -> None:
        """Byte counts: kept always, announced to watchers at most every PROGRESS_EVERY_S."""
        with self._cond:
            announce = time.monotonic() - self._published_at >= PROGRESS_EVERY_S or (total and done >= total)
            version = self._state.version + (1 if announce else 0)
            self._state = replace(self._state, bytes_done=done, bytes_total=total, version=version)
            if announce:
                self._published_at = time.monotonic()
                self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> PullState:
        """The final state (or the current one when timeout passes)."""
        with self._cond:
            self._cond.wait_for(lambda: self._state.final, timeout)
            return self._state


def finished(model_id: str, weights: object) -> Pull:
    """A pull with nothing to do: the weights are in the store already."""
    return Pull(model_id, ALREADY_IN_STORE, weights)


class Puller:
    """Runs pulls on at most `workers` threads, one pull per model at a time."""

    def __init__(self, run: Callable[[str, Pull], object], workers: int = 2) -> None:
        self._run = run  # run(model_id, pull) -> StoredWeights; raises TrainyardError
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="weights-pull")
        self._lock = threading.Lock()
        self._active: dict[str, Pull] = {}
        self.stopping = threading.Event()  # set on shutdown: running downloads stop at their next chunk

    def start(self, model_id: str) -> Pull:
        with self._lock:
            pull = self._active.get(model_id)
            if pull is not None:
                return pull
            pull = Pull(model_id)
            self._active[model_id] = pull
        self._pool.submit(self._work, model_id, pull)
        return pull

    def _work(self, model_id: str, pull: Pull) -> None:
        try:
            weights = self._run(model_id, pull)
            pull.update(state=STORED, weights=weights)
        except TrainyardError as exc:
            pull.update(state=FAILED, error=exc)
        except Exception as exc:  # noqa: BLE001 - a pull must end, or its watchers wait forever
            known = translate(exc)  # the database or the object store away: UNAVAILABLE
            if known is None:
                log.exception("weights pull crashed", extra={"model_id": model_id})
            pull.update(
                state=FAILED, error=known or TrainyardError(f"pulling the weights of {model_id!r} failed: {exc}")
            )
        finally:
            with self._lock:
                self._active.pop(model_id, None)

    def shutdown(self) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
