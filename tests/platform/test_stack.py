"""`trainyard stack up / status / auth token / down` end to end, as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest

from deploy.local.embedded import pid_alive
from deploy.local.stack import COMPONENTS, MOBILENET_ID, missing_modules

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(missing_modules(c.name for c in COMPONENTS)),
        reason=f"not every component is installed yet: {missing_modules(c.name for c in COMPONENTS)}",
    ),
]


@pytest.fixture(scope="module")
def catalog_file(catalog_path) -> Path:
    return catalog_path


def cli(home: Path, *args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainyard.cli", "--home", str(home), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_stack_up_status_down(tmp_path, catalog_file):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_") and k != "DATABASE_URL"}
    env.update({"TRAINYARD_MODELZOO_CATALOG": str(catalog_file), "COLUMNS": "200"})
    try:
        up = cli(home, "stack", "up", "--gateway-port", "0", "--console-port", "0", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((home / "stack.json").read_text())
        comps = state["components"]
        assert set(comps) == {c.name for c in COMPONENTS}
        pids = {name: entry["pid"] for name, entry in comps.items()}
        assert all(pid_alive(pid) for pid in pids.values()), pids
        for name, pid in pids.items():
            assert int((home / "run" / f"{name}.pid").read_text()) == pid
        assert state["gateway"] in up.stdout

        # Secrets are private and the token is the one `auth token` prints.
        for secret in ("secrets.json", "admin-token"):
            assert stat.S_IMODE((home / secret).stat().st_mode) == 0o600
        token = cli(home, "auth", "token", env=env).stdout.strip()
        assert token == (home / "admin-token").read_text().strip() and token.startswith("ty_")

        # The console's URL is printed and exported; its HTTP port answers JSON with the same token.
        assert state["console"] in up.stdout
        assert f"export TRAINYARD_CONSOLE_URL={state['console']}" in cli(home, "stack", "env", env=env).stdout
        request = urllib.request.Request(
            state["console"] + "trainyard.modelzoo.v1.ModelZooService/ListModels",
            data=b'{"page_size": 3}',
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert len(json.loads(answer.read())["models"]) == 3
        with urllib.request.urlopen(state["console"], timeout=30) as page:
            assert b"trainyard console" in page.read()

        status = cli(home, "stack", "status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        for name in pids:
            assert name in status.stdout
        assert status.stdout.count("SERVING") == 8 and "RUNNING" in status.stdout  # nats, s3, five services, gateway

        # The gateway knows the bootstrap token, and the stack imported the MobileNetV2 weights.
        from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc

        with grpc.insecure_channel(state["gateway"]) as channel:
            stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
            request = modelzoo_service_pb2.GetModelRequest(model_id=MOBILENET_ID)
            model = stub.GetModel(request, metadata=[("authorization", f"Bearer {token}")], timeout=30).model
            assert model.weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE
            with pytest.raises(grpc.RpcError) as anonymous:
                stub.GetModel(request, timeout=30)
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

        again = cli(home, "stack", "up", "--gateway-port", "0", env=env)
        assert again.returncode == 1 and "already running" in again.stderr

        logs = cli(home, "stack", "logs", "gateway", "-n", "5", env=env)
        assert logs.returncode == 0 and logs.stdout.strip()

        down = cli(home, "stack", "down", env=env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not any(pid_alive(pid) for pid in pids.values())
        assert not list((home / "run").glob("*.pid"))
        # Data stays for the next `up`.
        assert (home / "db" / "modelzoo.db").exists() and any((home / "s3").rglob("*.dat"))
        stopped = cli(home, "stack", "status", env=env)
        assert stopped.returncode == 3 and "STOPPED" in stopped.stdout
    finally:
        cli(home, "stack", "down", env=env, timeout=120)
