"""The soak of issue 12 (``bench/soak.py``, ``sync_bench.py --soak``) run small: three real
instances (``onewindow serve``) on the tests' PostgreSQL database and Redis, live websocket
inspectors editing real site checks, GraphQL readers of their rows. It must end with no error,
every acknowledged update in the log, every client and every inspection's rows equal to the
log; and its lost-update check must catch an acknowledged update that really went missing.

One soak run serves the module (it takes most of the module's time); the test that removes a
row from the log puts it back.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from pycrdt import Doc

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
    rows_of_log,
    run_soak,
    verify,
)
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
    connection = await asyncpg.connect(soaked.database_url.replace("postgres://", "postgresql://"))
    try:
        rows = [
            row
            for row in await connection.fetch(
                "SELECT * FROM document_update WHERE doc = $1", victim.document.name
            )
            if bytes(row["data"]) == update
        ]
        assert len(rows) == 1, "the acknowledged edit is one row of its document's log"
        [row] = rows
        await connection.execute("DELETE FROM document_update WHERE id = $1", row["id"])
        try:
            verdict = verify(result.clients, await soaked.logs())
        finally:
            columns = list(row.keys())
            await connection.execute(
                f"INSERT INTO document_update ({', '.join(columns)}) VALUES "
                f"({', '.join(f'${n}' for n in range(1, len(columns) + 1))})",
                *row.values(),
            )
    finally:
        await connection.close()
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
