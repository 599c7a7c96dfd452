"""Back and submit again in the console: the form re-renders with a new idempotency key and
the browser refills it, yet no second case starts — the page says so and links to the case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import Session, col

from domain.samples import sample_birth_form
from models.tables import CaseRecord
from tests.api.console_access_rows import console_login, csrf_of, flat_form, idempotency_key_of

MARRIED_FATHER = {"answer.marital_status": "married", "answer.hukou_follow": "father"}


async def _fill_and_submit(api: httpx.AsyncClient, path: str, form: dict[str, Any]) -> httpx.Response:
    """Open the form page (a fresh idempotency key each time, as after Back) and submit it."""
    page = await api.get(path, params={key.removeprefix("answer."): v for key, v in MARRIED_FATHER.items()})
    assert page.status_code == 200, page.text
    data = {
        **flat_form(form),
        **MARRIED_FATHER,
        "csrf_token": csrf_of(page.text),
        "idempotency_key": idempotency_key_of(page.text),
    }
    return await api.post(path, data=data)


def _case_ids(engine) -> list[str]:
    with Session(engine) as session:
        return list(session.execute(select(col(CaseRecord.case_id))).scalars())


async def test_back_and_submit_again_online_shows_the_existing_case_instead_of_a_second(api, engine):
    await console_login(api, "applicant1")
    form = sample_birth_form(born_at=datetime.now(UTC) - timedelta(days=2))
    first = await _fill_and_submit(api, "/apply/birth", form)
    assert first.status_code == 303, first.text
    [case_id] = _case_ids(engine)

    again = await _fill_and_submit(api, "/apply/birth", form)

    assert again.status_code == 409
    assert "已提交过相同申请" in again.text
    assert f'href="/my/cases/{case_id}"' in again.text
    assert _case_ids(engine) == [case_id]
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(CaseRecord)).scalar_one() == 1


async def test_a_clerk_confirming_the_same_walk_in_twice_is_pointed_at_its_notice(api, engine):
    await console_login(api, "hospital_clerk")
    form = sample_birth_form(born_at=datetime.now(UTC) - timedelta(days=2))
    first = await _fill_and_submit(api, "/window/apply/birth", form)
    assert first.status_code == 303, first.text
    [case_id] = _case_ids(engine)

    again = await _fill_and_submit(api, "/window/apply/birth", form)

    assert again.status_code == 409
    assert "已提交过相同申请" in again.text
    assert f'href="/window/cases/{case_id}/notice"' in again.text
    assert _case_ids(engine) == [case_id]
