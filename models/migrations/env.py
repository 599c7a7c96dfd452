"""Alembic's environment: runs the read-model revisions on the connection it is handed.

``infra.db`` (init_db and ``python -m infra.migrate``) opens the connection,
holds the migration lock and passes the connection in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from models import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from models.migrations import context_options

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through infra.db.init_db or `python -m infra.migrate`")

context.configure(connection=connection, target_metadata=SQLModel.metadata, **context_options())
with context.begin_transaction():
    context.run_migrations()
