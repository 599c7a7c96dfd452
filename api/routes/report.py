"""Check-items report (DB33/T 2304-2021 §8.1.3): per sub-item, the measurable items a
supervisor checks — service guide complete, flow chart present, data-sharing
coverage, joint handling executed, time limits met, complaints and 回访 handled on
time, archives complete. JSON, or a printable Chinese HTML page."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BeforeValidator, Field
from sqlalchemy import case, func, select
from sqlmodel import Session, col

from api.deps import ActorDep, SessionDep, SettingsDep, require_role
from api.errors import error_responses
from api.schemas import also_as, not_a_timestamp
from documents.archive import ArchiveKeys, check_package
from documents.flowchart import svg_flowchart
from documents.guide import service_guide
from domain.divisions import division as division_named
from domain.workcalendar import SHANGHAI
from infra.signing import archive_keys
from models.case import Actor
from models.catalogue import ThingDefinition
from models.tables import CaseRecord, ComplaintRecord, TaskRecord
from services.access import supervised_cases_filter, supervised_division, supervised_tasks_filter
from services.catalogue import current_definitions

router = APIRouter(prefix="/supervision", tags=["supervision"], responses=error_responses(401, 403, 422))

# A period's days: far-off dates are invalid input, not a 500 from date arithmetic
# overflowing at year 1 or 9999.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)
ReportDay = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY), BeforeValidator(not_a_timestamp)]
# Archives are checked file by file; a period's newest closed cases up to this many.
ARCHIVE_CHECK_LIMIT = 2000
# An item not met names the cases that fail it (up to this many), so that each can be followed up.
FAILING_CASES_LIMIT = 20

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _item(
    code: str, label_zh: str, passed: bool | None, value: Any, detail_zh: str, cases: list[str] | None = None
) -> dict[str, Any]:
    """One check item; ``cases`` are the ids of the cases failing it (the first FAILING_CASES_LIMIT)."""
    return {
        "code": code,
        "label_zh": label_zh,
        "passed": passed,
        "value": value,
        "detail_zh": detail_zh,
        "cases": (cases or [])[:FAILING_CASES_LIMIT],
    }


def _guide_items(definition: ThingDefinition) -> list[dict[str, Any]]:
    guide = service_guide(definition)
    sections = {
        "适用情形": bool(definition.situations) or not definition.questions,
        "申请材料": bool(guide.materials),
        "办理流程": bool(guide.steps),
        "办理时限": all(step.time_limit for step in definition.steps),
        "常见问题": bool(definition.faq),
        "常见错误": bool(definition.common_mistakes_zh),
    }
    missing = [name for name, present in sections.items() if not present]
    chart_ok = "<svg" in svg_flowchart(definition) and bool(definition.steps)
    shareable = [m for m in definition.materials if m.source != "form"]
    shared = [m for m in shareable if m.source in {"data_sharing", "commitment"}]
    return [
        _item(
            "guide_complete",
            "办事指南要素齐全",
            not missing,
            len(sections) - len(missing),
            "缺少：" + "、".join(missing) if missing else "要素齐全",
        ),
        _item("flowchart_present", "办理流程图", chart_ok, chart_ok, "已生成" if chart_ok else "未生成"),
        _item(
            "data_sharing_coverage",
            "材料数据共享（含告知承诺）覆盖率",
            None,
            _ratio(len(shared), len(shareable)),
            f"{len(shared)}/{len(shareable)} 份材料免于提交",
        ),
    ]


def _case_items(
    session: Session,
    settings_archive: Path,
    keys: ArchiveKeys,
    thing: str,
    start: datetime,
    end: datetime,
    actor: Actor,
) -> list[dict[str, Any]]:
    # The cases the supervisor sees (of their division or one within it), submitted in the
    # period; their steps counted are those of the supervisor's divisions.
    in_period = [
        col(CaseRecord.thing) == thing,
        col(CaseRecord.submitted_at) >= start,
        col(CaseRecord.submitted_at) < end,
        supervised_cases_filter(actor),
    ]
    supervised_steps = supervised_tasks_filter(actor)
    submitted = session.execute(select(func.count()).select_from(CaseRecord).where(*in_period)).scalar_one()
    closed_ids = list(
        session.execute(
            select(col(CaseRecord.case_id))
            .where(*in_period, col(CaseRecord.status).in_(["completed", "refused"]))
            .order_by(col(CaseRecord.submitted_at).desc())
        ).scalars()
    )
    # Joint handling: every step of a closed case went through the workflow as a task.
    incomplete_joint_cases = list(
        session.execute(
            select(col(TaskRecord.case_id))
            .distinct()
            .where(
                col(TaskRecord.case_id).in_(closed_ids[:ARCHIVE_CHECK_LIMIT]),
                col(TaskRecord.status).not_in(["done", "refused", "cancelled"]),
                col(TaskRecord.step).not_like("follow_up%"),
            )
            .order_by(col(TaskRecord.case_id))
        ).scalars()
    )
    incomplete_joint = len(incomplete_joint_cases)
    steps = session.execute(
        select(func.count(), func.sum(case((col(TaskRecord.on_time).is_(True), 1), else_=0)))
        .select_from(TaskRecord)
        .join(CaseRecord, col(CaseRecord.case_id) == col(TaskRecord.case_id))
        .where(
            *in_period,
            supervised_steps,
            col(TaskRecord.status) == "done",
            col(TaskRecord.step).not_like("follow_up%"),
        )
    ).one()
    follow_ups = session.execute(
        select(func.count(), func.sum(case((col(TaskRecord.on_time).is_(True), 1), else_=0)))
        .select_from(TaskRecord)
        .join(CaseRecord, col(CaseRecord.case_id) == col(TaskRecord.case_id))
        .where(*in_period, supervised_steps, col(TaskRecord.status) == "done", col(TaskRecord.step).like("follow_up%"))
    ).one()
    late_steps_of = (
        select(col(TaskRecord.case_id))
        .distinct()
        .join(CaseRecord, col(CaseRecord.case_id) == col(TaskRecord.case_id))
        .where(*in_period, supervised_steps, col(TaskRecord.status) == "done", col(TaskRecord.on_time).is_not(True))
        .order_by(col(TaskRecord.case_id))
        .limit(FAILING_CASES_LIMIT)
    )
    late_step_cases = list(session.execute(late_steps_of.where(col(TaskRecord.step).not_like("follow_up%"))).scalars())
    late_follow_up_cases = list(session.execute(late_steps_of.where(col(TaskRecord.step).like("follow_up%"))).scalars())
    complaints = session.execute(
        select(ComplaintRecord)
        .join(CaseRecord, col(CaseRecord.case_id) == col(ComplaintRecord.case_id))
        .where(*in_period, col(ComplaintRecord.answered_at).is_not(None))
    ).scalars()
    answered = list(complaints)
    answered_late = [c for c in answered if not (c.due_at is None or (c.answered_at and c.answered_at <= c.due_at))]
    answered_on_time = len(answered) - len(answered_late)
    checked = closed_ids[:ARCHIVE_CHECK_LIMIT]
    incomplete_archives = [
        case_id for case_id in checked if not check_package(settings_archive, case_id, keys).complete
    ]
    archives_ok = len(checked) - len(incomplete_archives)
    steps_done, steps_on_time = int(steps[0]), int(steps[1] or 0)
    return [
        _item(
            "joint_handling",
            "联办执行情况",
            incomplete_joint == 0 if closed_ids else None,
            _ratio(len(checked) - int(incomplete_joint), len(checked)),
            f"期内受理{submitted}件，办结{len(closed_ids)}件",
            incomplete_joint_cases,
        ),
        _item(
            "time_limits_met",
            "办理时限落实",
            steps_done == steps_on_time if steps_done else None,
            _ratio(steps_on_time, steps_done),
            f"按时办结{steps_on_time}/{steps_done}个环节",
            late_step_cases,
        ),
        _item(
            "complaints_on_time",
            "投诉按时答复",
            answered_on_time == len(answered) if answered else None,
            _ratio(answered_on_time, len(answered)),
            f"按时答复{answered_on_time}/{len(answered)}件",
            sorted({c.case_id for c in answered_late if c.case_id}),
        ),
        _item(
            "follow_ups_on_time",
            "差评回访按时办结",
            int(follow_ups[1] or 0) == int(follow_ups[0]) if follow_ups[0] else None,
            _ratio(int(follow_ups[1] or 0), int(follow_ups[0])),
            f"按时回访{int(follow_ups[1] or 0)}/{int(follow_ups[0])}件",
            late_follow_up_cases,
        ),
        _item(
            "archives_complete",
            "档案完整、规范",
            archives_ok == len(checked) if checked else None,
            _ratio(archives_ok, len(checked)),
            f"抽查{len(checked)}件，完整{archives_ok}件",
            incomplete_archives,
        ),
    ]


@router.get("/report", response_model=None, responses=also_as("text/html"))
def check_items_report(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    from_: Annotated[ReportDay | None, Query(alias="from")] = None,
    to: ReportDay | None = None,
    format: Literal["json", "html"] | None = None,
) -> Response | dict[str, Any]:
    require_role(actor, "supervisor", "admin")
    report = check_items(session, settings.archive_dir, from_, to, actor=actor, keys=archive_keys(settings))
    accept = request.headers.get("accept", "")
    if format == "html" or (format is None and "text/html" in accept):
        return HTMLResponse(_templates.get_template("report.html").render(report=report))
    return report


def check_items(
    session: Session, archive_dir: Path, from_: date | None, to: date | None, *, actor: Actor, keys: ArchiveKeys
) -> dict[str, Any]:
    """The check-items report of a period (default: this month so far), per current sub-item
    (the JSON report, its printable page and the console's): of the cases and steps of the
    supervisor's division and those within it (services/access.py)."""
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    first = from_ or today.replace(day=1)
    last = to or today
    start = datetime.combine(first, time.min, tzinfo=SHANGHAI)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=SHANGHAI)
    sub_items = []
    for definition in current_definitions(session).values():
        items = _guide_items(definition) + _case_items(session, archive_dir, keys, definition.code, start, end, actor)
        sub_items.append(
            {"thing": definition.code, "name_zh": definition.name_zh, "version": definition.version, "items": items}
        )
    division = supervised_division(actor)
    named = division_named(division)
    return {
        "title_zh": "一件事检查事项报告",
        "division_code": division,
        "division_name_zh": named.name_zh if named else division,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(),
        "sub_items": sub_items,
    }
