"""GET /health: the read-model database and Temporal are both reachable."""

from __future__ import annotations


async def test_health_reports_database_and_temporal_ok(api):
    response = await api.get("/health")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


async def test_health_needs_no_login(api):
    response = await api.get("/health", headers={"Authorization": "Bearer garbage"})

    assert response.status_code == 200, response.text
