"""3-7: import, API latency, dispatch, events and memory against the local stack."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psutil

from bench.report import Result, percentile, summary_ms
from bench.stack import Stack
from kernel import objectstore
from services.dataset.samples import make_classification_archive, upload_chunks
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_service_pb2 as ds
from trainyard.dataset.v1 import dataset_service_pb2_grpc
from trainyard.events.v1 import events_pb2
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
from trainyard.training.v1 import training_service_pb2 as tr
from trainyard.training.v1 import training_service_pb2_grpc

CLASSIFICATION = common_pb2.TASK_TYPE_CLASSIFICATION
MODEL = "tv/mobilenet_v2.imagenet1k_v1"
SERVICES = ("dataset", "modelzoo", "recommend", "training", "inference", "gateway")


# ---------------------------------------------------------------- memory


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1024**2


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set since it started (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return rss_mib(pid)


class RssSampler:
    """Peak RSS of some processes over a window (sampled), for when VmHWM includes start-up."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.pids, self.interval = pids, interval
        self.peak = {name: 0.0 for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                try:
                    self.peak[name] = max(self.peak[name], rss_mib(pid))
                except psutil.Error:
                    pass
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- 3. import


def _archive(n: int, seed: int = 1) -> bytes:
    classes = ("circle", "square", "triangle", "cross")
    return make_classification_archive(
        classes=classes, per_class=max(1, n // len(classes)), size=32, seed=seed, image_format="jpeg"
    )


async def create_dataset(s: Stack, archive: bytes, name: str) -> ds.Dataset:
    async with s.channel(s.gateway) as ch:
        stub = dataset_service_pb2_grpc.DatasetServiceStub(ch)
        meta = ds.CreateDatasetMetadata(name=name, description="bench", val_fraction=0.1, split_seed=1)
        resp = await stub.CreateDataset(upload_chunks(meta, archive, chunk_size=1024 * 1024), metadata=s.gateway_md())
        return resp.dataset


def plain_puts(s: Stack, archive: bytes, threads: int) -> tuple[float, int]:
    client = objectstore.make_client(s.settings())
    bucket = "bench-plain"
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        files = [(info.filename, zf.read(info)) for info in zf.infolist() if not info.is_dir()]

    def put(item: tuple[str, bytes]) -> None:
        name, data = item
        client.put_object(bucket, name, io.BytesIO(data), len(data), content_type="image/jpeg")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, files))
    return time.perf_counter() - t0, len(files)


async def bench_import(s: Stack, n: int) -> tuple[list[Result], ds.Dataset]:
    archive = _archive(n)
    seconds_plain, count = await asyncio.to_thread(plain_puts, s, archive, 8)
    t0 = time.perf_counter()
    dataset = await create_dataset(s, archive, f"bench-import-{n}")
    seconds_api = time.perf_counter() - t0
    result = Result(
        "3. import",
        f"{count} JPEG images 32x32 ({len(archive) / 1024**2:.1f} MiB zip) via CreateDataset",
        count / seconds_api,
        "img/s",
        baseline=count / seconds_plain,
        baseline_name="plain S3 puts, 8 threads",
        kind="ratio",
        target=0.5,
        extra={"api_seconds": seconds_api, "plain_seconds": seconds_plain, "images": count},
    )
    return [result], dataset


# ---------------------------------------------------------------- 4. API latency


async def _load(call, concurrency: int, seconds: float) -> tuple[list[float], float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - t0


def _calls(ch: grpc.aio.Channel, md, dataset_id: str, task_id: str) -> dict:
    zoo = modelzoo_service_pb2_grpc.ModelZooServiceStub(ch)
    dsets = dataset_service_pb2_grpc.DatasetServiceStub(ch)
    train = training_service_pb2_grpc.TrainingServiceStub(ch)
    return {
        "ListModels": lambda: zoo.ListModels(mz.ListModelsRequest(task_type=CLASSIFICATION), metadata=md),
        "ListDatasets": lambda: dsets.ListDatasets(ds.ListDatasetsRequest(), metadata=md),
        "PreviewCases(16)": lambda: dsets.PreviewCases(
            ds.PreviewCasesRequest(dataset_id=dataset_id, count=16), metadata=md
        ),
        "GetTrainingTask": lambda: train.GetTrainingTask(tr.GetTrainingTaskRequest(task_id=task_id), metadata=md),
    }


SERVICE_OF = {"ListModels": "modelzoo", "ListDatasets": "dataset", "PreviewCases(16)": "dataset"}


async def create_task(s: Stack, dataset_id: str, name: str, epochs: int = 1, image_size: int = 32):
    async with s.channel(s.gateway) as ch:
        train = training_service_pb2_grpc.TrainingServiceStub(ch)
        return await _create(train, s.gateway_md(), dataset_id, name, epochs, image_size)


async def _create(train, md, dataset_id: str, name: str, epochs: int = 1, image_size: int = 32):
    resp = await train.CreateTrainingTask(
        tr.CreateTrainingTaskRequest(
            name=name,
            task_type=CLASSIFICATION,
            dataset_id=dataset_id,
            model_id=MODEL,
            hyperparameters=common_pb2.Hyperparameters(epochs=epochs, batch_size=32, image_size=image_size),
        ),
        metadata=md,
    )
    return resp.task


async def bench_api(s: Stack, dataset_id: str, task_id: str, seconds: float, levels=(1, 16, 64)) -> list[Result]:
    out = []
    gw_ch, direct_ch = s.channel(s.gateway), {}
    try:
        gw = _calls(gw_ch, s.gateway_md(), dataset_id, task_id)
        for rpc in gw:
            service = SERVICE_OF.get(rpc, "training")
            if service not in direct_ch:
                direct_ch[service] = s.channel(s.address(service))
            direct = _calls(direct_ch[service], s.direct_md(), dataset_id, task_id)
            for c in levels:
                await _load(gw[rpc], 1, 0.2)  # warm both paths
                await _load(direct[rpc], 1, 0.2)
                lat_d, sec_d = await _load(direct[rpc], c, seconds)
                lat_g, sec_g = await _load(gw[rpc], c, seconds)
                g, d = summary_ms(lat_g), summary_ms(lat_d)
                out.append(
                    Result(
                        "4. API latency",
                        f"{rpc}, {c} client{'s' if c > 1 else ''}: p50",
                        g["p50_ms"],
                        "ms",
                        baseline=d["p50_ms"],
                        baseline_name=f"direct to {service}",
                        kind="delta",
                        target=1.0,
                        extra={
                            "gateway": {**g, "calls_per_s": len(lat_g) / sec_g},
                            "direct": {**d, "calls_per_s": len(lat_d) / sec_d},
                        },
                        note=(
                            f"p99 {g['p99_ms']:.1f} ms vs {d['p99_ms']:.1f} ms direct; "
                            f"{len(lat_g) / sec_g:.0f} vs {len(lat_d) / sec_d:.0f} calls/s"
                        ),
                    )
                )
    finally:
        await gw_ch.close()
        for ch in direct_ch.values():
            await ch.close()
    return out


# ---------------------------------------------------------------- 5/6. dispatch and events, hooked trainer


class HookedTrainer:
    """A trainer node (the real Worker: NATS pull consumer, EventSink) whose job body is a hook.

    It records when it holds each job, emits `started`, and optionally a burst of progress
    events (publish times recorded per step), then ends the job as cancelled. Runs on its own
    thread and event loop so the client's load does not delay it."""

    def __init__(self, s: Stack, progress_events: int = 0, task_types: list[str] | None = None) -> None:
        self.s = s
        self.task_types = task_types
        self.held: dict[str, float] = {}
        self.published: dict[tuple[str, int], float] = {}
        self.progress_events = progress_events
        self.watching = threading.Event()
        self.got = threading.Condition()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.stages: list[tuple[float, float, float]] = []  # per job: hook body, sink.close, ack (s)

    def start(self) -> HookedTrainer:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError(f"the hooked trainer did not start: {self.error}")
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.worker.shutdown(), self._loop)
        self._thread.join(30)

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
            self._ready.set()

    async def _amain(self) -> None:
        from trainer.settings import TrainerSettings
        from trainer.worker import EventSink, Worker

        hook = self
        extra = {"trainer_task_types": self.task_types} if self.task_types else {}
        settings = TrainerSettings.model_validate(
            {**dict(self.s.settings().__dict__), "trainer_name": "bench-trainer", "device": "cpu", **extra}
        )

        class Hooked(Worker):
            async def handle(self, msg) -> str:
                t = time.perf_counter()
                job = events_pb2.TrainingJob.FromString(msg.data)
                with hook.got:
                    hook.held[job.task_id] = t
                    hook.got.notify_all()
                sink = EventSink(self.js, asyncio.get_running_loop(), job.task_id, 1, self.node)
                sink.emit(started=events_pb2.JobStarted(resumed_from_epoch=0, device="cpu"))
                if hook.progress_events:
                    await asyncio.to_thread(hook.watching.wait, 30)
                    for step in range(1, hook.progress_events + 1):
                        hook.published[(job.task_id, step)] = time.perf_counter()
                        sink.progress(1, 1, step, hook.progress_events, 0.0, 0.0)
                        await asyncio.sleep(0.02)
                sink.emit(cancelled=events_pb2.JobCancelled(epoch=0))
                t1 = time.perf_counter()
                await sink.close()
                t2 = time.perf_counter()
                await msg.ack()
                hook.stages.append((t1 - t, t2 - t1, time.perf_counter() - t2))
                return "bench"

        self.worker = Hooked(settings=settings)
        await self.worker.connect()
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        try:
            await self.worker.run()
        finally:
            await self.worker.close()

    def wait_held(self, task_id: str, timeout: float = 30.0) -> float:
        with self.got:
            if not self.got.wait_for(lambda: task_id in self.held, timeout):
                raise TimeoutError(f"the trainer never got task {task_id}")
            return self.held[task_id]


async def bench_dispatch(s: Stack, dataset_id: str, tasks: int) -> list[Result]:
    """A classification-only trainer node, then (fewer tasks) a node pulling every task type (the default)."""
    from trainer.settings import TrainerSettings

    every = TrainerSettings.model_fields["trainer_task_types"].default
    out = await _dispatch(s, dataset_id, tasks, ["classification"], "a classification-only trainer")
    if len(every) > 1:
        got = await _dispatch(
            s, dataset_id, max(3, tasks // 10), list(every), f"a trainer pulling all {len(every)} task types"
        )
        if got[0].value > 50:
            got[0].note += (
                "; known cause (before commit 141201a): Worker.run polled one pull subscription per task type in "
                "turn, each fetch(1, timeout=1.0) blocking for 1 s, so a job waited for the fetches on the others"
            )
        out += got
    return out


async def _dispatch(s: Stack, dataset_id: str, tasks: int, task_types: list[str], who: str) -> list[Result]:
    trainer = HookedTrainer(s, task_types=task_types).start()
    latencies, rpc = [], []
    try:
        async with s.channel(s.gateway) as ch:
            train = training_service_pb2_grpc.TrainingServiceStub(ch)
            await _create(train, s.gateway_md(), dataset_id, "bench-dispatch-warmup")
            for i in range(tasks):
                t0 = time.perf_counter()
                task = await _create(train, s.gateway_md(), dataset_id, f"bench-dispatch-{i}")
                rpc.append(time.perf_counter() - t0)
                held = await asyncio.to_thread(trainer.wait_held, task.id)
                latencies.append(held - t0)
                await asyncio.sleep(0.01)
    finally:
        await asyncio.to_thread(trainer.stop)
    sm = summary_ms(latencies)
    sm["create_rpc"] = summary_ms(rpc)
    return [
        Result(
            "5. dispatch",
            f"CreateTrainingTask (gateway) -> {who} holds the job, p50 over {tasks} tasks",
            sm["p50_ms"],
            "ms",
            kind="max",
            target=50.0,
            extra=sm,
            note=f"p99 {sm['p99_ms']:.1f} ms; the CreateTrainingTask call alone: p50 {sm['create_rpc']['p50_ms']:.1f} ms, "
            f"p99 {sm['create_rpc']['p99_ms']:.1f} ms",
        )
    ]


async def bench_events(s: Stack, dataset_id: str, events: int) -> list[Result]:
    trainer = HookedTrainer(s, progress_events=events, task_types=["classification"]).start()
    received: dict[int, float] = {}
    try:
        async with s.channel(s.gateway) as ch:
            train = training_service_pb2_grpc.TrainingServiceStub(ch)
            task = await _create(train, s.gateway_md(), dataset_id, "bench-events")
            watch = train.WatchTrainingTask(
                tr.WatchTrainingTaskRequest(task_id=task.id, from_start=True), metadata=s.gateway_md()
            )
            trainer.watching.set()
            async for response in watch:
                ev = response.event
                if ev.HasField("progress"):
                    received[ev.progress.step] = time.perf_counter()
                if ev.HasField("task") and ev.task.state in _final_states():
                    break
    finally:
        await asyncio.to_thread(trainer.stop)
    lat = [received[k] - trainer.published[(task.id, k)] for k in received if (task.id, k) in trainer.published]
    sm = summary_ms(lat)
    return [
        Result(
            "6. events",
            f"trainer publish -> WatchTrainingTask client (gateway), p50 over {len(lat)}/{events} progress events",
            sm["p50_ms"],
            "ms",
            extra=sm,
            note=f"p99 {sm['p99_ms']:.1f} ms; progress events sent 20 ms apart",
        )
    ]


def _final_states() -> set[int]:
    from trainyard.training.v1 import training_pb2

    return {
        training_pb2.TASK_STATE_SUCCEEDED,
        training_pb2.TASK_STATE_FAILED,
        training_pb2.TASK_STATE_CANCELLED,
    }


__all__ = ["RssSampler", "bench_api", "bench_dispatch", "bench_events", "bench_import", "percentile", "peak_rss_mib"]
