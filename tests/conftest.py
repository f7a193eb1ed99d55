"""Shared fixtures: real NATS and S3 servers (one each per session), a fresh database per test.

- nats_server (session): .url "nats://127.0.0.1:<port>", JetStream on (deploy.local.embedded.NatsServer).
- s3_server (session): .endpoint "127.0.0.1:<port>", .access_key, .secret_key (deploy.local.embedded.S3Server).
- database_url (function): a fresh empty database: a sqlite file under tmp_path, or a new PostgreSQL
  database (dropped afterwards) when TRAINYARD_TEST_POSTGRES_URL is set.
- settings (function): kernel.settings.Settings wired to the three above.
- catalog_path (session): the model zoo catalog of the session (services.modelzoo.catalog.shared_catalog).
- zoo_settings (function): settings for a model zoo service: that catalog and an empty offline weights folder.

The servers start only when a test asks for them, so unit-only runs stay fast.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` from the venv without an editable install
    sys.path.insert(0, str(ROOT))

from deploy.local.embedded import NatsServer, S3Server, start_nats, start_s3  # noqa: E402
from kernel.settings import Settings  # noqa: E402

POSTGRES_ENV = "TRAINYARD_TEST_POSTGRES_URL"
# No test reaches the internet: every zoo (in-process or a stack's subprocess) fetches weights only from
# offline files unless its test configures other sources (a local HTTP server in the publishers' layout).
os.environ["TRAINYARD_MODELZOO_WEIGHT_SOURCES"] = "offline"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> NatsServer:
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop(grace=5)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    # weed's filer may wait 15 s to drain; its data is thrown away, so do not wait for it.
    server.stop(grace=2)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    import psycopg
    from psycopg import sql

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"trainyard_test_{secrets.token_hex(6)}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(admin_url, name)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def settings(nats_server: NatsServer, s3_server: S3Server, database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        listen="127.0.0.1:0",
        DATABASE_URL=database_url,
        s3_endpoint=s3_server.endpoint,
        # links handed to clients: the same server under another name, so a test can tell them apart
        s3_public_endpoint=s3_server.endpoint.replace("127.0.0.1", "localhost"),
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_secure=False,
        nats_url=nats_server.url,
        internal_token="",
        dataset_address="",
        modelzoo_address="",
        recommend_address="",
        training_address="",
        log_format="console",
        home=tmp_path,
    )


@pytest.fixture(scope="session")
def catalog_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TRAINYARD_MODELZOO_CATALOG when set, else one kept under ~/.cache/trainyard/test-catalog and rebuilt
    only when the libraries or the builder change (a build takes minutes on 2 cores); a lock lets several
    test sessions on one machine share it."""
    import fcntl

    from services.modelzoo.catalog import shared_catalog

    if os.environ.get("TRAINYARD_MODELZOO_CATALOG"):
        return shared_catalog(tmp_path_factory.getbasetemp())
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trainyard" / "test-catalog"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return shared_catalog(folder)


@pytest.fixture
def zoo_settings(settings: Settings, catalog_path: Path, tmp_path: Path) -> Settings:
    offline = tmp_path / "offline-weights"
    offline.mkdir()
    return settings.model_copy(
        update={"modelzoo_catalog": str(catalog_path), "modelzoo_offline_weights_dir": str(offline)}
    )
