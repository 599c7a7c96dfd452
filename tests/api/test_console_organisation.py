"""The console documents the organisation model (issue 14): every staff member reads the
divisions and their units, where they themselves belong and how routing and supervision follow."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.console_client import ConsoleUsers, console_users


@pytest.fixture
async def browser(api) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


async def test_an_officer_reads_the_units_by_division_with_their_own_marked(browser):
    page = await (await browser("police_330203_officer")).get("/organisation")
    assert page.status == 200
    divisions = [item.attrs.get("data-division") for item in page.all("division")]
    assert {"330102", "330106", "330203"} <= set(divisions)
    (own,) = [row for row in page.all("unit-row") if "本单位" in row.text]
    assert own.attrs.get("data-unit") == "police_330203" and "宁波市海曙区公安分局" in own.text
    assert "宁波市海曙区公安分局" in page.text("own-place")
    model = page.text("organisation-model")
    assert "行政区划" in model and "户籍所在县（区）" in model and "转办" in model


async def test_a_city_supervisor_is_told_what_they_oversee(browser):
    page = await (await browser("supervisor_3301")).get("/organisation")
    assert "浙江省杭州市" in page.text("own-place") and page.all("own-unit") == []
    nav = page.html
    assert 'href="/organisation"' in nav and 'href="/dashboard/extensions"' in nav


async def test_the_page_is_for_staff_only(browser):
    page = await (await browser("applicant1")).get("/organisation")
    assert page.status == 403
