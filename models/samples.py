"""Valid sample submissions and step results, derived from the catalogue.

Used by the demo seeding (``make run``), the guides, and the tests, so that an
example can never drift from the definition it illustrates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from models.catalogue import StepDefinition, read_path
from models.identity import make_id_number
from models.workcalendar import SHANGHAI

# Invented people known to the dev/test data-sharing fixture.
MOTHER_ID = "330102199003070027"
FATHER_ID = "330106199208150042"
UNMARRIED_MOTHER_ID = "330105199709090061"
MOTHER_WITHOUT_MARRIAGE_RECORD_ID = "330102198801010059"


def sample_birth_form(
    *,
    born_at: datetime | None = None,
    marital_status: str = "married",
    follow: str = "father",
    delivery: str = "pickup",
    mother_id: str | None = None,
) -> dict[str, Any]:
    born = born_at or datetime(2026, 11, 20, 8, 30, tzinfo=SHANGHAI)
    married = marital_status == "married"
    form: dict[str, Any] = {
        "newborn": {
            "name": "王小明",
            "sex": "male",
            "born_at": born.isoformat(),
            "birthplace_division_code": "330102",
        },
        "mother": {"name": "李芳", "id_number": mother_id or (MOTHER_ID if married else UNMARRIED_MOTHER_ID)},
        "marital_status": marital_status,
        "hukou": {"follow": follow, "address": "浙江省杭州市上城区示例路1号"},
        "applicant": {
            "name": "李芳",
            "id_number": mother_id or (MOTHER_ID if married else UNMARRIED_MOTHER_ID),
            "phone": "13800000000",
            "relation": "mother",
        },
        "delivery": {"method": delivery, "address": "浙江省杭州市上城区示例路1号" if delivery == "mail" else None},
    }
    if married or follow == "father":
        form["father"] = {"name": "王强", "id_number": FATHER_ID}
    if not married:
        form["materials"] = {"unmarried_birth_declaration": "UPLOAD-DECL-0001"}
    return form


def sample_result(step: StepDefinition, form: dict[str, Any]) -> dict[str, Any]:
    """A result that passes the step's checks for this form."""
    result: dict[str, Any] = {}
    for name, spec in step.result.items():
        if spec.type == "citizen_id":
            born = datetime.fromisoformat(str(read_path(form, spec.birth_date_of or "") or "2026-01-01T00:00:00+08:00"))
            division = str(read_path(form, "newborn.birthplace_division_code") or "330102")
            result[name] = make_id_number(division, born.astimezone(SHANGHAI).date(), 1)
        elif spec.example is not None:
            result[name] = spec.example
        elif spec.type == "money":
            result[name] = "0.00"
        elif spec.type == "boolean":
            result[name] = True
        else:
            result[name] = f"{step.code}-result"
    return result


def birth_moment_days_ago(now: datetime, days: int) -> datetime:
    return (now - timedelta(days=days)).astimezone(SHANGHAI).replace(second=0, microsecond=0)
