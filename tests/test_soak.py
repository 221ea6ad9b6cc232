"""The soak of issue 12 (``bench/soak.py``, ``sync_bench.py --soak``) run small: three real
instances (``onewindow serve``) on the tests' PostgreSQL database and Redis, live websocket
inspectors editing real site checks, GraphQL readers of their rows. It must end with no error,
every acknowledged update in the log, every client, every instance's copy and every
inspection's rows equal to the log; and each of its checks must fail when what it checks
differs from the log read from PostgreSQL: an acknowledged update really gone from the log,
an instance's copy lacking an update or holding one more, rows changed in the database.

One soak run serves the module (it takes most of the module's time); the tests that change the
log or the rows put them back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from pycrdt import Doc
from starlette.applications import Starlette
from starlette.routing import Route

from approval.catalog.load import load_catalog
from approval.core.calendar import load_package_calendar
from approval.fieldwork.documents import InspectionLayout
from approval.fieldwork.documents import initial_update as layout_update
from bench.soak import (
    Arrangement,
    SoakClient,
    SoakDocument,
    SoakPlan,
    SoakResult,
    arrange,
    read_log,
    report,
    rows_equal_logs,
    rows_of_log,
    run_soak,
    verify,
    views_differing,
)
from schema.app import graphql_app
from storage.models import CheckResult, Rectification
from sync import protocol
from sync.store import integrated
from tests.cluster_support import delete_prefix, postgres_only
from tests.conftest import shipped_catalog

PLAN = SoakPlan(
    seconds=4, clients=20, per_doc=5, client_rate=2, graphql_clients=2, instances=3, settle=30
)


@dataclasses.dataclass
class Soaked:
    result: SoakResult
    arrangement: Arrangement
    database_url: str

    async def logs(self) -> dict[str, Doc]:
        return {
            d.name: await read_log(self.database_url, d.name) for d in self.arrangement.documents
        }


@pytest.fixture(scope="module")
async def soaked(
    database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Soaked]:
    postgres_only(database)
    await load_catalog(shipped_catalog())
    await load_package_calendar()
    arrangement = await arrange(documents=PLAN.documents, now=datetime.now(UTC))
    prefix = f"onewindow-test-{uuid.uuid4().hex[:12]}"
    try:
        result = await run_soak(
            PLAN,
            arrangement,
            database_url=database,
            redis_url=redis_url,
            redis_prefix=prefix,
            workdir=tmp_path_factory.mktemp("soak"),
            say=print,  # shown when a test fails
        )
    finally:
        await delete_prefix(redis_url, prefix)
    yield Soaked(result, arrangement, database)


@contextlib.asynccontextmanager
async def removed_from_log(database_url: str, doc_name: str, update: bytes) -> AsyncIterator[None]:
    """The row of ``doc_name``'s log that holds ``update`` deleted meanwhile, then put back."""
    connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://"))
    try:
        rows = [
            row
            for row in await connection.fetch(
                "SELECT * FROM document_update WHERE doc = $1", doc_name
            )
            if bytes(row["data"]) == update
        ]
        assert len(rows) == 1, "the acknowledged edit is one row of its document's log"
        [row] = rows
        await connection.execute("DELETE FROM document_update WHERE id = $1", row["id"])
        try:
            yield
        finally:
            columns = list(row.keys())
            await connection.execute(
                f"INSERT INTO document_update ({', '.join(columns)}) VALUES "
                f"({', '.join(f'${n}' for n in range(1, len(columns) + 1))})",
                *row.values(),
            )
    finally:
        await connection.close()


async def test_a_small_soak_on_three_instances_ends_with_the_log_everywhere(
    soaked: Soaked,
) -> None:
    result = soaked.result
    assert result.errors == []
    assert result.unanswered == 0
    assert result.verdict.lost == []
    assert result.verdict.wrong == []
    assert result.rows_wrong == []
    assert result.views_wrong == []  # every instance's copy of every document
    assert result.rows_lag is not None
    assert result.rows_written > 0  # the instances materialised (audit events counted)
    assert not result.failed
    # The run did what it says: every client connected, edited and was acknowledged, on
    # every instance, and the GraphQL readers were answered.
    assert all(c.connected_at and c.edits >= 2 for c in result.clients)
    assert result.acked == result.edits
    assert all(figures.acked > 0 for figures in result.instances)
    assert result.graphql_answered > 0
    # Independently of the soak's own checks: every acknowledged edit is in the log, and the
    # rows the instances materialised (read here through the ORM) hold every client's notes.
    logs = await soaked.logs()
    for client in result.clients:
        state = logs[client.document.name].get_state()
        assert all(integrated(update, state) for update in client.acked)
    inspections = [d.inspection_id for d in soaked.arrangement.documents]
    notes = set(
        await CheckResult.filter(inspection_id__in=inspections)
        .exclude(note="")
        .values_list("note", flat=True)
    )
    for client in result.clients:  # each client's first edit wrote a note (inspection_edit)
        assert any(note.startswith(f"平板{client.index}第0条") for note in notes), client.index
    expected_items = {uuid for doc in logs.values() for uuid in rows_of_log(doc)[1]}
    stored = set(
        await Rectification.filter(inspection_id__in=inspections).values_list("uuid", flat=True)
    )
    assert expected_items and {str(u) for u in stored} == expected_items
    lines: list[str] = []
    report(result, lines.append)
    assert any("lost (acknowledged, not in the log) updates: 0" in line for line in lines), lines


async def test_an_acknowledged_update_removed_from_the_log_is_reported_lost_by_name(
    soaked: Soaked,
) -> None:
    result = soaked.result
    victim = next(c for c in result.clients if len(c.acked) >= 3)
    update = victim.acked[1]  # its second acknowledged edit; later ones stay in the log
    async with removed_from_log(soaked.database_url, victim.document.name, update):
        verdict = verify(result.clients, await soaked.logs())
    # Lost: that edit, and the victim's later ones (the log cannot integrate them past the
    # gap); nobody else's.
    assert len(verdict.lost) == len(victim.acked) - 1, verdict.lost
    assert all(line.startswith(f"client {victim.index} ") for line in verdict.lost)
    assert f"its acknowledged edit 2 of {len(victim.acked)} is not in the log" in verdict.lost[0]
    # Every client of that document now differs from its log; the others do not.
    assert {c.index for c in verdict.wrong} == {
        c.index for c in result.clients if c.document is victim.document
    }
    failed = dataclasses.replace(result, verdict=verdict)
    assert failed.failed
    lines: list[str] = []
    report(failed, lines.append)
    assert any(f"updates: {len(verdict.lost)} of 1 client(s)," in line for line in lines), lines
    client = verdict.lost[0].partition("): ")[0]
    assert any(
        line.strip().startswith(f"{client}): {len(verdict.lost)} acknowledged update(s) lost")
        for line in lines
    ), lines
    # Put back, the log is whole again.
    assert verify(result.clients, await soaked.logs()).lost == []


async def test_an_instance_whose_copy_lacks_an_update_or_has_one_more_is_reported_by_name(
    soaked: Soaked,
) -> None:
    result = soaked.result
    documents = soaked.arrangement.documents
    assert len(result.views) == len(documents) * PLAN.instances
    assert all(view.update for view in result.views)
    victim = next(c for c in result.clients if len(c.acked) >= 2)
    # The victim's document as a copy that missed its last acknowledged edit: the log read
    # while that edit's row is away (put back before the check reads the log).
    async with removed_from_log(soaked.database_url, victim.document.name, victim.acked[-1]):
        lacking = (await read_log(soaked.database_url, victim.document.name)).get_update()
    other = next(d for d in documents if d is not victim.document)
    # Another document's copy with one edit more than the log: an inspector's edit that
    # never reached the log.
    writer = SoakClient(
        index=999, document=other, code=soaked.arrangement.departments[0], instance=2, salt=7
    )
    [served] = [v.update for v in result.views if v.document == other.name and v.instance == 3]
    assert served is not None
    writer.doc.apply_update(served)
    writer.edit()
    tampered = []
    for view in result.views:
        if view.document == victim.document.name and view.instance == 2:
            view = dataclasses.replace(view, update=lacking)
        elif view.document == other.name and view.instance == 3:
            view = dataclasses.replace(view, update=writer.doc.get_update())
        elif view.document == other.name and view.instance == 1:
            view = dataclasses.replace(view, update=None, error="TimeoutError()")
        tampered.append(view)
    logs = await soaked.logs()  # the whole log again
    assert views_differing(result.views, logs) == []  # what the instances really served
    wrong = views_differing(tampered, logs)
    assert sorted(wrong) == sorted(
        [
            f"{victim.document.name} on instance 2: differs from the log",
            f"{other.name} on instance 1: no view (TimeoutError())",
            f"{other.name} on instance 3: differs from the log",
        ]
    ), wrong
    failed = dataclasses.replace(result, views_wrong=wrong)
    assert failed.failed and failed.exit_code == 1
    lines: list[str] = []
    report(failed, lines.append)
    total = len(documents) * PLAN.instances
    assert any(line.startswith(f"instances: 3 of {total} fresh clients") for line in lines)
    assert all(any(line.strip() == w for line in lines) for w in wrong), lines
    assert lines[-1] == "exit code 1", lines[-1]
    honest: list[str] = []
    report(result, honest.append)
    assert honest[-1] == "exit code 0", honest


async def test_rows_that_differ_from_the_log_are_reported_by_inspection(soaked: Soaked) -> None:
    """The rows check reads the rows through GraphQL (here the same schema in this process,
    on the soak's database) and compares them with the log: a check row and a rectification
    changed in the database after the soak are reported, and pass again once put back."""
    arrangement = soaked.arrangement
    by_inspection = {d.inspection_id: d for d in arrangement.documents}
    items = (
        await Rectification.filter(inspection_id__in=list(by_inspection))
        .order_by("id")
        .limit(1)
        .values("id", "uuid", "description", "inspection_id")
    )
    assert items, "the soak's edits wrote rectifications"
    [item] = items
    second = by_inspection[item["inspection_id"]]
    first = next(d for d in arrangement.documents if d is not second)
    checks = (  # every client's first edit wrote a note (inspection_edit)
        await CheckResult.filter(inspection_id=first.inspection_id)
        .exclude(note="")
        .order_by("id")
        .limit(1)
        .values("id", "note", "check_code", "department__code")
    )
    [check] = checks
    app = Starlette(
        routes=[
            Route(
                "/graphql",
                graphql_app(token_ttl=timedelta(hours=2), clock=lambda: datetime.now(UTC)),
            )
        ]
    )
    urls = ["http://soak/graphql"]
    logs = await soaked.logs()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=30) as http:
        assert await rows_equal_logs(arrangement, urls, logs, http=http) == []
        await CheckResult.filter(id=check["id"]).update(note=check["note"] + "（事后改动）")
        await Rectification.filter(id=item["id"]).update(description="事后改动")
        try:
            wrong = await rows_equal_logs(arrangement, urls, logs, http=http)
        finally:
            await CheckResult.filter(id=check["id"]).update(note=check["note"])
            await Rectification.filter(id=item["id"]).update(description=item["description"])
        assert await rows_equal_logs(arrangement, urls, logs, http=http) == []
    key = (check["department__code"], check["check_code"])
    assert sorted(wrong) == sorted(
        [
            f"{first.name}: 1 check row(s) and 0 rectification(s) differ from the log, "
            f"e.g. [{key!r}] []",
            f"{second.name}: 0 check row(s) and 1 rectification(s) differ from the log, "
            f"e.g. [] [{item['uuid']!r}]",
        ]
    ), wrong
    failed = dataclasses.replace(soaked.result, rows_wrong=wrong)
    assert failed.failed and failed.exit_code == 1
    lines: list[str] = []
    report(failed, lines.append)
    documents = len(arrangement.documents)
    assert any(
        line.startswith(f"rows: {documents - 2} of {documents} inspections") for line in lines
    )
    assert all(any(line.strip() == w for line in lines) for w in wrong), lines
    assert lines[-1] == "exit code 1", lines[-1]


def test_a_held_update_counts_as_acknowledged_only_once_its_own_ack_comes() -> None:
    """The protocol's "ack up to N" settles every update up to N except the held ones, which
    are settled later by an ack of their own number or refused: the soak's clients count them
    so (counting a held update as acknowledged reported updates as lost that the server never
    acknowledged), and answer "held" with their whole state."""
    layout = InspectionLayout(departments={"zjj": ["a", "b"]})
    document = SoakDocument("inspection/1", 1, layout_update(layout), {"zjj": ["a", "b"]})
    client = SoakClient(index=0, document=document, code="zjj", instance=0, salt=0)
    edits = {}
    for number in (1, 2, 3, 4):
        edits[number] = client.edit()
        client.pending[number] = (0.0, edits[number])
    reply = client.answer(protocol.HeldMessage(2), 1.0)
    assert reply is not None
    whole = protocol.decode(reply)
    assert isinstance(whole, protocol.SyncMessage) and whole.payload == client.doc.get_update()
    assert client.answer(protocol.HeldMessage(3), 1.0) is not None
    client.answer(protocol.AckUpToMessage(4), 1.0)
    assert client.acked == [edits[1], edits[4]]
    assert sorted(client.pending) == [2, 3]
    client.answer(protocol.AckMessage(2), 2.0)
    client.answer(protocol.ErrorMessage(3, "invalid", "不行"), 2.0)
    assert client.acked == [edits[1], edits[4], edits[2]]
    assert client.pending == {} and client.held == set()
    assert client.errors == [
        "update #2 held",
        "update #3 held",
        "update #3 refused (invalid): 不行",
    ]
