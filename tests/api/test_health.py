"""GET /health: the read-model database and Temporal are both reachable."""

from __future__ import annotations


def _calendar_missing(api, year: int | None) -> None:
    # The warning depends on today's date; this app's calendar answers a fixed year instead.
    api._transport.app.state.calendar.missing_next_year = lambda today: year


async def test_health_reports_database_and_temporal_ok(api):
    _calendar_missing(api, None)
    response = await api.get("/health")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok", "calendar": "ok"}


async def test_health_warns_while_next_years_holiday_notice_is_missing_and_stays_up(api):
    _calendar_missing(api, 2027)
    response = await api.get("/health")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["calendar"]) == ("ok", "warning")
    assert "2027年节假日安排" in body["calendar_warning_zh"] and "暂定" in body["calendar_warning_zh"]


async def test_health_needs_no_login(api):
    response = await api.get("/health", headers={"Authorization": "Bearer garbage"})

    assert response.status_code == 200, response.text
