"""Settings: the API and worker refuse to start outside dev with the default secret."""

import pytest
from pydantic import ValidationError

from settings import DEV_SECRET, Settings


def test_default_secret_is_refused_outside_dev() -> None:
    for env in ("prod", "test"):
        with pytest.raises(ValidationError, match="ONETHING_SECRET_KEY"):
            Settings(env=env, secret_key=DEV_SECRET)


def test_short_secret_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="prod", secret_key="too-short")


def test_dev_runs_with_the_default_secret() -> None:
    assert Settings(env="dev").secret_key == DEV_SECRET


def test_database_url_is_read_from_the_conventional_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://onething@localhost/onething")
    assert Settings(env="dev").database_url == "postgresql://onething@localhost/onething"


def test_database_url_can_be_given_by_name() -> None:
    assert Settings(env="dev", database_url="sqlite:///elsewhere.db").database_url == "sqlite:///elsewhere.db"
