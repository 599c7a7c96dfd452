"""The "one thing" catalogue: the public tree, each sub-item with its schemas and examples,
its service guide (办事指南), flow chart, data-sharing needs, and versions (admin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy import Engine

from api.deps import ActorDep, EngineDep, SessionDep, require_role
from api.errors import error_responses
from api.schemas import Code, also_as
from documents.flowchart import mermaid_flowchart, svg_flowchart
from documents.guide import (
    data_sharing_csv,
    data_sharing_needs,
    guide_qr_svg,
    materials_reduction,
    render_guide_html,
    service_guide,
)
from domain.catalogue import load_life_stages
from domain.forms import FORMS
from domain.results import result_json_schema
from domain.samples import sample_answers, sample_form, sample_result
from models.case import Actor
from models.catalogue import ThingDefinition
from models.errors import DomainError, ErrorCode
from models.tables import CatalogueVersion
from services.audit import AuditAction, record_staff_action
from services.catalogue import current_definitions, definition_for, list_versions, publish, retire

router = APIRouter(prefix="/catalogue", tags=["catalogue"], responses=error_responses(404, 422))

# Versions count from 1; a larger number than a database INTEGER holds is invalid input, not a 500.
MAX_VERSION = 2**31 - 1
VersionQuery = Annotated[
    int | None, Query(ge=1, le=MAX_VERSION, description="a published version; the newest active one by default")
]
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION)]
SituationQuery = Annotated[str | None, Query(max_length=64, description="one situation (情形) only")]


class VersionView(BaseModel):
    thing: str
    version: int
    name_zh: str
    status: str
    origin: str
    published_at: Any
    published_by: str
    retired_at: Any | None


def _version_view(row: CatalogueVersion) -> VersionView:
    return VersionView.model_validate(row, from_attributes=True)


def _wants(request: Request, requested: str | None, *media_types: str) -> str | None:
    """The first of ``media_types`` the client asks for (``?format=`` wins over Accept)."""
    if requested:
        return next((m for m in media_types if requested in m), None)
    accept = request.headers.get("accept", "")
    return next((m for m in media_types if m in accept), None)


def _situation_view(definition: ThingDefinition, situation: str | None) -> ThingDefinition:
    if situation is None:
        return definition
    try:
        return definition.for_situation(situation)
    except KeyError:
        raise DomainError(
            ErrorCode.INVALID, "没有该情形 (unknown situation)", {"situation": f"no situation {situation!r}"}
        ) from None


@router.get("")
def catalogue_tree(session: SessionDep) -> dict[str, Any]:
    """主项 → 子项 → 情形项."""
    definitions = current_definitions(session)
    stages = []
    for stage in load_life_stages().values():
        items = [d for d in definitions.values() if d.life_stage == stage.code]
        stages.append(
            {
                "code": stage.code,
                "name_zh": stage.name_zh,
                "audience": stage.audience,
                "sub_items": [
                    {
                        "code": d.code,
                        "name_zh": d.name_zh,
                        "version": d.version,
                        "lead_department": d.lead_department,
                        "situations": [{"code": s.code, "name_zh": s.name_zh} for s in d.situations],
                    }
                    for d in items
                ],
            }
        )
    return {"life_stages": stages}


@router.get("/{sub_item}")
def read_sub_item(sub_item: Code, session: SessionDep, version: VersionQuery = None) -> dict[str, Any]:
    definition = definition_for(session, sub_item, version)
    situation = definition.situations[0].code if definition.situations else None
    example_form = sample_form(definition.code, situation)
    steps = []
    for step in definition.steps:
        steps.append(
            {
                "code": step.code,
                "name_zh": step.name_zh,
                "departments": sorted(
                    {step.department_for(c.code) for c in definition.channels if step.applies_to(c.code)}
                ),
                "depends_on": step.depends_on,
                "time_limit": step.time_limit,
                "channels": step.channels,
                "result_schema": result_json_schema(step),
                "result_example": sample_result(step, example_form),
            }
        )
    return {
        **definition.model_dump(mode="json", exclude={"steps", "department_names_zh"}),
        "collaborating_departments": definition.collaborating_departments,
        "form_schema": _submission_schema(definition),
        "form_example": {
            "thing": definition.code,
            "channel": definition.channels[0].code,
            "answers": sample_answers(definition.code, situation),
            "form": example_form,
        },
        "steps": steps,
    }


def _submission_schema(definition: ThingDefinition) -> dict[str, Any]:
    """JSON Schema of a POST /cases body for this thing: situation answers first, then the form."""
    answers = {
        question.code: {"title": question.label_zh, "enum": list(question.options)} for question in definition.questions
    }
    return {
        "type": "object",
        "title": definition.name_zh,
        "properties": {
            "thing": {"const": definition.code},
            "channel": {"enum": [channel.code for channel in definition.channels]},
            "answers": {"type": "object", "properties": answers, "additionalProperties": False},
            "form": FORMS[definition.form].model_json_schema(),
        },
        "required": ["thing", "channel", "form"],
    }


@router.get("/{sub_item}/guide", response_model=None, responses=also_as("text/html"))
def read_guide(
    sub_item: Code,
    request: Request,
    session: SessionDep,
    version: VersionQuery = None,
    situation: SituationQuery = None,
    format: Literal["json", "html"] | None = None,
) -> Response | dict[str, Any]:
    definition = definition_for(session, sub_item, version)
    _situation_view(definition, situation)
    url = str(request.url_for("read_guide", sub_item=sub_item))
    guide = service_guide(definition, situation, guide_url=url)
    if _wants(request, format, "text/html", "json") == "text/html":
        return HTMLResponse(render_guide_html(guide, guide_qr_svg(url)))
    return guide.model_dump(mode="json")


@router.get(
    "/{sub_item}/flowchart",
    response_model=None,
    response_class=Response,
    responses=also_as("image/svg+xml", "text/vnd.mermaid"),
)
def read_flowchart(
    sub_item: Code,
    request: Request,
    session: SessionDep,
    version: VersionQuery = None,
    situation: SituationQuery = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    format: Literal["mermaid", "svg"] | None = None,
) -> Response:
    definition = _situation_view(definition_for(session, sub_item, version), situation)
    if channel is not None and channel not in {c.code for c in definition.channels}:
        raise DomainError(ErrorCode.INVALID, "没有该渠道 (unknown channel)", {"channel": f"no channel {channel!r}"})
    if _wants(request, format, "image/svg+xml", "mermaid") == "image/svg+xml":
        return Response(svg_flowchart(definition, channel), media_type="image/svg+xml")
    return Response(mermaid_flowchart(definition, channel), media_type="text/vnd.mermaid; charset=utf-8")


@router.get("/{sub_item}/data-sharing", response_model=None, responses=also_as("text/csv"))
def read_data_sharing_needs(
    sub_item: Code,
    request: Request,
    session: SessionDep,
    version: VersionQuery = None,
    format: Literal["json", "csv"] | None = None,
) -> Response | dict[str, Any]:
    definition = definition_for(session, sub_item, version)
    rows = data_sharing_needs(definition)
    if _wants(request, format, "text/csv", "json") == "text/csv":
        return Response(
            data_sharing_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{sub_item}-data-sharing.csv"'},
        )
    return {"thing": definition.code, "version": definition.version, "rows": [r.model_dump(mode="json") for r in rows]}


@router.get("/{sub_item}/materials-reduction")
def read_materials_reduction(sub_item: Code, session: SessionDep, version: VersionQuery = None) -> dict[str, Any]:
    return materials_reduction(definition_for(session, sub_item, version)).model_dump(mode="json")


@router.get("/{sub_item}/versions", responses=error_responses(401, 403))
def read_versions(sub_item: Code, actor: ActorDep, session: SessionDep) -> list[VersionView]:
    require_role(actor, "admin", "supervisor")
    rows = list_versions(session, sub_item)
    if not rows:
        raise DomainError(ErrorCode.NOT_FOUND, f"事项不存在 (no thing {sub_item!r})")
    return [_version_view(row) for row in rows]


@router.post("/{sub_item}/versions", status_code=201, responses=error_responses(401, 403, 413))
def publish_version(
    sub_item: Code,
    actor: ActorDep,
    session: SessionDep,
    engine: EngineDep,
    # No more keys than a definition has fields: any other is refused by name when it is parsed.
    definition: Annotated[dict[Code, Any], Body(max_length=len(ThingDefinition.model_fields))],
) -> VersionView:
    """Publish the next version (validated like a shipped file); running cases keep theirs."""
    require_role(actor, "admin")
    view = _version_view(publish(session, sub_item, definition, actor.username))
    _audit_version(engine, actor, AuditAction.CATALOGUE_PUBLISH, view)
    return view


@router.post("/{sub_item}/versions/{version}/retire", responses=error_responses(401, 403, 409))
def retire_version(
    sub_item: Code, version: VersionPath, actor: ActorDep, session: SessionDep, engine: EngineDep
) -> VersionView:
    require_role(actor, "admin")
    view = _version_view(retire(session, sub_item, version))
    _audit_version(engine, actor, AuditAction.CATALOGUE_RETIRE, view)
    return view


def _audit_version(engine: Engine, actor: Actor, action: AuditAction, view: VersionView) -> None:
    detail = {"thing": view.thing, "version": view.version}
    record_staff_action(engine, actor, action, case_id=None, target=f"{view.thing}@{view.version}", detail=detail)
