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


# What allocators and the kernel say when memory runs out (CUDA, ROCm, MPS, cuDNN/cuBLAS, the CPU
# allocator, and a data loader worker ended by the kernel's out-of-memory killer).
_OOM_TEXTS = (
    "out of memory",
    "outofmemory",
    "can't allocate memory",
    "cannot allocate memory",
    "not enough memory",
    "alloc_failed",
    "std::bad_alloc",
)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether exc, or an exception it was raised from, is a memory allocation failure."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
            return True
        text = str(exc).lower()
        if any(t in text for t in _OOM_TEXTS):
            return True
        if "dataloader worker" in text and "killed by signal: killed" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def out_of_memory_reason(architecture: str, batch_size: int, image_size: int, on_gpu: bool) -> str:
    """The failure reason of an out-of-memory job in words, with a smaller batch to try."""
    where = "the GPU" if on_gpu else "the trainer node"
    return (
        f"out of memory: {where} ran out of memory training {architecture} at batch_size {batch_size} and "
        f"image_size {image_size}; use a smaller batch_size (for example {max(1, batch_size // 2)}) "
        "or a smaller image_size"
    )
