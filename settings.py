"""OneThing's settings: one class, read from environment variables (prefix ``ONETHING_``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent
DEV_SECRET = "onething-dev-secret-change-me-0000000000"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONETHING_", extra="ignore", populate_by_name=True)

    env: Literal["dev", "test", "prod"] = "prod"
    secret_key: str = DEV_SECRET
    token_ttl_minutes: int = Field(default=480, ge=1)

    database_url: str = Field(
        default=f"sqlite:///{ROOT / 'var' / 'onething.db'}",
        validation_alias=AliasChoices("DATABASE_URL", "ONETHING_DATABASE_URL"),
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "onething-cases"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    calendar_file: Path | None = None  # holiday notices beyond the calendar package's years
    data_sharing_fixture: Path = ROOT / "activities" / "fixtures" / "data_sharing.json"
    supervision_phone: str = "12345"
    archive_dir: Path = ROOT / "var" / "archive"  # electronic archive packages (§7.1.3)

    @model_validator(mode="after")
    def _no_default_secret_outside_dev(self) -> Settings:
        if self.env != "dev" and (self.secret_key == DEV_SECRET or len(self.secret_key) < 32):
            raise ValueError("ONETHING_SECRET_KEY must be set to a secret of at least 32 characters outside dev")
        return self


@cache
def get_settings() -> Settings:
    return Settings()


def installed_binary(name: str) -> str:
    """Path of a binary installed by pip beside this interpreter (temporal, temporal-test-server).

    pip puts them next to ``python`` in a virtual environment that may not be on PATH;
    nothing is ever downloaded at run time.
    """
    import os
    import shutil
    import sys

    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        raise RuntimeError(f"{name} is not installed; `make run` / `make test` install it from PyPI")
    return found
