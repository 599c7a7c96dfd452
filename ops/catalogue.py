"""`onething catalogue validate|list|publish|retire`: the catalogue's versions, from the command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from domain.catalogue import shipped_definitions
from settings import get_settings


def validate_definitions(files: list[str]) -> int:
    """Check definition files (the shipped ones when ``files`` is empty)."""
    from domain.catalogue import CatalogueError, load_definition_file, load_departments

    try:
        if files:
            departments = load_departments()
            for file in files:
                definition = load_definition_file(Path(file), departments)
                print(f"ok  {file}: {definition.code} v{definition.version} ({definition.name_zh})")
        else:
            from domain.subjects import check_subject_fields

            shipped = shipped_definitions()
            for definition in shipped.values():
                print(f"ok  {definition.code} v{definition.version} ({definition.name_zh})")
            problems = check_subject_fields({code: definition.form for code, definition in shipped.items()})
            for problem in problems:
                print(f"invalid  {problem}", file=sys.stderr)
            if problems:
                return 1
    except CatalogueError as error:
        print(f"invalid  {error}", file=sys.stderr)
        return 1
    return 0


def manage_versions(action: str, *, thing: str | None = None, file: str | None = None, version: int = 0) -> int:
    """list | publish | retire, on the read model's catalogue versions."""
    from sqlmodel import Session

    from infra.db import init_db, make_engine
    from models.errors import DomainError
    from services.catalogue import list_versions, publish, record_shipped_definitions, retire

    engine = make_engine(get_settings().database_url)
    init_db(engine)
    with Session(engine) as session:
        record_shipped_definitions(session)
        try:
            if action == "publish":
                import yaml

                assert file is not None, "publish needs a file"
                raw = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
                row = publish(session, raw.get("code", ""), raw, f"cli:{os.environ.get('USER', 'admin')}")
                print(f"published {row.thing} v{row.version}")
            elif action == "retire":
                assert thing is not None, "retire needs a thing"
                row = retire(session, thing, version)
                print(f"retired {row.thing} v{row.version}")
            else:
                for row in list_versions(session, thing):
                    print(f"{row.thing:<20} v{row.version:<4} {row.status:<8} {row.origin:<10} {row.name_zh}")
        except DomainError as error:
            details = "; ".join(f"{path}: {reason}" for path, reason in error.fields.items())
            print(f"{error.message}{': ' + details if details else ''}", file=sys.stderr)
            return 1
    return 0
