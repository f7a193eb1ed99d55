"""Load through the gateway (RELIABILITY.md "Load"): many API clients at once, and a queue of tiny
training tasks drained by several trainer processes.

    python -m bench.load                         # full size: 200 clients x 60 s, 1,000 tasks, 4 trainers
    python -m bench.load --clients 50 --seconds 10 --tasks 100
    make loadtest

The full run starts the local stack as processes (bench.stack) so the clients do not share an
interpreter with the servers. tests/platform/test_load.py runs the same two functions at a small size.

Pass criteria: the API clients see no error other than RESOURCE_EXHAUSTED (the gateway's rate
limit); every task ends SUCCEEDED, each started exactly once (one `started` trainer event, attempt 1).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

from kernel import messaging
from kernel.settings import Settings

REPO = Path(__file__).resolve().parent.parent


@dataclass
class ApiLoadResult:
    clients: int
    seconds: float
    calls: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    calls_per_second: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    other_errors: list[str] = field(default_factory=list)  # first few, for the report

    @property
    def ok(self) -> bool:
        return set(self.codes) <= {"OK", "RESOURCE_EXHAUSTED"}


async def api_load(gateway: str, tokens: list[str], clients: int, seconds: float) -> ApiLoadResult:
    """`clients` concurrent callers of read RPCs through the gateway for `seconds`; each caller uses
    tokens[i % len(tokens)] and waits the RetryInfo delay (capped) after a RESOURCE_EXHAUSTED."""
    from trainyard.dataset.v1 import dataset_service_pb2 as dpb
    from trainyard.dataset.v1 import dataset_service_pb2_grpc
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mpb
    from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
    from trainyard.training.v1 import training_service_pb2 as tpb
    from trainyard.training.v1 import training_service_pb2_grpc

    channels = [grpc.aio.insecure_channel(gateway) for _ in range(max(1, clients // 25))]
    result = ApiLoadResult(clients=clients, seconds=seconds)
    codes: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client(i: int) -> None:
        channel = channels[i % len(channels)]
        md = (("authorization", f"Bearer {tokens[i % len(tokens)]}"),)
        calls = [
            lambda: dataset_service_pb2_grpc.DatasetServiceStub(channel).ListDatasets(
                dpb.ListDatasetsRequest(page_size=10), metadata=md, timeout=30
            ),
            lambda: modelzoo_service_pb2_grpc.ModelZooServiceStub(channel).ListModels(
                mpb.ListModelsRequest(page_size=10), metadata=md, timeout=30
            ),
            lambda: training_service_pb2_grpc.TrainingServiceStub(channel).ListTrainingTasks(
                tpb.ListTrainingTasksRequest(page_size=10), metadata=md, timeout=30
            ),
        ]
        n = i
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                await calls[n % len(calls)]()
                codes["OK"] += 1
                latencies.append(time.monotonic() - started)
            except grpc.aio.AioRpcError as exc:
                codes[exc.code().name] += 1
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    await asyncio.sleep(0.2)
                elif len(result.other_errors) < 5:
                    result.other_errors.append(f"{exc.code().name}: {exc.details()}"[:300])
            n += 1

    started = time.monotonic()
    try:
        await asyncio.gather(*(client(i) for i in range(clients)))
    finally:
        for channel in channels:
            await channel.close()
    elapsed = time.monotonic() - started
    result.codes = dict(codes)
    result.calls = sum(codes.values())
    result.calls_per_second = round(result.calls / elapsed, 1)
    if latencies:
        latencies.sort()
        result.p50_ms = round(statistics.median(latencies) * 1000, 1)
        result.p99_ms = round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)
        result.max_ms = round(latencies[-1] * 1000, 1)
    return result


async def make_keys(gateway: str, admin_token: str, count: int) -> list[str]:
    """`count` editor keys of the admin's project (the rate limit is per key)."""
    from trainyard.auth.v1 import auth_pb2, auth_service_pb2, auth_service_pb2_grpc

    async with grpc.aio.insecure_channel(gateway) as channel:
        stub = auth_service_pb2_grpc.AuthServiceStub(channel)
        md = (("authorization", f"Bearer {admin_token}"),)
        tokens = []
        for i in range(count):
            resp = await stub.CreateApiKey(
                auth_service_pb2.CreateApiKeyRequest(
                    name=f"load-{i}", role=auth_pb2.ROLE_EDITOR, request_id=f"load-key-{i}"
                ),
                metadata=md,
                timeout=30,
            )
            tokens.append(resp.token)
        return tokens


# -- the queue drain ----------------------------------------------------------------------------------


@dataclass
class DrainResult:
    tasks: int
    trainers: int
    create_seconds: float = 0.0
    drain_seconds: float = 0.0
    tasks_per_minute: float = 0.0
    ended: int = 0  # tasks in a final state; less than `tasks` when stopped at max_seconds
    jobs_left_in_queue: int = -1  # work-queue messages at the stop (must equal tasks - ended)
    states: dict[str, int] = field(default_factory=dict)
    started_events: dict[str, int] = field(default_factory=dict)  # how many tasks had N `started` events
    attempts: dict[str, int] = field(default_factory=dict)
    per_trainer: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def trainer_env(settings: Settings, name: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_") and k != "DATABASE_URL"}
    env.update(
        {
            "TRAINYARD_S3_ENDPOINT": settings.s3_endpoint,
            "TRAINYARD_S3_ACCESS_KEY": settings.s3_access_key,
            "TRAINYARD_S3_SECRET_KEY": settings.s3_secret_key,
            "TRAINYARD_NATS_URL": settings.nats_url,
            "TRAINYARD_HOME": str(home / name),
            "TRAINYARD_TRAINER_NAME": name,
            "TRAINYARD_TRAINER_TASK_TYPES": "classification",
            "TRAINYARD_TRAINER_PROGRESS_INTERVAL_S": "5",
            "TRAINYARD_DEVICE": "cpu",
            "TRAINYARD_TRAINER_THREADS": "1",
            "TRAINYARD_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


async def drain(
    gateway: str,
    token: str,
    settings: Settings,
    *,
    tasks: int,
    trainers: int,
    workdir: Path,
    timeout: float = 3600,
    model_id: str = "tv/shufflenet_v2_x0_5.imagenet1k_v1",
    max_seconds: float = 0,
    say=print,
) -> DrainResult:
    """Queue `tasks` tiny classification tasks through the gateway (1 epoch, 6 images of 16 px, trained
    from scratch at 32 px; the smallest zoo model by default), then let `trainers` trainer processes drain the queue; check none is lost or run twice."""
    from services.dataset.samples import make_classification_archive, upload_chunks
    from trainyard.common.v1 import common_pb2 as C
    from trainyard.dataset.v1 import dataset_service_pb2 as dpb
    from trainyard.dataset.v1 import dataset_service_pb2_grpc
    from trainyard.events.v1 import events_pb2
    from trainyard.training.v1 import training_pb2 as T
    from trainyard.training.v1 import training_service_pb2 as tpb
    from trainyard.training.v1 import training_service_pb2_grpc

    result = DrainResult(tasks=tasks, trainers=trainers)
    md = (("authorization", f"Bearer {token}"),)
    channel = grpc.aio.insecure_channel(gateway)
    procs: list[subprocess.Popen] = []
    try:
        datasets = dataset_service_pb2_grpc.DatasetServiceStub(channel)
        training = training_service_pb2_grpc.TrainingServiceStub(channel)
        archive = make_classification_archive(classes=("a", "b"), per_class=3, size=16, seed=5)
        meta = dpb.CreateDatasetMetadata(name=f"load-{int(time.time())}", val_fraction=0.34, split_seed=1)
        dataset = (await datasets.CreateDataset(upload_chunks(meta, archive), metadata=md, timeout=120)).dataset
        hp = C.Hyperparameters(epochs=1, batch_size=2, image_size=32, seed=1)
        run = f"{int(time.time())}"

        # 1. queue them all (concurrently, waiting out the rate limit), no trainer yet
        sem = asyncio.Semaphore(16)

        async def create(i: int) -> str:
            req = tpb.CreateTrainingTaskRequest(
                name=f"load-{i}",
                task_type=C.TASK_TYPE_CLASSIFICATION,
                dataset_id=dataset.id,
                model_id=model_id,
                transfer_strategy=C.TRANSFER_STRATEGY_FROM_SCRATCH,
                hyperparameters=hp,
                request_id=f"load-{run}-{i}",
            )
            async with sem:
                for _ in range(100):
                    try:
                        return (await training.CreateTrainingTask(req, metadata=md, timeout=60)).task.id
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                            raise
                        await asyncio.sleep(0.5)  # a retry with the same request_id creates nothing new
                raise RuntimeError(f"task {i} could not be created")

        t0 = time.monotonic()
        ids = await asyncio.gather(*(create(i) for i in range(tasks)))
        result.create_seconds = round(time.monotonic() - t0, 1)
        if len(set(ids)) != tasks:
            result.problems.append(f"{tasks} creates gave {len(set(ids))} distinct tasks")
        say(f"queued {tasks} tasks in {result.create_seconds} s; starting {trainers} trainers")

        # 2. drain
        t0 = time.monotonic()
        for k in range(trainers):
            log = (workdir / f"trainer-{k}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "trainer"],
                    env=trainer_env(settings, f"load-trainer-{k}", workdir),
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        wanted = set(ids)
        final = {T.TASK_STATE_SUCCEEDED, T.TASK_STATE_FAILED, T.TASK_STATE_CANCELLED}
        states: dict[str, T.TrainingTask] = {}
        last_report = 0.0
        async with asyncio.timeout(timeout):
            while True:
                for proc in procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"a trainer exited with {proc.returncode}; see {workdir}")
                states = await _all_tasks(training, md, wanted)
                done = sum(1 for t in states.values() if t.state in final)
                if time.monotonic() - last_report > 30:
                    say(f"  {done}/{tasks} ended after {time.monotonic() - t0:.0f} s")
                    last_report = time.monotonic()
                if done == tasks or (max_seconds and time.monotonic() - t0 > max_seconds):
                    break
                await asyncio.sleep(2.0)
        result.drain_seconds = round(time.monotonic() - t0, 1)
        ended = {i for i, t in states.items() if t.state in final}
        result.ended = len(ended)
        result.tasks_per_minute = round(len(ended) / result.drain_seconds * 60, 1)
        if len(ended) < tasks:  # stopped early: every other task must still have its job in the queue
            for proc in procs:
                proc.send_signal(signal.SIGTERM)  # running jobs go back to the queue (nak)
            for proc in procs:
                proc.wait(120)
            states = await _all_tasks(training, md, wanted)
            ended = {i for i, t in states.items() if t.state in final}
            result.ended = len(ended)
            result.jobs_left_in_queue = await _queued_messages(settings.nats_url)
            if result.jobs_left_in_queue != tasks - len(ended):
                result.problems.append(
                    f"{tasks - len(ended)} tasks not ended but {result.jobs_left_in_queue} jobs in the queue"
                )
        result.states = dict(collections.Counter(T.TaskState.Name(t.state) for t in states.values()))
        result.attempts = {str(k): v for k, v in collections.Counter(t.attempt for t in states.values()).items()}
        result.per_trainer = dict(collections.Counter(t.trainer_node for t in states.values()))
        if result.states.get("TASK_STATE_SUCCEEDED", 0) != len(ended):
            reasons = collections.Counter(t.failure_reason[:200] for t in states.values() if t.failure_reason)
            result.problems.append(f"not all succeeded: {result.states}; reasons {dict(reasons.most_common(3))}")

        # 3. "run once": exactly one `started` trainer event per task in the events stream
        started = await _started_counts(settings.nats_url, wanted, events_pb2)
        result.started_events = {str(k): v for k, v in collections.Counter(started.get(i, 0) for i in ids).items()}
        twice = [i for i in ids if started.get(i, 0) > 1 or (i in ended and started.get(i, 0) != 1)]
        if twice:
            result.problems.append(f"{len(twice)} tasks started other than once; by starts: {result.started_events}")
        if {states[i].attempt for i in ended} - {1}:
            result.problems.append(f"tasks by attempt: {result.attempts}")
        return result
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        await channel.close()


async def _all_tasks(training, md, wanted: set[str]):
    from trainyard.training.v1 import training_service_pb2 as tpb

    out = {}
    token = ""
    while True:
        resp = await training.ListTrainingTasks(
            tpb.ListTrainingTasksRequest(page_size=500, page_token=token), metadata=md, timeout=60
        )
        out.update({t.id: t for t in resp.tasks if t.id in wanted})
        token = resp.next_page_token
        if not token:
            return out


async def _queued_messages(nats_url: str) -> int:
    nc = await messaging.connect(nats_url, "load-check")
    try:
        return (await nc.jetstream().stream_info(messaging.JOBS_STREAM)).state.messages
    finally:
        await nc.close()


async def _started_counts(nats_url: str, wanted: set[str], events_pb2) -> dict[str, int]:
    """Count `started` events per task over the whole events stream (an ordered, ephemeral reader)."""
    nc = await messaging.connect(nats_url, "load-check")
    counts: collections.Counter[str] = collections.Counter()
    try:
        js = nc.jetstream()
        info = await js.stream_info(messaging.EVENTS_STREAM)
        sub = await js.subscribe(f"{messaging.EVENTS_SUBJECT_PREFIX}.>", ordered_consumer=True)
        seen = 0
        try:
            while seen < info.state.messages:
                try:
                    msg = await sub.next_msg(timeout=10)
                except TimeoutError:
                    break
                seen += 1
                if msg.metadata.sequence.stream > info.state.last_seq:
                    break
                if msg.subject.rpartition(".")[2] not in wanted:
                    continue  # another run's events on a shared server (not necessarily this run's messages)
                ev = events_pb2.TrainerEvent.FromString(msg.data)
                if ev.task_id in wanted and ev.WhichOneof("event") == "started":
                    counts[ev.task_id] += 1
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()
    return dict(counts)


# -- command line -------------------------------------------------------------------------------------


async def _main(args) -> int:
    import tempfile

    from bench import stack as bench_stack

    say = print
    # The gateway's real per-key limits (bench.stack lifts them for throughput benches): here refusals count.
    os.environ.setdefault("TRAINYARD_RATE_LIMIT_PER_SECOND", "200")
    os.environ.setdefault("TRAINYARD_RATE_LIMIT_BURST", "400")
    s = bench_stack.up(say)
    workdir = Path(tempfile.mkdtemp(prefix="trainyard-load-"))
    report: dict = {}
    try:
        if args.clients:
            tokens = await make_keys(s.gateway, s.token, args.keys)
            say(f"{args.clients} API clients for {args.seconds} s over {args.keys} keys ...")
            api = await api_load(s.gateway, tokens, args.clients, args.seconds)
            report["api"] = asdict(api) | {"ok": api.ok}
            say(json.dumps(report["api"]))
        if args.tasks:
            result = await drain(
                s.gateway,
                s.token,
                s.settings(),
                tasks=args.tasks,
                trainers=args.trainers,
                workdir=workdir,
                max_seconds=args.max_minutes * 60,
                say=say,
            )
            report["drain"] = asdict(result) | {"ok": result.ok}
            say(json.dumps(report["drain"]))
    finally:
        bench_stack.down(s)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    ok = all(part.get("ok") for part in report.values())
    say("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent API clients (0: skip)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the API clients call")
    parser.add_argument("--keys", type=int, default=10, help="API keys the clients share (rate limit is per key)")
    parser.add_argument("--tasks", type=int, default=1000, help="tiny tasks to queue and drain (0: skip)")
    parser.add_argument("--trainers", type=int, default=4, help="trainer processes draining the queue")
    parser.add_argument(
        "--max-minutes", type=float, default=0, help="stop draining after this long and check what ended (0: all)"
    )
    parser.add_argument("--out", default="bench/results/load.json", help="JSON report")
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
