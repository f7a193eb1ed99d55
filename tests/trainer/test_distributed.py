"""trainer.distributed on CPU (gloo): DDP equals 1-process training, resume, failures, stop, 2 nodes."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from trainer.distributed import (
    DistContext,
    RankFailed,
    StopRequested,
    free_port,
    launch,
    per_rank_batch,
    scaled_learning_rate,
)
from trainyard.common.v1 import common_pb2 as C

pytestmark = pytest.mark.slow

EPOCHS = 3
GLOBAL_BATCH = 16
SAMPLES = 64


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(SAMPLES, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x, y)


def _train(ctx: DistContext, cfg: dict) -> dict:
    """A complete job the way the trainer would run one: shard, DDP, rank-0 checkpoints, resume, stop."""
    if cfg.get("raise_rank") == ctx.rank:
        raise ValueError(f"bad data on rank {ctx.rank}")
    model = _model()
    ddp = ctx.wrap(model)
    loader = ctx.loader(_data(), global_batch=cfg["global_batch"], shuffle=True, seed=7)
    lr = scaled_learning_rate(0.1, base_batch=GLOBAL_BATCH, global_batch=cfg["global_batch"])
    opt = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=0.9)
    ckpt = Path(cfg["ckpt"]) if cfg.get("ckpt") else None
    state = ctx.resume(lambda: torch.load(ckpt, weights_only=True) if ckpt and ckpt.exists() else None)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = state["epoch"]
        ctx.emit("resumed", start)

    def write(s: dict) -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save(s, tmp)
        os.replace(tmp, ckpt)

    for epoch in range(start, cfg["epochs"]):
        ctx.set_epoch(loader, epoch)
        loss = torch.zeros(())
        for x, y in loader:
            ctx.check_stop()
            loss = F.cross_entropy(ddp(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if cfg.get("die_rank") == ctx.rank and cfg.get("die_epoch") == epoch:
            os.kill(os.getpid(), signal.SIGKILL)  # a member dies mid-job
        if ckpt is not None:
            ctx.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1}, write)
        ctx.emit("epoch", epoch + 1, ctx.all_reduce_mean({"loss": loss.item(), "rank": float(ctx.rank)}))
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _cfg(**kw) -> dict:
    return {"epochs": EPOCHS, "global_batch": GLOBAL_BATCH, **kw}


def _assert_same(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-4, msg=f"parameter {k} differs")


@pytest.fixture(scope="module")
def one_process() -> dict:
    return launch(_train, _cfg(), nproc_per_node=1, use_cuda=False)


def test_lr_rule_and_batch_split() -> None:
    assert scaled_learning_rate(0.1, base_batch=32, global_batch=32) == 0.1
    assert scaled_learning_rate(0.1, base_batch=32, global_batch=128, optimizer=C.OPTIMIZER_SGD) == pytest.approx(0.4)
    assert scaled_learning_rate(1e-3, base_batch=32, global_batch=128, optimizer=C.OPTIMIZER_ADAMW) == pytest.approx(
        2e-3
    )
    assert per_rank_batch(16, 2) == 8
    with pytest.raises(ValueError, match="does not divide"):
        per_rank_batch(15, 2)


def test_two_process_ddp_equals_one_process_with_same_global_batch(one_process: dict) -> None:
    events: list = []
    two = launch(_train, _cfg(), nproc_per_node=2, use_cuda=False, on_event=lambda n, a: events.append((n, a)))
    _assert_same(two, one_process)
    # the runs really differ from an untrained model, and rank 0 reported every epoch with ranks averaged
    assert not torch.allclose(two["0.weight"], _model().state_dict()["0.weight"])
    assert [a[0] for n, a in events if n == "epoch"] == [1, 2, 3]
    assert all(a[1]["rank"] == 0.5 for n, a in events if n == "epoch")


def test_killed_member_fails_the_run_and_a_retry_resumes_from_the_checkpoint(tmp_path: Path, one_process) -> None:
    ckpt = tmp_path / "last.pt"
    with pytest.raises(RankFailed) as info:
        launch(_train, _cfg(ckpt=str(ckpt), die_rank=1, die_epoch=1), nproc_per_node=2, use_cuda=False, timeout_s=60)
    assert info.value.rank == 1
    # rank 0 wrote epoch 1, and epoch 2 too when it got there before rank 1 died (its state was complete)
    saved = torch.load(ckpt, weights_only=True)["epoch"]
    assert saved in (1, 2)
    events: list = []
    resumed = launch(
        _train, _cfg(ckpt=str(ckpt)), nproc_per_node=2, use_cuda=False, on_event=lambda n, a: events.append((n, a))
    )
    assert ("resumed", (saved,)) in events
    assert [a[0] for n, a in events if n == "epoch"] == list(range(saved + 1, EPOCHS + 1))
    _assert_same(resumed, one_process)


def test_an_exception_in_one_rank_comes_back_as_itself() -> None:
    with pytest.raises(ValueError, match="bad data on rank 1"):
        launch(_train, _cfg(raise_rank=1), nproc_per_node=2, use_cuda=False, timeout_s=60)


def test_stop_request_stops_every_rank_at_the_same_step(tmp_path: Path) -> None:
    seen: list = []

    def on_event(name, args) -> None:
        seen.append(name)

    with pytest.raises(StopRequested):
        launch(
            _train,
            _cfg(epochs=10_000),
            nproc_per_node=2,
            use_cuda=False,
            on_event=on_event,
            should_stop=lambda: "epoch" in seen,
        )


def test_two_nodes_simulated_by_two_launchers_on_one_machine(one_process: dict) -> None:
    """Two trainer 'nodes' (1 process each) rendezvous on one master address and train one job."""
    port = free_port()
    results: dict[int, object] = {}

    def node(rank: int) -> None:
        try:
            results[rank] = launch(
                _train,
                _cfg(),
                nproc_per_node=1,
                nnodes=2,
                node_rank=rank,
                master_port=port,
                use_cuda=False,
                timeout_s=60,
            )
        except BaseException as exc:  # noqa: BLE001 - asserted below
            results[rank] = exc

    threads = [threading.Thread(target=node, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results.get(1, "missing") is None, results.get(1)
    assert isinstance(results.get(0), dict), results.get(0)
    _assert_same(results[0], one_process)


@pytest.mark.integration
async def test_nodes_rendezvous_over_nats_or_none_starts(nats_server) -> None:
    from kernel import messaging
    from trainer.distributed import RendezvousTimeout, rendezvous

    nc = await messaging.connect(nats_server.url, "test-rendezvous")
    try:
        js = nc.jetstream()
        key = f"task-{os.getpid()}.1"
        got = await asyncio.gather(
            rendezvous(js, job_key=key, nnodes=2, node_rank=1, timeout_s=20),
            rendezvous(js, job_key=key, nnodes=2, node_rank=0, master_addr="10.0.0.7", master_port=29500),
        )
        assert got == [("10.0.0.7", 29500), ("10.0.0.7", 29500)]
        with pytest.raises(RendezvousTimeout, match="1 of 2 nodes"):
            await rendezvous(
                js, job_key=f"task-{os.getpid()}.2", nnodes=2, node_rank=0, master_addr="h", master_port=1, timeout_s=1
            )
        # a node that stops waiting (cancel, shutdown) takes its place back: node 0 does not start without it
        left = f"task-{os.getpid()}.3"
        with pytest.raises(StopRequested):
            await rendezvous(js, job_key=left, nnodes=2, node_rank=1, timeout_s=20, should_stop=lambda: True)
        with pytest.raises(RendezvousTimeout, match="1 of 2 nodes"):
            await rendezvous(js, job_key=left, nnodes=2, node_rank=0, master_addr="h", master_port=1, timeout_s=1)
    finally:
        await nc.close()
