"""Read-model migrations: the schema comes from Alembic revisions, matches the models, and
init_db is safe for a database made before migrations and for processes starting together.

Runs on SQLite, and on PostgreSQL when ONETHING_TEST_POSTGRES_URL is set (`make pytest`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.autogenerate.api import AutogenContext
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlmodel import Session, SQLModel

from infra.db import BASELINE_REVISION, BASELINE_TABLES, alembic_config, init_db, migration_lock, upgrade
from models.migrations import MIGRATIONS_DIR, render_item, schema_differences
from models.tables import CaseRecord, Unit, UserAccount, UTCDateTime
from tests.conftest import make_test_engine, read_model_url

ROOT = Path(__file__).resolve().parent.parent
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_a_fresh_database_is_migrated_to_the_newest_revision(tmp_path: Path) -> None:
    engine = make_test_engine(read_model_url(tmp_path), migrate=False)
    try:
        assert _revision(engine) is None
        init_db(engine)
        assert _revision(engine) == HEAD
        assert set(inspect(engine).get_table_names()) >= BASELINE_TABLES
        init_db(engine)  # the API and the worker both call it on every start
        assert _revision(engine) == HEAD
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    """Fails when a table or column changes in models/tables.py without a revision:
    `python -m infra.migrate revision "..."` writes the missing one."""
    engine = make_test_engine(read_model_url(tmp_path))
    try:
        with engine.connect() as connection:
            differences = schema_differences(connection)
    finally:
        engine.dispose()
    assert differences == [], 'models/tables.py changed without a revision: python -m infra.migrate revision "..."'


def test_schema_check_names_a_column_added_without_a_revision(tmp_path: Path) -> None:
    models_with_new_column = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(models_with_new_column)
    models_with_new_column.tables["ratings"].append_column(sa.Column("reviewed_at", UTCDateTime(), nullable=True))
    engine = make_test_engine(read_model_url(tmp_path))
    try:
        with engine.connect() as connection:
            differences = schema_differences(connection, models_with_new_column)
    finally:
        engine.dispose()
    added_columns = [(d[2], d[3].name) for d in differences if isinstance(d, tuple) and d[0] == "add_column"]
    assert added_columns == [("ratings", "reviewed_at")]


def test_a_database_created_before_migrations_is_stamped_at_the_baseline_not_recreated(tmp_path: Path) -> None:
    engine = make_test_engine(read_model_url(tmp_path), migrate=False)
    try:
        # The tables as create_all made them before migrations existed: no alembic_version.
        with engine.begin() as connection:
            upgrade(connection, BASELINE_REVISION)
            connection.execute(text("DROP TABLE alembic_version"))
        submitted = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
        # Written with the baseline's columns (the models have more now).
        with engine.begin() as connection:
            cases = sa.Table("cases", MetaData(), autoload_with=connection)
            connection.execute(
                cases.insert().values(
                    case_id="ot-before-migrations",
                    thing="birth",
                    catalogue_version=1,
                    channel="online",
                    status="in_progress",
                    submitted_by="applicant1",
                    submitted_at=submitted.replace(tzinfo=None),
                    revision=0,
                    snapshot={},
                    rating_open=False,
                )
            )

        init_db(engine)

        assert _revision(engine) == HEAD
        with Session(engine) as session:
            kept = session.get(CaseRecord, "ot-before-migrations")
        assert kept is not None and kept.submitted_at == submitted
    finally:
        engine.dispose()


def test_a_database_with_only_some_pre_migration_tables_is_refused_with_the_missing_ones_named(
    tmp_path: Path,
) -> None:
    engine = make_test_engine(read_model_url(tmp_path), migrate=False)
    try:
        SQLModel.metadata.tables["cases"].create(engine)
        with pytest.raises(RuntimeError, match="ratings"):
            init_db(engine)
        assert "alembic_version" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_init_db_waits_while_another_process_holds_the_migration_lock(tmp_path: Path) -> None:
    url = read_model_url(tmp_path)
    holder = make_test_engine(url, migrate=False)
    waiter = make_test_engine(url, migrate=False)  # a separate engine, as in another process
    finished = threading.Event()

    def migrate() -> None:
        init_db(waiter)
        finished.set()

    try:
        with migration_lock(holder):
            thread = threading.Thread(target=migrate)
            thread.start()
            assert not finished.wait(1.0), "init_db migrated while another holder had the lock"
            assert _revision(holder) is None
        thread.join(30)
        assert finished.is_set()
        assert _revision(holder) == HEAD
    finally:
        holder.dispose()
        waiter.dispose()


MIGRATE_IN_A_CHILD = """
import os, sys, time
from infra.db import init_db, make_engine
url, ready, go = sys.argv[1:4]
engine = make_engine(url)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
init_db(engine)
engine.dispose()
"""


def test_processes_starting_together_migrate_one_fresh_database_once(tmp_path: Path) -> None:
    url = read_model_url(tmp_path)
    engine = make_test_engine(url, migrate=False)  # creates the (empty) PostgreSQL database when on PostgreSQL
    go = tmp_path / "go"
    children = []
    for number in range(3):
        ready = tmp_path / f"ready-{number}"
        child = subprocess.Popen(
            [sys.executable, "-c", MIGRATE_IN_A_CHILD, url, str(ready), str(go)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append((child, ready))
    try:
        deadline = time.monotonic() + 60
        while not all(ready.exists() for _, ready in children):
            assert time.monotonic() < deadline, "the migrating processes did not start"
            assert all(child.poll() is None for child, _ in children), [child.stderr for child, _ in children]
            time.sleep(0.01)
        go.touch()  # all three migrate at once
        errors = [child.communicate(timeout=60)[1] for child, _ in children]
        assert [child.returncode for child, _ in children] == [0, 0, 0], errors
        assert _revision(engine) == HEAD
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert set(inspect(engine).get_table_names()) >= BASELINE_TABLES
    finally:
        for child, _ in children:
            if child.poll() is None:
                child.kill()
        engine.dispose()


def test_revisions_write_utc_datetimes_and_plain_strings(tmp_path: Path) -> None:
    """Autogenerated revisions keep UTCDateTime (with its import) and don't depend on sqlmodel."""
    engine = make_test_engine(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            upgrade_ops = produce_migrations(context, SQLModel.metadata).upgrade_ops
            assert upgrade_ops is not None
            code = render_python_code(upgrade_ops, render_item=render_item, migration_context=context)
            autogen = AutogenContext(context)
            assert render_item("type", UTCDateTime(), autogen) == "UTCDateTime()"
            assert "from models.tables import UTCDateTime" in autogen.imports
    finally:
        engine.dispose()
    assert "sa.Column('submitted_at', UTCDateTime(), nullable=False)" in code
    assert "sa.Column('case_id', sa.String(length=64), nullable=False)" in code
    assert "sqlmodel" not in code
    baseline = (MIGRATIONS_DIR / "versions" / "0001_baseline.py").read_text()
    assert "from models.tables import UTCDateTime" in baseline and "sqlmodel" not in baseline


def test_accounts_made_before_units_keep_their_department_and_belong_to_no_unit(tmp_path: Path) -> None:
    """0006 adds units and staff membership; an existing account keeps its department."""
    engine = make_test_engine(read_model_url(tmp_path), migrate=False)
    try:
        with engine.begin() as connection:
            upgrade(connection, "0005")
            accounts = sa.Table("user_accounts", MetaData(), autoload_with=connection)
            connection.execute(
                accounts.insert().values(
                    username="police_wang", password_hash="x", role="officer", unit="police", display_name_zh=""
                )
            )

        init_db(engine)

        with Session(engine) as session:
            account = session.get(UserAccount, "police_wang")
            assert account is not None
            assert (account.unit, account.unit_code, account.division_code) == ("police", None, None)
            session.add(Unit(code="police_330102", department="police", division_code="330102", kind="department",
                             name_zh="杭州市上城区公安分局", created_at=datetime.now(UTC)))  # fmt: skip
            account.unit_code = "police_330102"
            session.add(account)
            session.commit()
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0005")
        assert "units" not in inspect(engine).get_table_names()
        assert "unit_code" not in {column["name"] for column in inspect(engine).get_columns("user_accounts")}
    finally:
        engine.dispose()
