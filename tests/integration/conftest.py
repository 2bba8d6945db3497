"""Fixtures of the store: SQLite in a temporary file, PostgreSQL in a database of this session.

PostgreSQL is found at $VTGW_TEST_POSTGRES (an admin DSN, default the local
trust-authenticated server). When it cannot be reached the tests fail: they
are never skipped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.store import SqlStore, migrate, open_store
from adapters.store.engine import create_engine
from adapters.store.tables import metadata

POSTGRES_ADMIN = os.environ.get(
    "VTGW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def _admin(*statements: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at its end."""
    name = f"vtgw_store_test_{os.getpid()}"
    try:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN}: {error!r}; "
            "start it (.ci/run does) or point VTGW_TEST_POSTGRES at one",
            pytrace=False,
        )
    url = make_url(POSTGRES_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    dsn = url.render_as_string(hide_password=False)
    asyncio.run(migrate(dsn))
    yield dsn
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def postgres_store(postgres_dsn: str) -> AsyncIterator[SqlStore]:
    """The store on the session's PostgreSQL database, emptied for this test."""
    engine = create_engine(postgres_dsn)
    tables = ", ".join(table.name for table in metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    store = await open_store(postgres_dsn)
    yield store
    await store.close()


@pytest.fixture
async def sqlite_dsn(tmp_path: Path) -> str:
    """A migrated SQLite store file of this test."""
    dsn = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    await migrate(dsn)
    return dsn


@pytest.fixture
async def sqlite_store(sqlite_dsn: str) -> AsyncIterator[SqlStore]:
    store = await open_store(sqlite_dsn)
    yield store
    await store.close()
