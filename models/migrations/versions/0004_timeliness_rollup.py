"""timeliness rollup

Finished steps counted per day, dekad (旬), month and year of completion, per scope (thing, step and
department; department; thing; none) and per tenth and whole hour of working time: the timeliness
statistics read it instead of the tasks (infra/timeliness_rollup.py). The projection keeps
it from now on; this revision fills it from the tasks already done.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As infra/timeliness_rollup.py has them when this revision was written: each span's period
# in SQL from the period of the span before it.
SPANS = ("day", "dekad", "month", "year")
PERIOD_OF_FINER = {
    "dekad": "CASE WHEN period = '' THEN '' ELSE substr(period, 1, 8) || CASE WHEN substr(period, 9, 2) <= '10' "
    "THEN '1' WHEN substr(period, 9, 2) <= '20' THEN '2' ELSE '3' END END",
    "month": "substr(period, 1, 7)",
    "year": "substr(period, 1, 4)",
}
SCOPES = {"step": ("thing", "step", "department"), "department": ("department",), "thing": ("thing",), "all": ()}
COLUMNS = "span, scope, bucket_width, period, thing, step, department, hours_bucket, count, on_time_count"


def upgrade() -> None:
    op.create_table(
        "timeliness_rollup",
        sa.Column("span", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("bucket_width", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("thing", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("hours_bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("on_time_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "span", "scope", "bucket_width", "period", "thing", "step", "department", "hours_bucket"
        ),
        sqlite_with_rowid=False,
    )
    _fill_from_tasks()


def _fill_from_tasks() -> None:
    """The steps already done: day-step-tenth cells from the tasks, every other cell from those."""
    op.execute(
        f"INSERT INTO timeliness_rollup ({COLUMNS}) "
        "SELECT 'day', 'step', 1, coalesce(completed_on, ''), thing, step, department, coalesce(hours_bucket, -1), "
        "count(*), sum(CASE WHEN on_time IS TRUE THEN 1 ELSE 0 END) FROM tasks WHERE status = 'done' "
        "GROUP BY coalesce(completed_on, ''), thing, step, department, coalesce(hours_bucket, -1)"
    )
    derived = [(("day", "step", 10), ("day", "step", 1))]
    for width in (1, 10):
        derived += [(("day", scope, width), ("day", "step", width)) for scope in ("department", "thing", "all")]
        for scope in SCOPES:
            derived += [((span, scope, width), (finer, scope, width)) for finer, span in pairwise(SPANS)]
    for (span, scope, width), (from_span, from_scope, from_width) in derived:
        period = "period" if span == from_span else PERIOD_OF_FINER[span]
        bucket = (
            "hours_bucket"
            if width == from_width
            else f"CASE WHEN hours_bucket < 0 THEN -1 ELSE hours_bucket / {width} * {width} END"
        )
        kept = SCOPES[scope]
        dims = ", ".join(key if key in kept else "''" for key in SCOPES["step"])
        grouped = ", ".join([period, *kept, bucket])
        op.execute(
            f"INSERT INTO timeliness_rollup ({COLUMNS}) "
            f"SELECT '{span}', '{scope}', {width}, {period}, {dims}, {bucket}, sum(count), sum(on_time_count) "
            f"FROM timeliness_rollup WHERE span = '{from_span}' AND scope = '{from_scope}' "
            f"AND bucket_width = {from_width} GROUP BY {grouped}"
        )


def downgrade() -> None:
    op.drop_table("timeliness_rollup")
