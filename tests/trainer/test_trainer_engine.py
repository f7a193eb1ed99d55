"""The training engine on a tiny synthetic problem: it learns, and a checkpoint resumes where it stopped."""

from __future__ import annotations

import pytest
import testjobs
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainer import engine
from trainer.errors import JobInterrupted
from trainer.models import (
    FINE_TUNE_ALL,
    GRADUAL_UNFREEZE,
    LINEAR_PROBE,
    BuiltModel,
    param_groups,
    replace_last_linear,
    set_trainable,
)
from trainyard.common.v1 import common_pb2 as C


def easy_data(n_per_class: int = 24, seed: int = 0) -> TensorDataset:
    """Two classes: bright top half vs bright bottom half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for label in (0, 1):
        x = torch.randn(n_per_class, 3, 8, 8, generator=g) * 0.3
        if label == 0:
            x[:, :, :4] += 1.0
        else:
            x[:, :, 4:] += 1.0
        images.append(x)
        labels.append(torch.full((n_per_class,), label))
    return TensorDataset(torch.cat(images), torch.cat(labels))


def tiny_model(num_classes: int = 2) -> BuiltModel:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 1)), nn.Flatten(), nn.Linear(16, num_classes)
    )
    return BuiltModel(model, model[-1])


def loaders(seed: int = 0):
    train = DataLoader(easy_data(24, seed), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(1))
    val = DataLoader(easy_data(10, seed + 100), batch_size=16)
    return train, val


def test_fit_learns_an_easy_problem():
    train, val = loaders()
    epochs_seen: list[tuple[int, dict]] = []
    progress: list[tuple] = []
    cfg = testjobs.fit_config(
        epochs=4, num_classes=2, learning_rate=0.05, warmup_epochs=1, class_names=["top", "bottom"]
    )
    hooks = engine.Hooks(epoch_end=lambda e, v: epochs_seen.append((e, v)), progress=lambda *a: progress.append(a))
    final = engine.fit(tiny_model(), train, val, cfg, torch.device("cpu"), hooks, progress_interval_s=0)
    assert [e for e, _ in epochs_seen] == [1, 2, 3, 4]
    assert epochs_seen[-1][1]["train_loss"] < epochs_seen[0][1]["train_loss"]
    assert final["val_top1"] >= 0.9  # chance is 0.5
    assert len(final["confusion_matrix"]) == 2 and sum(map(sum, final["confusion_matrix"])) == 20
    assert len(final["precision"]) == 2 and len(final["recall"]) == 2
    assert "val_top5" not in final  # fewer than 5 classes
    assert progress and progress[-1][:4] == (4, 4, 6, 6)


def test_checkpoint_resume_continues_from_saved_epoch():
    cfg = testjobs.fit_config(epochs=3, num_classes=2, learning_rate=0.05)
    saved: list[dict] = []
    epochs_run: list[int] = []

    def stop_in_third_epoch() -> None:
        if len(saved) == 2:
            raise JobInterrupted()

    train, val = loaders()
    hooks = engine.Hooks(
        save_checkpoint=saved.append, check_stop=stop_in_third_epoch, epoch_end=lambda e, v: epochs_run.append(e)
    )
    with pytest.raises(JobInterrupted):
        engine.fit(tiny_model(), train, val, cfg, torch.device("cpu"), hooks)
    assert epochs_run == [1, 2] and saved[-1]["epoch"] == 2
    checkpoint = saved[-1]
    assert set(checkpoint) >= {"model", "optimizer", "scheduler", "scaler", "config", "epoch"}

    resumed: list[int] = []
    built = tiny_model()
    train, val = loaders()
    hooks = engine.Hooks(epoch_end=lambda e, v: resumed.append(e), save_checkpoint=saved.append)
    final = engine.fit(built, train, val, cfg, torch.device("cpu"), hooks, resume=checkpoint)
    # epochs 1 and 2 are not trained again, but their metrics are published again from the checkpoint
    # (an event lost when the trainer died after the checkpoint comes back)
    assert resumed == [1, 2, 3]
    assert len(saved) == 3  # only epoch 3 was checkpointed again
    assert saved[-1]["epoch"] == 3
    assert [h["epoch"] for h in final["history"]] == [1, 2, 3]
    # the scheduler continued: 3 epochs x 6 steps in all
    assert saved[-1]["scheduler"]["last_epoch"] == 18


def test_transfer_strategies_freeze_the_backbone():
    built = tiny_model()
    head = {id(p) for p in built.head.parameters()}
    assert set_trainable(built, LINEAR_PROBE, 0, 4) is False
    assert all(p.requires_grad == (id(p) in head) for p in built.model.parameters())
    assert set_trainable(built, GRADUAL_UNFREEZE, 0, 4) is False
    assert set_trainable(built, GRADUAL_UNFREEZE, 1, 4) is True
    assert all(p.requires_grad for p in built.model.parameters())
    assert set_trainable(built, FINE_TUNE_ALL, 0, 4) is True


def test_backbone_learning_rate_multiplier_and_head_replacement():
    built = tiny_model()
    groups = {g["name"]: g for g in param_groups(built, 0.1, 0.25, 0.01)}
    assert groups["head"]["lr"] == 0.1 and groups["backbone"]["lr"] == pytest.approx(0.025)
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0
    new = replace_last_linear(built.model, 7)
    assert built.model[-1] is new and new.out_features == 7 and new.in_features == 16


def test_schedules_warmup_step_and_one_cycle():
    cfg = testjobs.fit_config(epochs=6, num_classes=2, warmup_epochs=1, schedule=C.LR_SCHEDULE_STEP, step_epochs=2)
    f = [engine.lr_factor(s, 10, cfg) for s in range(60)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)  # linear warm-up over epoch 1
    assert f[10] == 1.0 and f[29] == 1.0 and f[30] == pytest.approx(0.1) and f[50] == pytest.approx(0.01)
    cfg = testjobs.fit_config(epochs=4, num_classes=2, schedule=C.LR_SCHEDULE_ONE_CYCLE)
    f = [engine.lr_factor(s, 10, cfg) for s in range(40)]
    peak = max(range(40), key=f.__getitem__)
    assert f[0] < 0.2 and 8 <= peak <= 13 and f[-1] < 0.01
    cosine = testjobs.fit_config(epochs=2, num_classes=2)
    assert engine.lr_factor(0, 10, cosine) == 1.0 and engine.lr_factor(19, 10, cosine) < 0.01


def test_early_stopping_stops_and_keeps_the_best():
    train, val = loaders()
    best: list[tuple] = []
    logs: list[str] = []
    # lr 0 never improves after epoch 1: patience 2 stops after epoch 3 of 10
    cfg = testjobs.fit_config(
        epochs=10, num_classes=2, learning_rate=1e-12, early_stopping_patience=2, early_stopping_metric="val_top1"
    )
    hooks = engine.Hooks(save_best=lambda state, m, v: best.append((state["epoch"], m, v)), log=logs.append)
    final = engine.fit(tiny_model(), train, val, cfg, torch.device("cpu"), hooks)
    assert final["stopped_early"] and final["epochs_trained"] == 3
    assert best[0][:2] == (1, "val_top1") and final["best"]["epoch"] == 1
    assert any("early stopping" in line for line in logs)


def test_class_weights_from_label_counts():
    from trainer.job import class_weights

    cases = [{"label": 0}] * 6 + [{"label": 1}] * 2
    w = class_weights(cases, "classification", 2, 2)
    assert w[1] == pytest.approx(3 * w[0]) and sum(w) / 2 == pytest.approx(1.0)
    assert class_weights(cases, "classification", 2, 0) is None


def _chained() -> RuntimeError:
    try:
        raise MemoryError()
    except MemoryError as inner:
        try:
            raise RuntimeError("the collate function failed") from inner
        except RuntimeError as outer:
            return outer


@pytest.mark.parametrize(
    ("exc", "oom"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("CUDA error: out of memory"), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 9.00 GB)"), True),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
        (RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed. "), True),
        (MemoryError(), True),
        (_chained(), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x10 and 12x2)"), False),
        (RuntimeError("DataLoader worker (pid 4242) exited unexpectedly"), False),
        (ValueError("bad value"), False),
    ],
)
def test_out_of_memory_is_recognised(exc, oom):
    from trainer.errors import is_out_of_memory

    assert is_out_of_memory(exc) is oom


def test_out_of_memory_reason_says_so_and_suggests_a_smaller_batch():
    from trainer.errors import out_of_memory_reason

    gpu = out_of_memory_reason("fasterrcnn_resnet50_fpn", 16, 800, True)
    assert gpu.startswith("out of memory") and "the GPU" in gpu and "batch_size 16" in gpu
    assert "smaller batch_size (for example 8)" in gpu
    assert "the trainer node" in out_of_memory_reason("resnet50", 1, 224, False)
    assert "for example 1" in out_of_memory_reason("resnet50", 1, 224, False)


def test_a_non_finite_training_loss_stops_the_run_with_a_reason():
    train, val = loaders()
    images, labels = train.dataset.tensors
    poisoned = images.clone()
    poisoned[5] = float("nan")  # one bad sample makes its batch's loss NaN
    bad = DataLoader(TensorDataset(poisoned, labels), batch_size=8)
    cfg = testjobs.fit_config(epochs=2, num_classes=2, learning_rate=0.05)
    with pytest.raises(FloatingPointError, match="training loss became nan; lower the learning_rate"):
        engine.fit(tiny_model(), bad, val, cfg, torch.device("cpu"))


def test_a_checkpoint_from_a_gpu_node_resumes_on_a_cpu_node():
    """A GPU node's AdamW runs fused; its checkpoint carries that flag, which a CPU optimizer must not take."""
    cfg = testjobs.fit_config(epochs=2, num_classes=2, learning_rate=0.05)
    saved: list[dict] = []
    train, val = loaders()
    engine.fit(tiny_model(), train, val, cfg, torch.device("cpu"), engine.Hooks(save_checkpoint=saved.append))
    checkpoint = saved[-1]
    for group in checkpoint["optimizer"]["param_groups"]:
        group.update(fused=True, foreach=None)  # as a CUDA node saves it
    more = testjobs.fit_config(epochs=3, num_classes=2, learning_rate=0.05)
    again: list[dict] = []
    hooks = engine.Hooks(save_checkpoint=again.append)
    final = engine.fit(tiny_model(), train, val, more, torch.device("cpu"), hooks, resume=checkpoint)
    assert [h["epoch"] for h in final["history"]] == [1, 2, 3]
    # the CPU node ran (and saved) its own implementation, with the GPU node's learned state
    assert not any(group["fused"] for group in again[-1]["optimizer"]["param_groups"])


def test_a_network_whose_recipe_lowers_batchnorm_momentum_evaluates_as_it_trains():
    """torchvision's MobileNetV3 sets BatchNorm momentum 0.01: over a short run its running statistics
    lagged the weights and validation sat at chance while the training loss reached zero."""
    from trainer.models import build_model

    torch.manual_seed(0)
    built = build_model("torchvision", "mobilenet_v3_small", 4, None)
    batchnorms = [m for m in built.model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert batchnorms and all(m.momentum == 0.1 for m in batchnorms)

    def squares(seed: int, n: int) -> TensorDataset:
        """Class k: a bright square in quadrant k of channel k % 3, under noise."""
        g = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % 4
        images = torch.randn(n, 3, 96, 96, generator=g) * 0.5
        for i, k in enumerate(labels.tolist()):
            y, x = (k // 2) * 48, (k % 2) * 48
            images[i, k % 3, y : y + 48, x : x + 48] += 2.0
        return TensorDataset(images, labels)

    train = DataLoader(squares(0, 160), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(squares(1, 48), batch_size=16)
    cfg = testjobs.fit_config(epochs=10, num_classes=4, learning_rate=1e-3, weight_decay=0.05)
    final = engine.fit(built, train, val, cfg, torch.device("cpu"))  # 1.0 from epoch 7 on; 0.25 throughout at 0.01
    assert final["val_top1"] >= 0.9, [h["values"]["val_top1"] for h in final["history"]]


class _SlowLoader:
    """A train loader whose every batch takes `delay` seconds: epochs of a known length."""

    def __init__(self, loader, delay: float) -> None:
        self.loader, self.delay, self.sampler = loader, delay, loader.sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        import time

        for batch in self.loader:
            time.sleep(self.delay)
            yield batch


def test_a_time_budget_plans_the_epochs_that_fit_and_stops_in_time():
    """Issue 16: "train for at most N minutes": the first epoch's length plans the rest, the learning-rate
    schedule ends where the plan does, and the run stops in time with its best epoch's model."""
    import time

    train, val = loaders()
    slow = _SlowLoader(train, 0.05)  # 6 batches: an epoch takes about 0.3 s
    logs: list[str] = []
    seen: list[tuple[int, dict]] = []
    cfg = testjobs.fit_config(epochs=50, num_classes=2, learning_rate=0.05, time_budget_s=4.0)
    hooks = engine.Hooks(log=logs.append, epoch_end=lambda e, v: seen.append((e, v)))
    started = time.monotonic()
    final = engine.fit(tiny_model(), slow, val, cfg, torch.device("cpu"), hooks)
    took = time.monotonic() - started
    trained = len(seen)
    assert 3 <= trained < 50 and took < 4.0 + took / trained  # within the budget, give or take an epoch
    assert any("epochs fit; the learning-rate schedule now ends at epoch" in line for line in logs)
    # the schedule was planned to end with the run: the last epoch's learning rate is near zero
    assert seen[-1][1]["lr"] < 0.2 * 0.05
    assert final["training_seconds"] == pytest.approx(took, abs=0.5)
    assert final["best"]["epoch"] >= 1 and final["val_top1"] >= 0.8


def test_a_resumed_run_counts_the_time_its_earlier_attempts_spent():
    train, val = loaders()
    saved: list[dict] = []
    cfg = testjobs.fit_config(epochs=3, num_classes=2, learning_rate=0.05, time_budget_s=600)
    engine.fit(tiny_model(), train, val, cfg, torch.device("cpu"), engine.Hooks(save_checkpoint=saved.append))
    checkpoint = dict(saved[-1], epoch=1, seconds=600.0, stopped_by="")  # as if the first attempt used it all
    logs: list[str] = []
    resumed = testjobs.fit_config(epochs=3, num_classes=2, learning_rate=0.05, time_budget_s=600)
    final = engine.fit(
        tiny_model(), train, val, resumed, torch.device("cpu"), engine.Hooks(log=logs.append), checkpoint
    )
    assert final["stopped_by"] == "time_budget" and any("stopping after epoch 1" in line for line in logs)
