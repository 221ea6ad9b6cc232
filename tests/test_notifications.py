"""短信平台: events become messages exactly once; delivery retries, backs off and never doubles."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from approval.core.access import Viewer
from approval.core.calendar import working_calendar
from approval.oversight.delivery import (
    DeliveryError,
    HttpSmsChannel,
    LogChannel,
    backoff,
    deliver,
)
from approval.oversight.notifications import collect
from approval.projects.tasks import decide_task
from server.notifier import Notifier, running_notifier
from server.settings import Settings, SettingsError
from storage.enums import Decision, NotificationStatus, Role, WarningLevel
from storage.models import (
    Department,
    Enterprise,
    Notification,
    Project,
    Rating,
    Region,
    Stage,
    SupervisionEvent,
    Task,
    User,
)
from tests.helpers import accept, create_project, db_id, ready_stage

CHINA = ZoneInfo("Asia/Shanghai")
PHONE = "13800138000"


# --- a real SMS gateway on 127.0.0.1 -----------------------------------------------------------


@dataclass
class Gateway:
    """A local HTTP gateway that answers 500 to the first ``fail_first`` requests."""

    fail_first: int = 0
    always_fail: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, body: dict[str, Any], headers: dict[str, str]) -> int:
        with self.lock:
            self.requests.append({**body, "authorization": headers.get("authorization", "")})
            if self.always_fail or len(self.requests) <= self.fail_first:
                return 500
            self.delivered.append(body)
            return 200


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = state.handle(body, headers)
            payload = b'{"ok": true}' if status == 200 else b'{"error": "gateway busy"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/sms/send"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- helpers -----------------------------------------------------------------------------------


async def reviewer(department_id: int) -> Viewer:
    department = await Department.get(id=department_id)
    user, _ = await User.get_or_create(
        username=f"reviewer-{department.code}",
        defaults={
            "display_name": department.short_name,
            "password_hash": "-",
            "role": Role.REVIEWER,
            "department": department,
        },
    )
    return Viewer(
        user_id=user.id, username=user.username, role=Role.REVIEWER, department_id=department.id
    )


async def accepted_project(gql: Any, *, phone: str = PHONE) -> tuple[dict[str, Any], Stage]:
    project = await create_project(gql, contactPhone=phone, contactName="王经理")
    await ready_stage(gql, project["id"], "project_approval")
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"] == [], payload
    stage = await Stage.get(id=db_id(payload["stage"]["id"])).select_related("definition")
    return project, stage


async def complete(stage: Stage, now: datetime, decision: Decision = Decision.APPROVED) -> None:
    for task in await Task.filter(stage_id=stage.id, round=stage.round, decided_at__isnull=True):
        await decide_task(
            viewer=await reviewer(task.department_id),
            task_id=task.id,
            decision=decision,
            opinion="" if decision is Decision.APPROVED else "不符合规划条件",
            now=now,
        )


async def moments() -> list[str]:
    return sorted(await Notification.all().values_list("moment", flat=True))  # type: ignore[arg-type]


async def pending(text_part: str = "") -> list[Notification]:
    return await Notification.filter(text__contains=text_part).order_by("id")


# --- the outbox ----------------------------------------------------------------------------------


async def test_accepting_and_completing_make_each_message_exactly_once(gql, clock):
    project, stage = await accepted_project(gql)
    assert await collect(now=clock()) == 1
    assert await collect(now=clock()) == 0
    [received] = await Notification.all()
    assert received.moment == "received" and received.recipient == PHONE
    assert received.status is NotificationStatus.PENDING and received.attempts == 0
    assert received.next_attempt_at == clock() and received.created_at == clock()
    deadline = stage.deadline
    assert deadline is not None
    assert received.text == (
        f"【德州市政务服务中心】您的项目“{project['name']}”({project['code']}) "
        f"立项用地规划许可阶段申请已受理, 承诺办结时限 "
        f"{deadline.year}年{deadline.month}月{deadline.day}日。"
    )
    assert received.project_id == db_id(project["id"])

    await complete(stage, clock())
    results = await asyncio.gather(*(collect(now=clock()) for _ in range(3)))
    assert sum(results) == 2
    for _ in range(3):
        assert await collect(now=clock()) == 0
    assert await moments() == ["rate", "ready", "received"]
    [rating] = await Rating.all()
    assert rating.stage_id == stage.id and rating.score is None
    assert len(rating.code) == 10 and rating.code.isalnum() and rating.code.isupper()
    ready = await Notification.get(moment="ready")
    assert "立项用地规划许可阶段已办结(结果: 准予许可)" in ready.text
    assert "领取" in ready.text
    rate = await Notification.get(moment="rate")
    assert rating.code in rate.text and rate.recipient == PHONE
    assert {n.key for n in await Notification.all()} == {
        received.key,
        ready.key,
        rate.key,
    }


async def test_a_stage_accepted_again_is_confirmed_again(gql, clock):
    project, stage = await accepted_project(gql)
    await complete(stage, clock(), Decision.REJECTED)
    clock.now += timedelta(days=1)
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"] == [], payload
    assert await collect(now=clock()) == 4
    assert await moments() == ["rate", "ready", "received", "received"]
    ready = await Notification.get(moment="ready")
    assert "不予许可" in ready.text
    assert await collect(now=clock()) == 0


async def test_midway_reminder_on_the_working_day_half_the_limit_has_passed(gql, clock):
    _, stage = await accepted_project(gql)
    assert stage.definition.time_limit_days == 20
    calendar = await working_calendar(years=[2026])
    midway = calendar.add_working_days(date(2026, 3, 2), 10)
    assert midway == date(2026, 3, 16)  # Monday of the third week
    await collect(now=clock())
    for day in (date(2026, 3, 13), date(2026, 3, 14), date(2026, 3, 15)):  # Fri, Sat, Sun
        assert await collect(now=datetime(day.year, day.month, day.day, 18, tzinfo=CHINA)) == 0
    assert await moments() == ["received"]
    monday = datetime(2026, 3, 16, 8, 30, tzinfo=CHINA)
    assert await collect(now=monday) == 1
    assert await collect(now=monday + timedelta(days=1)) == 0
    reminder = await Notification.get(moment="midway")
    assert reminder.key == f"midway:{stage.id}:1"
    assert "承诺时限已过半" in reminder.text and "2026年3月30日" in reminder.text
    assert stage.deadline == date(2026, 3, 30)


async def test_no_midway_reminder_once_the_stage_is_done(gql, clock):
    _, stage = await accepted_project(gql)
    await complete(stage, clock())
    assert await collect(now=datetime(2026, 3, 20, 9, tzinfo=CHINA)) == 3
    assert "midway" not in await moments()


async def test_an_applicant_without_phone_shows_as_failed_with_the_reason(gql, clock):
    await accepted_project(gql, phone="")
    assert await collect(now=clock()) == 1
    [row] = await Notification.all()
    assert row.status is NotificationStatus.FAILED and row.recipient == ""
    assert "no contact phone" in row.last_error
    report = await deliver(channel=LogChannel(), now=clock())
    assert report.sent == 0


async def test_supervision_events_go_to_the_department_and_supervisors(gql, clock):
    project, _ = await accepted_project(gql)
    fgw = await Department.get(code="fgw")
    project_row = await Project.get(id=db_id(project["id"]))
    await User.create(
        username="supervisor-elsewhere",
        display_name="县中心",
        password_hash="-",
        role=Role.SUPERVISOR,
        region=await Region.get(code="371428"),
    )
    common = {"entity_type": "task", "entity_id": 1, "project": project_row, "at": clock()}
    await SupervisionEvent.create(
        key="task:1:yellow",
        kind="deadline_warning",
        level=WarningLevel.YELLOW,
        department=fgw,
        message="节能审查将于2026年3月5日到期",
        **common,
    )
    await SupervisionEvent.create(
        key="task:1:red",
        kind="overdue",
        level=WarningLevel.RED,
        department=fgw,
        message="节能审查已超期",
        **common,
    )
    assert await collect(now=clock()) == 1 + 3  # received + yellow to fgw + red to fgw, supervisor
    assert await collect(now=clock()) == 0
    rows = await Notification.filter(key__startswith="supervision:").order_by("id")
    assert [(r.moment, r.recipient) for r in rows] == [
        ("warning", "fgw"),
        ("overdue", "fgw"),
        ("overdue", "user:supervisor"),
    ]
    assert rows[0].text == (
        f"【德州市政务服务中心】电子监察预警: 项目“{project['name']}”({project['code']}) "
        "节能审查将于2026年3月5日到期"
    )
    await SupervisionEvent.create(
        key="system:1",
        kind="notice",
        level=None,
        entity_type="system",
        entity_id=0,
        message="日历未加载",
        at=clock(),
    )
    assert await collect(now=clock()) == 1  # no department: the city-wide supervisor
    last = await Notification.filter(key__startswith="supervision:").order_by("-id").first()
    assert last is not None and last.recipient == "user:supervisor"


# --- delivery ------------------------------------------------------------------------------------


async def test_failing_gateway_is_retried_with_backoff_and_delivers_once(gql, clock, gateway):
    await accepted_project(gql)
    await collect(now=clock())
    gateway.fail_first = 3
    channel = HttpSmsChannel(url=gateway.url, key="secret-key", timeout=5)
    t0 = clock()
    try:
        waits = []
        for attempt in range(1, 4):
            report = await deliver(channel=channel, now=clock())
            assert (report.sent, report.retried) == (0, 1)
            assert await deliver(channel=channel, now=clock()) == type(report)()  # not yet due
            row = await Notification.get()
            assert row.attempts == attempt and row.status is NotificationStatus.PENDING
            assert "answered 500" in row.last_error and "gateway busy" in row.last_error
            waits.append(row.next_attempt_at - clock())
            clock.now = row.next_attempt_at
        assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
        report = await deliver(channel=channel, now=clock())
        assert report.sent == 1
        for _ in range(3):
            clock.now += timedelta(hours=1)
            assert (await deliver(channel=channel, now=clock())).sent == 0
    finally:
        await channel.aclose()
    row = await Notification.get()
    assert row.status is NotificationStatus.SENT and row.attempts == 4 and row.last_error == ""
    assert row.sent_at == t0 + timedelta(seconds=210)
    assert len(gateway.requests) == 4
    assert gateway.delivered == [{"to": PHONE, "text": row.text}]
    assert {r["authorization"] for r in gateway.requests} == {"Bearer secret-key"}


async def test_two_deliverers_never_send_a_message_twice(gql, clock, gateway):
    for _ in range(3):
        _, stage = await accepted_project(gql)
        await complete(stage, clock())
    await collect(now=clock())
    total = await Notification.all().count()
    assert total == 9
    gateway.fail_first = 4
    channels = [HttpSmsChannel(url=gateway.url, timeout=5) for _ in range(2)]
    try:
        for _ in range(8):
            await asyncio.gather(
                *(deliver(channel=c, now=clock(), batch=5) for c in channels),
                *(deliver(channel=c, now=clock(), batch=50) for c in channels),
            )
            clock.now += timedelta(minutes=5)
    finally:
        for channel in channels:
            await channel.aclose()
    assert await Notification.filter(status=NotificationStatus.SENT).count() == total
    texts = [d["text"] for d in gateway.delivered]
    assert len(texts) == len(set(texts)) == total
    assert len(gateway.requests) == total + 4


async def test_a_message_fails_for_good_after_the_last_attempt(gql, clock, gateway):
    await accepted_project(gql)
    await collect(now=clock())
    gateway.always_fail = True
    channel = HttpSmsChannel(url=gateway.url, timeout=5)
    try:
        reports = []
        for _ in range(10):
            reports.append(await deliver(channel=channel, now=clock(), max_attempts=6))
            clock.now += timedelta(hours=2)
    finally:
        await channel.aclose()
    assert [r.retried for r in reports[:5]] == [1] * 5
    assert reports[5].failed == 1
    assert all(r == type(r)() for r in reports[6:])
    row = await Notification.get()
    assert row.status is NotificationStatus.FAILED and row.attempts == 6
    assert "answered 500" in row.last_error and row.sent_at is None
    assert len(gateway.requests) == 6 and gateway.delivered == []


async def test_an_unreachable_gateway_raises_delivery_error():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = HttpSmsChannel(url=f"http://127.0.0.1:{port}/send", timeout=2)
    try:
        with pytest.raises(DeliveryError, match="did not answer"):
            await channel.send(recipient=PHONE, text="测试")
    finally:
        await channel.aclose()


def test_backoff_doubles_and_is_capped():
    assert [backoff(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert backoff(20) == timedelta(hours=1)


# --- the notifier and its settings ---------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, *, recipient: str, text: str) -> None:
        self.sent.append((recipient, text))


async def test_notifier_tick_collects_and_delivers_with_its_clock(gql, clock):
    await accepted_project(gql)
    recorder = Recorder()
    notifier = Notifier(channel=recorder, clock=clock, interval=30)
    created, report = await notifier.tick()
    assert created == 1 and report.sent == 1
    assert recorder.sent[0][0] == PHONE and "已受理" in recorder.sent[0][1]
    created, report = await notifier.tick()
    assert created == 0 and report.sent == 0
    row = await Notification.get()
    assert row.status is NotificationStatus.SENT and row.sent_at == clock()


async def test_notifier_runs_in_the_background_and_stops(gql, clock):
    await accepted_project(gql)
    assert await Enterprise.filter(contact_phone=PHONE).exists()
    async with running_notifier(Settings(notify_seconds=0), clock) as off:
        assert off is None
    recorder = Recorder()
    async with running_notifier(Settings(notify_seconds=3600), clock, channel=recorder) as on:
        assert on is not None
        for _ in range(200):
            if recorder.sent:
                break
            await asyncio.sleep(0.01)
    assert len(recorder.sent) == 1


def test_notification_settings():
    assert Settings.from_env({}).notify_seconds == 30
    assert Settings.from_env({}).sms_gateway_url == ""
    settings = Settings.from_env(
        {
            "ONEWINDOW_SMS_GATEWAY_URL": "https://sms.example.cn/send",
            "ONEWINDOW_SMS_GATEWAY_KEY": "k",
            "ONEWINDOW_NOTIFY_SECONDS": "0",
        }
    )
    assert settings.sms_gateway_url == "https://sms.example.cn/send"
    assert settings.sms_gateway_key == "k" and "'k'" not in repr(settings)
    assert settings.notify_seconds == 0
    with pytest.raises(SettingsError, match="ONEWINDOW_SMS_GATEWAY_URL"):
        Settings.from_env({"ONEWINDOW_SMS_GATEWAY_URL": "sms.example.cn"})
    with pytest.raises(SettingsError, match="ONEWINDOW_NOTIFY_SECONDS"):
        Settings.from_env({"ONEWINDOW_NOTIFY_SECONDS": "-1"})


async def test_a_commitment_reminder_reaches_the_applicant_who_signed_it(gql, clock):
    from approval.oversight.supervision import SupervisionSettings, supervise
    from tests.helpers import accept, stage_needs, submit
    from tests.supervision_support import at

    project = await create_project(gql, contactPhone="13900000077", contactName="张建国")
    core, non_core = await stage_needs(project["id"], "project_approval")
    for code in core:
        await submit(gql, project["id"], code)
    commitments = [{"materialType": c, "due": "2026-03-06", "signedBy": "张建国"} for c in non_core]
    payload = await accept(gql, project["id"], "project_approval", commitments=commitments)
    assert payload["errors"] == [], payload
    fired = await supervise(now=at("2026-03-05"), settings=SupervisionSettings())
    reminders = [e for e in fired if e.kind == "commitment"]
    assert reminders
    await collect(now=at("2026-03-05"))
    to_applicant = await Notification.filter(recipient="13900000077", moment="warning")
    assert len(to_applicant) == len(reminders)
    assert all("容缺承诺提醒" in n.text and "补交" in n.text for n in to_applicant)
    staff = await Notification.filter(moment="warning").exclude(recipient="13900000077")
    assert staff and all("容缺承诺提醒" not in n.text for n in staff)  # the department's own text
    other = [e for e in fired if e.kind != "commitment"]
    keys = {n.key for n in to_applicant}
    assert not any(key.startswith(f"supervision:{e.id}:") for e in other for key in keys)
