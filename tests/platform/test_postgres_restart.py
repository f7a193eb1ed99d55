"""PostgreSQL restarted under a running service: calls during the outage fail with UNAVAILABLE (never
INTERNAL), and the service reconnects by itself once the server is back (pool_pre_ping).

The test starts its own throwaway PostgreSQL (initdb + pg_ctl from the machine's PostgreSQL binaries) so
it can stop and start it; it is skipped, with the reason, where the binaries are missing or cannot run.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
import pytest

from deploy.local.embedded import free_port
from kernel.errors import error_reason

pytestmark = pytest.mark.integration


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class ThrowawayPostgres:
    """initdb'd into a temporary folder, trust auth, on a free port; root runs it as user `postgres`."""

    def __init__(self, root: Path) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
        self.prefix: list[str] = []
        self.root = root
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
            if not shutil.which("runuser"):
                pytest.skip("running as root without runuser to drop to the `postgres` user")
            self.prefix = ["runuser", "-u", "postgres", "--"]
            root.mkdir(parents=True, exist_ok=True)
            os.chown(root, user.pw_uid, user.pw_gid)
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run([self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run([*self.prefix, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run([self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.root / "pg.log"), "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"])


@pytest.fixture
def postgres():
    # Not under pytest's tmp_path: its root is 0700 (the `postgres` user could not enter it) and concurrent
    # pytest runs prune it.
    root = Path(tempfile.mkdtemp(prefix="trainyard-pg-"))
    os.chmod(root, 0o711)
    try:
        pg = ThrowawayPostgres(root / "pg")
        try:
            pg.start()
        except RuntimeError as exc:
            pytest.skip(f"cannot start a throwaway PostgreSQL here: {exc}")
        yield pg
        try:
            pg.stop("immediate")
        except RuntimeError:
            pass  # already stopped
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_postgres_restart_calls_fail_unavailable_then_the_service_reconnects(settings, postgres):
    from services.dataset.app import start as start_dataset
    from trainyard.dataset.v1 import dataset_service_pb2, dataset_service_pb2_grpc

    service = await start_dataset(settings.model_copy(update={"database_url": postgres.url}))
    channel = grpc.aio.insecure_channel(service.address)
    stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    outcomes: list[tuple[float, str, str]] = []  # (time, code, reason)
    stop = asyncio.Event()

    async def client() -> None:  # a steady stream of calls across the outage: some are in flight at the stop
        while not stop.is_set():
            try:
                await stub.ListDatasets(dataset_service_pb2.ListDatasetsRequest(), timeout=30)
                outcomes.append((time.monotonic(), "OK", ""))
            except grpc.aio.AioRpcError as exc:
                outcomes.append((time.monotonic(), exc.code().name, error_reason(exc)))
            await asyncio.sleep(0.02)

    clients = [asyncio.create_task(client()) for _ in range(4)]

    async def until(condition, what: str) -> None:
        async with asyncio.timeout(30):
            while not condition():
                await asyncio.sleep(0.02)
        assert condition(), what

    try:
        await until(lambda: len(outcomes) >= 8, "calls before the outage")
        assert all(code == "OK" for _, code, _ in outcomes), outcomes[:5]
        await asyncio.to_thread(postgres.stop, "fast")  # terminates open connections, as a restart does
        stopped_at = time.monotonic()
        await until(lambda: sum(t > stopped_at and code != "OK" for t, code, _ in outcomes) >= 4, "failures")
        await asyncio.to_thread(postgres.start)
        back_at = time.monotonic()
        await until(lambda: any(t > back_at and code == "OK" for t, code, _ in outcomes), "a call after the restart")
        first_ok = min(t for t, code, _ in outcomes if t > back_at and code == "OK")
        await until(lambda: sum(t > first_ok for t, _, _ in outcomes) >= 16, "calls after the first success")
    finally:
        stop.set()
        await asyncio.gather(*clients)
        await channel.close()
        await service.stop()

    failures = {(code, reason) for _, code, reason in outcomes if code != "OK"}
    assert failures == {("UNAVAILABLE", "DATABASE_UNAVAILABLE")}, failures
    first_ok = min(t for t, code, _ in outcomes if t > back_at and code == "OK")
    after = [code for t, code, _ in outcomes if t > first_ok]
    assert after and set(after) == {"OK"}, after  # once reconnected, every call succeeds
    print(
        f"FIGURE postgres restart: {sum(1 for o in outcomes if o[1] != 'OK')} calls UNAVAILABLE while down, "
        f"first success {first_ok - back_at:.2f} s after the server was back; {len(after)} calls OK after"
    )
