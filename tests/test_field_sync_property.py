"""Property: whatever the order of offline edits, reconnects and server restarts, every replica
of a field document ends identical to the server's, and the rows are its materialisation.

An example plays one of two cases, drawn by the strategy: a construction project's joint
acceptance, or a company setup's site check (现场踏勘: an ``Inspection`` with ``setup_id``, one
department, the same documents, policy and materialisation). Each example builds 3 to 5
replicas (pycrdt Docs with their own client ids). Construction: an inspection document
(inspectors of two departments, two of them of the same department) and the project's agency
document (the agent, on one or two devices). Setup: the food site check's document (two
inspectors of the permit department, on one to three tablets each); its first replica may sign
the department's conclusion (pass or fail), which closes the round. They speak y-websocket
through ``sync.protocol`` with an in-process ``SyncServer`` over in-memory channels, with the
field policy of ``server.fieldsync`` and the test database. Steps: edits of the replica's own
checks, rectifications (UUID keys) and agency entries, a signature, made online or offline;
connects and disconnects; restarts (the server is closed, flushing its rows, and a new one opens
over the same log). At the end every replica syncs twice and then:

- each replica's document equals the server's (JSON of the root maps);
- the check, rectification and agency rows equal what the final documents say;
- the setup's conclusion row, the inspection's status and the permit's site-check-done mark
  follow the signed conclusion: done only by a passing one;
- no update was refused (every edit stayed in the writer's rights).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map

from approval.catalog.company_load import load_company_catalog
from approval.core.access import Viewer
from approval.fieldwork.documents import (
    agency_doc_name,
    inspection_doc_name,
    read_agency,
    read_inspection,
)
from approval.fieldwork.inspections import (
    OPEN_STATUSES,
    assign_inspectors,
    schedule_joint_acceptance,
)
from server.fieldsync import FieldSync, merged
from storage.enums import Conclusion, InspectionStatus
from storage.models import (
    AgencyEntry,
    CheckResult,
    DocumentSnapshot,
    DocumentUpdate,
    Inspection,
    InspectionDepartment,
    Rectification,
    SetupTask,
)
from sync import protocol
from sync.policy import Access
from sync.server import SyncServer
from sync.store import UpdateStore
from tests.conftest import Clock, GraphQLClient
from tests.fieldwork_support import at_acceptance, clerk, inspector, person
from tests.helpers import db_id
from tests.sync_support import document_json
from tests.test_company_setups_api import accept as accept_setup
from tests.test_company_setups_api import company_catalog

SETTLE_TIMEOUT = 10.0
MIN_STEPS = 10
IN_FLIGHT_TURNS = 5  # event-loop turns after each step: some messages arrive, some not
MAX_STEPS = 24
CHINESE = "消防车道验收合格整改报警栓口压力不足建设单位竣工资料电梯检验报告走访催交"
TEXT = st.text(alphabet=st.sampled_from("abc xyz-" + CHINESE), max_size=12)
RESULTS = ("pass", "fail", "rectify", "not_applicable")
KINDS = ("visit", "call", "todo")


# --- the world one test builds once ------------------------------------------------------------


@dataclass
class Member:
    """One replica's person: which document it edits and with which rights."""

    label: str
    doc_name: str
    viewer: Viewer
    department: str | None  # None: the agent, on the agency document
    checks: list[str]


CASES = ("construction", "setup")


@dataclass
class Case:
    """One inspection whose document an example edits, and who edits it."""

    inspection_id: int
    members: list[Member]  # the replicas of an example are the first 3 to 5 of these


@dataclass
class World:
    clock: Clock
    project_id: int
    setup_task_id: int  # the permit whose site check the setup case's inspection is
    cases: dict[str, Case]
    outsider: Viewer  # the setup's fire inspector: assigned to its other check, not to this one
    examples: int = 0


async def first_checks(inspection_id: int) -> dict[str, list[str]]:
    """Each department's first 4 check codes of an inspection."""
    checks: dict[str, list[str]] = {}
    for row in await InspectionDepartment.filter(inspection_id=inspection_id).select_related(
        "department"
    ):
        codes = await CheckResult.filter(
            inspection_id=inspection_id, department_id=row.department_id
        ).values_list("check_code", flat=True)
        checks[row.department.code] = sorted(str(c) for c in codes)[:4]
    return checks


async def setup_case(gql: GraphQLClient, clock: Clock) -> tuple[Case, int, Viewer]:
    """A restaurant's setup as the window accepts it: the food-business permit's site check
    with two inspectors of shiyao assigned, and the fire check's inspector (xfjy)."""
    await load_company_catalog(company_catalog())
    setup = await accept_setup(gql)
    tasks = {t["permitCode"]: t for t in setup["tasks"]}
    task_id = int(tasks["food_business_license"]["taskId"])
    food = await Inspection.get(setup_task_id=task_id)
    fire = await Inspection.get(setup_task_id=int(tasks["fire_safety_check"]["taskId"]))
    people = [await inspector("shiyao", 1), await inspector("shiyao", 2)]
    outsider = await inspector("xfjy", 1)
    for inspection, names in ((food, people), (fire, [outsider])):
        await assign_inspectors(
            viewer=await clerk(),
            inspection_id=inspection.id,
            usernames=[p.username for p in names],
            now=clock(),
        )
    checks = (await first_checks(food.id))["shiyao"]
    doc = inspection_doc_name(food.id)
    members = [
        Member(f"shiyao-{n}{device}", doc, people[n - 1], "shiyao", checks)
        for n, device in ((1, ""), (2, ""), (1, "b"), (2, "b"), (1, "c"))
    ]
    return Case(food.id, members), task_id, outsider


@pytest.fixture
async def world(gql: GraphQLClient, clock: Clock) -> World:
    project, _ = await at_acceptance(gql, clock)
    inspection = await schedule_joint_acceptance(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=["zjj", "rfb"],
        scheduled_for=date(2026, 3, 4),
        now=clock(),
    )
    people = [await inspector("zjj", 1), await inspector("rfb", 1), await inspector("zjj", 2)]
    await assign_inspectors(
        viewer=await clerk(),
        inspection_id=inspection.id,
        usernames=[p.username for p in people],
        now=clock(),
    )
    agent = await person("agent", "agent")  # type: ignore[arg-type]
    checks = await first_checks(inspection.id)
    inspection_doc = inspection_doc_name(inspection.id)
    agency_doc = agency_doc_name(db_id(project["id"]))
    members = [
        Member("zjj-1", inspection_doc, people[0], "zjj", checks["zjj"]),
        Member("rfb-1", inspection_doc, people[1], "rfb", checks["rfb"]),
        Member("agent-1", agency_doc, agent, None, []),
        Member("zjj-2", inspection_doc, people[2], "zjj", checks["zjj"]),
        Member("agent-2", agency_doc, agent, None, []),
    ]
    setup, task_id, outsider = await setup_case(gql, clock)
    cases = {"construction": Case(inspection.id, members), "setup": setup}
    return World(clock, db_id(project["id"]), task_id, cases, outsider)


# --- replicas speaking y-websocket in memory ---------------------------------------------------


@dataclass(eq=False)
class Link:
    """One connection: the server's ``Channel`` on one side, a replica on the other."""

    replica: Replica
    to_server: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    closed: bool = False
    synced: bool = False
    sent: int = 0  # update messages (step 2, update) sent, numbered as the server counts them
    answered: int = 0  # updates answered: the highest cumulative ack
    task: asyncio.Task[None] | None = None

    # The server's side (sync.server.Channel).
    async def receive(self) -> bytes | str | None:
        return await self.to_server.get()

    async def send(self, data: bytes) -> None:
        if not self.closed:
            self.replica.on_frame(self, protocol.decode(data))

    async def close(self, code: int, reason: str) -> None:
        self.closed = True
        self.replica.progress.set()
        self.replica.closes.append((code, reason))
        self.to_server.put_nowait(None)

    # The replica's side.
    def post(self, frame: bytes, *, update: bool) -> None:
        if self.closed:
            return
        if update:
            self.sent += 1
        self.to_server.put_nowait(frame)

    def settled(self) -> bool:
        return self.closed or (self.synced and self.answered == self.sent)


class Replica:
    def __init__(
        self, member: Member, access: Access, client_id: int, prefix: int, progress: asyncio.Event
    ) -> None:
        self.member = member
        self.progress = progress  # set on every frame this replica gets, shared by a run
        self.access = access
        self.doc: Doc = Doc(client_id=client_id)
        self.link: Link | None = None
        self.errors: list[protocol.ErrorMessage] = []
        self.closes: list[tuple[int, str]] = []
        self.prefix = prefix  # makes this replica's UUIDs unique in the whole test run
        self.made = 0

    def new_uuid(self) -> str:
        self.made += 1
        # The prefix above the version and variant bits, which the UUID sets: every example's
        # replica makes UUIDs of its own.
        return str(uuid.UUID(int=(self.prefix << 80) | self.made, version=4))

    def on_frame(self, link: Link, message: protocol.Message) -> None:
        self.progress.set()
        if isinstance(message, protocol.SyncMessage):
            if message.kind == protocol.SyncType.STEP1:
                link.post(protocol.sync_step2(self.doc.get_update(message.payload)), update=True)
            else:
                self.doc.apply_update(message.payload)
                if message.kind == protocol.SyncType.STEP2:
                    link.synced = True
        elif isinstance(message, protocol.AckUpToMessage):
            link.answered = max(link.answered, message.number)
        elif isinstance(message, protocol.ErrorMessage):
            self.errors.append(message)

    def connect(self, server: SyncServer) -> None:
        if self.link is not None and not self.link.closed:
            return
        link = Link(self)
        link.task = asyncio.create_task(
            server.serve(self.member.doc_name, link, access=self.access, acks=True)
        )
        self.link = link
        link.post(protocol.sync_step1(self.doc.get_state()), update=False)
        presence = {"user": self.member.viewer.username, "name": f"验收员 {self.member.label}"}
        link.post(
            protocol.awareness([protocol.awareness_state(self.doc.client_id, 1, presence)]),
            update=False,
        )

    async def disconnect(self) -> None:
        link, self.link = self.link, None
        if link is None:
            return
        link.to_server.put_nowait(None)
        link.closed = True
        if link.task is not None:
            await asyncio.wait_for(link.task, SETTLE_TIMEOUT)

    def local(self, edit: Callable[[Doc], None]) -> list[bytes]:
        """A local edit in one transaction: the updates it made (none sent)."""
        made: list[bytes] = []
        subscription = self.doc.observe(lambda event: made.append(event.update))
        try:
            with self.doc.transaction():
                edit(self.doc)
        finally:
            self.doc.unobserve(subscription)
        return made

    def change(self, edit: Callable[[Doc], None]) -> None:
        """A local edit; sent at once when connected, else kept for the next sync."""
        made = self.local(edit)
        if self.link is not None and not self.link.closed:
            for update in made:
                self.link.post(protocol.sync_update(update), update=True)

    def state(self) -> dict[str, Any]:
        return document_json(self.doc)


async def settle(replicas: list[Replica]) -> None:
    """Wait until each connected replica is synced and has every update answered."""

    async def wait() -> None:
        while not all(r.link is None or r.link.settled() for r in replicas):
            progress = replicas[0].progress
            progress.clear()
            await progress.wait()
        for _ in range(20):  # let broadcasts reach the other replicas' inboxes
            await asyncio.sleep(0)

    await asyncio.wait_for(wait(), SETTLE_TIMEOUT)


# --- edits a replica makes in its own part of the document -------------------------------------


@dataclass(frozen=True)
class Edit:
    kind: int  # 0-1: a check (or a new entry), 2: a new item, 3: change an item, 4: remove one
    pick: int  # which check or item
    text: str
    flag: bool
    number: float


EDITS = st.builds(
    Edit,
    kind=st.integers(0, 4),
    pick=st.integers(0, 7),
    text=TEXT,
    flag=st.booleans(),
    number=st.floats(0, 100, allow_nan=False, width=32),
)


def apply_edit(replica: Replica, edit: Edit, when: str) -> None:
    member = replica.member
    if member.department is None:
        entries_edit(replica, edit, when)
        return
    section = replica.doc.get("departments", type=Map).get(member.department)
    if not isinstance(section, Map):
        return  # has never synced: the layout comes from the server
    if edit.kind <= 1:
        check = section["checks"][member.checks[edit.pick % len(member.checks)]]

        def record(doc: Doc) -> None:
            check["result"] = RESULTS[edit.pick % len(RESULTS)]
            check["note"] = edit.text
            check["by"] = member.viewer.username
            check["at"] = when
            measured = check["measured"]
            if edit.flag:
                measured["宽度" if edit.kind else "压力"] = edit.number
            photos = check["photos"]
            assert isinstance(photos, Array)
            if not edit.flag and len(photos) < 5:
                photos.append(f"photo-{replica.doc.client_id}-{len(photos)}")

        replica.change(record)
        return
    rectifications = section["rectifications"]
    keys = sorted(rectifications.keys())
    if edit.kind == 2 or not keys:
        key = replica.new_uuid()
        due = (date(2026, 3, 10) + timedelta(days=edit.pick)).isoformat()

        def add(doc: Doc) -> None:
            rectifications[key] = Map({"description": edit.text, "due": due, "done": edit.flag})

        replica.change(add)
        return
    key = keys[edit.pick % len(keys)]

    def update(doc: Doc) -> None:
        if edit.kind == 3:
            item = rectifications[key]
            item["done"] = edit.flag
            item["description"] = edit.text
        else:
            del rectifications[key]

    replica.change(update)


def sign(replica: Replica, passed: bool, when: str) -> None:
    """The replica's inspector signs their department's conclusion, unless it shows one."""
    member = replica.member
    section = replica.doc.get("departments", type=Map).get(member.department)
    if not isinstance(section, Map) or "result" in section["conclusion"]:
        return
    conclusion = section["conclusion"]

    def edit(doc: Doc) -> None:
        conclusion["result"] = "pass" if passed else "fail"
        conclusion["note"] = "现场核查合格" if passed else "冷藏设施不运转"
        conclusion["signed_by"] = member.viewer.username
        conclusion["signed_at"] = when

    replica.change(edit)


def entries_edit(replica: Replica, edit: Edit, when: str) -> None:
    entries = replica.doc.get("entries", type=Map)
    keys = sorted(entries.keys())
    if edit.kind <= 2 or not keys:
        key = replica.new_uuid()
        values: dict[str, Any] = {"kind": KINDS[edit.pick % 3], "text": edit.text, "at": when}
        if edit.flag:
            values["due"] = (date(2026, 3, 6) + timedelta(days=edit.pick)).isoformat()

        def add(doc: Doc) -> None:
            entries[key] = Map(values)

        replica.change(add)
        return
    key = keys[edit.pick % len(keys)]

    def update(doc: Doc) -> None:
        if edit.kind == 3:
            entry = entries[key]
            entry["done"] = edit.flag
            entry["text"] = edit.text
        else:
            del entries[key]

    replica.change(update)


# --- steps -------------------------------------------------------------------------------------

EDIT_STEP = st.tuples(st.just("edit"), st.integers(0, 4), EDITS)
SIGN_STEP = st.tuples(st.just("sign"), st.booleans())  # setup: the first replica signs pass/fail
STEPS = st.lists(
    st.one_of(
        EDIT_STEP,  # edits are half of the steps
        st.tuples(st.just("connect"), st.integers(0, 4)),
        EDIT_STEP,
        st.tuples(st.just("disconnect"), st.integers(0, 4)),
        EDIT_STEP,
        st.tuples(st.just("restart")),
        SIGN_STEP,
    ),
    min_size=MIN_STEPS,
    max_size=MAX_STEPS,
)

CHINESE_STEPS: list[tuple[Any, ...]] = [
    ("connect", 0),
    ("connect", 1),
    ("edit", 2, Edit(0, 1, "电话联系建设单位", False, 0.0)),
    ("edit", 0, Edit(0, 0, "消防车道被临时建筑占用", True, 3.5)),
    ("edit", 2, Edit(2, 2, "走访建设单位，核对竣工资料", True, 0.0)),
    ("restart",),
    ("edit", 1, Edit(2, 1, "报警控制器需整改", False, 0.0)),
    ("edit", 0, Edit(2, 0, "拆除占用消防车道的临时建筑", False, 0.0)),
    ("connect", 2),
    ("edit", 2, Edit(3, 0, "催交电梯检验报告", True, 0.0)),
    ("disconnect", 0),
    ("edit", 0, Edit(3, 0, "已拆除，待复查", True, 0.0)),
    ("restart",),
]

SETUP_STEPS: list[tuple[Any, ...]] = [
    ("connect", 0),
    ("edit", 0, Edit(0, 0, "冷库温度达标", True, 3.5)),  # online
    ("edit", 1, Edit(2, 1, "灭蝇灯需更换", False, 0.0)),  # offline
    ("sign", True),
    ("disconnect", 0),  # the signature reaches the server
    ("restart",),  # its rows written: the round closes, the permit's site check is done
    ("edit", 2, Edit(0, 2, "签字后补拍照片", False, 0.0)),  # offline
    ("connect", 1),  # read-only now
    ("edit", 0, Edit(3, 0, "已更换", True, 0.0)),  # offline
    ("sign", False),  # signed already: nothing
]


class Run:
    """One example: its replicas and the current server."""

    def __init__(self, world: World, count: int, case: str = "construction") -> None:
        self.world = world
        self.count = count
        self.setup = case == "setup"
        self.case = world.cases[case]
        self.server: SyncServer | None = None
        self.sync = FieldSync(clock=world.clock)
        self.replicas: list[Replica] = []
        self.progress = asyncio.Event()

    def open_server(self) -> SyncServer:
        self.sync = FieldSync(clock=self.world.clock)  # a new process knows nothing
        self.server = SyncServer(
            store=UpdateStore(),
            policy_for=self.sync.policy_for,
            idle_seconds=0.05,
            rest_after=0,  # rooms rest whenever unused: rebuilt from their encoded state
            materialise_delay=0.01,
            materialise_max_wait=0.05,
            close_timeout=2.0,
        )
        return self.server

    async def close_server(self) -> None:
        for replica in self.replicas:
            if replica.link is not None:
                replica.link.closed = True
        assert self.server is not None
        await self.server.close()
        for replica in self.replicas:
            link, replica.link = replica.link, None
            if link is not None and link.task is not None:
                await asyncio.wait_for(link.task, SETTLE_TIMEOUT)
        self.server = None

    async def start(self) -> None:
        self.world.examples += 1
        inspection_id = self.case.inspection_id
        for doc_name in {m.doc_name for m in self.case.members}:
            await DocumentUpdate.filter(doc=doc_name).delete()
            await DocumentSnapshot.filter(doc=doc_name).delete()
        await Rectification.all().delete()  # of either case: a UUID is never reused
        await AgencyEntry.filter(project_id=self.world.project_id).delete()
        await CheckResult.filter(inspection_id=inspection_id).update(
            outcome=None, note="", measured={}, photo_ids=[], recorded_by="", recorded_at=None
        )
        # The round as it was opened: no conclusion, the permit's site check not done.
        await InspectionDepartment.filter(inspection_id=inspection_id).update(
            conclusion=None, conclusion_note="", signed_by="", signed_at=None
        )
        await Inspection.filter(id=inspection_id).update(
            status=InspectionStatus.SCHEDULED, closed_at=None
        )
        await SetupTask.filter(id=self.world.setup_task_id).update(site_check_done_at=None)
        server = self.open_server()
        for index, member in enumerate(self.case.members[: self.count]):
            access = await self.sync.access_for(member.viewer, member.doc_name)
            assert access is not None and access.writable, member
            client_id = 1000 + 97 * self.world.examples + index  # never the layout's id 1
            prefix = (self.world.examples << 8) | index
            self.replicas.append(Replica(member, access, client_id, prefix, self.progress))
        for replica in self.replicas:  # each tablet downloads its document, then goes offline
            replica.connect(server)
            await settle([replica])
            await replica.disconnect()

    async def step(self, step: tuple[Any, ...], number: int) -> None:
        """One step, then a few turns of the event loop: messages are in flight between steps,
        and a restart or a disconnect may cut them off (the replica sends them again)."""
        server = self.server
        assert server is not None
        kind = step[0]
        if kind == "restart":
            await self.close_server()
            self.open_server()
            return
        when = f"2026-03-04T{9 + number // 60:02d}:{number % 60:02d}:00+08:00"
        if kind == "sign":
            if self.setup:  # a joint acceptance's conclusions are left to other tests
                sign(self.replicas[0], step[1], when)
        else:
            replica = self.replicas[step[1] % self.count]
            if kind == "connect":
                await self.connect(replica)
            elif kind == "disconnect":
                await replica.disconnect()
            else:
                apply_edit(replica, step[2], when)
        for _ in range(IN_FLIGHT_TURNS):
            await asyncio.sleep(0)

    async def connect(self, replica: Replica) -> None:
        """Connect with the rights the server gives now, as every new connection gets them:
        a tablet that reconnects after the round closed is read-only."""
        assert self.server is not None
        if replica.link is not None and not replica.link.closed:
            return
        access = await self.sync.access_for(replica.member.viewer, replica.member.doc_name)
        assert access is not None, replica.member
        replica.access = access
        replica.connect(self.server)

    async def sync_all(self) -> None:
        """Every replica pushes, then every replica pulls; the server closes (rows flushed)."""
        assert self.server is not None
        for _ in range(2):
            for replica in self.replicas:
                await self.connect(replica)
                await settle([replica])
                await replica.disconnect()
        await self.close_server()

    async def finish(self) -> None:
        await self.sync_all()
        await self.check_refusals(self.replicas)
        for replica in self.replicas:
            assert all(code in (1000, 1012) for code, _ in replica.closes), replica.closes

    async def check_refusals(self, honest: list[Replica]) -> None:
        """No honest update was refused, but edits that reached the server only after the round
        closed (made offline, or sent again by a tablet that reconnected: read-only; sent on a
        connection opened before the last signature: refused by the document's rule)."""
        closed = await Inspection.filter(
            id=self.case.inspection_id, status__not_in=OPEN_STATUSES
        ).exists()
        for replica in honest:
            after_closing = all(
                error.code == "read_only"
                or (error.code == "invalid" and "the round is closed" in error.reason)
                for error in replica.errors
            )  # reconnected read-only, or still connected when the last signature closed it
            assert not replica.errors or (closed and after_closing), (
                replica.member.label,
                replica.errors,
            )

    async def check(self) -> None:
        store_view = SyncServer(store=UpdateStore(), policy_for=self.sync.policy_for)
        for doc_name in sorted({r.member.doc_name for r in self.replicas}):
            final = await merged(store_view, doc_name)  # rebuilt from the log, as on a restart
            expected = document_json(final)
            for replica in self.replicas:
                if replica.member.doc_name != doc_name:
                    continue
                if replica.errors:  # read-only: the server's document and its refused edits
                    assert holds(replica.doc, final), replica.member.label
                else:
                    assert replica.state() == expected, replica.member.label
            if doc_name.startswith("inspection/"):
                assert await inspection_rows(self.case.inspection_id) == expected_rows(final)
                await self.check_conclusions(final)
            else:
                assert await agency_rows(self.world.project_id) == expected_entries(final)

    async def check_conclusions(self, final: Doc) -> None:
        """The conclusion rows are the document's signatures; the setup's round closes with
        its one department's conclusion, and only a passing one marks the permit's check done."""
        inspection_id = self.case.inspection_id
        signed = {code: section.conclusion for code, section in read_inspection(final).items()}
        rows = await InspectionDepartment.filter(inspection_id=inspection_id).select_related(
            "department"
        )
        assert {r.department.code: (r.conclusion, r.signed_by) for r in rows} == {
            code: (c.result, c.signed_by) for code, c in signed.items()
        }
        if not self.setup:
            return
        [conclusion] = signed.values()
        inspection = await Inspection.get(id=inspection_id)
        task = await SetupTask.get(id=self.world.setup_task_id)
        recorded = any(c.result for c in read_inspection(final)["shiyao"].checks.values())
        status = {
            Conclusion.PASS: InspectionStatus.PASSED,
            Conclusion.FAIL: InspectionStatus.RECTIFICATION_REQUIRED,
            None: InspectionStatus.IN_PROGRESS if recorded else InspectionStatus.SCHEDULED,
        }[conclusion.result]
        assert inspection.status is status, (inspection.status, conclusion)
        assert (task.site_check_done_at is not None) is (status is InspectionStatus.PASSED)


def edited(doc: Doc, update: bytes) -> Doc:
    """A copy of ``doc`` with ``update`` applied."""
    copy: Doc = Doc()
    copy.apply_update(doc.get_update())
    copy.apply_update(update)
    return copy


def holds(doc: Doc, part: Doc) -> bool:
    """Whether ``doc`` holds everything ``part`` holds (applying it changes nothing)."""
    joined: Doc = Doc()
    joined.apply_update(doc.get_update())
    joined.apply_update(part.get_update())
    clocks = protocol.decode_state_vector
    return clocks(joined.get_state()) == clocks(doc.get_state()) and (
        document_json(joined) == document_json(doc)
    )


async def inspection_rows(inspection_id: int) -> tuple[Any, Any]:
    checks = {}
    for row in await CheckResult.filter(inspection_id=inspection_id).select_related("department"):
        checks[(row.department.code, row.check_code)] = (
            row.outcome.value if row.outcome else None,
            row.note,
            dict(row.measured),
            list(row.photo_ids),
            row.recorded_by,
        )
    rectifications = {
        row.uuid: (row.department.code if row.department else None, *row_values(row))
        for row in await Rectification.filter(inspection_id=inspection_id).select_related(
            "department"
        )
    }
    return checks, rectifications


def row_values(row: Rectification) -> tuple[str, date | None, bool]:
    return row.description, row.due, row.done


def expected_rows(doc: Doc) -> tuple[Any, Any]:
    checks = {}
    rectifications = {}
    for code, section in read_inspection(doc).items():
        for check in section.checks.values():
            checks[(code, check.code)] = (
                check.result.value if check.result else None,
                check.note,
                dict(check.measured),
                list(check.photos),
                check.by,
            )
        for item in section.rectifications.values():
            rectifications[item.uuid] = (code, item.description, item.due, item.done)
    return checks, rectifications


async def agency_rows(project_id: int) -> dict[str, Any]:
    return {
        row.uuid: (row.kind, row.text, row.due, row.done)
        for row in await AgencyEntry.filter(project_id=project_id)
    }


def expected_entries(doc: Doc) -> dict[str, Any]:
    return {
        key: (entry.kind, entry.text, entry.due, entry.done)
        for key, entry in read_agency(doc).items()
    }


async def play(
    world: World, count: int, steps: list[tuple[Any, ...]], case: str = "construction"
) -> Run:
    return await played(Run(world, count, case), steps)


async def played(run: Run, steps: list[tuple[Any, ...]]) -> Run:
    await run.start()
    try:
        for number, step in enumerate(steps):
            await run.step(step, number)
        await run.finish()
    finally:
        if run.server is not None:
            await run.close_server()
    await run.check()
    return run


@settings(
    max_examples=50,  # half construction, half setup, drawn
    deadline=None,  # an example opens rooms and writes rows; the whole test is bounded below
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=st.sampled_from(CASES), count=st.integers(3, 5), steps=STEPS)
@example(case="construction", count=5, steps=CHINESE_STEPS)
@example(case="setup", count=3, steps=SETUP_STEPS)
async def test_replicas_and_rows_converge(world: World, case: str, count: int, steps: Any) -> None:
    await asyncio.wait_for(play(world, count, steps, case), 30)


async def test_chinese_text_survives_offline_edits_and_restarts(world: World) -> None:
    run = await play(world, 5, CHINESE_STEPS)
    zjj = run.replicas[0].state()["departments"]["zjj"]
    notes = [c.get("note") for c in zjj["checks"].values()]
    assert "消防车道被临时建筑占用" in notes
    descriptions = {r["description"] for r in zjj["rectifications"].values()}
    assert "已拆除，待复查" in descriptions
    entries = run.replicas[2].state()["entries"]
    texts = {e["text"] for e in entries.values()}  # one of the two was rewritten
    assert "催交电梯检验报告" in texts and len(texts) == 2
    assert texts & {"电话联系建设单位", "走访建设单位，核对竣工资料"}
    assert {r.text for r in await AgencyEntry.filter(project_id=world.project_id)} == texts
    rows = await Rectification.filter(inspection_id=world.cases["construction"].inspection_id)
    assert "已拆除，待复查" in {r.description for r in rows}
    assert json.dumps(zjj, ensure_ascii=False).count("消防") >= 1


async def test_a_setups_signature_closes_it_and_later_edits_are_refused(world: World) -> None:
    run = await play(world, 3, SETUP_STEPS, "setup")
    signer, offline, late = run.replicas
    final = await merged(
        SyncServer(store=UpdateStore(), policy_for=run.sync.policy_for), signer.member.doc_name
    )
    shiyao = document_json(final)["departments"]["shiyao"]
    assert shiyao["conclusion"]["result"] == "pass"
    assert shiyao["conclusion"]["signed_by"] == "验收员1-shiyao"
    assert (await Inspection.get(id=run.case.inspection_id)).status is InspectionStatus.PASSED
    task = await SetupTask.get(id=world.setup_task_id)
    assert task.site_check_done_at == world.clock()
    # Sent before the signature: kept. Reaching the server after it (made offline before or
    # after it): refused as read-only, on every tablet that reconnects.
    assert "冷库温度达标" in {c.get("note") for c in shiyao["checks"].values()}
    assert shiyao["rectifications"] == {}
    assert "签字后补拍照片" not in {c.get("note") for c in shiyao["checks"].values()}
    for replica in (signer, offline, late):
        assert replica.errors and {e.code for e in replica.errors} == {"read_only"}
    assert "签字后补拍照片" in json.dumps(late.state(), ensure_ascii=False)


async def test_a_connection_still_opening_its_room_is_closed_by_a_restart(world: World) -> None:
    """Found by the property above: a connection that was loading its room when the server
    closed used to join the unloaded room and live on, unclosed, after the restart."""
    run = Run(world, 3)
    await run.start()
    await run.close_server()
    replica = run.replicas[0]
    replica.connect(run.open_server())  # a new server: the room must load first
    for _ in range(IN_FLIGHT_TURNS):  # the room is loading (prepare reads the database)
        await asyncio.sleep(0)
    assert replica.link is not None and replica.link.task is not None
    task = replica.link.task
    await run.close_server()  # bounded: fails with a TimeoutError if the connection lives on
    assert task.done() and replica.closes[-1][0] == 1012, replica.closes
    assert "shutting down" in replica.closes[-1][1]


# --- hostile clients ---------------------------------------------------------------------------
#
# One more replica, an inspector who behaves as a hostile (or broken) stock client that never
# recovers. Construction: an inspector of rfb forging zjj's check and conclusion and deleting
# zjj's rectifications. Setup: the permit department's second inspector adding another
# department's section, turning over the signed conclusion (or giving an unsigned one a result
# outside the vocabulary), removing a container of the layout. Both write values outside the
# layout, send edits that depend on refused or unsent ones (clock gaps), replay and reorder
# their updates. Every one of its edits is invalid or depends on an invalid one (and no later
# edit of it replaces an invalid value, which would make its offline diff valid), so whatever
# the schedule, the server, every honest replica and the rows must hold exactly the honest
# replicas' edits (and the layout), and every honest edit is kept but those that reached the
# server after the round closed (read-only).


class Hostile(Replica):
    """A replica that makes updates and chooses which to send, in which order."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.kept: list[bytes] = []  # every update it made, sent or not

    def make(self, edit: Callable[[Doc], None]) -> bytes:
        (update,) = self.local(edit)
        self.kept.append(update)
        return update

    def send(self, *updates: bytes) -> None:
        if self.link is not None and not self.link.closed:
            for update in updates:
                self.link.post(protocol.sync_update(update), update=True)


def forge(hostile: Hostile, foreign: str, check: str, text: str) -> bytes:
    """A forged write to another department's check and its conclusion."""

    def edit(doc: Doc) -> None:
        section = doc.get("departments", type=Map)[foreign]
        section["checks"][check]["result"] = "pass"
        section["checks"][check]["note"] = f"代签 {text}"
        section["conclusion"]["result"] = "pass"
        section["conclusion"]["signed_by"] = "验收员1-zjj"

    return hostile.make(edit)


def forge_setup(hostile: Hostile, own: str, foreign: Member, pick: int, text: str) -> bytes:
    """On a setup's document (one department: nothing of another to forge), another
    department's section added (the setup's fire check's department), or the conclusion
    changed: a signed one turned over, an unsigned one given a result outside the vocabulary
    (the hostile writes pass or fail only once it has seen a signature)."""

    def edit(doc: Doc) -> None:
        departments = doc.get("departments", type=Map)
        if pick % 2:
            conclusion = departments[own]["conclusion"]
            turned = {"pass": "fail", "fail": "pass"}
            conclusion["result"] = turned.get(str(conclusion.get("result")), "maybe")
            conclusion["note"] = f"改签 {text}"
            conclusion["signed_by"] = hostile.member.viewer.username
        else:
            check = Map({"result": "pass", "note": f"代签 {text}", "by": foreign.viewer.username})
            departments[foreign.department or ""] = Map(
                {"checks": Map({"exits": check}), "rectifications": Map(), "conclusion": Map()}
            )

    return hostile.make(edit)


def invalid_own(hostile: Hostile, own: str, check: str, pick: int) -> bytes:
    def edit(doc: Doc) -> None:
        item = doc.get("departments", type=Map)[own]["checks"][check]
        if pick % 3 == 0:
            item["note"] = "长" * 4001
        elif pick % 3 == 1:
            item["result"] = "maybe"
        else:
            item["colour"] = "红"

    return hostile.make(edit)


def valid_own(hostile: Hostile, own: str, check: str, text: str) -> bytes:
    """An edit in its rights, sent after a refused one: refused, as it depends on it. It
    writes ``by``, which no invalid edit writes: a later edit of the same key (the note)
    would replace the invalid value, and a device's offline diff, sent as one update, is
    judged by what it leaves (valid then, and rightly kept)."""

    def edit(doc: Doc) -> None:
        doc.get("departments", type=Map)[own]["checks"][check]["by"] = text

    return hostile.make(edit)


HOSTILE_STEP = st.tuples(st.just("hostile"), st.integers(0, 6), st.integers(0, 7), TEXT)
HOSTILE_STEPS = st.lists(
    st.one_of(
        EDIT_STEP,
        HOSTILE_STEP,
        st.tuples(st.just("connect"), st.integers(0, 5)),
        HOSTILE_STEP,
        st.tuples(st.just("disconnect"), st.integers(0, 5)),
        st.tuples(st.just("restart")),
        SIGN_STEP,
    ),
    min_size=MIN_STEPS,
    max_size=MAX_STEPS,
)


class HostileRun(Run):
    """``Run`` with a hostile replica (the last one) next to 3 honest ones. Construction: an
    inspector of rfb forging zjj's section. Setup: the permit department's second inspector
    forging another department's section and the conclusion; the inspector of that other
    department (assigned to the setup's fire check) may not even open the document."""

    def __init__(self, world: World, case: str = "construction") -> None:
        super().__init__(world, 3, case)
        self.honest_made: list[bytes] = []
        self.own = self.case.members[1].department or ""

    async def start(self) -> None:
        await super().start()
        member = self.case.members[1]  # an inspector on the inspection document
        if self.setup:
            outsider = await self.sync.access_for(self.world.outsider, member.doc_name)
            assert outsider is None, "another department's inspector opened the setup's check"
        access = await self.sync.access_for(member.viewer, member.doc_name)
        assert access is not None and access.department_code == self.own
        hostile = Hostile(member, access, 999_000 + self.world.examples, 0xFFFF, self.progress)
        await self.connect(hostile)
        await settle([hostile])
        self.replicas.append(hostile)
        for replica in self.replicas[:3]:  # record the honest replicas' own updates
            original = replica.change

            def change(
                edit: Callable[[Doc], None],
                replica: Replica = replica,
                original: Callable[[Callable[[Doc], None]], None] = original,
            ) -> None:
                before = replica.doc.get_state()
                original(edit)
                self.honest_made.append(replica.doc.get_update(before))

            replica.change = change  # type: ignore[method-assign]

    @property
    def hostile(self) -> Hostile:
        hostile = self.replicas[-1]
        assert isinstance(hostile, Hostile)
        return hostile

    def forged(self, pick: int, text: str) -> bytes:
        if self.setup:
            foreign = Member("xfjy-1", "", self.world.outsider, "xfjy", [])
            return forge_setup(self.hostile, self.own, foreign, pick, text)
        zjj_checks = self.case.members[0].checks
        return forge(self.hostile, "zjj", zjj_checks[pick % len(zjj_checks)], text)

    async def step(self, step: tuple[Any, ...], number: int) -> None:
        if step[0] == "edit" and step[1] % 4 == 3:
            return  # step[1] 3: the hostile replica makes no honest edits
        if step[0] != "hostile":
            if step[0] in ("connect", "disconnect") and step[1] % 4 == 3:
                step = (step[0], len(self.replicas) - 1)
            elif step[0] in ("connect", "disconnect", "edit"):
                step = (step[0], step[1] % 3, *step[2:])
            await super().step(step, number)
            return
        _, action, pick, text = step
        hostile = self.hostile
        await self.connect(hostile)
        own_checks = self.case.members[1].checks
        own_check = own_checks[pick % len(own_checks)]
        if action == 0:  # a forged write to another department, or to the conclusion
            hostile.send(self.forged(pick, text))
        elif action == 1:  # values outside the layout in its own section
            hostile.send(invalid_own(hostile, self.own, own_check, pick))
        elif action == 2:  # refused, then an edit that depends on it
            bad = invalid_own(hostile, self.own, own_check, pick)
            hostile.send(bad, valid_own(hostile, self.own, own_check, text))
        elif action == 3:  # a clock gap: the invalid edit is never sent, the next one is
            self.forged(pick, text)
            hostile.send(valid_own(hostile, self.own, own_check, text))
        elif action == 4:  # deletes another department's rectification, or (setup) a container
            departments = hostile.doc.get("departments", type=Map)
            items = departments[self.own] if self.setup else departments["zjj"]["rectifications"]
            keys = ["rectifications"] if self.setup and "rectifications" in items else []
            keys = keys if self.setup else sorted(items.keys())
            if keys:
                key = keys[pick % len(keys)]
                hostile.send(hostile.make(lambda doc: items.pop(key)))
            else:
                hostile.send(self.forged(pick, text))
        elif action == 5 and hostile.kept:  # a replay of any of its earlier updates
            hostile.send(hostile.kept[pick % len(hostile.kept)])
        else:  # two forged edits, the later one first
            first, second = self.forged(pick, text), self.forged(pick + 1, text + "2")
            hostile.send(second, first)
        for _ in range(IN_FLIGHT_TURNS):
            await asyncio.sleep(0)

    async def finish(self) -> None:
        await self.sync_all()
        await self.check_refusals(self.replicas[:3])
        for replica in self.replicas:
            assert all(code in (1000, 1012) for code, _ in replica.closes), replica.closes
        if self.hostile.kept:
            assert self.hostile.errors, "the hostile replica's updates were never refused"

    async def check(self) -> None:
        hostile = self.replicas.pop()  # its replica holds its refused edits: not compared
        try:
            await super().check()
        finally:
            self.replicas.append(hostile)
        inspection_doc = self.case.members[0].doc_name
        layout = await DocumentUpdate.filter(doc=inspection_doc).order_by("id")
        final = await merged(
            SyncServer(store=UpdateStore(), policy_for=self.sync.policy_for), inspection_doc
        )
        assert hostile.doc.client_id not in protocol.decode_state_vector(final.get_state())
        expected: Doc = Doc()
        expected.apply_update(bytes(layout[0].data))  # the server's layout, first in the log
        refused = any(replica.errors for replica in self.replicas[:3])
        for update in self.honest_made:
            # Every honest edit is kept, but those refused as read-only after the round closed.
            if not refused or holds(final, edited(final, update)):
                expected.apply_update(update)
        assert document_json(final)["departments"] == document_json(expected)["departments"]


HOSTILE_EXAMPLE: list[tuple[Any, ...]] = [
    ("connect", 0),
    ("edit", 0, Edit(2, 0, "拆除临时建筑", False, 0.0)),
    ("hostile", 2, 1, "依赖被拒"),
    ("hostile", 3, 2, "时钟缺口"),
    ("hostile", 4, 0, ""),
    ("restart",),
    ("hostile", 5, 1, ""),
    ("hostile", 6, 3, "乱序"),
    ("edit", 0, Edit(0, 1, "消防车道畅通", True, 4.0)),
    ("hostile", 0, 0, "代签"),
]

HOSTILE_SETUP_EXAMPLE: list[tuple[Any, ...]] = [
    ("connect", 0),
    ("hostile", 0, 1, "未签先改"),  # an unsigned conclusion given a result outside the vocabulary
    ("edit", 0, Edit(0, 1, "冷库温度达标", True, 4.0)),
    ("sign", True),
    ("hostile", 0, 3, "改签"),  # the signed conclusion turned over
    ("hostile", 0, 0, "代签"),  # another department's section
    ("restart",),
    ("hostile", 4, 1, ""),  # a check removed
    ("hostile", 6, 2, "乱序"),
    ("edit", 1, Edit(2, 0, "签字后整改", False, 0.0)),  # offline, refused once closed
]


@settings(
    max_examples=36,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=st.sampled_from(CASES), steps=HOSTILE_STEPS)
@example(case="construction", steps=HOSTILE_EXAMPLE)
@example(case="setup", steps=HOSTILE_SETUP_EXAMPLE)
async def test_hostile_clients_never_change_what_honest_ones_see(
    world: World, case: str, steps: Any
) -> None:
    await asyncio.wait_for(played(HostileRun(world, case), steps), 30)
