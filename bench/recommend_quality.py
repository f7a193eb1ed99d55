"""Benchmark: does the recommendation pick well? Trains a small candidate set for real and compares.

    .venv/bin/python bench/recommend_quality.py [--budget 20] [--out recommend_quality.json]

On a tiny generated classification dataset (coloured patterns, 4 classes, 64 px) it ranks a small
candidate set of zoo networks with the real ranking (services.recommend.ranking.rank, the committed
CPU throughput table), then trains every candidate with the real trainer engine (trainer.engine.fit)
from random initialisation under the same time budget (epochs = what fits the budget after a timed
first epoch), at the hyperparameters the recommendation suggests. It reports:

- balanced: the top suggestion's validation top-1 against the best candidate's (pass: within --points);
- fastest: whether the top 'fastest' suggestion has the shortest measured epoch among the top five.

Side by side in one run, never a timed unit test. Exit code 0 when both checks pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (library, architecture, published top-1, GMACs at 224, parameters): torchvision's own metadata values.
CANDIDATES = [
    ("torchvision", "mobilenet_v3_small", 67.668, 0.057, 2_542_856),
    ("torchvision", "mobilenet_v2", 71.878, 0.301, 3_504_872),
    ("torchvision", "efficientnet_b0", 77.692, 0.386, 5_288_548),
    ("torchvision", "resnet18", 69.758, 1.814, 11_689_512),
    ("torchvision", "shufflenet_v2_x0_5", 60.552, 0.04, 1_366_792),
    ("torchvision", "resnet34", 73.314, 3.664, 21_797_672),
]


def make_data(n_train: int, n_val: int, classes: int, size: int, seed: int = 0):
    """Images whose class decides a coloured square's colour and position, under noise."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def batch(n: int):
        labels = torch.arange(n) % classes
        images = torch.randn(n, 3, size, size, generator=g) * 0.6
        for i, label in enumerate(labels.tolist()):
            x0 = (label % 2) * size // 2 + int(torch.randint(0, size // 4, (1,), generator=g))
            y0 = (label // 2 % 2) * size // 2 + int(torch.randint(0, size // 4, (1,), generator=g))
            images[i, label % 3, y0 : y0 + size // 4, x0 : x0 + size // 4] += 1.5
        return images, labels

    return batch(n_train), batch(n_val)


def train_candidate(library, arch, suggestion, data, classes: int, budget: float) -> dict:
    import torch
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from trainer.engine import FitConfig, fit
    from trainer.models import build_model

    hp = suggestion.hyperparameters
    (xt, yt), (xv, yv) = data
    xt = F.interpolate(xt, size=hp.image_size, mode="bilinear", align_corners=False)
    xv = F.interpolate(xv, size=hp.image_size, mode="bilinear", align_corners=False)
    train = DataLoader(TensorDataset(xt, yt), batch_size=hp.batch_size, shuffle=True)
    val = DataLoader(TensorDataset(xv, yv), batch_size=hp.batch_size)
    device = torch.device("cpu")

    def run(epochs: int) -> tuple[dict, float]:
        torch.manual_seed(0)
        built = build_model(library, arch, classes, None)
        cfg = FitConfig(
            epochs=epochs,
            num_classes=classes,
            learning_rate=hp.learning_rate,
            backbone_lr_multiplier=1.0,  # random initialisation: the whole network learns at full rate
            weight_decay=hp.weight_decay,
            warmup_epochs=0,
        )
        started = time.perf_counter()
        result = fit(built, train, val, cfg, device)
        return result, time.perf_counter() - started

    _, first = run(1)
    epochs = max(1, min(30, int(budget / first)))
    result, seconds = run(epochs)
    return {
        "model_id": suggestion.model_id,
        "epochs": epochs,
        "seconds": round(seconds, 2),
        "seconds_per_epoch": round(first, 3),
        "expected_seconds_per_epoch": suggestion.expected_seconds_per_epoch,
        "throughput_source": suggestion.throughput_source,
        "val_top1": round(float(result.get("val_top1", 0.0)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0, help="training seconds per candidate")
    parser.add_argument("--points", type=float, default=5.0, help="allowed top-1 gap of 'balanced', in points")
    parser.add_argument("--train", type=int, default=160)
    parser.add_argument("--val", type=int, default=80)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from services.recommend.ranking import rank
    from services.recommend.stats import DatasetStats
    from trainyard.common.v1 import common_pb2
    from trainyard.modelzoo.v1 import modelzoo_pb2

    classes, size = 4, 64
    models = [
        modelzoo_pb2.Model(
            id=f"tv/{arch}.imagenet1k_v1",
            family=arch,
            architecture=arch,
            library=library,
            task_types=[common_pb2.TASK_TYPE_CLASSIFICATION],
            num_params=params,
            gflops=gmacs,
            default_input_size=224,
            pretrain_dataset="imagenet-1k",
            reference_metrics=[common_pb2.Metric(name="top1", value=top1)],
            weight_status=modelzoo_pb2.WEIGHT_STATUS_IN_STORE,
        )
        for library, arch, top1, gmacs, params in CANDIDATES
    ]
    stats = DatasetStats(
        train_cases=args.train, val_cases=args.val, num_classes=classes, median_width=size, median_height=size
    )
    common = {"data_type": common_pb2.DATA_TYPE_OTHER, "stats": stats, "limit": len(models)}
    balanced = rank(models, preference=common_pb2.TRAINING_PREFERENCE_BALANCED, **common)
    fastest = rank(models, preference=common_pb2.TRAINING_PREFERENCE_FASTEST, **common)
    data = make_data(args.train, args.val, classes, size)
    by_id = {f"tv/{arch}.imagenet1k_v1": (library, arch) for library, arch, *_ in CANDIDATES}

    results = {}
    for suggestion in balanced:
        library, arch = by_id[suggestion.model_id]
        results[suggestion.model_id] = train_candidate(library, arch, suggestion, data, classes, args.budget)
        print(json.dumps(results[suggestion.model_id]), file=sys.stderr)
    # 'fastest' suggests its own image sizes: time one epoch of each of its top five at those.
    fast_epochs = {}
    for suggestion in fastest[:5]:
        library, arch = by_id[suggestion.model_id]
        fast_epochs[suggestion.model_id] = train_candidate(library, arch, suggestion, data, classes, 0.0)[
            "seconds_per_epoch"
        ]

    best = max(results.values(), key=lambda r: r["val_top1"])
    top = results[balanced[0].model_id]
    gap = 100 * (best["val_top1"] - top["val_top1"])
    fastest_measured = min(fast_epochs, key=fast_epochs.get)
    report = {
        "budget_seconds": args.budget,
        "balanced_ranking": [s.model_id for s in balanced],
        "balanced_top": top,
        "best": best,
        "balanced_gap_points": round(gap, 2),
        "balanced_pass": gap <= args.points,
        "fastest_ranking": [s.model_id for s in fastest[:5]],
        "fastest_measured_seconds_per_epoch": fast_epochs,
        "fastest_pass": fastest_measured == fastest[0].model_id,
        "candidates": results,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    print(
        f"balanced: top {top['model_id']} {top['val_top1']:.3f} vs best {best['model_id']} {best['val_top1']:.3f} "
        f"({gap:.1f} points) -> {'PASS' if report['balanced_pass'] else 'FAIL'}; "
        f"fastest: {fastest[0].model_id} vs measured fastest {fastest_measured} -> "
        f"{'PASS' if report['fastest_pass'] else 'FAIL'}",
        file=sys.stderr,
    )
    return 0 if report["balanced_pass"] and report["fastest_pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
