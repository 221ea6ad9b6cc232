"""``onewindow-field``: the field client on the command line.

    onewindow-field login --server https://host --username U   (password from stdin or a prompt)
    onewindow-field inspections [--all]
    onewindow-field record --inspection 12 --department zjj --check C01 --result pass [--note ..]
                           [--photo PATH ...]
    onewindow-field photo --inspection 12 --department zjj --check C01 PATH [PATH ...]
    onewindow-field sync [--once] [--inspection 12 ...] [--no-photos]
    onewindow-field status
    onewindow-field photos [--retry-refused | --forget-refused]

The local store (``--store``, or ``ONEWINDOW_FIELD_STORE``, default
``~/.onewindow-field.sqlite3``) keeps the login, the documents and the outbox; photos wait in
the folder next to it (``.photos``) until uploaded. ``record`` and ``photo`` work offline once
the inspection was synced; ``sync`` uploads the photos after the documents. Exit codes: 0 done,
1 failed (the message says why and what to do), 2 wrong usage, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from approval.fieldwork.documents import inspection_doc_name
from clients.field.session import (
    RESULT_LABELS,
    FieldClient,
    FieldError,
    PhotoOutcome,
    PhotoRound,
    SyncError,
    SyncResult,
    login,
)
from clients.field.store import DocStatus, LocalStore, PhotoEntry, PhotoSummary

PHOTO_STATE_LABELS = {
    "queued": "待上传",
    "sent": "待确认",
    "done": "已上传",
    "refused": "已拒绝",
}

DEFAULT_STORE = "~/.onewindow-field.sqlite3"


def store_path(given: str | None) -> Path:
    return Path(given or os.environ.get("ONEWINDOW_FIELD_STORE") or DEFAULT_STORE).expanduser()


def say(text: str) -> None:
    print(text, flush=True)


def client_from(path: Path) -> FieldClient:
    store = LocalStore(path)
    try:
        server = store.get_setting("server")
        token = store.get_setting("token")
    finally:
        store.close()
    if not server or not token:
        raise FieldError(
            f"not logged in (store {path}); run `onewindow-field login --server URL "
            "--username NAME` first"
        )
    return FieldClient(server, token, path)


def status_line(status: DocStatus) -> str:
    synced = (
        status.last_synced_at.isoformat(timespec="seconds") if status.last_synced_at else "never"
    )
    line = f"{status.doc_name}: {status.pending} pending, last synced {synced}"
    if status.photos_pending:
        line += f", {status.photos_pending} photo(s) waiting to upload (待上传)"
    if status.photos_refused:
        line += f", {status.photos_refused} photo(s) refused (已拒绝)"
    if status.last_error:
        line += f"\n  last error: {status.last_error}"
    if status.photo_error:
        line += f"\n  last photo error: {status.photo_error}"
    return line


def photo_name(entry: PhotoEntry) -> str:
    return f"photo {entry.photo_id[:12]} ({entry.file_name}, {entry.department}/{entry.check})"


def photo_line(outcome: PhotoOutcome) -> str:
    entry = outcome.entry
    line = f"[{outcome.index}/{outcome.total}] {photo_name(entry)} in {entry.doc_name}: "
    if outcome.outcome == "uploaded":
        line += f"{outcome.label}, {entry.size_bytes} bytes sent"
    elif outcome.outcome == "already":
        line += f"{outcome.label}, the server had these bytes already (nothing sent)"
    elif outcome.outcome == "refused":
        line += f"{outcome.label}: {outcome.message}; it is not sent again"
    else:
        line += f"{outcome.label}: {outcome.message}; it is tried again at the next sync"
    return line


def photo_round_line(done: PhotoRound) -> str:
    return (
        f"photos: {done.uploaded} uploaded, {done.already} already on the server, "
        f"{len(done.refused)} refused, {len(done.failed)} to try again"
    )


def photo_summary_line(summary: PhotoSummary) -> str:
    line = (
        f"photos: {summary.pending} waiting to upload (待上传), {summary.refused} refused "
        f"(已拒绝), {summary.done} uploaded (已上传)"
    )
    if summary.last_error:
        line += f"\n  last photo error: {summary.last_error}"
    return line


def result_line(result: SyncResult) -> str:
    line = (
        f"{result.doc_name}: sent {result.sent}, acknowledged {result.acknowledged}, "
        f"received {result.received}"
    )
    for refusal in result.refusals:
        line += f"\n  refused: {refusal.reason} ({refusal.code})"
    if result.refusals:
        line += (
            f"\n  the local copy was replaced by the server's ({result.dropped} unsent "
            "change(s) dropped); record them again in a form the server accepts"
        )
    return line


# --- commands ------------------------------------------------------------------------------


async def do_login(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.username}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise FieldError("no password given; type it at the prompt or pipe it on stdin")
    done = await login(args.server, args.username, password)
    store = LocalStore(store_path(args.store))
    try:
        store.set_setting("server", args.server.rstrip("/"))
        store.set_setting("token", done.token)
        store.set_setting("username", done.username)
        store.set_setting("expires_at", done.expires_at)
    finally:
        store.close()
    say(f"logged in as {done.display_name} ({done.username}); token valid until {done.expires_at}")
    return 0


async def do_inspections(args: argparse.Namespace) -> int:
    client = client_from(store_path(args.store))
    try:
        items = await client.my_inspections(open_only=not args.all)
    finally:
        client.close()
    if not items:
        say("no inspections are assigned to you")
        return 0
    for item in items:
        departments = ", ".join(
            d["department"]["code"] for d in item.get("departments") or [] if d.get("department")
        )
        say(
            f"{item['documentName']}  {item['kindLabel']} 第{item['round']}轮  "
            f"{item['statusLabel']}  due {item['due']}  {inspected_case(item)}  "
            f"[{departments}]"
        )
    return 0


def inspected_case(item: dict[str, Any]) -> str:
    """What an assigned inspection checks: its construction project's name, or a company
    setup's (企业设立) company, business type and setup code."""
    setup = item.get("setup")
    if setup:
        return f"{setup['companyName']} (企业设立 {setup['businessType']['name']} {setup['code']})"
    project = item.get("project") or {}
    return str(project.get("name", ""))


async def do_record(args: argparse.Namespace) -> int:
    client = client_from(store_path(args.store))
    doc_name = inspection_doc_name(args.inspection)
    try:
        # photos first: a file that is no photo stops the command before the result is kept
        attach(client, doc_name, args.department, args.check, args.photo or [])
        client.record_check(doc_name, args.department, args.check, args.result, note=args.note)
        status = client.status(doc_name)
    finally:
        client.close()
    say(
        f"recorded {args.department}/{args.check}: {RESULT_LABELS[args.result]} in {doc_name} "
        f"({status.pending} change(s) waiting to sync"
        + (f", {status.photos_pending} photo(s) waiting to upload)" if args.photo else ")")
    )
    return 0


def attach(
    client: FieldClient, doc_name: str, department: str, check: str, paths: Sequence[str]
) -> None:
    for path in paths:
        photo_id = client.add_photo(doc_name, department, check, Path(path).expanduser())
        say(f"attached {path} to {department}/{check} as photo {photo_id[:12]} (待上传)")


async def do_photo(args: argparse.Namespace) -> int:
    client = client_from(store_path(args.store))
    doc_name = inspection_doc_name(args.inspection)
    try:
        attach(client, doc_name, args.department, args.check, args.paths)
        status = client.status(doc_name)
    finally:
        client.close()
    say(
        f"{doc_name}: {status.pending} change(s) waiting to sync, {status.photos_pending} "
        "photo(s) waiting to upload; run `onewindow-field sync` when the network is there"
    )
    return 0


async def documents_to_sync(client: FieldClient, args: argparse.Namespace) -> list[str]:
    names = [inspection_doc_name(i) for i in args.inspection or []]
    names += client.documents()
    if not args.inspection:
        try:
            names += [str(item["documentName"]) for item in await client.my_inspections()]
        except SyncError as error:
            say(f"could not list your inspections ({error}); syncing the ones on this tablet")
    return list(dict.fromkeys(names))


async def do_sync(args: argparse.Namespace) -> int:
    client = client_from(store_path(args.store))
    try:
        names = await documents_to_sync(client, args)
        if not names:
            say("nothing to sync: no inspections on this tablet or assigned to you")
            return 0
        if args.once:
            failed = 0
            for name in names:
                say(f"syncing {name} ...")
                try:
                    say(result_line(await client.sync(name)))
                except SyncError as error:
                    failed += 1
                    say(f"{name}: not synced: {error}")
                say(status_line(client.status(name)))
            if args.photos and client.photo_summary().pending:
                say("uploading photos ...")
                try:
                    done = await client.upload_photos(on_photo=lambda o: say(photo_line(o)))
                except SyncError as error:
                    failed += 1
                    say(f"photos: not uploaded: {error}")
                else:
                    failed += len(done.failed)
                    say(photo_round_line(done))
                summary = client.photo_summary()
                if summary.pending or summary.refused:
                    say(photo_summary_line(summary))
            return 1 if failed else 0

        stopped: list[str] = []

        def on_error(name: str, error: SyncError, delay: float | None) -> None:
            if delay is None:
                stopped.append(name)
                say(f"{name}: stopped: {error}")
            else:
                say(f"{name}: {error}; retrying in {delay:.1f} s")

        say(f"keeping {len(names)} document(s) synced; press Ctrl-C to stop")
        await client.run(
            names,
            on_result=lambda result: say(result_line(result)),
            on_error=on_error,
            on_photo=lambda outcome: say(photo_line(outcome)),
            photos=args.photos,
        )
        return 1 if stopped else 0
    finally:
        client.close()


async def do_status(args: argparse.Namespace) -> int:
    path = store_path(args.store)
    store = LocalStore(path)
    try:
        server = store.get_setting("server")
        user = store.get_setting("username")
        say(f"store {path}; " + (f"logged in to {server} as {user}" if server else "not logged in"))
        names = store.documents()
        if not names:
            say("no documents on this tablet yet")
        for name in names:
            say(status_line(store.status(name)))
        summary = store.photo_summary()
        if summary.pending or summary.refused or summary.done:
            say(photo_summary_line(summary))
        for entry in store.photos(states=["refused"]):
            say(f"  refused: {photo_name(entry)} in {entry.doc_name}: {entry.last_error}")
    finally:
        store.close()
    return 0


async def do_photos(args: argparse.Namespace) -> int:
    path = store_path(args.store)
    if args.retry_refused or args.forget_refused:
        client = client_from(path)
        try:
            if args.retry_refused:
                say(f"{client.retry_refused_photos()} refused photo(s) queued again")
            else:
                say(f"{client.forget_refused_photos()} refused photo(s) forgotten")
        finally:
            client.close()
        return 0
    store = LocalStore(path)
    try:
        entries = store.photos()
        if not entries:
            say("no photos on this tablet")
        for entry in entries:
            line = (
                f"{photo_name(entry)} in {entry.doc_name}: {PHOTO_STATE_LABELS[entry.state]}"
                f" ({entry.state})"
            )
            if entry.last_error and entry.state != "done":
                line += f"\n  last error: {entry.last_error}"
            say(line)
    finally:
        store.close()
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="onewindow-field", description="OneWindow field client (offline inspections)"
    )
    top.add_argument("--store", help=f"local store file (default {DEFAULT_STORE})")
    commands = top.add_subparsers(dest="command", required=True)
    p = commands.add_parser("login", help="log in and keep the token in the local store")
    p.add_argument("--server", required=True, help="e.g. https://onewindow.example.gov.cn")
    p.add_argument("--username", required=True)
    p.set_defaults(run=do_login)
    p = commands.add_parser("inspections", help="the inspections assigned to you")
    p.add_argument("--all", action="store_true", help="closed ones too")
    p.set_defaults(run=do_inspections)
    p = commands.add_parser("record", help="record a check result (works offline)")
    p.add_argument("--inspection", type=int, required=True, help="inspection id")
    p.add_argument("--department", required=True, help="department code, e.g. zjj")
    p.add_argument("--check", required=True, help="check code from the checklist")
    p.add_argument(
        "--result",
        required=True,
        choices=list(RESULT_LABELS),
        help=", ".join(f"{k}={v}" for k, v in RESULT_LABELS.items()),
    )
    p.add_argument("--note")
    p.add_argument(
        "--photo",
        action="append",
        metavar="PATH",
        help="attach a photo (JPEG, PNG, WebP); repeat it for more",
    )
    p.set_defaults(run=do_record)
    p = commands.add_parser("photo", help="attach photos to a check (works offline)")
    p.add_argument("--inspection", type=int, required=True, help="inspection id")
    p.add_argument("--department", required=True, help="department code, e.g. zjj")
    p.add_argument("--check", required=True, help="check code from the checklist")
    p.add_argument("paths", nargs="+", metavar="PATH", help="photo files (JPEG, PNG or WebP)")
    p.set_defaults(run=do_photo)
    p = commands.add_parser("sync", help="sync with the server, then upload photos")
    p.add_argument("--once", action="store_true", help="sync once and exit")
    p.add_argument("--inspection", type=int, action="append", help="only this inspection")
    p.add_argument("--no-photos", dest="photos", action="store_false", help="do not upload photos")
    p.set_defaults(run=do_sync)
    p = commands.add_parser("status", help="pending changes and photos, last sync, last error")
    p.set_defaults(run=do_status)
    p = commands.add_parser("photos", help="the photos on this tablet and their state")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument(
        "--retry-refused", action="store_true", help="queue the refused photos again"
    )
    choice.add_argument(
        "--forget-refused", action="store_true", help="drop the refused photos from this tablet"
    )
    p.set_defaults(run=do_photos)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.run(args))
    except FieldError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            print("stopped; unsynced changes stay on this tablet", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
