"""The ``onething`` command: parses its arguments and hands each command to ops/.

``onething run`` (what ``make run`` calls) starts the Temporal dev server with a
file database under ./var, the worker and the API, seeds demo cases, prints the
URLs and stops everything it started on Ctrl-C (ops/local_stack.py). What each
command does lives in ops/; the benchmark and the tests import it from there.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from domain.redaction import install_log_redaction
from ops.accounts import ROLES
from settings import ROOT


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
    accounts = commands.add_parser(
        "accounts", help="add, list, re-password or remove user accounts, or end their sign-in sessions"
    )
    account_actions = accounts.add_subparsers(dest="action", required=True)
    adding = account_actions.add_parser("add", help="a new account; the password is asked for")
    adding.add_argument("username")
    adding.add_argument("--role", required=True, choices=ROLES)
    adding.add_argument("--unit", help="the department code (required for officers and clerks, unless --unit-code)")
    adding.add_argument("--unit-code", help="the unit an officer or clerk belongs to, e.g. police_330102")
    adding.add_argument("--division", help="a supervisor's division, e.g. 330100 (default: the whole province)")
    adding.add_argument("--name", help="display name, e.g. 公安部门工作人员; an applicant's verified name (实名)")
    adding.add_argument("--id-number", help="an applicant's verified ID number (required for applicants)")
    adding.add_argument("--phone", help="an applicant's mobile phone (required for applicants)")
    adding.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    account_actions.add_parser("list", help="every account (no passwords)")
    repassword = account_actions.add_parser("passwd", help="set a new password")
    repassword.add_argument("username")
    repassword.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    removing = account_actions.add_parser("remove", help="delete an account (its audit rows stay)")
    removing.add_argument("username")
    revoking = account_actions.add_parser(
        "revoke", help="end every sign-in session of an account: its tokens are refused (强制下线)"
    )
    revoking.add_argument("username")
    units = commands.add_parser("units", help="add, list, update, disable or enable units (单位)")
    unit_actions = units.add_subparsers(dest="action", required=True)
    unit_adding = unit_actions.add_parser("add", help="a department unit of a division, or an institution")
    unit_adding.add_argument("--department", required=True, help="a department code, e.g. police")
    unit_adding.add_argument("--division", required=True, help="a city or county code, e.g. 330102")
    unit_adding.add_argument("--kind", choices=["department", "institution"], default="department")
    unit_adding.add_argument("--code", help="an institution's own code, e.g. hospital_330102_zjfy")
    unit_adding.add_argument("--name", help="名称; a department unit's defaults to e.g. 杭州市上城区公安分局")
    unit_adding.add_argument("--window", help="where applicants go, e.g. 上城区市民之家 3 号窗口")
    unit_adding.add_argument("--duty-phone", help="值班手机, a mobile number texted each 督办 of the unit's steps")
    unit_listing = unit_actions.add_parser("list", help="units by code")
    unit_listing.add_argument("--department")
    unit_listing.add_argument("--division", help="units within this division (330100: all of 杭州市)")
    state = unit_listing.add_mutually_exclusive_group()
    state.add_argument("--active", dest="active", action="store_const", const=True, help="only active units")
    state.add_argument("--disabled", dest="active", action="store_const", const=False, help="only disabled units")
    unit_updating = unit_actions.add_parser("update", help="set or clear a unit's duty phone")
    unit_updating.add_argument("code")
    unit_updating.add_argument("--duty-phone", required=True, help='a mobile number; an empty one ("") clears it')
    for verb, what in (("disable", "stop using a unit (it is kept)"), ("enable", "use a disabled unit again")):
        unit_actions.add_parser(verb, help=what).add_argument("code")
    rebuild = commands.add_parser("rebuild", help="rebuild the read model from Temporal's workflow histories")
    rebuild.add_argument(
        "--force", action="store_true", help="run on a database that holds cases: fill in what is missing"
    )
    archive = commands.add_parser("archive", help="verify or export archive packages; show the signing key")
    archive_actions = archive.add_subparsers(dest="action", required=True)
    verifying = archive_actions.add_parser("verify", help="check packages (every one when no case is named)")
    verifying.add_argument("case_ids", nargs="*", metavar="case_id")
    exporting = archive_actions.add_parser("export", help="a package as a zip, its parts decrypted")
    exporting.add_argument("case_id")
    exporting.add_argument("--output", "-o", type=Path, required=True)
    archive_actions.add_parser("key", help="the signing key's id and public half (to list it when rotating)")
    certs = commands.add_parser("certs", help="issue the CA and certificates of mutual TLS to Temporal")
    cert_actions = certs.add_subparsers(dest="action", required=True)
    issuing = cert_actions.add_parser(
        "issue", help="a private CA, the Temporal server's certificate and one for each client (docker-compose.yml)"
    )
    issuing.add_argument("--dir", type=Path, default=Path("certs"), help="where to write them (default ./certs)")
    issuing.add_argument(
        "--server-name",
        action="append",
        default=[],
        help="a name or address the server's certificate holds (repeatable; default temporal, localhost, 127.0.0.1)",
    )
    issuing.add_argument("--days", type=int, default=397, help="how long the server and client certificates last")
    issuing.add_argument("--renew", action="store_true", help="new keys and certificates under the existing CA")
    issuing.add_argument("--chown", action="store_true", help="as root: give each directory to its container's user")
    # Its own options (--smoke, --quick, --profile …) pass through to bench/harness.py.
    commands.add_parser("bench", help="the benchmark (bench/harness.py); its options pass through", add_help=False)
    return parser


def bench_command(arguments: list[str]) -> int:
    try:
        from bench.harness import main as bench_main
    except ImportError as error:  # an installed package without the source tree or dev extras
        print(f"the benchmark needs the source checkout and its dev tools (`make`): {error}", file=sys.stderr)
        return 1
    return bench_main(arguments)


def dispatch(args: argparse.Namespace, passed_through: list[str]) -> int:
    """Run the parsed command; its exit status."""
    if args.command == "run":
        from ops.local_stack import run_stack
        from settings import installed_binary

        try:
            installed_binary("temporal")
        except RuntimeError as missing:  # the production image has no dev server
            print(missing, file=sys.stderr)
            return 1
        return run_stack(args.ui_port, seed=not args.no_seed, var=args.var_dir)
    if args.command == "worker":
        from ops.services import run_worker

        run_worker()
    if args.command == "api":
        from ops.services import run_api

        run_api()
        return 0
    if args.command == "certs":
        from ops.certificates import issue_command

        return issue_command(
            args.dir, server_names=args.server_name, days=args.days, renew=args.renew, owners=args.chown
        )
    if args.command == "catalogue":
        from ops.catalogue import manage_versions, validate_definitions

        if args.action == "validate":
            return validate_definitions(args.files)
        return manage_versions(
            args.action,
            thing=getattr(args, "thing", None),
            file=getattr(args, "file", None),
            version=getattr(args, "version", 0),
        )
    if args.command == "calendar":
        from ops.holidays import load_notice, show_year

        return show_year(args.year) if args.action == "show" else load_notice(args.file, args.replace)
    if args.command == "accounts":
        from ops.accounts import manage_accounts

        return manage_accounts(
            args.action,
            getattr(args, "username", None),
            role=getattr(args, "role", None),
            unit=getattr(args, "unit", None),
            unit_code=getattr(args, "unit_code", None),
            division=getattr(args, "division", None),
            name=getattr(args, "name", None),
            id_number=getattr(args, "id_number", None),
            phone=getattr(args, "phone", None),
            password_stdin=getattr(args, "password_stdin", False),
        )
    if args.command == "units":
        from ops.units import manage_units

        return manage_units(
            args.action,
            getattr(args, "code", None),
            department=getattr(args, "department", None),
            division=getattr(args, "division", None),
            kind=getattr(args, "kind", "department"),
            name=getattr(args, "name", None),
            window=getattr(args, "window", None),
            duty_phone=getattr(args, "duty_phone", None),
            active=getattr(args, "active", None),
        )
    if args.command == "rebuild":
        from ops.rebuild import rebuild_from_histories

        return rebuild_from_histories(args.force)
    if args.command == "archive":
        from ops.archive import export_archive, show_signing_key, verify_archives

        if args.action == "verify":
            return verify_archives(args.case_ids)
        return export_archive(args.case_id, args.output) if args.action == "export" else show_signing_key()
    if args.command == "bench":
        return bench_command(passed_through)
    from ops.demo import run_demo

    return run_demo(args.base_url, args.cases)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_redaction()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = build_parser()
    args, passed_through = parser.parse_known_args(argv)
    if passed_through and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(passed_through)}")
    return dispatch(args, passed_through)


if __name__ == "__main__":
    sys.exit(main())
