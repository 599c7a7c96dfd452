"""Read-model database: engine creation and schema migrations (SQLite by default, PostgreSQL by URL).

The schema belongs to the Alembic revisions in ``models/migrations/``; ``init_db``
brings a database to the newest one. The API and the worker both call it on start,
possibly at the same moment, so the upgrade runs under a lock that holds across
processes: a PostgreSQL advisory lock, or a file lock beside a SQLite database.
"""

from __future__ import annotations

import fcntl
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from prometheus_client import Counter
from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, create_engine

from models import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from models.migrations import MIGRATIONS_DIR

# The revision that describes the tables as they were before migrations existed.
BASELINE_REVISION = "0001"
# Created by SQLModel.metadata.create_all before migrations existed; such a database
# is stamped at the baseline instead of being created again.
BASELINE_TABLES = frozenset(
    {
        "cases",
        "tasks",
        "case_events",
        "supervision_notices",
        "notifications",
        "user_accounts",
        "catalogue_versions",
        "complaints",
        "ratings",
    }
)
# pg_advisory_xact_lock key that every process migrating the read model shares.
MIGRATION_LOCK_KEY = 0x0E7E_71A6_2026
# Transactions committed by the engines make_engine made, in this process (prometheus_client's
# registry: the worker's metrics port; the benchmark reads it per case).
DB_TRANSACTIONS = Counter("onething_db_transactions", "读模型已提交事务 (read-model transactions committed)")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "commit", lambda _connection: DB_TRANSACTIONS.inc())

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            # WAL lets the API read while the worker writes.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "commit", lambda _connection: DB_TRANSACTIONS.inc())
    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code: no alembic.ini to find or ship."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Revisions are numbered (0001_baseline.py, 0002_...); see infra/migrate.py.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def init_db(engine: Engine) -> None:
    """Bring the read model to the newest revision; safe to call from several processes at once."""
    with migration_lock(engine) as connection:
        upgrade(connection)


@contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the read model's migration lock until it ends.

    A second process waits here, then finds the database at the newest revision.
    PostgreSQL: a transaction-level advisory lock. SQLite: a lock file beside the database.
    """
    with _sqlite_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield connection


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate on ``connection``; a database made before migrations existed is stamped at the baseline first."""
    config = alembic_config(connection)
    existing = set(inspect(connection).get_table_names())
    if "alembic_version" not in existing and existing & BASELINE_TABLES:
        missing = BASELINE_TABLES - existing
        if missing:
            raise RuntimeError(
                "读模型数据库早于迁移且缺少表，无法标记基线 (the database predates migrations and lacks tables "
                f"{sorted(missing)}; recreate it)"
            )
        command.stamp(config, BASELINE_REVISION)
    command.upgrade(config, revision)


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def dialect_insert(session: Session | Connection) -> Any:
    """The engine dialect's INSERT, which has ON CONFLICT (the read model runs on SQLite or PostgreSQL)."""
    dialect = session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no upsert for the {dialect} dialect (the read model runs on SQLite or PostgreSQL)")


_PREPARED: dict[tuple[Callable[[Any], Any], str], Any] = {}


def prepared_statement(session: Session, build: Callable[[Any], Any]) -> Any:
    """``build(insert)`` for the session's dialect, built once per process: building an
    upsert (its ``excluded`` columns, its cache key) costs more than executing it."""
    dialect = session.get_bind().dialect.name
    statement = _PREPARED.get((build, dialect))
    if statement is None:
        statement = _PREPARED[(build, dialect)] = build(dialect_insert(session))
    return statement


@cache
def _insert_new_builder(table: type[SQLModel]) -> Callable[[Any], Any]:
    return lambda insert: insert(table).on_conflict_do_nothing()


def insert_new(session: Session, table: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows that do not exist yet: one statement, executed for all rows at once."""
    if rows:
        session.connection().execute(prepared_statement(session, _insert_new_builder(table)), list(rows))


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session for one write transaction, committed when the block ends without error.

    SQLite lets one connection write at a time, and a connection that finds the lock taken
    sleeps in growing steps (up to 100 ms each) before it tries again: a worker's threads
    writing at once would mostly sleep. So on SQLite a process's writers queue on a lock of
    its own and take the database's write lock at BEGIN, once; on PostgreSQL rows lock and
    writers run side by side.
    """
    sqlite_engine = engine.dialect.name == "sqlite"
    with _writer_lock(engine) if sqlite_engine else nullcontext(), Session(engine) as session:
        if sqlite_engine:
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session
        session.commit()


_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock:
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(engine, threading.Lock())
