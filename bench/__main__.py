"""python -m bench [--quick | --tiny] [--only a,b] [--images N] [--gpu] [--out DIR]

Benchmarks: throughput (1), datapath (2), import (3), api (4), dispatch (5), events (6), memory (7),
recommend (8: recommendation quality, bench/recommend_quality.py; its quick setting in quick mode),
evaluation (9: evaluation throughput vs a bare PyTorch loop), predict (10: Predict through the gateway vs
bare onnxruntime; bench/evaluation.py), console (11: the console's first load in Chromium, and Connect/JSON
over the HTTP port against gRPC for ListModels and GetTrainingTask; bench/console.py), tta (12: time to
accuracy on real public datasets against a bare PyTorch script, bench/tta.py; its own stack; the datasets
found under $TRAINYARD_TTA_DATA, about an hour on 2 cores).
Every one runs its baseline in the same run; the report goes to bench/results/latest.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import traceback
from pathlib import Path

ALL = (
    "throughput",
    "datapath",
    "import",
    "api",
    "dispatch",
    "events",
    "memory",
    "recommend",
    "evaluation",
    "predict",
    "console",
    "tta",
)
STACKLESS = {"throughput", "recommend", "evaluation", "tta"}  # tta starts a stack of its own

MODES = {
    # photo-size images for the data path, images to import, API seconds per measurement, dispatch tasks, progress events
    "tiny": {"photos": 16, "images": 40, "api_seconds": 0.3, "levels": (1, 4), "tasks": 5, "events": 5},
    "quick": {"photos": 300, "images": 1000, "api_seconds": 1.0, "levels": (1, 16, 64), "tasks": 30, "events": 30},
    "full": {"photos": 1000, "images": 10_000, "api_seconds": 4.0, "levels": (1, 16, 64), "tasks": 100, "events": 100},
}


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def stack_benches(selected: set[str], mode: str, images: int, results: list, errors: list) -> None:
    from bench import services
    from bench import stack as bstack
    from bench.report import Result

    cfg = MODES[mode]
    say("starting the local stack (services and gateway as processes)")
    s = bstack.up(say, with_trainer="predict" in selected)
    try:
        if "predict" in selected:
            from bench import evaluation

            say("predict ...")
            try:
                results.extend(await evaluation.run_predict(s, mode, say))
            except Exception as exc:  # noqa: BLE001
                errors.append(f"predict: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            if not selected - STACKLESS - {"predict"}:
                return
        pids = {name: s.pid(name) for name in services.SERVICES}
        idle = {name: services.rss_mib(pid) for name, pid in pids.items()}

        async def step(name: str, coro):
            if name not in selected:
                coro.close()
                return []
            say(f"{name} ...")
            try:
                got = await coro
                results.extend(got)
                return got
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not lose the others
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                traceback.print_exc()
                return []

        say(f"import of {images} images ...")
        imported, dataset = await services.bench_import(s, images)
        if "import" in selected:
            results.extend(imported)
        if "datapath" in selected:
            from bench import datapath
            from kernel import objectstore

            say("datapath ...")
            try:
                results.extend(
                    await asyncio.to_thread(
                        datapath.run,
                        objectstore.make_client(s.settings()),
                        dataset.latest_version.manifest,
                        cfg["photos"],
                    )
                )
            except Exception as exc:  # noqa: BLE001
                errors.append(f"datapath: {type(exc).__name__}: {exc}")
                traceback.print_exc()
        task = await services.create_task(s, dataset.id, "bench-get")
        with services.RssSampler(pids) as sampler:
            await step("api", services.bench_api(s, dataset.id, task.id, cfg["api_seconds"], cfg["levels"]))
        if "console" in selected:
            from bench import console as console_bench

            loads = {"tiny": 2, "quick": 5, "full": 10}[mode]
            await step("console", console_bench.run(s, task.id, cfg["api_seconds"] * 2, loads))
        if "memory" in selected:
            for name, pid in pids.items():
                loaded = sampler.peak[name] if "api" in selected else services.rss_mib(pid)
                results.append(
                    Result(
                        "7. memory",
                        f"{name}: RSS idle -> peak under the API load",
                        loaded,
                        "MiB",
                        baseline=idle[name],
                        baseline_name="idle",
                        extra={"vm_hwm_mib": services.peak_rss_mib(pid)},
                        note=f"VmHWM (peak since start, incl. import) {services.peak_rss_mib(pid):.0f} MiB",
                    )
                )
        if "memory" in selected:
            from bench import trainer_rss

            say(f"trainer peak RSS on the {images}-image dataset ...")
            try:
                results.extend(await asyncio.to_thread(trainer_rss.run, s.settings(), dataset.latest_version.manifest))
            except Exception as exc:  # noqa: BLE001
                errors.append(f"memory (trainer): {type(exc).__name__}: {exc}")
                traceback.print_exc()
        await step("dispatch", services.bench_dispatch(s, dataset.id, cfg["tasks"]))
        await step("events", services.bench_events(s, dataset.id, cfg["events"]))
    finally:
        say("stopping the stack")
        bstack.down(s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images, shorter measurements (~5 min)")
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; figures meaningless)")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--images", type=int, default=0, help="images to import (default 10000, quick 1000)")
    parser.add_argument("--gpu", action="store_true", help="GPU variant: throughput and data path on CUDA, AMP on")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default bench/results)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    selected = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = selected - set(ALL)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")

    import torch

    from bench import report

    device = torch.device("cpu")
    if args.gpu:
        if not torch.cuda.is_available():
            parser.error("--gpu: CUDA is not available on this machine")
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
    started, t0 = report.now(), time.perf_counter()
    meta = {"started": started, "quick": mode != "full", "mode": mode, "machine": report.machine()}
    results: list = []
    errors: list[str] = []
    if "throughput" in selected:
        say(f"throughput on {device} ...")
        try:
            from bench import throughput

            results.extend(throughput.run(mode, device))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"throughput: {type(exc).__name__}: {exc}")
            traceback.print_exc()
    if "recommend" in selected:
        say("recommendation quality (candidates trained under one time budget) ...")
        try:
            from bench import recommend_quality as rq

            size = {"tiny": {"budget": 1.0, "train": 16, "val": 8}, "quick": rq.QUICK, "full": rq.FULL}[mode]
            report_ = rq.evaluate(size["budget"], 5.0, size["train"], size["val"], say=say)
            results.extend(rq.results(report_))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"recommend: {type(exc).__name__}: {exc}")
            traceback.print_exc()
    if "evaluation" in selected:
        say("evaluation throughput ...")
        try:
            from bench import evaluation

            results.extend(evaluation.run_evaluation(mode))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"evaluation: {type(exc).__name__}: {exc}")
            traceback.print_exc()
    if "tta" in selected:
        say("time to accuracy on real datasets (bench/tta.py) ...")
        try:
            from bench import tta

            results.extend(tta.run(list(tta.DATASETS), say_=say))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"tta: {type(exc).__name__}: {exc}")
            traceback.print_exc()
    if selected - STACKLESS:
        images = args.images or MODES[mode]["images"]
        asyncio.run(stack_benches(selected, mode, images, results, errors))
    meta.update(seconds=time.perf_counter() - t0, errors=errors, load_average_at_end=list(os.getloadavg()))
    js, md = report.write(results, meta, args.out or report.RESULTS_DIR)
    print(md.read_text())
    say(f"wrote {js} and {md}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
