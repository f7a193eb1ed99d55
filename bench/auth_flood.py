"""python -m bench.auth_flood [--clients 50] [--seconds 10]

A flood of failed authentications against the gateway and its effect on a legitimate caller's latency
(issue 18, item 6). The gateway runs as its own process twice, side by side in one run: with the failed-
authentication limit off (every bad call verified against the key store, as before) and on (the default).
For each: a legitimate client's WhoAmI p50 alone, then during the flood (`--clients` callers with wrong
secrets, half for the legitimate key's id, half for made-up ids, in 5 processes, as fast as answered), the
flood's rate and the gateway's CPU time per flood call (the flood alone), and the codes the flood got.
Report: bench/results/auth_flood.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from bench.report import percentile
from deploy.local.embedded import free_port
from trainyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]


def _who(address: str, token: str, seconds: float, out: list) -> None:
    """The legitimate caller: WhoAmI one after the other for `seconds`; (code, latency) into out."""
    channel = grpc.insecure_channel(address)
    stub = auth_service_pb2_grpc.AuthServiceStub(channel)
    metadata = (("authorization", f"Bearer {token}"),)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter()
        try:
            stub.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=metadata, timeout=10)
            out.append(("ok", time.perf_counter() - began))
        except grpc.RpcError as exc:
            out.append((exc.code().name, time.perf_counter() - began))
    channel.close()


def _attacker(address: str, key_id: str, clients: int, seconds: float, counts) -> None:
    """`clients` callers with wrong secrets, as fast as the gateway answers (grpc.aio: one process drives
    many), half of them for the real key's id."""
    import asyncio

    async def one(stub, token: str, results: list) -> None:
        metadata = (("authorization", f"Bearer {token}"),)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                await stub.WhoAmI(auth_service_pb2.WhoAmIRequest(), metadata=metadata, timeout=10)
                results.append("OK")
            except grpc.aio.AioRpcError as exc:
                results.append(exc.code().name)

    async def run() -> None:
        results: list = []
        async with grpc.aio.insecure_channel(address) as channel:
            stub = auth_service_pb2_grpc.AuthServiceStub(channel)
            tokens = [
                f"ty_{key_id if i % 2 == 0 else secrets.token_hex(8)}_{secrets.token_urlsafe(24)}"
                for i in range(clients)
            ]
            await asyncio.gather(*(one(stub, t, results) for t in tokens))
        for code in results:
            counts[code] = counts.get(code, 0) + 1

    asyncio.run(run())


def _flood(address: str, key_id: str, clients: int, seconds: float):
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that holds gRPC state
    counts = spawn.Manager().dict()
    per = max(clients // 5, 1)
    procs = [spawn.Process(target=_attacker, args=(address, key_id, per, seconds, counts)) for _ in range(5)]
    for p in procs:
        p.start()
    return procs, counts


def run_one(limit_per_minute: float, clients: int, seconds: float) -> dict:
    import psutil

    home = Path(tempfile.mkdtemp(prefix="trainyard-auth-flood-"))
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    token = f"ty_{key_id}_{secret}"
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TRAINYARD_LISTEN": address,
        "DATABASE_URL": f"sqlite:///{home}/gateway.db",
        "TRAINYARD_BOOTSTRAP_TOKEN": token,
        "TRAINYARD_RATE_LIMIT_PER_SECOND": "0",
        "TRAINYARD_AUTH_FAILURES_PER_MINUTE": str(limit_per_minute),
        "TRAINYARD_LOG_LEVEL": "WARNING",
    }
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        grpc.channel_ready_future(grpc.insecure_channel(address)).result(60)
        warm: list = []
        _who(address, token, 1.0, warm)
        alone: list = []
        _who(address, token, seconds, alone)
        process = psutil.Process(gateway.pid)
        # the flood alone: the gateway's CPU per flood call
        cpu_before = sum(process.cpu_times()[:2])
        procs, counts = _flood(address, key_id, clients, seconds)
        for p in procs:
            p.join()
        cpu = sum(process.cpu_times()[:2]) - cpu_before
        alone_flood = dict(counts)
        # the flood again, with the legitimate caller measured meanwhile
        procs, counts = _flood(address, key_id, clients, seconds + 2)
        time.sleep(1.5)  # every attacker is running
        flooded: list = []
        _who(address, token, seconds, flooded)
        for p in procs:
            p.join()
        during = dict(counts)
    finally:
        gateway.terminate()
        gateway.wait(15)

    def p50(samples: list) -> float:
        return percentile([t for code, t in samples if code == "ok"], 50) * 1000

    calls = sum(alone_flood.values())
    return {
        "limit_per_minute": limit_per_minute,
        "legit_p50_ms_alone": round(p50(alone), 2),
        "legit_p50_ms_flood": round(p50(flooded), 2),
        "legit_calls_alone_per_s": round(len(alone) / seconds, 1),
        "legit_calls_flood_per_s": round(len(flooded) / seconds, 1),
        "legit_calls_failed_during_flood": sum(1 for code, _ in flooded if code != "ok"),
        "slowdown": round(p50(flooded) / p50(alone), 2),
        "flood_calls_per_s": round(calls / seconds, 1),
        "flood_codes": alone_flood,
        "flood_codes_with_legit": during,
        "gateway_cpu_ms_per_flood_call": round(cpu * 1000 / max(calls, 1), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    runs = [run_one(limit, args.clients, args.seconds) for limit in (0, 60)]
    report = {
        "clients": args.clients,
        "seconds": args.seconds,
        "limit_off": runs[0],
        "limit_on": runs[1],
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "auth_flood.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
