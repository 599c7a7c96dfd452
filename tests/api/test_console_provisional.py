"""暂定 beside every due date that a year without a loaded holiday notice makes provisional
(issue 14, statutory calendar operations): the officer's inbox and task page, the supervisors'
overdue list and its CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from models.tables import TaskRecord
from tests.api.console_client import ConsoleUsers, console_users
from tests.api.helpers import task_id


@pytest.fixture
async def browser(api) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


async def test_a_provisional_due_date_is_marked_on_the_inbox_task_page_and_overdue_list(
    api, login, cases, engine, browser
):
    case = await cases.submit()
    task = task_id(case["case_id"], "birth_certificate")
    # The read model as the workflow writes it for a deadline in a year whose notice is missing.
    with Session(engine) as session:
        row = session.get(TaskRecord, task)
        assert row is not None
        row.provisional = True
        row.due_at = datetime.now(UTC) - timedelta(hours=1)
        session.add(row)
        session.commit()

    officer = await browser("hospital_officer")
    inbox = await officer.get("/inbox")
    assert inbox.all("provisional")  # on the phone-sized card as on the table
    overdue = await (await browser("supervisor")).get("/dashboard/overdue")
    (line,) = [row for row in overdue.all("overdue-row") if row.attrs.get("data-task-id") == task]
    assert "暂定" in line.text
    exported = await api.get("/supervision/overdue", headers={**await login("supervisor"), "Accept": "text/csv"})
    header, *rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    column = header.index("期限暂定")
    assert [row[column] for row in rows if row[0] == task] == ["是"]
