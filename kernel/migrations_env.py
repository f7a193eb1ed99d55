"""The body of every service's Alembic env.py: run migrations on the connection passed in.

A service's env.py is two lines: import its SQLModel tables, then call run(metadata).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData


def run(metadata: MetaData) -> None:
    config = context.config
    connection = config.attributes.get("connection")
    version_table = config.attributes.get("version_table", "alembic_version")
    if connection is None:  # `alembic revision --autogenerate` from a shell
        from sqlalchemy import create_engine

        from kernel.db import normalize_url

        url = normalize_url(config.get_main_option("sqlalchemy.url") or "sqlite:///autogen.db")
        with create_engine(url).connect() as conn:
            _configure_and_run(conn, metadata, version_table)
        return
    _configure_and_run(connection, metadata, version_table)


def _configure_and_run(connection, metadata: MetaData, version_table: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
