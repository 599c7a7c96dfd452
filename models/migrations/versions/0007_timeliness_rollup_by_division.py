"""timeliness rollup by division

Supervision scoped to a division (行政区划): the rollup's cells gain a ``division_code``, and each
finished step is counted under the division of the unit it was routed to and under each
division above it (county, city, province 330000), so a supervisor's figures, and
``group_by=division``, still read the rollup (infra/timeliness_rollup.py). The division is part
of the primary key, so the table is made again and filled from the tasks already done; a task
without a unit (from before routing) counts as the default county 330102.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As infra/timeliness_rollup.py has them when this revision was written.
SPANS = ("day", "dekad", "month", "year")
PERIOD_OF_FINER = {
    "dekad": "CASE WHEN period = '' THEN '' ELSE substr(period, 1, 8) || CASE WHEN substr(period, 9, 2) <= '10' "
    "THEN '1' WHEN substr(period, 9, 2) <= '20' THEN '2' ELSE '3' END END",
    "month": "substr(period, 1, 7)",
    "year": "substr(period, 1, 4)",
}
SCOPES = {"step": ("thing", "step", "department"), "department": ("department",), "thing": ("thing",), "all": ()}
DEFAULT_COUNTY = "330102"
# A task's unit's division, and the divisions it is counted under: itself if a county, its
# city unless it is a province, and its province.
OWN = f"coalesce(units.division_code, '{DEFAULT_COUNTY}')"
LEVELS = (
    (OWN, f"substr({OWN}, 5, 2) <> '00'"),
    (f"substr({OWN}, 1, 4) || '00'", f"substr({OWN}, 3, 4) <> '0000'"),
    (f"substr({OWN}, 1, 2) || '0000'", "1 = 1"),
)


def _create(with_division: bool) -> None:
    division = [sa.Column("division_code", sa.String(length=6), nullable=False)] if with_division else []
    key = ["span", "scope", "bucket_width", *(["division_code"] if with_division else []), "period"]
    op.create_table(
        "timeliness_rollup",
        sa.Column("span", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("bucket_width", sa.Integer(), nullable=False),
        *division,
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("thing", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("hours_bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("on_time_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*key, "thing", "step", "department", "hours_bucket"),
        sqlite_with_rowid=False,
    )


def _fill_from_tasks(with_division: bool) -> None:
    """The steps already done: day-step-tenth cells from the tasks (per division, with it),
    every other cell from those."""
    division_column = "division_code, " if with_division else ""
    columns = (
        f"span, scope, bucket_width, {division_column}period, thing, step, department, hours_bucket, "
        "count, on_time_count"
    )
    counted = (
        "count(*), sum(CASE WHEN tasks.on_time IS TRUE THEN 1 ELSE 0 END) FROM tasks "
        "LEFT JOIN units ON units.code = tasks.unit_code WHERE tasks.status = 'done'"
    )
    grouped = (
        "coalesce(tasks.completed_on, ''), tasks.thing, tasks.step, tasks.department, coalesce(tasks.hours_bucket, -1)"
    )
    for division, condition in LEVELS if with_division else (("", "1 = 1"),):
        op.execute(
            f"INSERT INTO timeliness_rollup ({columns}) "
            f"SELECT 'day', 'step', 1, {division + ', ' if division else ''}{grouped}, {counted} AND {condition} "
            f"GROUP BY {division + ', ' if division else ''}{grouped}"
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
        grouped_cells = ", ".join([*(["division_code"] if with_division else []), period, *kept, bucket])
        op.execute(
            f"INSERT INTO timeliness_rollup ({columns}) "
            f"SELECT '{span}', '{scope}', {width}, {division_column}{period}, {dims}, {bucket}, sum(count), "
            f"sum(on_time_count) FROM timeliness_rollup WHERE span = '{from_span}' AND scope = '{from_scope}' "
            f"AND bucket_width = {from_width} GROUP BY {grouped_cells}"
        )


def upgrade() -> None:
    op.drop_table("timeliness_rollup")
    _create(with_division=True)
    _fill_from_tasks(with_division=True)


def downgrade() -> None:
    op.drop_table("timeliness_rollup")
    _create(with_division=False)
    _fill_from_tasks(with_division=False)
