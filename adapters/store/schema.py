"""Bring a store's schema to the newest revision: at start-up, in tests, by hand.

Alembic runs from the migrations inside this package (they ship in the
wheel); its `Config` is built here, so no `alembic.ini` is needed anywhere.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from adapters.store.engine import create_engine, translated

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Instances starting together against one PostgreSQL migrate one after the other.
_MIGRATION_LOCK = 0x76_74_67_77  # "vtgw"


def alembic_config(dsn: str | None = None, connection: Connection | None = None) -> Config:
    """Alembic's configuration for the store's migrations, on a DSN or an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if dsn is not None:
        config.set_main_option("sqlalchemy.url", dsn.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return head


async def migrate(dsn: str) -> None:
    """Upgrade the store at `dsn` to the newest revision; nothing to do when it is there."""
    engine = create_engine(dsn)
    try:
        with translated():
            async with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                    )
                await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection=connection), "head")
