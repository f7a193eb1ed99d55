"""Data-parallel training across processes with torch.distributed (DDP), self-contained.

The parent (a trainer node's job thread) launches N rank processes; each runs `fn(ctx, *args)`:

    def train(ctx: DistContext, spec) -> dict:              # top level: spawn pickles it by name
        model = ctx.wrap(build_model(spec))                  # DDP (device_ids on CUDA)
        loader = ctx.loader(train_ds, global_batch=spec.batch, shuffle=True, seed=spec.seed)
        state = ctx.resume(lambda: load_checkpoint_or_none())  # rank 0 reads, every rank gets it
        for epoch in range(start, epochs):
            ctx.set_epoch(loader, epoch)                     # reshuffles the shards
            for images, targets in loader:
                ctx.check_stop()                             # collective: all ranks stop together
                ...
            ctx.save(state, lambda s: upload(s))             # rank 0 writes, then a barrier
            ctx.emit("epoch_metrics", epoch, ctx.all_reduce_mean(values))
        return final                                         # rank 0's value is launch()'s result

    result = launch(train, spec, world_size=2, on_event=lambda name, args: ..., should_stop=control.is_set)

Rules this module fixes:
- Global batch: the job's `batch_size` is the GLOBAL batch. Each of the world_size ranks takes
  global_batch // world_size samples per step (it must divide), and DDP averages the gradients, so
  an N-process run does the same optimisation as a 1-process run with that batch: the learning rate
  is NOT changed (`scaled_learning_rate(lr, base_batch=B, global_batch=B) == lr`).
- LR scaling when the global batch grows (per-rank batch kept, more ranks): `scaled_learning_rate`
  applies the linear rule (Goyal et al. 2017) for SGD and the square-root rule for Adam/AdamW,
  relative to the batch the hyperparameters were tuned for; use it with a warm-up.
- Sharding: a DistributedSampler (seeded, `set_epoch` per epoch). With shuffle, rank r of W takes
  positions r, r+W, ... of one permutation, so the union of the ranks' k-th batches is the 1-process
  k-th batch. A dataset size that is not a multiple of W is padded by DistributedSampler.
- Checkpoints: only rank 0 writes (`ctx.save`), followed by a barrier. Resume: rank 0 loads and
  broadcasts the dict to every rank (`ctx.resume`), so all ranks restart from the same epoch and state.
- Failure: a rank that raises or dies ends the whole group (the others are terminated); `launch`
  raises the rank's exception when it could be carried back (e.g. a PermanentJobError), else
  `RankFailed` (retryable: a redelivered job resumes from the last checkpoint). A stop request
  (`should_stop`) is seen by all ranks at the same step through `ctx.check_stop()` and makes
  `launch` raise `StopRequested`.
- Backends: NCCL with one GPU per rank (cuda:local_rank) when CUDA is used, gloo on CPU.
- Multi-node: `launch(..., nnodes=K, node_rank=i, master_addr=..., master_port=...)` on every
  node with the same address (rank 0's node); global rank = node_rank * nproc_per_node + local_rank.
  The nodes agree on master_addr/port with `rendezvous(js, job_key=..., nnodes=K, node_rank=i, ...)`
  (a JetStream key-value bucket): all start together, or none does (RendezvousTimeout).

Trainer jobs (trainyard.common.v1.ComputeResources on the TrainingJob): trainer.job.run_job calls
`fit_data_parallel`, whose ranks (`_fit_rank`) build the job's network and data like one process and
run trainer.engine.fit with DDP-wrapping, metric-averaging and rank-0 checkpoint hooks; the events,
checkpoints and stop checks go through the trainer's own hooks in the parent. For a multi-node job
the worker calls `lead_run` (node 0: publishes the member messages, waits for them) or `join_run`
(a member), then passes the resulting `Placement` to run_job.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import queue
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from trainyard.common.v1 import common_pb2 as C


class DistributedError(RuntimeError):
    """A distributed run could not start or did not finish."""


class RankFailed(DistributedError):
    """A rank raised or died; the whole group was ended. Retryable (resume from the checkpoint)."""

    def __init__(self, rank: int, message: str, exitcode: int | None = None) -> None:
        super().__init__(f"rank {rank} failed: {message}")
        self.rank, self.exitcode = rank, exitcode


class StopRequested(Exception):
    """The run stopped at a step boundary because should_stop() became true (all ranks agreed)."""


# ---------------------------------------------------------------- rules


def scaled_learning_rate(lr: float, *, base_batch: int, global_batch: int, optimizer: int = C.OPTIMIZER_SGD) -> float:
    """The learning rate for `global_batch` when `lr` was tuned for `base_batch`.

    SGD: linear (lr * k); Adam/AdamW: square root (lr * sqrt(k)), with k = global_batch / base_batch.
    Same global batch -> same lr (how `launch` runs a job by default).
    """
    if base_batch < 1 or global_batch < 1:
        raise ValueError("batches must be positive")
    k = global_batch / base_batch
    return lr * (k if optimizer == C.OPTIMIZER_SGD else math.sqrt(k))


def per_rank_batch(global_batch: int, world_size: int) -> int:
    if global_batch % world_size:
        raise ValueError(f"the global batch {global_batch} does not divide by the {world_size} processes")
    return global_batch // world_size


def default_backend(use_cuda: bool) -> str:
    return "nccl" if use_cuda else "gloo"


# ---------------------------------------------------------------- inside a rank


@dataclass
class DistContext:
    """What a rank knows and the collective helpers it uses. Built by `launch` in every rank."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    _stop: Any = field(default=None, repr=False)  # multiprocessing Event set by the parent
    _events: Any = field(default=None, repr=False)  # multiprocessing Queue read by the parent

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # data
    def sampler(self, dataset: Dataset, *, shuffle: bool, seed: int = 0, drop_last: bool = False) -> DistributedSampler:
        return DistributedSampler(
            dataset, num_replicas=self.world_size, rank=self.rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )

    def loader(
        self,
        dataset: Dataset,
        *,
        global_batch: int,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 0,
        **kwargs: Any,
    ) -> DataLoader:
        """A DataLoader over this rank's shard with global_batch // world_size samples per step."""
        sampler = self.sampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        return DataLoader(
            dataset,
            batch_size=per_rank_batch(global_batch, self.world_size),
            sampler=sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=self.device.type == "cuda",
            **kwargs,
        )

    @staticmethod
    def set_epoch(loader: DataLoader, epoch: int) -> None:
        """Call at the start of every epoch: a new permutation, the same on every rank."""
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)

    # model
    def wrap(self, model: nn.Module, **ddp_kwargs: Any) -> nn.Module:
        """Move to this rank's device and wrap in DDP (parameters are broadcast from rank 0)."""
        model = model.to(self.device)
        if self.device.type == "cuda":
            return nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index], **ddp_kwargs)
        return nn.parallel.DistributedDataParallel(model, **ddp_kwargs)

    # collectives
    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def all_reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each scalar over the ranks (same keys, same order on every rank)."""
        if not values:
            return {}
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= self.world_size
        return dict(zip(keys, t.tolist(), strict=True))

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        t = tensor.to(self._collective_device()).clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def broadcast_object(self, obj: Any = None, src: int = 0) -> Any:
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src, device=self._collective_device())
        return box[0]

    def check_stop(self) -> None:
        """Raise StopRequested on EVERY rank when the parent asked any of them to stop (collective)."""
        local = 1.0 if (self._stop is not None and self._stop.is_set()) else 0.0
        flag = torch.tensor([local], device=self._collective_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() > 0:
            raise StopRequested()

    # checkpoints
    def save(self, state: dict, writer: Callable[[dict], None]) -> None:
        """Rank 0 calls writer(state); every rank waits until it is written."""
        if self.is_main:
            writer(state)
        self.barrier()

    def resume(self, reader: Callable[[], dict | None]) -> dict | None:
        """Rank 0 calls reader() (None: fresh start); every rank returns the same dict (on CPU tensors)."""
        state = reader() if self.is_main else None
        return self.broadcast_object(state)

    # reporting
    def emit(self, name: str, *args: Any) -> None:
        """Send (name, args) to the parent's on_event, from rank 0 only (other ranks: no-op)."""
        if self.is_main and self._events is not None:
            self._events.put((name, args))

    def _collective_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")


# ---------------------------------------------------------------- launching


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class _RankSetup:
    nproc_per_node: int
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int
    backend: str
    use_cuda: bool
    timeout_s: float
    result_dir: str
    threads_per_rank: int


def _entry(local_rank: int, setup: _RankSetup, fn: Callable, args: tuple, stop, events) -> None:
    """Runs in each spawned rank: join the group, run fn, leave its outcome in result_dir."""
    rank = setup.node_rank * setup.nproc_per_node + local_rank
    world = setup.nnodes * setup.nproc_per_node
    out = Path(setup.result_dir) / f"rank-{rank}.pkl"
    if setup.use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(setup.threads_per_rank)
    dist.init_process_group(
        setup.backend,
        init_method=f"tcp://{setup.master_addr}:{setup.master_port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=setup.timeout_s),
        **({"device_id": device} if setup.use_cuda else {}),
    )
    ctx = DistContext(rank, world, local_rank, setup.backend, device, stop, events)
    try:
        try:
            value = fn(ctx, *args)
            outcome: tuple[str, Any] = ("ok", value if rank == 0 else None)
        except StopRequested:
            outcome = ("stopped", None)
        except BaseException as exc:  # carried back to the parent, then re-raised to end the group
            _write(out, ("error", _portable(exc), time.time()))
            raise
        _write(out, outcome)
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def _portable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - an exception that does not pickle goes back as text
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _write(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(obj, fh)
    os.replace(tmp, path)


def _read(path: Path) -> Any:
    with contextlib.suppress(FileNotFoundError, EOFError, pickle.UnpicklingError):
        with open(path, "rb") as fh:
            return pickle.load(fh)
    return None


# Imported once by the forkserver: torch, and what DDP imports lazily on first use (torch._dynamo, ~5 s).
# trainer.job: what a job's ranks import to build their model and data (fit_data_parallel).
FORKSERVER_PRELOAD = (
    "torch",
    "torch.distributed",
    "torch.nn.parallel",
    "torch._dynamo",
    "trainer.distributed",
    "trainer.job",
)


def _mp_context(start_method: str):
    if start_method not in ("forkserver", "spawn"):
        raise ValueError("start_method must be forkserver or spawn (fork is unsafe with CUDA and threads)")
    context = mp.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(list(FORKSERVER_PRELOAD))  # no effect once the server runs
    return context


def launch(
    fn: Callable[..., Any],
    *args: Any,
    nproc_per_node: int,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int | None = None,
    use_cuda: bool | None = None,
    backend: str | None = None,
    on_event: Callable[[str, tuple], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    timeout_s: float = 600.0,
    poll_s: float = 0.2,
    start_method: str = "forkserver",
    on_start: Callable[[list[int]], None] | None = None,
    threads_per_rank: int | None = None,
) -> Any:
    """Run fn(ctx, *args) in nproc_per_node spawned ranks on this node; returns global rank 0's value.

    fn and args must pickle (fn: a module-level function). use_cuda defaults to "CUDA is available"
    and then needs nproc_per_node <= the visible GPUs. on_event(name, args) is called in this
    process for every ctx.emit of rank 0 (in order); should_stop() is polled every poll_s;
    on_start(pids) gets this node's rank processes once they run. threads_per_rank: torch threads of
    each CPU rank (default: the cores split evenly over the ranks).
    Raises: the failing rank's exception (when it pickles) or RankFailed; StopRequested; DistributedError.

    start_method "forkserver" (default): ranks fork from one clean server process that has torch and
    DDP's lazy imports loaded (paid once per trainer process, then a launch starts in well under a
    second); "spawn": a fresh interpreter per rank. Both are safe with CUDA and threads. Either way
    the caller's __main__ must be import-safe (`python -m trainer` is).
    """
    if nproc_per_node < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise ValueError("need nproc_per_node >= 1, nnodes >= 1 and 0 <= node_rank < nnodes")
    use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
    if use_cuda and nproc_per_node > torch.cuda.device_count():
        raise DistributedError(f"{nproc_per_node} processes need as many GPUs; {torch.cuda.device_count()} visible")
    if nnodes > 1 and master_port is None:
        raise ValueError("a multi-node run needs the master_port every node agreed on")
    backend = backend or default_backend(use_cuda)
    spawn = _mp_context(start_method)
    stop, events = spawn.Event(), spawn.Queue()
    with tempfile.TemporaryDirectory(prefix="trainyard-ddp-") as result_dir:
        setup = _RankSetup(
            nproc_per_node=nproc_per_node,
            nnodes=nnodes,
            node_rank=node_rank,
            master_addr=master_addr,
            master_port=master_port or free_port(master_addr),
            backend=backend,
            use_cuda=use_cuda,
            timeout_s=timeout_s,
            result_dir=result_dir,
            threads_per_rank=threads_per_rank or max(1, (os.cpu_count() or 1) // nproc_per_node),
        )
        context = mp.start_processes(
            _entry, args=(setup, fn, args, stop, events), nprocs=nproc_per_node, join=False, start_method=start_method
        )
        if on_start is not None:
            with contextlib.suppress(Exception):
                on_start([proc.pid for proc in context.processes])

        def drain() -> None:
            while True:
                try:
                    name, ev_args = events.get_nowait()
                except queue.Empty:
                    return
                if on_event is not None:
                    on_event(name, ev_args)

        failure: BaseException | None = None
        try:
            while True:
                try:
                    finished = context.join(timeout=poll_s)
                except mp.ProcessRaisedException as exc:  # a rank raised; torch ended the others
                    failure = exc
                    finished = True
                except mp.ProcessExitedException as exc:  # a rank died (signal or exit code)
                    failure = exc
                    finished = True
                drain()
                if finished:
                    break
                if should_stop is not None and not stop.is_set() and should_stop():
                    stop.set()
        finally:
            for proc in context.processes:  # never leave a rank behind (e.g. this thread was interrupted)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)
            time.sleep(0)  # let the queue's feeder threads settle
            drain()
            events.close()
        outcomes = {
            r: _read(Path(result_dir) / f"rank-{r}.pkl")
            for r in range(node_rank * nproc_per_node, (node_rank + 1) * nproc_per_node)
        }
        first = node_rank * nproc_per_node
        exit_codes = {first + i: proc.exitcode for i, proc in enumerate(context.processes)}
    # A rank that died (killed, crashed in C) leaves no outcome; the errors of the others are then only
    # echoes of losing a peer. SIGTERM is what torch sends the rest after the first failure.
    died = [
        r
        for r, code in sorted(exit_codes.items())
        if code not in (0, None, -signal.SIGTERM) and outcomes.get(r) is None
    ]
    if died:
        code = exit_codes[died[0]]
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise RankFailed(died[0], how, code)
    errors = sorted((o[2], r, o[1]) for r, o in outcomes.items() if o is not None and o[0] == "error")
    if errors:
        raise errors[0][2]  # the first to fail is the cause; later ones are other ranks losing their peer
    if failure is not None:
        rank = first + getattr(failure, "error_index", 0)
        raise RankFailed(rank, (str(failure).strip().splitlines() or ["died"])[-1], getattr(failure, "exit_code", None))
    if any(o is not None and o[0] == "stopped" for o in outcomes.values()):
        raise StopRequested()
    main = outcomes.get(0) if node_rank == 0 else None
    if node_rank == 0 and (main is None or main[0] != "ok"):
        raise DistributedError("rank 0 ended without a result")
    return main[1] if main else None


# ---------------------------------------------------------------- a trainer job as a data-parallel run


@dataclass(frozen=True)
class Placement:
    """This trainer's place in a multi-node run; every node passes the same master address and port."""

    nodes: int
    node_rank: int
    master_addr: str
    master_port: int


@dataclass(frozen=True)
class _FitSpec:
    build: Callable[[Any], Any]  # module-level (pickled by name): prepared -> trainer.job.Training
    prepared: Any
    global_batch: int
    seed: int
    num_workers: int
    progress_interval_s: float
    run_dir: str
    resume_path: str


def _fit_rank(ctx: DistContext, spec: _FitSpec) -> dict | None:
    """One rank of a job: the same network, adapter and epoch loop as one process (trainer.engine.fit),
    on this rank's shard of every global batch, DDP-averaged gradients, rank-0 checkpoints."""
    from trainer import engine

    training = spec.build(spec.prepared)
    train_ds, adapter = training.train_ds, training.adapter
    batch = min(spec.global_batch, max(len(train_ds), ctx.world_size))
    batch -= batch % ctx.world_size  # the service checks it divides; a small dataset may have cut it
    sampler = ctx.sampler(train_ds, shuffle=True, seed=spec.seed)
    per_rank = per_rank_batch(batch, ctx.world_size)
    cuda = ctx.device.type == "cuda"
    train_loader = DataLoader(
        train_ds,
        batch_size=per_rank,
        sampler=sampler,
        drop_last=len(sampler) > per_rank,
        num_workers=spec.num_workers,
        pin_memory=cuda,
        collate_fn=adapter.collate,
    )
    # every rank evaluates the whole val split (the same numbers everywhere, no gather needed)
    val_loader = DataLoader(
        training.val_ds,
        batch_size=min(spec.global_batch, len(train_ds)),
        shuffle=False,
        num_workers=spec.num_workers,
        pin_memory=cuda,
        collate_fn=adapter.collate,
    )
    resume = ctx.resume(
        lambda: torch.load(spec.resume_path, map_location="cpu", weights_only=True) if spec.resume_path else None
    )
    run_dir = Path(spec.run_dir)

    def file_writer(kind: str, *extra: Any) -> Callable[[dict], None]:
        def write(state: dict) -> None:  # the parent uploads it and deletes the file
            path = run_dir / f"{kind}-{state['epoch']}.pt"
            tmp = path.with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, path)
            ctx.emit(kind, str(path), *extra)

        return write

    hooks = engine.Hooks(
        progress=lambda e, es, s, ss, ips, eta: ctx.emit("progress", e, es, s, ss, ips * ctx.world_size, eta),
        epoch_end=lambda epoch, values: ctx.emit("epoch_metrics", epoch, values),
        save_checkpoint=lambda state: ctx.save(state, file_writer("checkpoint")),
        save_best=lambda state, metric, value: ctx.save(state, file_writer("best", metric, value)),
        check_stop=ctx.check_stop,
        log=lambda text: ctx.emit("log", text),
        wrap=ctx.wrap,
        reduce=ctx.all_reduce_mean,
        seed_offset=ctx.rank,
    )
    ctx.emit(
        "log",
        f"data-parallel run: {ctx.world_size} processes ({ctx.backend}), {per_rank} of the global batch "
        f"{batch} per process, learning rate as given",
    )
    final = engine.fit(
        training.built,
        train_loader,
        val_loader,
        training.cfg,
        ctx.device,
        hooks,
        resume,
        spec.progress_interval_s,
        adapter,
    )
    if not ctx.is_main:
        return None
    return {"final": final, "model": {k: v.detach().cpu() for k, v in training.built.model.state_dict().items()}}


def fit_data_parallel(
    build: Callable[[Any], Any],
    prepared: Any,
    *,
    hooks: Any,
    resume: dict | None,
    device: torch.device,
    processes_per_node: int,
    placement: Placement | None = None,
    global_batch: int,
    seed: int,
    num_workers: int = 0,
    progress_interval_s: float = 1.0,
    on_ranks: Callable[[list[int]], None] | None = None,
    timeout_s: float = 600.0,
) -> dict | None:
    """Train a prepared job on processes_per_node ranks here (and on the other nodes of `placement`).

    hooks (trainer.engine.Hooks) run in this process, as for one process: progress, epoch metrics and
    logs come from global rank 0, checkpoints are written by rank 0 only and saved through
    hooks.save_checkpoint / save_best here; hooks.check_stop is polled and stops every rank at the
    same step. `resume` (node 0) goes to rank 0, which hands it to every rank.
    Returns {"final": the final evaluation, "model": the trained state dict} on node 0, None elsewhere.
    Raises what trainer.distributed.launch raises; a stop requested here re-raises check_stop's exception.
    """
    placement = placement or Placement(1, 0, "127.0.0.1", 0)
    with tempfile.TemporaryDirectory(prefix="trainyard-run-") as run_dir:
        resume_path = ""
        if resume is not None:
            resume_path = os.path.join(run_dir, "resume.pt")
            torch.save(resume, resume_path)
        spec = _FitSpec(build, prepared, global_batch, seed, num_workers, progress_interval_s, run_dir, resume_path)

        def on_event(name: str, args: tuple) -> None:
            if name in ("checkpoint", "best"):
                path = Path(args[0])
                state = torch.load(path, map_location="cpu", weights_only=True)
                path.unlink(missing_ok=True)
                hook = hooks.save_checkpoint if name == "checkpoint" else hooks.save_best
                if hook is not None:
                    hook(state, *args[1:])
                return
            hook = {"progress": hooks.progress, "epoch_metrics": hooks.epoch_end, "log": hooks.log}.get(name)
            if hook is not None:
                hook(*args)

        asked: list[BaseException] = []

        def should_stop() -> bool:
            if hooks.check_stop is None:
                return False
            try:
                hooks.check_stop()
            except Exception as exc:  # noqa: BLE001 - re-raised once every rank has stopped
                asked.append(exc)
                return True
            return False

        threads = max(1, torch.get_num_threads() // processes_per_node)
        try:
            return launch(
                _fit_rank,
                spec,
                nproc_per_node=processes_per_node,
                nnodes=placement.nodes,
                node_rank=placement.node_rank,
                master_addr=placement.master_addr,
                master_port=placement.master_port or None,
                use_cuda=device.type == "cuda",
                on_event=on_event,
                should_stop=should_stop,
                on_start=on_ranks,
                timeout_s=timeout_s,
                threads_per_rank=threads,
            )
        except StopRequested:
            if asked:
                raise asked[0] from None
            if hooks.check_stop is not None:
                hooks.check_stop()
            raise DistributedError("another node of the run stopped (shut down or cancelled)") from None
        except RuntimeError as exc:
            if not _lost_peer(exc):
                raise
            first = (str(exc).strip().splitlines() or [""])[0]
            raise DistributedError(
                f"the data-parallel run lost a process (a member node or process died or was stopped): {first}"
            ) from exc


def _lost_peer(exc: BaseException) -> bool:
    """A collective that failed because another rank went away (gloo/NCCL/c10d store wording)."""
    text = str(exc)
    return isinstance(exc, dist.DistError) or any(
        words in text
        for words in ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL communicator")
    )


# ---------------------------------------------------------------- multi-node rendezvous over NATS

RENDEZVOUS_BUCKET = "TRAINYARD_RENDEZVOUS"
RUN_OPEN, RUN_ENDED = b"open", b"ended"  # <run_id>.state: members of an ended run do not join


class RendezvousTimeout(DistributedError):
    """Not every node of a multi-node job arrived in time: none of them starts (the job is retried)."""


async def rendezvous(
    js,
    *,
    job_key: str,
    nnodes: int,
    node_rank: int,
    master_addr: str = "",
    master_port: int = 0,
    timeout_s: float = 120.0,
    poll_s: float = 0.2,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[str, int]:
    """The nodes of one multi-node job agree on rank 0's address through a JetStream key-value bucket.

    Node 0 passes the address its rank 0 will listen on (master_addr, master_port); every node
    registers itself and waits until all `nnodes` have, then gets (master_addr, master_port) for
    `launch(..., nnodes=nnodes, node_rank=node_rank, master_addr=..., master_port=...)`.
    job_key: unique per attempt, e.g. f"{task_id}.{attempt}" (letters, digits, "-", "_", ".").
    Raises RendezvousTimeout when the group is not complete within timeout_s: start together or not at all;
    StopRequested as soon as should_stop() is true (a cancel or shutdown while waiting).
    """
    if node_rank == 0 and not (master_addr and master_port):
        raise ValueError("node 0 must publish the master address and port")
    kv = await _board(js)
    if node_rank == 0:
        await kv.put(f"{job_key}.master", f"{master_addr}:{master_port}".encode())
    await kv.put(f"{job_key}.node.{node_rank}", b"ready")
    deadline = time.monotonic() + timeout_s
    try:
        return await _await_nodes(kv, job_key, nnodes, deadline, timeout_s, poll_s, should_stop)
    except (RendezvousTimeout, StopRequested):
        with contextlib.suppress(Exception):  # leaving: the others must not count this node any more
            await kv.delete(f"{job_key}.node.{node_rank}")
        raise


async def _await_nodes(kv, job_key, nnodes, deadline, timeout_s, poll_s, should_stop) -> tuple[str, int]:
    import asyncio

    import nats.js.errors

    missing = (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError)  # never there, or left
    while True:
        if should_stop is not None and should_stop():
            raise StopRequested()
        with contextlib.suppress(*missing):
            if (await kv.get(f"{job_key}.state")).value == RUN_ENDED:
                raise RendezvousTimeout(f"job {job_key}: the run was ended before every node arrived")
        try:
            addr, _, port = (await kv.get(f"{job_key}.master")).value.decode().rpartition(":")
            arrived = 0
            for rank in range(nnodes):
                try:
                    await kv.get(f"{job_key}.node.{rank}")
                    arrived += 1
                except missing:
                    pass
            if arrived == nnodes:
                return addr, int(port)
        except missing:
            arrived = 0
        if time.monotonic() > deadline:
            raise RendezvousTimeout(f"job {job_key}: {arrived} of {nnodes} nodes arrived within {timeout_s:.0f}s")
        await asyncio.sleep(poll_s)


# ---------------------------------------------------------------- multi-node jobs through the queue
#
# The job message of a multi-node task is taken by one trainer, which becomes node 0: it opens a run
# (run_id "<task_id>.<attempt>"), publishes one member message per other node (the job plus a
# NodeAssignment) on the members subject, and waits in the rendezvous. Trainers take member messages
# like jobs, join the rendezvous, and train as node_rank k. When the attempt ends (any outcome) node 0
# ends the run, so a member message taken later (or redelivered) is dropped. A member that dies fails
# the collective on every rank: node 0's attempt fails as retryable and the redelivered job opens a new
# run that resumes from the last checkpoint.


async def _board(js):
    """The rendezvous bucket, replicated like the platform's streams (TRAINYARD_NATS_REPLICAS)."""
    import nats.js.errors

    from kernel.messaging import replicas_from_env

    try:
        return await js.create_key_value(
            bucket=RENDEZVOUS_BUCKET, history=1, ttl=24 * 3600, replicas=replicas_from_env()
        )
    except nats.js.errors.BadRequestError:  # made earlier with other replicas: use it as it is
        return await js.key_value(RENDEZVOUS_BUCKET)


async def run_state(js, run_id: str) -> bytes | None:
    import nats.js.errors

    try:
        return (await (await _board(js)).get(f"{run_id}.state")).value
    except nats.js.errors.KeyNotFoundError:
        return None


async def end_run(js, run_id: str) -> None:
    """Mark the run over: members still waiting give up, member messages taken later are dropped."""
    await (await _board(js)).put(f"{run_id}.state", RUN_ENDED)


async def lead_run(
    js,
    job: Any,
    *,
    attempt: int,
    subject: str,
    master_addr: str,
    timeout_s: float = 120.0,
    should_stop: Callable[[], bool] | None = None,
) -> Placement:
    """Node 0 of a multi-node job: publish the member messages, wait until all nodes joined.

    Raises RendezvousTimeout when they do not all arrive within timeout_s, StopRequested when
    should_stop() becomes true first; either way the run is ended (members waiting give up).
    """
    from trainyard.events.v1 import events_pb2

    nodes = max(1, job.resources.nodes)
    run_id = f"{job.task_id}.{attempt}"
    port = free_port("")
    await (await _board(js)).put(f"{run_id}.state", RUN_OPEN)
    for rank in range(1, nodes):
        member = events_pb2.TrainingJob()
        member.CopyFrom(job)
        member.assignment.CopyFrom(
            events_pb2.NodeAssignment(
                node_rank=rank, nodes=nodes, master_addr=master_addr, master_port=port, run_id=run_id, attempt=attempt
            )
        )
        await js.publish(subject, member.SerializeToString(), headers={"Nats-Msg-Id": f"{run_id}.node{rank}"})
    try:
        await rendezvous(
            js,
            job_key=run_id,
            nnodes=nodes,
            node_rank=0,
            master_addr=master_addr,
            master_port=port,
            timeout_s=timeout_s,
            should_stop=should_stop,
        )
    except (RendezvousTimeout, StopRequested):
        await end_run(js, run_id)
        raise
    return Placement(nodes, 0, master_addr, port)


async def join_run(
    js, assignment: Any, *, timeout_s: float = 120.0, should_stop: Callable[[], bool] | None = None
) -> Placement | None:
    """A member node: its Placement once every node arrived; None when the run is already over.
    Raises RendezvousTimeout, or StopRequested when should_stop() becomes true while waiting."""
    if await run_state(js, assignment.run_id) != RUN_OPEN:
        return None
    addr, port = await rendezvous(
        js,
        job_key=assignment.run_id,
        nnodes=assignment.nodes,
        node_rank=assignment.node_rank,
        timeout_s=timeout_s,
        should_stop=should_stop,
    )
    return Placement(assignment.nodes, assignment.node_rank, addr, port)
