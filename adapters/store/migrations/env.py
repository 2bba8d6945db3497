"""Alembic's environment for the store: run by `adapters.store.schema`, never from a checkout's ini.

`migrate()` hands a connection in `config.attributes["connection"]`, inside
its own transaction. Without one (`alembic` run by hand with a config that
sets `sqlalchemy.url`), this opens the store's engine itself; offline mode
prints the SQL for the URL's dialect.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from adapters.store.engine import create_engine, store_url
from adapters.store.tables import metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite has no ALTER for most
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_on_own_engine(dsn: str) -> None:
    engine = create_engine(dsn)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        run_on(connection)
        return
    dsn = config.get_main_option("sqlalchemy.url")
    if not dsn:
        raise RuntimeError("no connection and no sqlalchemy.url to migrate")
    if context.is_offline_mode():
        context.configure(
            url=store_url(dsn), target_metadata=metadata, literal_binds=True, as_sql=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(run_on_own_engine(dsn))


main()
