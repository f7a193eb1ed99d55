"""The local stack for the service benchmarks: every service and the gateway as their own
processes (deploy.local.stack.up in a throw-away home), so RSS is per service and the client
load does not share a Python interpreter with the servers."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc

from deploy.local import embedded, stack
from kernel import identity
from kernel.settings import Settings


@dataclass
class Stack:
    home: Path
    state: dict
    token: str
    internal_token: str
    s3_access_key: str
    s3_secret_key: str
    nats_url: str = ""  # with the services' NATS user and password

    @property
    def gateway(self) -> str:
        return self.state["gateway"]

    def address(self, name: str) -> str:
        return self.state["components"][name]["address"]

    def pid(self, name: str) -> int:
        return int(self.state["components"][name]["pid"])

    def gateway_md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def direct_md(self) -> tuple[tuple[str, str], ...]:
        """What the gateway attaches for the admin key of project "default"."""
        return identity.outgoing_metadata(identity.Identity(principal="bench"), self.internal_token)

    def settings(self) -> Settings:
        c = self.state["components"]
        return Settings(
            s3_endpoint=c["s3"]["address"],
            s3_access_key=self.s3_access_key,
            s3_secret_key=self.s3_secret_key,
            s3_secure=False,
            nats_url=self.nats_url,
            home=self.home,
        )

    def channel(self, address: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])


CACHE = Path(__file__).resolve().parent / "results" / "cache"


def up(say=print, with_trainer: bool = False) -> Stack:
    import os

    from services.modelzoo.catalog import shared_catalog

    # The zoo catalog is built once and kept (building it takes minutes on 2 cores).
    os.environ.setdefault("TRAINYARD_MODELZOO_CATALOG", str(shared_catalog(CACHE)))
    # 64 clients call faster than the default per-key limit (200/s): lift it so high that the
    # token bucket still runs on every call (its cost is measured) but never refuses one.
    os.environ.setdefault("TRAINYARD_RATE_LIMIT_PER_SECOND", "1000000")
    os.environ.setdefault("TRAINYARD_RATE_LIMIT_BURST", "1000000")
    home = Path(tempfile.mkdtemp(prefix="trainyard-bench-"))
    state = stack.up(
        home, gateway_port=0, console_port=0, with_trainer=with_trainer, import_weights=True, say=lambda s: None
    )
    layout = stack.Layout(home)
    secrets_ = stack.load_secrets(layout, create=False)
    say(f"stack up in {home}: gateway {state['gateway']}")
    return Stack(
        home=home,
        state=state,
        token=stack.admin_token(home),
        internal_token=secrets_["internal_token"],
        s3_access_key=secrets_["s3_access_key"],
        s3_secret_key=secrets_["s3_secret_key"],
        nats_url=stack.nats_url(state["components"], secrets_, embedded.NATS_SERVICE_USER),
    )


def down(s: Stack) -> None:
    try:
        stack.down(s.home, say=lambda text: None)
    finally:
        shutil.rmtree(s.home, ignore_errors=True)
