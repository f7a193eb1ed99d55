"""How a job can end other than by success."""

from __future__ import annotations


class JobError(Exception):
    retryable = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentJobError(JobError):
    """Retrying cannot help: bad data, bad weights, a configuration no trainer can run."""

    retryable = False


class RetryableJobError(JobError):
    """Another attempt (maybe on another node) may succeed."""


class JobCancelled(Exception):
    """The user cancelled the task."""


class JobInterrupted(Exception):
    """The trainer is shutting down; the job goes back to the queue."""
