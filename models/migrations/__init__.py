"""Alembic migrations of the read model, and how autogenerate writes them.

The schema of the read-model tables (models/tables.py) changes only through the
revisions in ``versions/``; ``infra.db.init_db`` applies them on start. To add one
after changing a table: ``python -m infra.migrate revision "说明 (what changed)"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from models.tables import UTCDateTime

MIGRATIONS_DIR = Path(__file__).resolve().parent


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write the project's column types into revisions as code that imports cleanly.

    UTCDateTime keeps its UTC conversion (a migration that copies rows must not
    lose it); SQLModel's AutoString is a plain VARCHAR, written as ``sa.String`` so
    revisions do not depend on sqlmodel internals.
    """
    if kind != "type":
        return False
    if isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from models.tables import UTCDateTime")
        return "UTCDateTime()"
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def context_options() -> dict[str, Any]:
    """Options for Alembic's MigrationContext, shared by env.py and the schema check."""
    return {
        "compare_type": True,
        "compare_server_default": True,
        # SQLite alters tables by copying them; batch mode does that and is a plain ALTER elsewhere.
        "render_as_batch": True,
        "render_item": render_item,
    }


def schema_differences(connection: Connection, metadata: MetaData | None = None) -> list[Any]:
    """What autogenerate would write to make the database match the models: empty when they agree."""
    context = MigrationContext.configure(connection, opts=context_options())
    return list(compare_metadata(context, metadata if metadata is not None else SQLModel.metadata))
