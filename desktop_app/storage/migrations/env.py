"""Alembic environment: runs on the connection ``storage.migrate`` passes in (or, for developers running the
``alembic`` command, on ``sqlalchemy.url`` from the config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from desktop_app.storage.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things: copy tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    conn = context.config.attributes.get("connection")
    if conn is not None:
        _run(conn)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as c:
        _run(c)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run them against a database")
run()
