"""The durable store: SQLAlchemy Core tables, repositories and Alembic migrations.

`migrate(dsn)` brings a database to the newest schema; `open_store(dsn)` gives
the `Store` port on it. SQLite (`sqlite+aiosqlite:///path`) is the embedded
default, PostgreSQL (`postgresql+asyncpg://...`) what several instances share.
"""

from adapters.store.schema import alembic_config, head_revision, migrate
from adapters.store.sql import SqlStore, open_store

__all__ = ["SqlStore", "alembic_config", "head_revision", "migrate", "open_store"]
