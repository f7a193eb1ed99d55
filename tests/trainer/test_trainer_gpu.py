"""The trainer's GPU path: CUDA, mixed precision (bfloat16, or float16 with loss scaling), channels_last,
NCCL, and exports of a model trained on the GPU.

CI has no GPU: every test here is marked `gpu` and skipped without CUDA. Run them on a GPU machine with
`pytest -m gpu tests/trainer/test_trainer_gpu.py`.
"""

from __future__ import annotations

import pytest
import testjobs
import torch
from torch.utils.data import DataLoader, TensorDataset

from trainer import artifacts, engine, tasks
from trainer.distributed import DistContext, launch
from trainer.models import build_model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CLASSES = 4


def colour_data(n: int, size: int = 64, seed: int = 0) -> TensorDataset:
    """Class k: a bright square in quadrant k of the channel k % 3, under noise (learnable in a few epochs)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    images = torch.randn(n, 3, size, size, generator=g) * 0.5
    half = size // 2
    for i, k in enumerate(labels.tolist()):
        y, x = (k // 2) * half, (k % 2) * half
        images[i, k % 3, y : y + half, x : x + half] += 2.0
    return TensorDataset(images, labels)


def loaders(batch: int = 32):
    return (
        DataLoader(colour_data(256), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0)),
        DataLoader(colour_data(64, seed=1), batch_size=batch),
    )


@pytest.fixture(params=["native", "float16"])
def precision(request, monkeypatch) -> torch.dtype:
    """The GPU's own mixed precision (bfloat16 on Ampere and later), and float16 + GradScaler as on older GPUs."""
    if request.param == "float16":
        monkeypatch.setattr(tasks, "amp_dtype", lambda device: torch.float16 if device.type == "cuda" else None)
    return tasks.amp_dtype(torch.device("cuda"))


def test_a_classifier_learns_on_the_gpu_and_its_checkpoint_resumes_on_the_gpu_and_loads_on_cpu(precision):
    cuda = torch.device("cuda")
    train, val = loaders()
    torch.manual_seed(0)
    built = build_model("torchvision", "resnet18", CLASSES, None)
    checkpoints: list[dict] = []
    cfg = testjobs.fit_config(epochs=4, num_classes=CLASSES, learning_rate=2e-3, warmup_epochs=1)
    final = engine.fit(built, train, val, cfg, cuda, engine.Hooks(save_checkpoint=checkpoints.append))

    assert next(built.model.parameters()).device.type == "cuda"
    assert built.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.backends.cudnn.benchmark  # one input shape: cuDNN keeps its fastest kernels
    losses = [h["values"]["train_loss"] for h in final["history"]]
    assert losses[-1] < losses[0], losses
    assert final["val_top1"] >= 0.9, final["history"]
    # loss scaling exists exactly where float16 needs it
    assert (checkpoints[-1]["scaler"] is not None) == (precision == torch.float16)

    # resume on the GPU: continues from epoch 4 to 5 with the optimizer and scaler state
    torch.manual_seed(0)
    again = build_model("torchvision", "resnet18", CLASSES, None)
    more = testjobs.fit_config(epochs=5, num_classes=CLASSES, learning_rate=2e-3, warmup_epochs=1)
    resumed = engine.fit(again, train, val, more, cuda, resume=checkpoints[-1])
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4, 5]
    assert resumed["val_top1"] >= 0.9

    # the GPU checkpoint loads on a CPU-only node and predicts what the GPU model predicts (in fp32)
    cpu_model = build_model("torchvision", "resnet18", CLASSES, None).model
    state = {k: v.to("cpu") for k, v in checkpoints[-1]["model"].items()}
    cpu_model.load_state_dict(state)
    built.model.load_state_dict(checkpoints[-1]["model"])
    images = next(iter(val))[0][:8]
    with torch.inference_mode():
        on_cpu = cpu_model.eval()(images)
        on_gpu = built.model.eval()(images.to(cuda).contiguous(memory_format=torch.channels_last)).float().cpu()
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-3, rtol=2e-3)


def test_a_model_trained_on_the_gpu_exports_to_torchscript_and_onnx():
    cuda = torch.device("cuda")
    train, val = loaders()
    built = build_model("torchvision", "mobilenet_v3_small", CLASSES, None)
    engine.fit(built, train, val, testjobs.fit_config(epochs=1, num_classes=CLASSES), cuda)
    notes: dict = {}
    files = artifacts.export_model(built.model, "classification", torch.rand(2, 3, 64, 64), notes)
    assert {name for name, _, _ in files} == {"model.torchscript.pt", "model.onnx"}, notes
    assert all(note["max_abs_diff"] <= note["tolerance"] for note in notes.values()), notes


def _boxes_and_masks(n: int, size: int, seed: int, with_masks: bool):
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        image = torch.rand(3, size, size, generator=g) * 0.2
        label = 1 + i % 2
        x0, y0 = (int(v) for v in torch.randint(0, size // 2, (2,), generator=g))
        x1, y1 = x0 + size // 3, y0 + size // 3
        image[label - 1, y0:y1, x0:x1] += 0.8
        target = {"boxes": torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32), "labels": torch.tensor([label])}
        if with_masks:
            mask = torch.zeros(1, size, size, dtype=torch.uint8)
            mask[0, y0:y1, x0:x1] = 1
            target["masks"] = mask
        items.append((image, target))
    return items


@pytest.mark.parametrize(
    ("task", "architecture", "metric"),
    [
        ("detection", "fasterrcnn_mobilenet_v3_large_320_fpn", "val_map"),
        ("instance_segmentation", "maskrcnn_resnet50_fpn", "val_mask_map"),
        ("segmentation", "lraspp_mobilenet_v3_large", "val_miou"),
        ("segmentation", "deeplabv3_resnet50", "val_miou"),
    ],
)
def test_detection_and_segmentation_train_on_the_gpu(precision, task, architecture, metric):
    cuda = torch.device("cuda")
    size, classes = 128, 3  # background + 2
    adapter = tasks.make_adapter(task, classes, ["background", "red", "green"])
    if task == "segmentation":
        g = torch.Generator().manual_seed(0)
        images = torch.rand(32, 3, size, size, generator=g)
        masks = torch.zeros(32, size, size, dtype=torch.long)
        masks[:, size // 4 : size // 2, size // 4 : size // 2] = 1
        images[:, 0, size // 4 : size // 2, size // 4 : size // 2] += 1.0
        train = DataLoader(TensorDataset(images[:24], masks[:24]), batch_size=8, shuffle=True)
        val = DataLoader(TensorDataset(images[24:], masks[24:]), batch_size=8)
    else:
        with_masks = task == "instance_segmentation"
        train_items = _boxes_and_masks(16, size, 0, with_masks)
        val_items = _boxes_and_masks(8, size, 1, with_masks)
        train = DataLoader(train_items, batch_size=4, shuffle=True, collate_fn=tasks.detection_collate)
        val = DataLoader(val_items, batch_size=4, collate_fn=tasks.detection_collate)
    torch.manual_seed(0)
    built = build_model("torchvision", architecture, classes, None, task=task, image_size=size)
    cfg = testjobs.fit_config(epochs=2, num_classes=classes, learning_rate=1e-3, task=task)
    final = engine.fit(built, train, val, cfg, cuda, adapter=adapter)
    assert next(built.model.parameters()).device.type == "cuda"
    assert torch.backends.cudnn.benchmark == (task == "segmentation")  # detectors' region counts vary
    assert all(torch.isfinite(torch.tensor(h["values"]["train_loss"])) for h in final["history"])
    assert metric in final and 0.0 <= final[metric] <= 1.0, final


def _train_on_cuda(ctx: DistContext, cfg: dict) -> dict:
    """One data-parallel job over NCCL: DDP-wrapped model on this rank's GPU, collectives on the GPU."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    ddp = ctx.wrap(model)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    loader = ctx.loader(TensorDataset(x, y), global_batch=16, shuffle=True, seed=7)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    first = last = None
    for epoch in range(cfg["epochs"]):
        ctx.set_epoch(loader, epoch)
        for xb, yb in loader:
            loss = torch.nn.functional.cross_entropy(ddp(xb.to(ctx.device)), yb.to(ctx.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        mean = ctx.all_reduce_mean({"loss": loss.item()})["loss"]
        first = mean if first is None else first
        last = mean
    return {"backend": ctx.backend, "device": str(ctx.device), "first": first, "last": last}


def test_data_parallel_training_runs_over_nccl():
    out = launch(_train_on_cuda, {"epochs": 8}, nproc_per_node=1, use_cuda=True, timeout_s=120)
    assert out["backend"] == "nccl" and out["device"].startswith("cuda")
    assert out["last"] < out["first"], out
