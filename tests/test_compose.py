"""The production stack's files, checked without Docker (CI has no engine and no `docker compose`).

docker-compose.yml is validated, after interpolation as `docker compose` does it, against the
Compose Specification's JSON schema (tests/schemas/README.md says where it comes from); every
variable it hands our worker and API is one settings.py reads; every command our image runs is
one the CLI's parser accepts; and the wiring that scaling, secrets and the Temporal UI's codec
server depend on is what docs/deployment.md says it is.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import secrets
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from pydantic import AliasChoices

import cli
from api.routes.codec import router as codec_router
from models.case import CUSTOM_SEARCH_ATTRIBUTES
from settings import DEV_PAYLOAD_KEY, DEV_SECRET, Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"

APP_IMAGE = "onething"
SETUP_JOB = "temporal-setup"
# Each has no default anywhere: compose refuses to start until .env sets it.
SECRET_VARIABLES = (
    "ONETHING_SECRET_KEY",
    "ONETHING_PAYLOAD_KEYS",
    "ONETHING_METRICS_TOKEN",
    "POSTGRES_PASSWORD",
    "TEMPORAL_DB_PASSWORD",
    "READ_MODEL_DB_PASSWORD",
)


# -- reading the files ------------------------------------------------------------------


class MissingVariable(Exception):
    """A `${NAME:?message}` whose variable is unset: `docker compose` refuses to start."""


_REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>.*))?", re.DOTALL)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """The Compose Specification's interpolation (12-interpolation.md) of every string value."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.fullmatch(match["braced"])
        assert braced is not None, f"not a valid interpolation: ${{{match['braced']}}}"
        name, operator, argument = braced["name"], braced["operator"], braced["argument"] or ""
        present = name in env
        empty = not env.get(name)
        if operator is None:
            return env.get(name, "")
        if operator == ":-":
            return str(interpolate(argument, env)) if empty else env[name]
        if operator == "-":
            return env[name] if present else str(interpolate(argument, env))
        if operator in (":?", "?") and (empty if operator == ":?" else not present):
            raise MissingVariable(f"{name}: {argument}")
        if operator in (":?", "?"):
            return env[name]
        if operator == ":+":
            return "" if empty else str(interpolate(argument, env))
        return str(interpolate(argument, env)) if present else ""

    return _REFERENCE.sub(replace, value)


def raw_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def read_env_file(path: Path, *, include_commented: bool = False) -> dict[str, str]:
    """KEY=VALUE lines as `docker compose` reads .env (quotes stripped); optionally also the
    `# KEY=VALUE` lines that document optional settings."""
    pattern = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = pattern.match(line.strip())
        if match is None or (match["comment"] and not include_commented):
            continue
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[match["name"]] = value
    return values


def fresh_secrets() -> dict[str, str]:
    """What an operator pastes into .env (docs/deployment.md, 首次部署)."""
    key_id = "2026-11"
    return {
        "ONETHING_SECRET_KEY": secrets.token_urlsafe(48),
        "ONETHING_PAYLOAD_KEYS": json.dumps({key_id: base64.b64encode(os.urandom(32)).decode()}),
        "ONETHING_PAYLOAD_KEY_ID": key_id,
        "ONETHING_METRICS_TOKEN": secrets.token_urlsafe(32),
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "TEMPORAL_DB_PASSWORD": secrets.token_hex(24),
        "READ_MODEL_DB_PASSWORD": secrets.token_hex(24),
    }


@pytest.fixture(scope="module")
def filled_env() -> dict[str, str]:
    """.env.example with its empty secrets filled in: a deployment's .env."""
    return {**read_env_file(ENV_EXAMPLE), **fresh_secrets()}


@pytest.fixture(scope="module")
def compose(filled_env: dict[str, str]) -> dict[str, Any]:
    document = interpolate(raw_compose(), filled_env)
    assert isinstance(document, dict)
    return document


def our_services(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run our image (built from the Dockerfile)."""
    return {
        name: service
        for name, service in document["services"].items()
        if "build" in service or str(service.get("image", "")).split(":")[0] == APP_IMAGE
    }


def environment_of(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's environment, from either syntax; None for a name given without a value."""
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return {name: None if value is None else str(value) for name, value in environment.items()}
    pairs = [entry.split("=", 1) for entry in environment]
    return {pair[0]: pair[1] if len(pair) == 2 else None for pair in pairs}


def container_environment(service: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """What the container gets: a name without a value takes the value from .env or the shell,
    and is left out when neither sets it."""
    resolved: dict[str, str] = {}
    for name, value in environment_of(service).items():
        if value is not None:
            resolved[name] = value
        elif name in env:
            resolved[name] = env[name]
    return resolved


def settings_variables() -> set[str]:
    """Every environment variable Settings reads: prefix + field name, or the field's aliases."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(f"{prefix}{field_name}".upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
    return names


def dockerfile_instructions(stage: int | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped; with
    ``stage``, only that build stage's (-1: the final image)."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, arguments = full.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    if stage is None:
        return instructions
    stages: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages[stage]


def parse_cli(arguments: list[str]) -> Any:
    """The CLI's own parser on ``arguments``; a command it refuses fails the test, naming it."""
    try:
        return cli.build_parser().parse_args(arguments)
    except SystemExit as refused:
        pytest.fail(f"`onething {shlex.join(arguments)}` is not a command the CLI accepts (exit {refused.code})")


def published_host_ports(service: Mapping[str, Any]) -> list[range]:
    """The host ports each `ports` entry publishes (a range for `8000-8003:8000`)."""
    ranges = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            published = str(entry.get("published", ""))
        else:
            parts = str(entry).split(":")
            published = parts[-2] if len(parts) >= 2 else ""
        if not published:
            continue
        first, _, last = published.partition("-")
        ranges.append(range(int(first), int(last or first) + 1))
    return ranges


# -- (a) the Compose Specification ---------------------------------------------------------


def schema_errors(document: Any) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    # The schema names draft-07 as "https://json-schema.org/draft-07/schema", which jsonschema
    # does not recognise (it would fall back to the newest draft): choose draft-07 explicitly.
    assert "draft-07" in schema["$schema"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_schema_check_refuses_a_misspelt_key_and_an_unknown_condition(compose: dict[str, Any]) -> None:
    misspelt = copy.deepcopy(compose)
    misspelt["services"]["worker"]["healthchek"] = misspelt["services"]["worker"].pop("healthcheck")
    assert any("healthchek" in error for error in schema_errors(misspelt))

    unknown_condition = copy.deepcopy(compose)
    unknown_condition["services"]["api"]["depends_on"]["temporal"]["condition"] = "service_ready"
    assert any("depends_on" in error for error in schema_errors(unknown_condition))


# -- (b) every variable is a setting ---------------------------------------------------------


def test_every_variable_our_services_set_is_a_setting() -> None:
    services = our_services(raw_compose())
    assert {"worker", "api"} <= set(services), "the worker and the API run our image"
    known = settings_variables()
    unknown = {
        f"{service_name}: {name}"
        for service_name, service in services.items()
        for name in environment_of(service)
        if name.upper() not in known
    }
    assert not unknown, f"settings.py reads no such variable (misspelt?): {sorted(unknown)}"


def test_every_variable_the_dockerfile_sets_for_the_app_is_a_setting() -> None:
    names = [
        token.split("=", 1)[0]
        for keyword, arguments in dockerfile_instructions()
        if keyword == "ENV"
        for token in shlex.split(arguments)
    ]
    ours = [name for name in names if name.startswith("ONETHING_") or name == "DATABASE_URL"]
    assert ours, "the image sets its archive and calendar paths"
    assert set(ours) <= settings_variables(), sorted(set(ours) - settings_variables())


def test_example_env_names_settings_and_compose_variables_only() -> None:
    documented = read_env_file(ENV_EXAMPLE, include_commented=True)
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    referenced = {
        match["named"] or braced["name"]
        for match in _REFERENCE.finditer(compose_text)
        if not match["escaped"] and (braced := _BRACED.fullmatch(match["braced"] or "x")) is not None
    }
    passed_through = {name for service in our_services(raw_compose()).values() for name in environment_of(service)}
    known = settings_variables()
    for name in documented:
        if name.startswith("ONETHING_"):
            assert name in known, f".env.example sets {name}, which settings.py does not read"
        else:
            assert name in referenced, f".env.example sets {name}, which docker-compose.yml never uses"
        assert name in referenced or name in passed_through, f"{name} never reaches a container"
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", compose_text))
    assert required - set(documented) == set(), "every variable compose requires is in .env.example"
    optional = {name for name, value in environment_of(our_services(raw_compose())["worker"]).items() if value is None}
    assert optional <= set(documented), f"optional settings missing from .env.example: {optional - set(documented)}"


def test_compose_environment_makes_valid_production_settings(
    compose: dict[str, Any], filled_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ONETHING_") or name.upper() == "DATABASE_URL":
            monkeypatch.delenv(name)
    services = our_services(compose)
    for service_name in ("worker", "api"):
        environment = container_environment(services[service_name], filled_env)
        with monkeypatch.context() as scoped:
            for name, value in environment.items():
                scoped.setenv(name, value)
            settings = Settings()
        assert settings.env == "prod"
        assert settings.database_url.startswith("postgresql://onething:")
        assert settings.database_url.endswith("@postgresql:5432/onething")
        assert settings.temporal_address.split(":")[0] in compose["services"]
        assert settings.payload_key_id in settings.payload_key_bytes()
        assert settings.archive_dir == Path("/var/lib/onething/archive")
        assert settings.metrics_token is not None
        healthcheck = " ".join(services[service_name]["healthcheck"]["test"])
        if service_name == "worker":
            assert f"127.0.0.1:{settings.worker_metrics_port}/metrics" in healthcheck
        else:
            assert settings.api_host == "0.0.0.0"
            assert f"127.0.0.1:{settings.api_port}/health" in healthcheck


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_come_only_from_the_environment(filled_env: dict[str, str]) -> None:
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = read_env_file(ENV_EXAMPLE)
    for name in SECRET_VARIABLES:
        assert example.get(name) == "", f".env.example must leave {name} empty, not ship a value"
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", compose_text)
        assert uses, f"docker-compose.yml never passes {name}"
        assert all(use.startswith(":?") for use in uses), f"{name} must be required (${{{name}:?…}}), no default"
    for text in (compose_text, ENV_EXAMPLE.read_text(encoding="utf-8"), DOCKERFILE.read_text(encoding="utf-8")):
        assert DEV_SECRET not in text
        assert DEV_PAYLOAD_KEY not in text
    # Unfilled, as copied: compose refuses to start.
    with pytest.raises(MissingVariable):
        interpolate(raw_compose(), example)
    # Any one secret missing is enough to refuse.
    for name in SECRET_VARIABLES:
        with pytest.raises(MissingVariable, match=name):
            interpolate(raw_compose(), {**filled_env, name: ""})


def test_build_context_leaves_out_secrets_and_local_data() -> None:
    patterns = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    for excluded in (".env", "var/", ".venv/", ".git/", "*.db"):
        assert excluded in patterns, f".dockerignore must exclude {excluded}"


# -- (c) commands ------------------------------------------------------------------------------


def test_image_and_services_run_commands_the_cli_accepts() -> None:
    entrypoint = [
        json.loads(arguments) for keyword, arguments in dockerfile_instructions(-1) if keyword == "ENTRYPOINT"
    ]
    default = [json.loads(arguments) for keyword, arguments in dockerfile_instructions(-1) if keyword == "CMD"]
    assert entrypoint == [["onething"]]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["onething"] == "cli:main"
    assert parse_cli(default[-1]).command == "api"

    services = our_services(raw_compose())
    for service_name, expected in (("worker", "worker"), ("api", "api")):
        command = services[service_name]["command"]
        arguments = shlex.split(command) if isinstance(command, str) else list(command)
        assert parse_cli(arguments).command == expected
        assert "entrypoint" not in services[service_name], "the image's `onething` entrypoint runs the command"


def test_the_image_build_runs_commands_the_cli_accepts() -> None:
    runs = [arguments for keyword, arguments in dockerfile_instructions(-1) if keyword == "RUN"]
    invocations = [match.group(1) for run in runs for match in re.finditer(r"(?:^|&&)\s*onething ([^&]+)", run)]
    assert invocations, "the build checks the catalogue with the installed command"
    for invocation in invocations:
        parse_cli(shlex.split(invocation))


def docs_cli_invocations() -> Iterator[list[str]]:
    """`docker compose run … worker|api ARGS` in docs/deployment.md's code blocks: ARGS go to `onething`."""
    command = re.compile(
        r"^docker compose run (?P<options>(?:--?[\w-]+(?:[ =][^-\s]\S*)? )*)(?:worker|api) (?P<rest>.+)$"
    )
    in_code = False
    for line in DEPLOYMENT_DOC.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        match = command.match(line.strip()) if in_code else None
        if match is None or "--entrypoint" in match["options"]:
            continue
        # Shell redirections and comments are not the command's arguments.
        yield shlex.split(re.split(r"\s[#<>|]", match["rest"])[0])


def test_deployment_guide_runs_commands_the_cli_accepts() -> None:
    invocations = list(docs_cli_invocations())
    assert len(invocations) >= 3, "the guide shows rebuild, calendar and catalogue commands"
    for arguments in invocations:
        parse_cli(arguments)


# -- (d) scaling and the Temporal UI -------------------------------------------------------------


def test_worker_and_api_can_be_scaled(compose: dict[str, Any]) -> None:
    services = our_services(compose)
    for name in ("worker", "api"):
        assert "container_name" not in services[name], f"{name}: a fixed container name allows one replica"
        assert "hostname" not in services[name]
    assert "ports" not in services["worker"], "a worker publishes no host port"
    api_ranges = published_host_ports(services["api"])
    assert api_ranges, "the API is published"
    assert all(len(ports) >= 2 for ports in api_ranges), "each API port mapping is a range: one port per replica"
    # Every replica reads and writes one archive: a named volume, not a container's own disk.
    archive_mounts = [
        {volume for volume in services[name]["volumes"] if volume.endswith(":/var/lib/onething/archive")}
        for name in ("worker", "api")
    ]
    assert archive_mounts[0] == archive_mounts[1] != set()
    assert next(iter(archive_mounts[0])).split(":")[0] in compose["volumes"]


def test_the_api_believes_only_the_load_balancers_forwarded_address() -> None:
    """Without it every request comes from the balancer: one address's login limit for everyone."""
    api = our_services(raw_compose())["api"]
    assert environment_of(api)["ONETHING_FORWARDED_ALLOW_IPS"] == (
        "${ONETHING_FORWARDED_ALLOW_IPS:?the HTTPS load balancer's address, see docs/deployment.md}"
    )
    assert read_env_file(ENV_EXAMPLE)["ONETHING_FORWARDED_ALLOW_IPS"] not in {"", "*"}


def test_temporal_ui_decodes_payloads_through_the_api_codec_server(compose: dict[str, Any]) -> None:
    ui = compose["services"]["temporal-ui"]
    environment = environment_of(ui)
    endpoint = urlsplit(str(environment["TEMPORAL_CODEC_ENDPOINT"]))
    assert endpoint.path == codec_router.prefix == "/codec"
    # The browser calls the endpoint: a compose service name would not resolve there.
    assert endpoint.hostname not in compose["services"], f"{endpoint.hostname} resolves inside compose only"
    api = compose["services"]["api"]
    assert endpoint.port == published_host_ports(api)[0].start, "the first API replica's host port"
    assert environment["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true", "the codec server reads the session cookie"
    # The API lets the UI's origin, as the browser sees it, call /codec with that cookie.
    ui_origin_port = published_host_ports(ui)[0].start
    origins = json.loads(str(environment_of(api)["ONETHING_CODEC_CORS_ORIGINS"]))
    assert f"http://localhost:{ui_origin_port}" in origins
    assert f"http://127.0.0.1:{ui_origin_port}" in origins


def test_search_attributes_are_registered_before_our_services_start(compose: dict[str, Any]) -> None:
    setup = compose["services"][SETUP_JOB]
    environment = environment_of(setup)
    registered = set(str(environment["CUSTOM_SEARCH_ATTRIBUTES"]).split())
    assert registered == set(CUSTOM_SEARCH_ATTRIBUTES), "models/case.py CUSTOM_SEARCH_ATTRIBUTES"
    script = "\n".join(setup["command"])
    assert "search-attribute create" in script and "--type Keyword" in script
    for name, service in our_services(compose).items():
        assert service["depends_on"][SETUP_JOB]["condition"] == "service_completed_successfully", name
        assert environment_of(service)["ONETHING_TEMPORAL_NAMESPACE"] == environment["NAMESPACE"], name


def test_services_wait_for_what_they_need_to_be_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, options in (service.get("depends_on") or {}).items():
            condition = options["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s missing healthcheck"
            if condition == "service_completed_successfully":
                restart = services[dependency].get("restart", "no")
                assert restart.startswith(("no", "on-failure")), f"{dependency} is a one-shot job, not restarted"
    for name in ("postgresql", "temporal", "worker", "api"):
        assert "healthcheck" in services[name], name
    for name in our_services(compose):
        assert services[name]["depends_on"]["postgresql"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_third_party_images_are_pinned(compose: dict[str, Any]) -> None:
    ours = our_services(compose)
    for name, service in compose["services"].items():
        if name in ours:
            continue
        image = service["image"]
        assert re.search(r"(:\d[\w.-]*|@sha256:[0-9a-f]{64})$", image), f"{name}: {image} is not pinned to a version"


def test_image_runs_as_a_non_root_user() -> None:
    users = [arguments for keyword, arguments in dockerfile_instructions(-1) if keyword == "USER"]
    assert users, "the final image sets a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


# -- the installed package ---------------------------------------------------------------------


def test_installed_package_has_every_module_and_data_file_the_app_reads() -> None:
    """The image installs the package (not the source tree): a module or data file that
    pyproject.toml leaves out is missing in production only."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages: list[str] = setuptools["packages"]
    package_data: dict[str, list[str]] = setuptools.get("package-data", {})
    installed: set[Path] = {ROOT / f"{module}.py" for module in setuptools.get("py-modules", [])}
    for package in packages:
        directory = ROOT / package.replace(".", "/")
        installed.update(directory.glob("*.py"))
        for pattern in package_data.get(package, []):
            installed.update(directory.glob(pattern))
    top_levels = {package.split(".")[0] for package in packages}
    shipped = {
        path
        for top in top_levels
        for path in (ROOT / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    missing = sorted(str(path.relative_to(ROOT)) for path in shipped - installed)
    assert not missing, f"pyproject.toml [tool.setuptools] leaves these out of the installed package: {missing}"
