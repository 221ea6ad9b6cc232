"""The ``onewindow`` command: database set-up, catalog and holidays, demo data, users, server.

Every command prints what it does, line by line, and a summary. An expected failure prints
one line ``error: <what was wrong>; <what to do>`` to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp

from approval.catalog.parse import CatalogError, load_default_catalog, parse_catalog
from approval.core.errors import DomainError
from server.settings import Settings, SettingsError, ensure_database_folder
from storage.enums import Role

EXIT_ERROR = 2


class CliError(Exception):
    """An expected failure, told to the user in one line."""

    def __init__(self, what: str, todo: str | None = None) -> None:
        line = " ".join(what.split())
        if todo:
            line = f"{line.rstrip('.;')}; {todo}"
        super().__init__(line)


def say(line: str = "") -> None:
    print(line, flush=True)


def now() -> datetime:
    return datetime.now(UTC)


def redacted(url: str) -> str:
    """The URL without its password, fit for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{what} {path} does not exist", "check the path") from None
    except UnicodeDecodeError:
        raise CliError(f"{what} {path} is not UTF-8 text", "save it as UTF-8") from None
    except OSError as error:
        raise CliError(f"cannot read {what} {path}: {error.strerror}", "check the path") from None


# --- the database ------------------------------------------------------------------------


def _unreachable(settings: Settings, error: BaseException) -> CliError:
    reason = str(error) or type(error).__name__
    return CliError(
        f"cannot reach the database {redacted(settings.database_url)} ({reason})",
        "check ONEWINDOW_DATABASE_URL and that the database server is running",
    )


@asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[None]:
    """The database opened and answering; always closed at the end."""
    from tortoise import Tortoise

    from storage.db import close_database, open_database

    try:
        ensure_database_folder(settings.database_url)
    except OSError as error:
        raise _unreachable(settings, error) from None
    try:
        try:
            await open_database(settings.database_url)
            await Tortoise.get_connection("default").execute_query("SELECT 1")
        except Exception as error:  # whatever the driver raises, the database is not there
            raise _unreachable(settings, error) from None
        yield
    finally:
        await close_database()


@asynccontextmanager
async def setup_turn(settings: Settings) -> AsyncIterator[None]:
    """This process's turn to change the schema or the reference data: replicas that start
    together on one database take turns (``storage.db.setup_lock``), saying so while they
    wait."""
    from storage.db import setup_lock

    def waiting(seconds: float) -> None:
        say(
            "another instance is setting up the database; waiting for it"
            + (f" ({seconds:.0f} s so far)" if seconds >= 1 else "")
        )

    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(setup_lock(settings.database_url, waiting=waiting))
        except Exception as error:  # whatever the driver raises, the database is not there
            raise _unreachable(settings, error) from None
        yield


# --- commands ----------------------------------------------------------------------------


async def run_migrate(settings: Settings) -> None:
    from storage.db import close_database, migrate

    async with connected(settings):
        pass  # a clear error when the database is not there, before migrating
    applied: list[str] = []

    def progress(event: str, app: str, name: str) -> None:
        if event == "apply_start":
            say(f"applying {app}.{name} ...")
        elif event == "apply_done":
            applied.append(name)
            say(f"applied {app}.{name}")

    try:
        await migrate(settings.database_url, progress=progress)
    finally:
        await close_database()
    if applied:
        say(f"migrate: {len(applied)} migration(s) applied")
    else:
        say("migrate: the database is up to date, nothing to apply")


async def run_load_catalog(settings: Settings, file: str | None) -> None:
    from approval.catalog.load import load_catalog
    from approval.core.calendar import load_package_calendar

    if file is None:
        catalog = load_default_catalog()
        say("catalog: the shipped catalog")
    else:
        catalog = parse_catalog(read_text(file, "catalog file"), source=file)
        say(f"catalog: {file}")
    async with connected(settings):
        report = await load_catalog(catalog, progress=lambda line: say(f"  {line}"))
        years = await load_package_calendar()
    say(f"holiday calendar: {years} year(s) from the chinese-calendar package")
    say(report.summary())
    say("load-catalog: " + ("catalog updated" if report.changed else "catalog unchanged"))


async def run_load_company_catalog(settings: Settings, file: str | None) -> None:
    from approval.catalog.company import load_default_company_catalog, parse_company_catalog
    from approval.catalog.company_load import load_company_catalog

    if file is None:
        catalog = load_default_company_catalog()
        source = "company.yaml"
        say("company catalog: the shipped one (1+4+X, 18 flows)")
    else:
        catalog = parse_company_catalog(read_text(file, "company catalog file"), source=file)
        source = file
        say(f"company catalog: {file}")
    async with connected(settings):
        report = await load_company_catalog(catalog, source=source)
    say(report.summary())
    say(
        "load-company-catalog: "
        + ("company catalog updated" if report.changed else "company catalog unchanged")
    )


async def run_load_holidays(settings: Settings, file: str) -> None:
    from approval.core.calendar import load_holiday_year

    text = read_text(file, "holiday file")
    async with connected(settings):
        try:
            year = await load_holiday_year(text)
        except ValueError as error:
            raise CliError(str(error), "fix the file and run the command again") from None
    say(f"load-holidays: the holiday calendar of {year} is loaded from {file}")


async def _seed_demo(if_empty: bool) -> None:
    from approval.demo import seed_demo
    from storage.models import Project

    if if_empty:
        count = await Project.all().count()
        if count:
            say(f"seed-demo: skipped, the database already holds {count} project(s)")
            return
    report = await seed_demo(now=now(), progress=say)
    say(f"users (password {report.password!r}):")
    for user in report.users:
        where = user.department or user.region or ""
        say(f"  {user.username:<12} {user.role.value:<13} {where}".rstrip())
    say(report.summary())
    say("seed-demo: done")


async def run_seed_demo(settings: Settings, if_empty: bool) -> None:
    async with connected(settings):
        await _seed_demo(if_empty)


async def run_setup(settings: Settings) -> None:
    say("== migrate")
    await run_migrate(settings)
    say("== load-catalog")
    await run_load_catalog(settings, None)
    say("== load-company-catalog")
    await run_load_company_catalog(settings, None)
    if settings.production:
        say("== seed-demo: skipped in production (ONEWINDOW_ENV=production)")
    else:
        say("== seed-demo --if-empty")
        async with connected(settings):
            await _seed_demo(True)
    say("setup: done")


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The password, and whether it was generated."""
    if from_stdin:
        return sys.stdin.read().rstrip("\r\n"), False
    return secrets.token_urlsafe(12), True


async def run_create_user(settings: Settings, args: argparse.Namespace) -> None:
    from approval.core.auth import create_user, issue_token
    from storage.models import Enterprise

    password, generated = _password(args.password_stdin)
    async with connected(settings):
        enterprise_id = None
        if args.enterprise is not None:
            enterprise = await Enterprise.get_or_none(credit_code=args.enterprise.strip().upper())
            if enterprise is None:
                raise CliError(
                    f"no enterprise has the credit code {args.enterprise}",
                    "give the code of an enterprise that has applied",
                )
            enterprise_id = enterprise.id
        user = await create_user(
            username=args.username,
            password=password,
            display_name=args.display_name or args.username,
            role=Role(args.role),
            department_code=args.department,
            region_code=args.region,
            enterprise_id=enterprise_id,
        )
        token, expires_at = await issue_token(user=user, now=now(), ttl=settings.token_ttl)
    say(f"created user {user.username} ({user.role.value})")
    if generated:
        say(f"password: {password}  (generated; shown only this once)")
    say(f"token: {token}")
    say(f"expires: {expires_at.isoformat()}")


async def run_account(settings: Settings, args: argparse.Namespace) -> None:
    """revoke-tokens, unlock and set-password: the operator's hand on one user's account."""
    from approval.core import auth

    password = _password(args.password_stdin)[0] if args.command == "set-password" else ""
    async with connected(settings):
        if args.command == "revoke-tokens":
            revoked = await auth.revoke_tokens(by=None, username=args.username)
            say(f"{args.username}: {revoked} token(s) revoked; they must log in again")
        elif args.command == "unlock":
            cleared = await auth.unlock(by=None, username=args.username)
            say(f"{args.username}: " + ("login unlocked" if cleared else "was not locked"))
        else:
            revoked = await auth.reset_password(
                username=args.username, password=password, hashing=auth.Hashing.bounded()
            )
            say(f"{args.username}: password set, {revoked} token(s) revoked")
            if not args.password_stdin:
                say(f"password: {password}  (generated; shown only this once)")


async def run_export_ledger(settings: Settings, out: str, month: str | None) -> None:
    """台账: every project, stage and task to an Excel file, as a supervisor sees them."""
    from approval.core.access import Viewer
    from approval.oversight.reports import ledger_rows, ledger_xlsx, record_ledger_export
    from approval.oversight.setup_figures import setup_ledger_rows

    target = Path(out)
    if target.suffix.lower() != ".xlsx":
        raise CliError(f"{out} does not end in .xlsx", "name the output file e.g. ledger.xlsx")
    if not target.parent.is_dir():
        raise CliError(f"the folder {target.parent} does not exist", "create it or pick another")
    # The command line acts for the center's management office, over the whole city.
    viewer = Viewer(user_id=0, username="onewindow-cli", role=Role.SUPERVISOR)
    say(f"ledger: {'month ' + month if month else 'all months'}")
    async with connected(settings):
        rows = await ledger_rows(
            viewer=viewer, now=now(), month=month, progress=lambda line: say(f"  {line}")
        )
        setups = await setup_ledger_rows(viewer=viewer, now=now(), month=month)
        await record_ledger_export(viewer=viewer, month=month, rows=len(rows))
    say(f"writing {target} ... ({len(setups)} company setup(s) on a sheet of their own)")
    data = ledger_xlsx(rows, setups=setups)
    try:
        await asyncio.to_thread(target.write_bytes, data)
    except OSError as error:
        raise CliError(f"cannot write {target}: {error.strerror}", "check the path") from None
    say(f"export-ledger: {len(rows)} row(s) written to {target} ({len(data)} bytes)")


async def run_orphans(settings: Settings, grace_hours: int, delete: bool) -> None:
    """Objects never confirmed or no longer referenced, older than the grace period."""
    from datetime import timedelta

    from approval.files.orphans import (
        expired_tickets,
        find_orphans,
        remove_expired_tickets,
        remove_orphans,
    )
    from server.object_store import object_store_of
    from storage.objects import ObjectStoreError

    if grace_hours < 1:
        raise CliError(f"--grace-hours {grace_hours} is too short", "give 1 hour or more")
    grace = timedelta(hours=grace_hours)
    store = object_store_of(settings)
    say(f"orphans: store {store!r}, grace {grace_hours} h, {'delete' if delete else 'dry run'}")
    async with connected(settings):
        try:
            await store.ensure_ready()
            orphans = await find_orphans(
                store=store,
                now=now(),
                grace=grace,
                progress=lambda scanned, found: say(f"  scanned {scanned}, orphans {found}"),
            )
            for orphan in orphans:
                say(f"  {orphan.key}  {orphan.size} bytes  ({orphan.reason})")
            tickets = await expired_tickets(now=now(), grace=grace)
            total = sum(o.size for o in orphans)
            if not delete:
                say(
                    f"orphans: {len(orphans)} object(s), {total} bytes, and {tickets} expired "
                    "ticket(s) would be removed; run again with --delete to remove them"
                )
                return
            removed = await remove_orphans(
                store=store,
                orphans=orphans,
                progress=lambda done, count: say(f"  removed {done}/{count}"),
            )
            dropped = await remove_expired_tickets(store=store, now=now(), grace=grace)
        except ObjectStoreError as error:
            raise CliError(str(error)) from None
    say(f"orphans: removed {removed} object(s) and {dropped} expired ticket(s)")


def run_serve(settings: Settings) -> None:
    from server.app import create_app

    check_services(settings)
    say(f"serving on http://{settings.host}:{settings.port}/graphql")
    serve(settings, create_app(settings))


def check_services(settings: Settings) -> None:
    """The database, the object store and (when set) Redis answer; else a one-line error."""
    from server.cluster import redis_client
    from server.object_store import object_store_of
    from storage.objects import ObjectStoreError

    async def check() -> None:
        async with connected(settings):
            pass
        try:
            await object_store_of(settings).ensure_ready()
        except ObjectStoreError as error:
            raise CliError(str(error)) from None
        if settings.redis_url:
            try:
                async with redis_client(settings.redis_url, name="check"):
                    pass
            except RuntimeError as error:
                raise CliError(str(error)) from None

    asyncio.run(check())


def serve(settings: Settings, app: ASGIApp) -> None:
    """Serve ``app`` with uvicorn until SIGINT or SIGTERM: logs as the settings say
    (``server.logs``); at the signal the instance stops taking connections, closes its
    websockets with 1012 (service restart: clients reconnect, to another instance behind a
    balancer), lets requests in flight finish for up to ``shutdown_seconds``, then flushes
    its documents' rows and closes (the app's lifespan)."""
    import uvicorn

    from server.app import tune_gc
    from server.logs import configure_logging, logging_config

    configure_logging(level=settings.log_level, log_format=settings.log_format)
    tune_gc(settings.gc_threshold)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=logging_config(level=settings.log_level, log_format=settings.log_format),
        timeout_graceful_shutdown=settings.shutdown_seconds,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


# --- parsing and dispatch ----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onewindow",
        description="OneWindow (一窗通办) backend. Settings come from the environment: "
        "ONEWINDOW_DATABASE_URL, HOST, PORT, ONEWINDOW_TOKEN_TTL_HOURS, ONEWINDOW_LOG_LEVEL, "
        "ONEWINDOW_OBJECT_DIR or ONEWINDOW_MINIO_* (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("migrate", help="apply the database migrations not yet applied")
    catalog = commands.add_parser(
        "load-catalog", help="load the approval catalog and the package holiday calendar"
    )
    catalog.add_argument("--file", help="a catalog YAML file (default: the shipped one)")
    company = commands.add_parser(
        "load-company-catalog",
        help="load the company-setup catalog (1+4+X: permits, flows, business types)",
    )
    company.add_argument(
        "--file", help="a company catalog YAML file (default: the shipped company.yaml)"
    )
    holidays = commands.add_parser(
        "load-holidays", help="load one year's holidays from an administrator's file"
    )
    holidays.add_argument("file", metavar="FILE")
    seed = commands.add_parser("seed-demo", help="create demo users, enterprises and projects")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when any project exists")
    user = commands.add_parser("create-user", help="create a user and print a bearer token")
    user.add_argument("--username", required=True)
    user.add_argument("--role", required=True, choices=[r.value for r in Role])
    user.add_argument("--department", metavar="CODE", help="department code (reviewers)")
    user.add_argument("--region", metavar="CODE", help="region code limiting what they see")
    user.add_argument("--enterprise", metavar="CREDIT_CODE", help="enterprise (applicants)")
    user.add_argument("--display-name", metavar="NAME")
    user.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    for name, what in (
        ("revoke-tokens", "revoke every bearer token of a user (they must log in again)"),
        ("unlock", "lift a user's login lockout after too many wrong passwords"),
        (
            "set-password",
            "set a user's password (generated, or --password-stdin) and revoke their tokens",
        ),
    ):
        account = commands.add_parser(name, help=what)
        account.add_argument("username", metavar="USERNAME")
        if name == "set-password":
            account.add_argument(
                "--password-stdin", action="store_true", help="read the password from stdin"
            )
    commands.add_parser("serve", help="run the HTTP server (GraphQL at /graphql)")
    commands.add_parser(
        "setup", help="migrate, load-catalog, load-company-catalog and seed-demo --if-empty"
    )
    ledger = commands.add_parser(
        "export-ledger", help="write the ledger (台账) of projects, stages and tasks to Excel"
    )
    ledger.add_argument("out", metavar="OUT.xlsx")
    ledger.add_argument("--month", metavar="YYYY-MM", help="only stages active in that month")
    orphans = commands.add_parser(
        "orphans",
        help="list (or --delete) stored files never confirmed or no longer referenced",
    )
    orphans.add_argument(
        "--grace-hours", type=int, default=24, help="only objects older than this (default 24)"
    )
    orphans.add_argument("--delete", action="store_true", help="remove them (default: dry run)")
    return parser


# Commands that change the schema or the reference data run one at a time per database.
SETUP_COMMANDS = frozenset(
    {"migrate", "load-catalog", "load-company-catalog", "load-holidays", "seed-demo", "setup"}
)


def _command(
    args: argparse.Namespace, settings: Settings
) -> Callable[[], Coroutine[Any, Any, None]]:
    handlers: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "migrate": lambda: run_migrate(settings),
        "load-catalog": lambda: run_load_catalog(settings, args.file),
        "load-company-catalog": lambda: run_load_company_catalog(settings, args.file),
        "load-holidays": lambda: run_load_holidays(settings, args.file),
        "seed-demo": lambda: run_seed_demo(settings, args.if_empty),
        "create-user": lambda: run_create_user(settings, args),
        "revoke-tokens": lambda: run_account(settings, args),
        "unlock": lambda: run_account(settings, args),
        "set-password": lambda: run_account(settings, args),
        "setup": lambda: run_setup(settings),
        "export-ledger": lambda: run_export_ledger(settings, args.out, args.month),
        "orphans": lambda: run_orphans(settings, args.grace_hours, args.delete),
    }
    handler = handlers[args.command]
    if args.command not in SETUP_COMMANDS:
        return handler

    async def in_turn() -> None:
        async with setup_turn(settings):
            await handler()

    return in_turn


def _fail(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            run_serve(settings)
        else:
            asyncio.run(_command(args, settings)())
    except SettingsError as error:
        return _fail(f"{error}; set {error.variable} to a valid value or unset it")
    except (CliError, CatalogError) as error:
        return _fail(str(error))
    except DomainError as error:
        todo = "" if ";" in error.message else "; check the input and try again"
        return _fail(error.message + todo)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
