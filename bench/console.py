"""Benchmark 11: the console and the HTTP port.

- Connect overhead: ListModels and GetTrainingTask through the gateway's HTTP port (Connect with JSON, and with
  binary protobuf) against the same calls over its gRPC port, one client each, measured in alternating rounds.
- The console's first load: from navigation to the task-type step shown, in headless Chromium (a fresh
  profile each time, so nothing is cached), driven by bench/console_load.mjs with playwright-core.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import grpc

from bench.report import Result, summary_ms
from bench.stack import Stack
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
from trainyard.training.v1 import training_service_pb2 as tr
from trainyard.training.v1 import training_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]


def _grpc_calls(channel: grpc.Channel, md, task_id: str) -> dict:
    zoo = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
    train = training_service_pb2_grpc.TrainingServiceStub(channel)
    return {
        "ListModels": lambda: zoo.ListModels(
            mz.ListModelsRequest(task_type=common_pb2.TASK_TYPE_CLASSIFICATION), metadata=md
        ),
        "GetTrainingTask": lambda: train.GetTrainingTask(tr.GetTrainingTaskRequest(task_id=task_id), metadata=md),
    }


def _http_calls(connection: http.client.HTTPConnection, token: str, task_id: str, binary: bool) -> dict:
    def call(path: str, message) -> bytes:
        if binary:
            body, kind = message.SerializeToString(), "application/proto"
        else:
            from google.protobuf import json_format

            body, kind = json.dumps(json_format.MessageToDict(message)).encode(), "application/json"
        connection.request("POST", path, body, {"Authorization": f"Bearer {token}", "Content-Type": kind})
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {data[:200]!r}")
        return data

    return {
        "ListModels": lambda: call(
            "/trainyard.modelzoo.v1.ModelZooService/ListModels",
            mz.ListModelsRequest(task_type=common_pb2.TASK_TYPE_CLASSIFICATION),
        ),
        "GetTrainingTask": lambda: call(
            "/trainyard.training.v1.TrainingService/GetTrainingTask", tr.GetTrainingTaskRequest(task_id=task_id)
        ),
    }


def _connection(host: str, port: int) -> http.client.HTTPConnection:
    """A kept-alive connection with Nagle off, as browsers and HTTP client libraries have it (http.client sends
    headers and body in two writes, which Nagle and delayed ACKs would hold for 40 ms)."""
    import socket

    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _time(call, seconds: float) -> list[float]:
    out = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def overhead(s: Stack, task_id: str, seconds: float, rounds: int = 4) -> list[Result]:
    url = urlsplit(s.state["console"])
    sides = {"grpc": [], "json": [], "binary": []}
    results = []
    with grpc.insecure_channel(s.gateway) as channel:
        json_conn = _connection(url.hostname, url.port)
        binary_conn = _connection(url.hostname, url.port)
        paths = {
            "grpc": _grpc_calls(channel, s.gateway_md(), task_id),
            "json": _http_calls(json_conn, s.token, task_id, binary=False),
            "binary": _http_calls(binary_conn, s.token, task_id, binary=True),
        }
        for rpc in ("ListModels", "GetTrainingTask"):
            got = {side: [] for side in sides}
            for side in paths:
                _time(paths[side][rpc], 0.2)  # warm connections and caches
            for r in range(rounds):  # alternate which side goes first
                order = list(paths) if r % 2 == 0 else list(reversed(paths))
                for side in order:
                    got[side] += _time(paths[side][rpc], seconds / rounds)
            base = summary_ms(got["grpc"])
            for side, label in (("json", "Connect JSON"), ("binary", "Connect binary")):
                m = summary_ms(got[side])
                results.append(
                    Result(
                        "11. console",
                        f"{rpc} over {label} (HTTP/1.1), 1 client: p50",
                        m["p50_ms"],
                        "ms",
                        baseline=base["p50_ms"],
                        baseline_name="gRPC through the gateway",
                        kind="delta",
                        target=1.0 if side == "binary" else None,
                        extra={"http": m, "grpc": base},
                        note=f"p99 {m['p99_ms']:.1f} vs {base['p99_ms']:.1f} ms; {m['n']} vs {base['n']} calls",
                    )
                )
        json_conn.close()
        binary_conn.close()
    return results


def first_load(s: Stack, loads: int) -> list[Result]:
    chromium = os.environ.get("TRAINYARD_CHROMIUM") or shutil.which("chromium")
    if chromium is None or not (ROOT / "node_modules" / "playwright-core").is_dir():
        raise RuntimeError("first load needs chromium and node_modules/playwright-core (npm ci)")
    run = subprocess.run(
        ["node", str(ROOT / "bench" / "console_load.mjs")],
        env={
            **os.environ,
            "TRAINYARD_HTTP_URL": s.state["console"].rstrip("/"),
            "TRAINYARD_TOKEN": s.token,
            "TRAINYARD_CHROMIUM": chromium,
            "LOADS": str(loads),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    data = json.loads(run.stdout.strip().splitlines()[-1])
    step = summary_ms([x / 1000 for x in data["task_type_step_ms"]])
    blank = summary_ms([x / 1000 for x in data["blank_page_ms"]])
    return [
        Result(
            "11. console",
            "first load to the task-type step (signed in, empty cache), p50",
            step["p50_ms"],
            "ms",
            baseline=blank["p50_ms"],
            baseline_name="a blank page from the same server",
            kind="max",
            target=1000.0,
            extra={"step": step, "blank": blank, "bytes": data["bytes"]},
            note=f"{loads} loads; p99 {step['p99_ms']:.0f} ms; {data['bytes'] / 1024:.0f} KiB transferred",
        )
    ]


async def run(s: Stack, task_id: str, seconds: float, loads: int) -> list[Result]:
    results = await asyncio.to_thread(overhead, s, task_id, seconds)
    results += await asyncio.to_thread(first_load, s, loads)
    return results
