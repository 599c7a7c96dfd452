"""The ``onething`` command: run the whole local stack, or one of its parts.

``onething run`` (what ``make run`` calls) starts the Temporal dev server with a
file database under ./var, the worker and the API, seeds demo cases, prints the
URLs and stops everything it started on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from models.case import CUSTOM_SEARCH_ATTRIBUTES
from models.catalogue import shipped_definitions
from models.redaction import install_log_redaction
from models.samples import sample_form, sample_result
from settings import ROOT, Settings, get_settings, installed_binary

logger = logging.getLogger("onething")


def dev_server_command(settings: Settings, db_file: Path, ui_port: int) -> list[str]:
    host, _, port = settings.temporal_address.rpartition(":")
    command = [
        installed_binary("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--ip",
        host or "127.0.0.1",
        "--port",
        port,
        "--ui-port",
        str(ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        # Payloads are encrypted (workflows/codec.py); the UI asks the API's codec server to show them.
        "--ui-codec-endpoint",
        f"http://{settings.api_host}:{settings.api_port}/codec",
    ]
    for name in CUSTOM_SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{name}=Keyword"]
    return command


def free_port() -> int:
    """A port nothing listens on now (for stacks started side by side: tests, the benchmark)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(address: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {address} opened")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{address} did not open within {timeout:.0f} s")


def wait_for_api(base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"API at {base_url} not healthy within {timeout:.0f} s")


_TOKENS: dict[tuple[str, str], dict[str, str]] = {}


def _login(client: httpx.Client, username: str) -> dict[str, str]:
    """A demo account's auth header, logged in once per API (as a person stays logged in;
    logging in per request would also trip the login rate limit)."""
    key = (str(client.base_url), username)
    if key not in _TOKENS:
        response = client.post("/auth/token", data={"username": username, "password": "demo"})
        response.raise_for_status()
        _TOKENS[key] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return _TOKENS[key]


def play_officers(client: httpx.Client, case_id: str, form: dict[str, Any], stop_after: int | None = None) -> int:
    """Claim and complete open tasks of a case, as each department's officer would."""
    done = 0
    while stop_after is None or done < stop_after:
        case = client.get(f"/cases/{case_id}", headers=_login(client, "supervisor")).json()
        definition = shipped_definitions()[case["thing"]]
        open_steps = [step for step in case["steps"] if step["status"] in {"open", "claimed"}]
        if not open_steps:
            return done
        step = open_steps[0]
        headers = _login(client, f"{step['department']}_officer")
        task_id = f"{case_id}:{step['step']}"
        client.post(f"/tasks/{task_id}/claim", headers=headers).raise_for_status()
        result = sample_result(definition.step(step["step"]), form)
        client.post(f"/tasks/{task_id}/complete", headers=headers, json={"result": result}).raise_for_status()
        done += 1
    return done


def submit_sample(
    client: httpx.Client, thing: str, channel: str, form: dict[str, Any], headers: dict[str, str], key: str
) -> tuple[str, bool]:
    """Submit a sample case; (its id, whether this call created it rather than finding it by key)."""
    response = client.post(
        "/cases",
        json={"thing": thing, "channel": channel, "form": form},
        headers={**headers, "Idempotency-Key": key},
    )
    response.raise_for_status()
    return response.json()["case_id"], response.status_code == 201


def seed_demo(base_url: str) -> list[str]:
    """Submit sample birth cases (idempotent: the same keys find the same cases)."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        applicant = _login(client, "applicant1")
        clerk = _login(client, "hospital_clerk")
        window = _login(client, "service_center_clerk")
        cases = []
        for key, thing, channel, headers, steps_done in (
            ("demo-online-1", "birth", "online", applicant, 0),
            ("demo-hospital-1", "birth", "hospital", clerk, 2),
            ("demo-company-1", "company_opening", "service_center", window, 1),
            ("demo-retirement-1", "retirement", "online", applicant, 0),
        ):
            form = sample_form(thing, delivery="mail" if channel == "online" else "pickup")
            case_id, created = submit_sample(client, thing, channel, form, headers, key)
            if created and steps_done:
                play_officers(client, case_id, form, stop_after=steps_done)
            cases.append(case_id)
        return cases


def demo_command(args: argparse.Namespace) -> int:
    """Seed the demo cases, then submit ``--cases`` more and play the officers on them,
    each case taken a different number of steps, so every status shows up."""
    if args.base_url is None:
        settings = get_settings()
        base_url = f"http://{settings.api_host}:{settings.api_port}"
    else:
        base_url = args.base_url
    try:
        seeded = seed_demo(base_url)
    except httpx.HTTPError as error:
        print(f"无法连接 API (cannot reach {base_url}): {error}", file=sys.stderr)
        return 1
    for case_id in seeded:
        print(case_id)
    if args.cases <= 0:
        return 0
    progress = ProgressBar("演示案件 demo cases")
    steps = len(shipped_definitions()["birth"].steps_for("online"))
    try:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            applicant = _login(client, "applicant1")
            for index in range(args.cases):
                form = sample_form("birth", delivery="mail")
                key = f"demo-more-{os.getpid()}-{index}"
                case_id, _ = submit_sample(client, "birth", "online", form, applicant, key)
                play_officers(client, case_id, form, stop_after=index % (steps + 1))
                print(case_id)
                progress(index + 1, args.cases)
    finally:
        progress.close()
    return 0


def calendar_command(args: argparse.Namespace) -> int:
    """show YEAR | load FILE — the working-day calendar the workers compute deadlines with."""
    from models.workcalendar import CalendarDataError, default_calendar_file, load_holiday_notices, make_calendar

    settings = get_settings()
    target = settings.calendar_file or default_calendar_file()
    if args.action == "show":
        print(describe_year(make_calendar(settings.calendar_file), args.year))
        return 0
    try:
        incoming = load_holiday_notices(args.file)
    except (CalendarDataError, OSError) as error:
        print(f"通知文件有误 (invalid notice file): {error}", file=sys.stderr)
        return 1
    current = load_holiday_notices(target) if target.exists() else {}
    clashes = sorted(set(incoming) & set(current))
    if clashes and not args.replace:
        years = ", ".join(map(str, clashes))
        print(f"日历文件已有 {years} 年的通知，未修改 (already in {target}; --replace to replace)", file=sys.stderr)
        return 1
    merged = {**current, **incoming}
    write_holiday_notices(target, merged)
    for year in sorted(incoming):
        print(f"loaded {year}: {incoming[year].source}")
    print(f"written: {target}. 重启 worker 后生效 (restart the workers: they read the calendar at start)")
    return 0


def describe_year(calendar: Any, year: int) -> str:
    """A year's rest days that fall on weekdays and working days on weekends, with the totals."""
    from datetime import date, timedelta

    day, end = date(year, 1, 1), date(year + 1, 1, 1)
    weekday_rest: list[date] = []
    weekend_work: list[date] = []
    working = 0
    provisional = False
    while day < end:
        is_working = calendar.is_working_day(day)
        provisional = provisional or calendar.is_provisional(day)
        working += is_working
        if day.weekday() < 5 and not is_working:
            weekday_rest.append(day)
        elif day.weekday() >= 5 and is_working:
            weekend_work.append(day)
        day += timedelta(days=1)
    lines = [f"{year} 年: {working} 个工作日 (working days)"]
    if provisional:
        lines.append("  尚无该年节假日通知，仅按周末计算，时限为暂定 (no notice yet: weekends only, provisional)")
    lines.append("  工作日放假 (weekday holidays): " + (", ".join(d.isoformat() for d in weekday_rest) or "无"))
    lines.append("  周末调休上班 (make-up working days): " + (", ".join(d.isoformat() for d in weekend_work) or "无"))
    return "\n".join(lines)


def write_holiday_notices(target: Path, notices: dict[int, Any]) -> None:
    """Rewrite the notice file with ``notices``, keeping its explanatory header."""
    import yaml

    header = []
    if target.exists():
        for line in target.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
    document = {
        "notices": [
            {
                "year": year,
                "source": notice.source,
                "holidays": sorted(day.isoformat() for day in notice.holidays),
                "workdays": sorted(day.isoformat() for day in notice.workdays),
            }
            for year, notice in sorted(notices.items())
        ]
    }
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(".tmp")
    staged.write_text("\n".join([*header, body]), encoding="utf-8")
    staged.replace(target)  # atomic: a worker starting now reads the old file or the new one


STAFF_ROLES_WITH_UNIT = {"officer", "clerk"}


def accounts_command(args: argparse.Namespace) -> int:
    """add | list | passwd | remove — staff and applicant accounts in the read-model database.

    Production has no demo accounts; this is how an administrator creates the real ones.
    Passwords are read without echo (or one line from stdin with --password-stdin) and
    stored only as argon2 hashes; nothing here prints or logs them."""
    import getpass

    from sqlmodel import Session, col, select

    from api.security import hash_password
    from models.catalogue import load_departments
    from models.db import init_db, make_engine
    from models.tables import UserAccount

    def read_password() -> str | None:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("密码 (password): ")
            if getpass.getpass("再次输入 (again): ") != password:
                print("两次输入的密码不一致 (the passwords differ)", file=sys.stderr)
                return None
        if len(password) < 12:
            print("密码至少 12 个字符 (a password needs at least 12 characters)", file=sys.stderr)
            return None
        return password

    engine = make_engine(get_settings().database_url)
    init_db(engine)
    with Session(engine) as session:
        if args.action == "list":
            for row in session.exec(select(UserAccount).order_by(col(UserAccount.username))):
                print(f"{row.username:<32} {row.role:<11} {row.unit or '-':<20} {row.display_name_zh}")
            return 0
        account = session.get(UserAccount, args.username)
        if args.action == "add":
            if account is not None:
                print(f"账号已存在 (account exists): {args.username}", file=sys.stderr)
                return 1
            departments = load_departments()
            if args.role in STAFF_ROLES_WITH_UNIT and args.unit not in departments:
                known = ", ".join(sorted(departments))
                print(f"--unit: {args.role} 须属于一个部门 (must name a department: {known})", file=sys.stderr)
                return 1
            if args.unit is not None and args.unit not in departments:
                print(f"--unit: 未知部门 (unknown department) {args.unit}", file=sys.stderr)
                return 1
            password = read_password()
            if password is None:
                return 1
            session.add(
                UserAccount(
                    username=args.username,
                    password_hash=hash_password(password),
                    role=args.role,
                    unit=args.unit,
                    display_name_zh=args.name or "",
                )
            )
            session.commit()
            print(f"added {args.username} ({args.role}{', ' + args.unit if args.unit else ''})")
            return 0
        if account is None:
            print(f"没有该账号 (no such account): {args.username}", file=sys.stderr)
            return 1
        if args.action == "passwd":
            password = read_password()
            if password is None:
                return 1
            account.password_hash = hash_password(password)
            session.add(account)
            session.commit()
            print(f"password changed for {args.username}")
            return 0
        session.delete(account)
        session.commit()
        print(f"removed {args.username}")
        return 0


def bench_command(arguments: list[str]) -> int:
    try:
        from bench.harness import main as bench_main
    except ImportError as error:  # an installed package without the source tree or dev extras
        print(f"the benchmark needs the source checkout and `pip install -e .[dev]`: {error}", file=sys.stderr)
        return 1
    return bench_main(arguments)


class Stack:
    """Child processes started by `run`, stopped together."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        # A session of its own: Ctrl-C reaches only `run`, which then stops
        # the children in order (API and worker before the server).
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop; killing it", name)
                process.kill()


def _interrupt(signum: int, frame: Any) -> None:
    # SIGTERM stops the stack the same way Ctrl-C does.
    raise KeyboardInterrupt


def run_stack(ui_port: int, seed: bool, var: Path) -> int:
    settings = get_settings()
    var.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ONETHING_ENV": os.environ.get("ONETHING_ENV", "dev"), "PYTHONUNBUFFERED": "1"}
    base_url = f"http://{settings.api_host}:{settings.api_port}"
    stack = Stack()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server = stack.start(
            "temporal", dev_server_command(settings, var / "temporal.db", ui_port), env, var / "temporal.log"
        )
        wait_for_port(settings.temporal_address, 60, server)
        stack.start("worker", [sys.executable, str(ROOT / "cli.py"), "worker"], env, var / "worker.log")
        api = stack.start("api", [sys.executable, str(ROOT / "cli.py"), "api"], env, var / "api.log")
        wait_for_port(f"{settings.api_host}:{settings.api_port}", 60, api)
        wait_for_api(base_url, 60)
        seeded = seed_demo(base_url) if seed else []
        print(
            "\nOneThing 一件事 is running:\n"
            f"  Web console  {base_url}/  (网页控制台)\n"
            f"  API          {base_url}  (OpenAPI docs: {base_url}/docs)\n"
            f"  Temporal UI  http://127.0.0.1:{ui_port}\n"
            f"  Temporal     {settings.temporal_address}\n"
            f"  Logs         {var}/*.log\n"
            f"  Demo cases   {', '.join(seeded) or '(none)'}\n"
            "  Accounts     applicant1, hospital_officer, police_officer, … password: demo\n"
            "Press Ctrl-C to stop everything.",
            flush=True,
        )
        while all(process.poll() is None for _, process in stack.processes):
            time.sleep(0.5)
        failed = [name for name, process in stack.processes if process.poll() is not None]
        print(f"stopped: {', '.join(failed)} exited; see {var}/*.log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        stack.stop()


def run_api() -> None:
    import uvicorn

    from models.logs import configure_logging

    settings = get_settings()
    configure_logging(settings)
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,  # keep configure_logging's handlers (JSON, PII masking) for uvicorn's logs too
    )


def catalogue_command(args: argparse.Namespace) -> int:
    """validate | list | publish | retire — the catalogue's versions, from the command line."""
    from sqlmodel import Session

    from models.catalogue import CatalogueError, load_definition_file, load_departments
    from models.catalogue_store import list_versions, publish, record_shipped_definitions, retire
    from models.db import init_db, make_engine
    from models.errors import DomainError

    if args.action == "validate":
        try:
            if args.files:
                departments = load_departments()
                for file in args.files:
                    definition = load_definition_file(Path(file), departments)
                    print(f"ok  {file}: {definition.code} v{definition.version} ({definition.name_zh})")
            else:
                for definition in shipped_definitions().values():
                    print(f"ok  {definition.code} v{definition.version} ({definition.name_zh})")
        except CatalogueError as error:
            print(f"invalid  {error}", file=sys.stderr)
            return 1
        return 0

    engine = make_engine(get_settings().database_url)
    init_db(engine)
    with Session(engine) as session:
        record_shipped_definitions(session)
        try:
            if args.action == "publish":
                import yaml

                raw = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
                row = publish(session, raw.get("code", ""), raw, f"cli:{os.environ.get('USER', 'admin')}")
                print(f"published {row.thing} v{row.version}")
            elif args.action == "retire":
                row = retire(session, args.thing, args.version)
                print(f"retired {row.thing} v{row.version}")
            else:
                for row in list_versions(session, args.thing):
                    print(f"{row.thing:<20} v{row.version:<4} {row.status:<8} {row.origin:<10} {row.name_zh}")
        except DomainError as error:
            details = "; ".join(f"{path}: {reason}" for path, reason in error.fields.items())
            print(f"{error.message}{': ' + details if details else ''}", file=sys.stderr)
            return 1
    return 0


class ProgressBar:
    """A one-line progress bar on stderr for long commands; without a terminal, a line per tenth."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label = label
        self.width = width
        self._terminal = sys.stderr.isatty()
        self._last_step = ""

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            filled = min(self.width, self.width * done // total)
            line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}"
            step = f"{10 * done // total}"
        else:
            line, step = f"{self.label} {done}", f"{done // 100}"
        if self._terminal:
            sys.stderr.write(f"\r{line}")
            sys.stderr.flush()
        elif step != self._last_step:
            print(line, file=sys.stderr, flush=True)
            self._last_step = step

    def close(self) -> None:
        if self._terminal:
            sys.stderr.write("\n")


def rebuild_command(args: argparse.Namespace) -> int:
    """Rebuild the read model from Temporal's histories (activities/rebuild.py says what comes back)."""
    import asyncio

    from activities.rebuild import RebuildReport, holds_cases, rebuild_read_model
    from models.db import init_db, make_engine
    from models.workcalendar import make_calendar
    from workflows.connection import connect_temporal

    settings = get_settings()
    engine = make_engine(settings.database_url)
    init_db(engine)
    if holds_cases(engine) and not args.force:
        print(
            "读模型中已有案件，未重建 (the read model already holds cases; rebuild is for a lost database). "
            "--force fills in what is missing and duplicates or deletes nothing.",
            file=sys.stderr,
        )
        return 1
    calendar = make_calendar(settings.calendar_file, settings.working_day_seconds)
    progress = ProgressBar("重建读模型 rebuilding")

    async def rebuild() -> RebuildReport | None:
        try:
            client = await connect_temporal(settings)
        except RuntimeError as error:
            print(f"无法连接 Temporal (cannot reach {settings.temporal_address}): {error}", file=sys.stderr)
            return None
        return await rebuild_read_model(client, engine, calendar, progress=progress)

    try:
        report = asyncio.run(rebuild())
    finally:
        progress.close()
    if report is None:
        return 1
    print(report.summary())
    return 1 if report.failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onething", description="OneThing 一件事 — local stack and tools")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="dev server + worker + API + demo data; Ctrl-C stops all")
    run.add_argument("--ui-port", type=int, default=8233)
    run.add_argument("--no-seed", action="store_true", help="do not submit demo cases")
    run.add_argument("--var-dir", type=Path, default=ROOT / "var", help="the dev server's database and the logs")
    commands.add_parser("worker", help="run a worker")
    commands.add_parser("api", help="run the API server")
    demo = commands.add_parser("demo", help="submit sample cases to a running API and play the officers")
    demo.add_argument("--base-url", default=None)
    demo.add_argument("--cases", type=int, default=0, help="this many more cases, beyond the four seeded ones")
    catalogue = commands.add_parser("catalogue", help="validate, list, publish or retire catalogue versions")
    actions = catalogue.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="check definition files (the shipped ones by default)")
    validate.add_argument("files", nargs="*")
    listing = actions.add_parser("list", help="published versions")
    listing.add_argument("thing", nargs="?")
    publishing = actions.add_parser("publish", help="publish a definition file as the next version")
    publishing.add_argument("file")
    retiring = actions.add_parser("retire", help="retire a version")
    retiring.add_argument("thing")
    retiring.add_argument("version", type=int)
    calendar = commands.add_parser("calendar", help="show a year's working days, or load a holiday notice")
    calendar_actions = calendar.add_subparsers(dest="action", required=True)
    showing = calendar_actions.add_parser("show", help="a year's holidays and make-up working days")
    showing.add_argument("year", type=int)
    loading = calendar_actions.add_parser(
        "load", help="add a newly published State Council holiday notice (a YAML file) to the calendar file"
    )
    loading.add_argument("file", type=Path)
    loading.add_argument("--replace", action="store_true", help="replace a year the calendar file already has")
    accounts = commands.add_parser("accounts", help="add, list, re-password or remove user accounts")
    account_actions = accounts.add_subparsers(dest="action", required=True)
    adding = account_actions.add_parser("add", help="a new account; the password is asked for")
    adding.add_argument("username")
    adding.add_argument("--role", required=True, choices=["applicant", "clerk", "officer", "supervisor", "admin"])
    adding.add_argument("--unit", help="the department code (required for officers and clerks)")
    adding.add_argument("--name", help="display name, e.g. 公安部门工作人员")
    adding.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    account_actions.add_parser("list", help="every account (no passwords)")
    repassword = account_actions.add_parser("passwd", help="set a new password")
    repassword.add_argument("username")
    repassword.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    removing = account_actions.add_parser("remove", help="delete an account (its audit rows stay)")
    removing.add_argument("username")
    rebuild = commands.add_parser("rebuild", help="rebuild the read model from Temporal's workflow histories")
    rebuild.add_argument(
        "--force", action="store_true", help="run on a database that holds cases: fill in what is missing"
    )
    # Its own options (--smoke, --quick, --profile …) pass through to bench/harness.py.
    commands.add_parser("bench", help="the benchmark (bench/harness.py); its options pass through", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_redaction()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = build_parser()
    args, passed_through = parser.parse_known_args(argv)
    if passed_through and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(passed_through)}")

    if args.command == "run":
        return run_stack(args.ui_port, seed=not args.no_seed, var=args.var_dir)
    if args.command == "worker":
        import worker

        worker.main()
        worker.exit_without_finalizing()
    if args.command == "api":
        run_api()
        return 0
    if args.command == "catalogue":
        return catalogue_command(args)
    if args.command == "calendar":
        return calendar_command(args)
    if args.command == "accounts":
        return accounts_command(args)
    if args.command == "rebuild":
        return rebuild_command(args)
    if args.command == "bench":
        return bench_command(passed_through)
    return demo_command(args)


if __name__ == "__main__":
    sys.exit(main())
