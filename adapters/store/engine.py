"""The database engine behind the store, and the edge where its errors become ours.

SQLite (aiosqlite) is the embedded default: WAL, `synchronous=NORMAL`, a busy
timeout, foreign keys on, and every transaction begins with `BEGIN IMMEDIATE`,
so that a transaction that reads and then writes (a claim) holds the one write
lock from its start instead of failing half-way. PostgreSQL (asyncpg) is the
shared store of several instances.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from gateway.domain.errors import ConfigurationError, TransientError

SQLITE_BUSY_TIMEOUT_MS = 5_000
POSTGRES_CONNECT_TIMEOUT_S = 10
POSTGRES_LOCK_TIMEOUT = "10s"

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

# SQLSTATE classes and codes after which the same work may well succeed again:
# connection exceptions, transaction rollback (serialization, deadlock),
# insufficient resources, lock not available, operator intervention (query
# cancelled by a timeout, server shutting down or starting), system errors.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
_TRANSIENT_SQLSTATES = frozenset({"55P03"})
# SQLite primary result codes of the same kind: busy, locked, out of memory,
# disk I/O error, disk full, lock protocol error.
_TRANSIENT_SQLITE_CODES = frozenset({5, 6, 7, 10, 13, 15})


def store_url(dsn: str) -> URL:
    """The URL of a store DSN, with the async driver; `sqlite:` and `postgresql:` are accepted."""
    try:
        url = make_url(dsn)
    except exc.ArgumentError as error:
        raise ConfigurationError(f"store DSN is not a database URL: {error}") from error
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigurationError(
            f"store DSN driver {url.drivername!r}: use sqlite+aiosqlite:///path "
            "or postgresql+asyncpg://user@host/db"
        )
    url = url.set(drivername=driver)
    if driver.startswith("sqlite") and url.database in (None, "", ":memory:"):
        raise ConfigurationError("the SQLite store needs a file: sqlite+aiosqlite:///path/to.db")
    return url


def create_engine(dsn: str) -> AsyncEngine:
    """An engine for the DSN, configured for the store; connects lazily."""
    url = store_url(dsn)
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        connect_args={
            "timeout": POSTGRES_CONNECT_TIMEOUT_S,
            "server_settings": {
                "application_name": "vt-gateway",
                "lock_timeout": POSTGRES_LOCK_TIMEOUT,
                "timezone": "UTC",
            },
        },
    )


def _configure_sqlite(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # The driver must not emit BEGIN itself: `_begin_immediate` does, for every transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_transient(error: BaseException) -> bool:
    """Whether a library error is one that may pass: the database away, busy or locked."""
    if not isinstance(error, exc.DBAPIError):
        return isinstance(error, exc.TimeoutError | OSError)
    if error.connection_invalidated:
        return True
    sqlite_code = getattr(error.orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in _TRANSIENT_SQLITE_CODES
    sqlstate = getattr(error.orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES) or sqlstate in _TRANSIENT_SQLSTATES
    return isinstance(error, exc.InterfaceError | exc.OperationalError)


@contextmanager
def translated() -> Iterator[None]:
    """Raise a passing database failure as `TransientError`; anything else unchanged."""
    try:
        yield
    except (exc.SQLAlchemyError, OSError) as error:
        if is_transient(error):
            raise TransientError(f"store unavailable: {_describe(error)}") from error
        raise


def _describe(error: BaseException) -> str:
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        return f"{type(error.orig).__name__}: {error.orig}".splitlines()[0]
    return f"{type(error).__name__}: {error}".splitlines()[0]


P = ParamSpec("P")
R = TypeVar("R")


def translating(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`translated()` around an async function."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated():
            return await method(*args, **kwargs)

    return wrapper
