"""The catalogue service: catalogue versions in the read-model database: publish, list,
retire, and pick the version a new case starts on.

The YAML files under domain/things are the shipped versions; they are recorded
here on start-up. An admin publishes further versions through the API or the CLI;
each is validated with the same rules as a shipped file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from domain.catalogue import CatalogueError, load_departments, parse_definition, shipped_definitions
from models.catalogue import ThingDefinition
from models.errors import DomainError, ErrorCode
from models.tables import CatalogueVersion

ACTIVE = "active"
RETIRED = "retired"


def definition_fingerprint(definition: ThingDefinition) -> str:
    canonical = json.dumps(definition.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_shipped_definitions(session: Session, now: datetime | None = None) -> None:
    """Record every shipped definition; a shipped file whose content changed without a
    new version number is refused, since cases already ran on the old content."""
    for definition in shipped_definitions().values():
        fingerprint = definition_fingerprint(definition)
        stored = session.get(CatalogueVersion, (definition.code, definition.version))
        if stored is None:
            session.add(
                CatalogueVersion(
                    thing=definition.code,
                    version=definition.version,
                    name_zh=definition.name_zh,
                    fingerprint=fingerprint,
                    definition=definition.model_dump(mode="json"),
                    published_at=now or datetime.now(UTC),
                    published_by="shipped",
                )
            )
        elif stored.fingerprint != fingerprint:
            raise CatalogueError(
                f"{definition.code}.yaml",
                "version",
                f"content differs from published version {definition.version}: give it a new version number",
            )
    session.commit()


def list_versions(session: Session, thing: str | None = None) -> list[CatalogueVersion]:
    query = select(CatalogueVersion).order_by(col(CatalogueVersion.thing), col(CatalogueVersion.version))
    if thing is not None:
        query = query.where(col(CatalogueVersion.thing) == thing)
    return list(session.execute(query).scalars())


def current_definitions(session: Session) -> dict[str, ThingDefinition]:
    """The newest active version of every thing."""
    current: dict[str, ThingDefinition] = {}
    for row in list_versions(session):
        if row.status == ACTIVE:
            current[row.thing] = ThingDefinition.model_validate(row.definition)
    return current


def definition_for(session: Session, thing: str, version: int | None = None) -> ThingDefinition:
    """The given version of a thing, or its newest active one; 404 if there is none."""
    query = select(CatalogueVersion).where(col(CatalogueVersion.thing) == thing)
    if version is None:
        query = query.where(col(CatalogueVersion.status) == ACTIVE)
    else:
        query = query.where(col(CatalogueVersion.version) == version)
    row = session.execute(query.order_by(col(CatalogueVersion.version).desc()).limit(1)).scalars().first()
    if row is None:
        what = f"version {version} of {thing!r}" if version is not None else f"an active version of {thing!r}"
        raise DomainError(ErrorCode.NOT_FOUND, f"事项不存在 (no {what})")
    return ThingDefinition.model_validate(row.definition)


def publish(session: Session, thing: str, raw: dict[str, Any], published_by: str) -> CatalogueVersion:
    """Validate and store the next version of a thing. Running cases are untouched."""
    latest = session.execute(
        select(func.max(CatalogueVersion.version)).where(col(CatalogueVersion.thing) == thing)
    ).scalar_one_or_none()
    if latest is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"事项不存在 (no thing {thing!r})")
    if raw.get("code", thing) != thing:
        raise DomainError(ErrorCode.INVALID, "事项编码不一致 (code mismatch)", {"code": f"must be {thing!r}"})
    document = {**raw, "code": thing, "version": latest + 1}
    try:
        definition = parse_definition(document, f"{thing} v{latest + 1}", load_departments())
    except CatalogueError as exc:
        raise DomainError(ErrorCode.INVALID, "事项定义无效 (invalid definition)", {exc.path: exc.reason}) from exc
    row = CatalogueVersion(
        thing=thing,
        version=definition.version,
        name_zh=definition.name_zh,
        origin="published",
        fingerprint=definition_fingerprint(definition),
        definition=definition.model_dump(mode="json"),
        published_at=datetime.now(UTC),
        published_by=published_by,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def retire(session: Session, thing: str, version: int) -> CatalogueVersion:
    row = session.get(CatalogueVersion, (thing, version))
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"事项版本不存在 (no version {version} of {thing!r})")
    if row.status == RETIRED:
        raise DomainError(ErrorCode.CONFLICT, "该版本已停用 (already retired)")
    others = [v for v in list_versions(session, thing) if v.status == ACTIVE and v.version != version]
    if not others:
        raise DomainError(ErrorCode.CONFLICT, "不能停用唯一的有效版本 (the last active version cannot be retired)")
    row.status = RETIRED
    row.retired_at = datetime.now(UTC)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row
