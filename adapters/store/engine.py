"""The database engine behind the store, and the edge where its errors become ours.

SQLite (aiosqlite) is the embedded default: WAL, `synchronous=NORMAL`, a busy
timeout, foreign keys on, and every transaction begins with `BEGIN IMMEDIATE`,
so that a transaction that reads and then writes (a claim) holds the one write
lock from its start instead of failing half-way. PostgreSQL (asyncpg) is the
shared store of several instances.

TLS to PostgreSQL is asked for in the DSN with libpq's parameters:
`?sslmode=verify-full&sslrootcert=/etc/vt-gateway/pg-ca.pem` verifies the
server against that CA and its name against the DSN's host; `sslcert` and
`sslkey` add a client certificate. See `postgres_tls`.
"""

from __future__ import annotations

import functools
import ssl
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

TLS_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""libpq's `sslmode` values, weakest first; asyncpg's `ssl=` takes the same."""
_TLS_FILES = ("sslrootcert", "sslcert", "sslkey")

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
    url, tls = postgres_tls(url)
    connect_args: dict[str, Any] = {
        "timeout": POSTGRES_CONNECT_TIMEOUT_S,
        "server_settings": {
            "application_name": "vt-gateway",
            "lock_timeout": POSTGRES_LOCK_TIMEOUT,
            "timezone": "UTC",
        },
    }
    if tls is not None:
        connect_args["ssl"] = tls
    return create_async_engine(url, pool_pre_ping=True, connect_args=connect_args)


def postgres_tls(url: URL) -> tuple[URL, ssl.SSLContext | str | None]:
    """The DSN without its TLS parameters, and asyncpg's `ssl` argument made of them.

    `sslmode` (or asyncpg's `ssl`) is one of TLS_MODES, as libpq means them;
    without it asyncpg's default holds (`prefer`: TLS when the server offers it,
    unverified). With `sslrootcert`, `sslcert` or `sslkey` the mode must be
    `require`, `verify-ca` or `verify-full` and the context is made here: the
    server is verified against `sslrootcert` (for `require` too, as libpq
    does), its name checked for `verify-full`, and the client certificate
    loaded. Without those files the mode goes to asyncpg as it is, which looks
    for `~/.postgresql/root.crt` and `PGSSLROOTCERT` as libpq would.
    Errors name the parameter, never a key file's path.
    """
    query = dict(url.query)
    tls: dict[str, str] = {}
    for name in ("sslmode", "ssl", *_TLS_FILES):
        if name in query:
            value = query.pop(name)
            if not isinstance(value, str):
                raise ConfigurationError(f"the store DSN names {name} more than once")
            tls[name] = value
    modes = {tls.pop(name) for name in ("sslmode", "ssl") if name in tls}
    if len(modes) > 1:
        raise ConfigurationError("the store DSN's sslmode and ssl disagree")
    mode = modes.pop() if modes else None
    if mode is not None and mode not in TLS_MODES:
        raise ConfigurationError(
            f"the store DSN's sslmode {mode!r} is none of {', '.join(TLS_MODES)}"
        )
    bare = url.set(query=query)
    if not tls:
        return bare, mode
    if mode not in ("require", "verify-ca", "verify-full"):
        raise ConfigurationError(
            f"the store DSN names {', '.join(tls)}: "
            "give sslmode=verify-full (or verify-ca, require) with them"
        )
    return bare, _tls_context(mode, tls)


def _tls_context(mode: str, files: dict[str, str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    root = files.get("sslrootcert")
    if root is None and mode != "require":
        raise ConfigurationError(
            f"the store DSN's sslmode={mode} with sslcert needs sslrootcert too"
        )
    if root is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = mode == "verify-full"
        try:
            context.load_verify_locations(cafile=root)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"the store DSN's sslrootcert {root}: {_reason(error)}"
            ) from None
    if "sslcert" in files:
        # `from None`: an OSError's text names the file, and this one may be the key.
        try:
            context.load_cert_chain(files["sslcert"], files.get("sslkey"))
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"the store DSN's sslcert/sslkey cannot be loaded: {_reason(error)}"
            ) from None
    elif "sslkey" in files:
        raise ConfigurationError("the store DSN names sslkey without sslcert")
    return context


def _reason(error: OSError | ssl.SSLError) -> str:
    """What went wrong with a file, without its path."""
    if isinstance(error, ssl.SSLError):
        return error.reason or "not a usable certificate or key"
    return error.strerror or type(error).__name__


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
    """Whether a library error is one that may pass: the database away, busy or locked.

    A server certificate that does not verify is not: it stays as it is.
    """
    if _certificate_refused(error) is not None:
        return False
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
    """Raise a passing database failure as `TransientError`; anything else unchanged.

    A server certificate that does not verify is a `ConfigurationError`: no
    retry makes a certificate of another CA, or for another name, acceptable.
    """
    try:
        yield
    except (exc.SQLAlchemyError, OSError) as error:
        refused = _certificate_refused(error)
        if refused is not None:
            raise ConfigurationError(
                "store refused: the database server's certificate does not verify "
                f"against the DSN's sslrootcert: {refused.verify_message or refused.reason}"
            ) from error
        if is_transient(error):
            raise TransientError(f"store unavailable: {_describe(error)}") from error
        raise


def _certificate_refused(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure in a (wrapped) connection error, if it is one."""
    orig = error.orig if isinstance(error, exc.DBAPIError) else error
    return orig if isinstance(orig, ssl.SSLCertVerificationError) else None


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
