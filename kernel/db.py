"""SQL metadata through sqlmodel: SQLite by default, PostgreSQL via DATABASE_URL.

Each service migrates its own tables with Alembic at start, keeping its own version table
so several services can share one PostgreSQL database.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for PostgreSQL URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # WAL lets readers run beside the one writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # pre_ping: a connection the server dropped (restart, failover) is replaced before use, so the first
    # call after an outage succeeds; connect_timeout bounds a call while the server is unreachable.
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 10})


def migration_lock_key(version_table: str) -> int:
    """The PostgreSQL advisory lock (a signed 64-bit key) that serialises one service's migrations."""
    return zlib.crc32(f"trainyard.migrate.{version_table}".encode())


def migrate(engine: Engine, migrations_dir: Path, version_table: str) -> None:
    """Bring the schema to the newest revision (idempotent).

    On PostgreSQL the upgrade runs under a transaction-scoped advisory lock, so replicas that start at
    once migrate one after the other (the later ones find the schema at head) instead of racing to
    create the same tables. SQLite serialises writers itself.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["version_table"] = version_table
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # released when this transaction ends
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": migration_lock_key(version_table)})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
