"""A walk-in applicant without an account (issue 15): the acceptance SMS carries a signed,
expiring link; through it they follow the case and, once it is delivered, rate it. A link
altered, expired, or of a case that has an owner now, opens nothing."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from domain.follow_links import follow_token
from domain.identity import make_id_number
from models.tables import SmsOutboxRecord
from settings import Settings
from tests.api.console_client import console_users
from tests.api.helpers import birth_form, events_of
from tests.conftest import test_settings as settings_for

PUBLIC = "http://onething.test"
GRANDMOTHER_PHONE = "13700000001"


@pytest.fixture
def api_settings(tmp_path: Path, task_queue: str) -> Settings:
    return settings_for(tmp_path, task_queue=task_queue, max_body_bytes=64 * 1024, public_base_url=PUBLIC)


def _walk_in_form() -> dict:
    """Filed at the hospital's window by the newborn's grandmother, who has no account."""
    form = birth_form()
    form["applicant"] = {
        "name": "赵敏",
        "id_number": make_id_number("330102", date(1962, 5, 1), 12),
        "phone": GRANDMOTHER_PHONE,
        "relation": "grandparent",
    }
    return form


def _texted_link(engine, case_id: str) -> str:
    with Session(engine) as session:
        (accepted,) = session.execute(
            select(SmsOutboxRecord).where(
                col(SmsOutboxRecord.case_id) == case_id, col(SmsOutboxRecord.kind) == "case_accepted"
            )
        ).scalars()
    assert accepted.phone == GRANDMOTHER_PHONE
    match = re.search(rf"{re.escape(PUBLIC)}(/follow/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", accepted.text)
    assert match, accepted.text
    return match.group(1)


async def test_the_texted_link_follows_the_case_and_rates_it_once_delivered(api, cases, engine):
    case = await cases.submit(as_user="hospital_clerk", form=_walk_in_form())
    link = _texted_link(engine, case["case_id"])

    async with console_users(api) as users:
        visitor = await users(None)  # no account, no login
        page = await visitor.get(link)
        assert page.status == 200, page.html
        assert page.text("case-no") == case["case_no"]
        assert "赵敏" not in page.html  # personal data masked
        assert not page.all("score-5")  # nothing to rate before delivery

        await cases.finish(case)
        page = await visitor.get(link)
        assert page.all("score-5"), page.html
        rated = await visitor.client.post(f"{link}/rating", data={"score": "5", "comment": "窗口办理很快"})
        assert rated.status_code == 303, rated.text
        after = await visitor.get(link)
    assert [" ".join(item.text.split()) for item in after.all("rating")] == ["非常满意：窗口办理很快"]
    (rating,) = events_of(engine, case["case_id"], "rated")
    assert rating.actor == f"sms-link:{case['case_id']}"
    # Delivery texted the invitation to rate, once, with the same link.
    with Session(engine) as session:
        (invitation,) = session.execute(
            select(SmsOutboxRecord).where(
                col(SmsOutboxRecord.case_id) == case["case_id"], col(SmsOutboxRecord.kind) == "rating_invitation"
            )
        ).scalars()
    assert invitation.phone == GRANDMOTHER_PHONE and "好差评" in invitation.text
    assert f"{PUBLIC}/follow/" in invitation.text and case["case_no"] in invitation.text


async def test_an_altered_or_expired_link_or_an_owned_case_opens_nothing(api, cases, engine, api_settings):
    case = await cases.submit(as_user="hospital_clerk", form=_walk_in_form())
    link = _texted_link(engine, case["case_id"])
    expired = follow_token(case["case_id"], api_settings.secret_key, datetime.now(UTC) - timedelta(seconds=1))
    altered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    other_case = follow_token("ot-00000000000000000000", api_settings.secret_key, datetime.now(UTC) + timedelta(days=1))

    async with console_users(api) as users:
        visitor = await users(None)
        for path in (altered, f"/follow/{expired}", f"/follow/{other_case}"):
            assert (await visitor.get(path)).status == 404, path
        assert (await visitor.client.post(f"{altered}/rating", data={"score": "1"})).status_code == 404

        # Once a case has an owner (its applicant signed in), the owner's account follows it.
        owned = await cases.submit()
        owned_link = follow_token(owned["case_id"], api_settings.secret_key, datetime.now(UTC) + timedelta(days=1))
        assert (await visitor.get(f"/follow/{owned_link}")).status == 404
