"""The SMS outbox (短信平台): events become templated Chinese messages, each exactly once.

Nothing else calls this module: :func:`collect` reads what already happened (the audit trail,
the stages in review, the electronic supervision events) and writes one
:class:`~storage.models.Notification` row per event and recipient. The row's unique ``key``
is the guarantee that a message exists once, however often and however many processes
collect; delivery (:mod:`approval.oversight.delivery`) then sends each row with retries.

The four moments of the applicant (DOMAIN.md), to the enterprise's contact phone:

- 办件确认 ``received``: a stage was accepted (audit ``stage.accept``), key ``received:{event}``;
- 中途提醒 ``midway``: the stage is still in review on the working day that marks half of its
  time limit (the 10th of 20), key ``midway:{stage}:{round}``;
- 领件通知 ``ready``: the stage completed (audit ``stage.complete``), key ``ready:{event}``;
- 办结评议 ``rate``: with the same completion a :class:`~storage.models.Rating` row with a short
  code is made and sent, key ``rate:{event}``; the code is the applicant's credential to rate.

A company setup has the same four, to its contact phone: 办件确认 at ``setup.accept`` and again
at each ``setup.reaccept`` (a new round after 补正, with that round's deadline); 中途提醒
on the working day that marks half of the X permits' limit (key ``midway:setup:{setup}``), and
for a round after 补正 on the working day that marks half of the reopened permits' limit
counted from the re-acceptance (key ``midway:setup:{setup}:r{round}``; only the current
round's);
领件通知 with 办结评议 (a rating of the setup) at 统一发证 (``setup.issue``), or at
``setup.complete`` when the setup closed refused and there is nothing to issue. A setup
whose round ended 需补正 gets, at that ``setup.complete``, a 补正 notice under the 领件通知
moment (pick up the departments' opinions, bring the material), without a rating: it is not
completed until the window accepts it again and a later round closes it.

And to the staff, from :class:`~storage.models.SupervisionEvent` rows (电子监察): a warning
goes to the department concerned, an overdue flag (red) also to every supervisor whose region
covers the project, key ``supervision:{event}:{recipient}``. Departments are addressed by
their code and supervisors as ``user:{username}``: the SMS gateway holds the center's address
book. An applicant without a contact phone still gets a row, marked failed with the reason,
so supervisors see who could not be told.

Progress: each pass starts after the newest event already turned into a message (read back
from the keys) and looks again at the last :data:`LOOKBACK` events before it, in case a
transaction committed out of id order; the unique keys make every re-check harmless.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from approval.core.calendar import calendar_for
from approval.core.dates import local_day
from approval.core.labels import label
from approval.core.workdays import CalendarUnknownError
from storage.enums import (
    Decision,
    NotificationStatus,
    Role,
    SetupStatus,
    StageStatus,
    WarningLevel,
)
from storage.models import (
    AuditEvent,
    CompanySetup,
    Notification,
    Project,
    Rating,
    Region,
    SetupMaterial,
    SetupRules,
    SetupTask,
    SetupTaskRound,
    Stage,
    SupervisionEvent,
    User,
)

log = logging.getLogger("onewindow.notifications")

RECEIVED = "received"
MIDWAY = "midway"
READY = "ready"
RATE = "rate"
WARNING = "warning"
OVERDUE = "overdue"
SUPERVISION = "supervision"
COMMITMENT = "commitment"  # 容缺: the applicant's own reminder of what they promised
REFUSED = "refused"  # a template only: a refused setup's 领件通知 (its moment is ``ready``)
SUPPLEMENT = "supplement"  # a template only: a setup waiting for 补正 (its moment is ``ready``)
REACCEPTED = "reaccepted"  # a template only: a setup accepted again (its moment is ``received``)
ROUND_MIDWAY = "round_midway"  # a template only: a later round's 中途提醒 (moment ``midway``)

SIGNATURE = "【德州市政务服务中心】"

# Every text people receive, in one place. Placeholders: {project} {code} {stage}
# {deadline} {outcome} {rating_code} for the applicant; {subject} {message} for the staff.
TEMPLATES: dict[str, str] = {
    RECEIVED: SIGNATURE + "您的项目“{project}”({code}) {stage}阶段申请已受理, "
    "承诺办结时限 {deadline}。",
    MIDWAY: SIGNATURE + "您的项目“{project}”({code}) {stage}阶段正在审批, 承诺时限已过半, "
    "承诺办结时限 {deadline}。如需补充材料请及时联系代办员。",
    READY: SIGNATURE + "您的项目“{project}”({code}) {stage}阶段已办结(结果: {outcome}), "
    "请携带有效证件到中心综合窗口领取办件结果。",
    RATE: SIGNATURE + "您的项目“{project}”({code}) {stage}阶段已办结, 请对本次服务作出评价"
    "(1-5分, 5分为非常满意), 评价码 {rating_code}。",
    WARNING: SIGNATURE + "电子监察预警: {subject}{message}",
    OVERDUE: SIGNATURE + "电子监察超期督办: {subject}{message}",
    SUPERVISION: SIGNATURE + "电子监察通知: {subject}{message}",
    COMMITMENT: SIGNATURE + "容缺承诺提醒: {subject}{message}。请按您签署的承诺及时补交材料, "
    "逾期相关审批将中止。",
}
# A company setup's four moments: received at the window, midway, the certificates ready
# together (or the refusal to pick up), and the rating code with them.
SETUP_TEMPLATES: dict[str, str] = {
    RECEIVED: SIGNATURE + "您的企业设立申请“{company}”(受理编号 {code}) 已受理, "
    "一照三证承诺 {core_deadline} 前办结, 其他许可 {x_deadline} 前办结。",
    MIDWAY: SIGNATURE + "您的企业设立申请“{company}”(受理编号 {code}) 正在各部门并联审批, "
    "承诺时限已过半, 各项许可 {x_deadline} 前办结。如需补正材料请及时到企业设立综合窗口办理。",
    READY: SIGNATURE + "您的企业“{company}”(受理编号 {code}) 的营业执照及各项许可证件已办结, "
    "请携带有效证件到中心企业设立综合窗口统一领取。",
    REFUSED: SIGNATURE + "您的企业设立申请“{company}”(受理编号 {code}) 已办结(结果: {outcome}), "
    "请携带有效证件到中心企业设立综合窗口领取审批意见。",
    SUPPLEMENT: SIGNATURE + "您的企业设立申请“{company}”(受理编号 {code}) 经部门审查需补正材料, "
    "请到中心企业设立综合窗口领取补正意见并补交材料, 补正后重新受理。",
    REACCEPTED: SIGNATURE + "您的企业设立申请“{company}”(受理编号 {code}) 补正材料已收到, "
    "已重新受理(第{round}轮审查), 需补正的许可承诺 {deadline} 前办结。",
    ROUND_MIDWAY: SIGNATURE + "您的企业设立申请“{company}”(受理编号 {code}) 补正后第{round}轮审查"
    "承诺时限已过半, 需补正的许可 {deadline} 前办结。如需再次补正请及时到企业设立综合窗口办理。",
    RATE: SIGNATURE + "您的企业设立申请“{company}”(受理编号 {code}) 已办结, 请对本次服务作出评价"
    "(1-5分, 5分为非常满意), 评价码 {rating_code}。",
}
SETUP_REFUSED = REFUSED  # the setup's 领件通知 when a department refused

MOMENT_LABELS: dict[str, str] = {
    RECEIVED: "办件确认",
    MIDWAY: "中途提醒",
    READY: "领件通知",
    RATE: "办结评议",
    WARNING: "超期预警",
    OVERDUE: "超期督办",
    SUPERVISION: "电子监察",
}

AUDIT_ACTIONS = (
    "stage.accept",
    "stage.complete",
    "setup.accept",
    "setup.reaccept",
    "setup.complete",
    "setup.issue",
)
RECEIVED_ACTIONS = ("stage.accept", "setup.accept", "setup.reaccept")
AUDIT_MOMENTS = (RECEIVED, READY)  # the first key of each audit event (rate goes with ready)
SUPERVISION_MOMENTS = (WARNING, OVERDUE, SUPERVISION)
LEVEL_MOMENTS: dict[WarningLevel | None, str] = {
    WarningLevel.YELLOW: WARNING,
    WarningLevel.RED: OVERDUE,
    None: SUPERVISION,
}
LOOKBACK = 200
BATCH = 200

NO_PHONE = (
    "the enterprise has no contact phone, so no SMS can be sent; "
    "record the contact phone on the project's enterprise"
)
NO_RECIPIENT = "the event names no department and no supervisor covers its region"

RATING_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read out by phone
RATING_CODE_LENGTH = 10  # 31^10 codes: guessing one, throttled per address, is hopeless


def render(moment: str, **values: object) -> str:
    """The text of ``moment`` with its placeholders filled."""
    return TEMPLATES[moment].format_map(values)


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def new_rating_code() -> str:
    return "".join(secrets.choice(RATING_CODE_ALPHABET) for _ in range(RATING_CODE_LENGTH))


def midway_day(*, accepted: date, time_limit_days: int, calendar: Any) -> date:
    """The working day on which half of the time limit has passed (the 10th of 20)."""
    result: date = calendar.add_working_days(accepted, (time_limit_days + 1) // 2)
    return result


async def collect(*, now: datetime, batch: int = BATCH) -> int:
    """Turn every event not yet turned into messages into outbox rows; returns rows made."""
    created = await _collect_audit(now=now, batch=batch)
    created += await _collect_midway(now=now)
    created += await _collect_supervision(now=now, batch=batch)
    if created:
        log.info("notifications collected: %d new", created)
    return created


# --- helpers -------------------------------------------------------------------------------


async def _mark(moments: Sequence[str]) -> int:
    """The source event id of the newest row of ``moments`` (keys read ``moment:id[:...]``)."""
    keys = (
        await Notification.filter(moment__in=moments)
        .order_by("-id")
        .limit(1)
        .values_list("key", flat=True)
    )
    for key in keys:
        parts = str(key).split(":")
        if len(parts) >= 2 and parts[1].isdigit():
            return int(parts[1])
    return 0


async def _existing(keys: Iterable[str]) -> set[str]:
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    found = await Notification.filter(key__in=wanted).values_list("key", flat=True)
    return {str(k) for k in found}


def _row(
    *, key: str, moment: str, recipient: str, text: str, project_id: int | None, now: datetime
) -> Notification:
    """An outbox row; without a recipient it is failed at once, saying why."""
    failed = not recipient
    return Notification(
        key=key,
        moment=moment,
        recipient=recipient,
        text=text,
        project_id=project_id,
        status=NotificationStatus.FAILED if failed else NotificationStatus.PENDING,
        last_error=(NO_PHONE if moment in (RECEIVED, MIDWAY, READY, RATE) else NO_RECIPIENT)
        if failed
        else "",
        next_attempt_at=now,
        created_at=now,
    )


async def _insert(row: Notification) -> int:
    """Insert one row; 0 when another pass made it first (its key exists)."""
    try:
        await row.save()
    except IntegrityError:
        return 0
    return 1


def _stage_values(stage: Stage) -> dict[str, str]:
    project = stage.project
    return {"project": project.name, "code": project.code, "stage": stage.definition.name}


# --- the applicant's moments from the audit trail --------------------------------------------


def _audit_key(event: AuditEvent) -> str:
    received = event.action in RECEIVED_ACTIONS
    return f"{RECEIVED if received else READY}:{event.id}"


async def _collect_audit(*, now: datetime, batch: int) -> int:
    created = 0
    mark = await _mark(AUDIT_MOMENTS)
    relevant = AuditEvent.filter(action__in=AUDIT_ACTIONS, entity_type__in=("stage", "setup"))
    events = list(await relevant.filter(id__lte=mark).order_by("-id").limit(LOOKBACK))
    while True:
        fresh = list(await relevant.filter(id__gt=mark).order_by("id").limit(batch))
        events = sorted(events + fresh, key=lambda e: e.id)
        done = await _existing(_audit_key(e) for e in events)
        todo = [e for e in events if _audit_key(e) not in done]
        stage_ids = sorted({e.entity_id for e in todo if e.entity_type == "stage"})
        stages = {
            s.id: s
            for s in await Stage.filter(id__in=stage_ids)
            .select_related("definition", "project__enterprise")
            .all()
        }
        setup_ids = sorted({e.entity_id for e in todo if e.entity_type == "setup"})
        setups = {s.id: s for s in await CompanySetup.filter(id__in=setup_ids)}
        for event in todo:
            if event.entity_type == "setup":
                setup = setups.get(event.entity_id)
                if setup is not None:
                    created += await _setup_moment(event, setup, now)
                continue
            stage = stages.get(event.entity_id)
            if stage is None:
                continue  # the project was deleted meanwhile: nobody to tell
            if event.action == "stage.accept":
                created += await _received(event, stage, now)
            else:
                created += await _completed(event, stage, now)
        if len(fresh) < batch:
            return created
        mark, events = fresh[-1].id, []


def _setup_values(setup: CompanySetup) -> dict[str, str]:
    return {
        "company": setup.company_name,
        "code": setup.code,
        "core_deadline": chinese_date(setup.core_deadline),
        "x_deadline": chinese_date(setup.x_deadline),
    }


async def _setup_moment(event: AuditEvent, setup: CompanySetup, now: datetime) -> int:
    """办件确认 when a setup is accepted, and when it is accepted again after 补正 (the new
    round's number and deadline as the re-acceptance recorded them); 领件通知 and 办结评议
    (a rating code) when its certificates are issued together, or when it closed refused
    (nothing to issue)."""
    values = _setup_values(setup)
    phone = setup.contact_phone.strip()
    if event.action in RECEIVED_ACTIONS:
        text = (
            _reaccepted_text(event, setup, values)
            if event.action == "setup.reaccept"
            else SETUP_TEMPLATES[RECEIVED].format_map(values)
        )
        row = _row(
            key=f"{RECEIVED}:{event.id}",
            moment=RECEIVED,
            recipient=phone,
            text=text,
            project_id=None,
            now=now,
        )
        return await _insert(row)
    if event.action == "setup.complete":
        status = (event.after or {}).get("status")
        if status == SetupStatus.SUPPLEMENT_REQUIRED.value:
            # Not completed: the applicant is told to supply the material, no rating yet.
            row = _row(
                key=f"{READY}:{event.id}",
                moment=READY,
                recipient=phone,
                text=SETUP_TEMPLATES[SUPPLEMENT].format_map(values),
                project_id=None,
                now=now,
            )
            return await _insert(row)
        if status != SetupStatus.REFUSED.value:
            return 0  # ready: the 领件通知 goes with 统一发证 (``setup.issue``)
        ready = SETUP_TEMPLATES[SETUP_REFUSED].format_map(
            {**values, "outcome": _outcome_label(event, setup.outcome)}
        )
    else:
        ready = SETUP_TEMPLATES[READY].format_map(values)
    return await _with_rating(
        event=event,
        setup_id=setup.id,
        recipient=phone,
        project_id=None,
        texts=lambda code: (
            (READY, ready),
            (RATE, SETUP_TEMPLATES[RATE].format_map({**values, "rating_code": code})),
        ),
        now=now,
    )


def _reaccepted_text(event: AuditEvent, setup: CompanySetup, values: dict[str, str]) -> str:
    """The 办件确认 of a new round: its number and the latest deadline of the permits it
    reopened, read from the ``setup.reaccept`` record (the setup row moves on later)."""
    after = event.after or {}
    deadline = setup.x_deadline
    if isinstance(after.get("roundDeadline"), str):
        deadline = date.fromisoformat(after["roundDeadline"])
    round_number = after.get("round")
    return SETUP_TEMPLATES[REACCEPTED].format_map(
        {
            **values,
            "deadline": chinese_date(deadline),
            "round": round_number if isinstance(round_number, int) else 2,
        }
    )


async def _received(event: AuditEvent, stage: Stage, now: datetime) -> int:
    after = event.after or {}
    deadline = stage.deadline
    if isinstance(after.get("deadline"), str):
        deadline = date.fromisoformat(after["deadline"])
    text = render(
        RECEIVED,
        **_stage_values(stage),
        deadline=chinese_date(deadline) if deadline else "以窗口告知为准",
    )
    row = _row(
        key=f"{RECEIVED}:{event.id}",
        moment=RECEIVED,
        recipient=stage.project.enterprise.contact_phone.strip(),
        text=text,
        project_id=stage.project_id,
        now=now,
    )
    return await _insert(row)


def _outcome_label(event: AuditEvent, stored: Decision | None) -> str:
    value = (event.after or {}).get("outcome") or stored
    try:
        return label(Decision(str(value))) if value else "已办结"
    except ValueError:
        return "已办结"


async def _completed(event: AuditEvent, stage: Stage, now: datetime) -> int:
    """领件通知 and 办结评议 with a new rating code, all three rows in one transaction."""
    values = _stage_values(stage)
    outcome = _outcome_label(event, stage.outcome)
    return await _with_rating(
        event=event,
        stage_id=stage.id,
        recipient=stage.project.enterprise.contact_phone.strip(),
        project_id=stage.project_id,
        texts=lambda code: (
            (READY, render(READY, **values, outcome=outcome)),
            (RATE, render(RATE, **values, rating_code=code)),
        ),
        now=now,
    )


async def _with_rating(
    *,
    event: AuditEvent,
    stage_id: int | None = None,
    setup_id: int | None = None,
    recipient: str,
    project_id: int | None,
    texts: Callable[[str], Iterable[tuple[str, str]]],
    now: datetime,
) -> int:
    """A new :class:`Rating` of a stage or a setup with a free code, and the
    rows ``texts(code)`` keyed by ``event``, all in one transaction; 0 when another pass made
    them first."""
    for _ in range(5):
        code = new_rating_code()
        if await Rating.exists(code=code):
            continue
        try:
            async with in_transaction():
                await Rating.create(code=code, stage_id=stage_id, setup_id=setup_id)
                for moment, text in texts(code):
                    await _row(
                        key=f"{moment}:{event.id}",
                        moment=moment,
                        recipient=recipient,
                        text=text,
                        project_id=project_id,
                        now=now,
                    ).save()
        except IntegrityError:
            if await Notification.exists(key=f"{READY}:{event.id}"):
                return 0  # another pass made them first
            continue  # the rating code was taken meanwhile: draw another
        return 2
    raise RuntimeError("could not draw a free rating code in 5 tries")


# --- 中途提醒 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Midway:
    """A case still in review that may be due its 中途提醒."""

    key: str
    accepted: date
    time_limit_days: int
    recipient: str
    text: str
    project_id: int | None


async def _collect_midway(*, now: datetime) -> int:
    """中途提醒 of construction stages (key ``midway:{stage}:{round}``) and company setups
    (:func:`_setup_midways`) on the working day that marks half of their time limit; exactly
    once however many instances collect at once: the key is unique, a second insert loses."""
    today = local_day(now)
    stages = (
        await Stage.filter(
            status=StageStatus.IN_REVIEW,
            accepted_at__not_isnull=True,
            accepted_at__lte=now,
            deadline__not_isnull=True,
            deadline__gte=today,
        )
        .select_related("definition", "project__enterprise")
        .all()
    )
    cases = [
        _Midway(
            key=f"{MIDWAY}:{stage.id}:{stage.round}",
            accepted=local_day(stage.accepted_at),
            time_limit_days=stage.definition.time_limit_days,
            recipient=stage.project.enterprise.contact_phone.strip(),
            text=render(MIDWAY, **_stage_values(stage), deadline=chinese_date(stage.deadline)),
            project_id=stage.project_id,
        )
        for stage in stages
        if stage.accepted_at is not None and stage.deadline is not None
    ]
    rules = await SetupRules.first()
    if rules is not None:
        cases += await _setup_midways(now=now, rules=rules)
    done = await _existing(c.key for c in cases)
    todo = [c for c in cases if c.key not in done and c.time_limit_days >= 2]
    if not todo:
        return 0
    calendar = await calendar_for(*(c.accepted for c in todo))
    created = 0
    for case in todo:
        try:
            due = midway_day(
                accepted=case.accepted, time_limit_days=case.time_limit_days, calendar=calendar
            )
        except CalendarUnknownError as error:
            log.warning("midway reminder %s skipped: %s", case.key, error)
            continue
        if due > today:
            continue
        row = _row(
            key=case.key,
            moment=MIDWAY,
            recipient=case.recipient,
            text=case.text,
            project_id=case.project_id,
            now=now,
        )
        created += await _insert(row)
    return created


async def _setup_midways(*, now: datetime, rules: SetupRules) -> list[_Midway]:
    """The 中途提醒 each setup in review may be due, one for its current round only.

    Round 1 runs from the first acceptance over the X permits' limit (key
    ``midway:setup:{setup}``, its shape kept so nothing fires twice on deploy). A round after
    补正 (the highest ``setup_task.round`` of the setup) runs from its re-acceptance (when
    the window reopened the permits, :class:`SetupTaskRound.reopened_at` of the round before)
    over the limit of the permits it reopened (the X permits' if any, else the core's),
    key ``midway:setup:{setup}:r{round}``; an earlier round's reminder is never sent later.
    """
    today = local_day(now)
    setups = {
        s.id: s
        for s in await CompanySetup.filter(status=SetupStatus.IN_REVIEW, accepted_at__lte=now)
    }
    if not setups:
        return []
    rounds: dict[int, int] = {}
    reopened: dict[int, list[tuple[bool, date]]] = {}  # the current round's (core, deadline)
    for setup_id, number, core, deadline in await SetupTask.filter(
        setup_id__in=sorted(setups)
    ).values_list("setup_id", "round", "core", "deadline"):
        if number > rounds.get(setup_id, 0):
            rounds[setup_id], reopened[setup_id] = number, []
        if number == rounds[setup_id]:
            reopened[setup_id].append((bool(core), deadline))
    later = sorted(i for i, n in rounds.items() if n > 1)
    started: dict[tuple[int, int], datetime] = {}  # (setup, round) -> its re-acceptance
    for setup_id, number, at in (
        await SetupTaskRound.filter(task__setup_id__in=later).values_list(
            "task__setup_id", "round", "reopened_at"
        )
        if later
        else []
    ):
        key = (setup_id, number + 1)
        started[key] = max(started.get(key, at), at)
    cases: list[_Midway] = []
    for setup_id, setup in sorted(setups.items()):
        values = _setup_values(setup)
        number = rounds.get(setup_id, 1)
        if number == 1:
            if setup.x_deadline < today:
                continue
            cases.append(
                _Midway(
                    key=f"{MIDWAY}:setup:{setup_id}",
                    accepted=local_day(setup.accepted_at),
                    time_limit_days=rules.x_days,
                    recipient=setup.contact_phone.strip(),
                    text=SETUP_TEMPLATES[MIDWAY].format_map(values),
                    project_id=None,  # as the setup's other moments
                )
            )
            continue
        start = started.get((setup_id, number))
        deadline = max(d for _, d in reopened[setup_id])
        if start is None or start > now or deadline < today:
            continue
        only_core = all(core for core, _ in reopened[setup_id])
        cases.append(
            _Midway(
                key=f"{MIDWAY}:setup:{setup_id}:r{number}",
                accepted=local_day(start),
                time_limit_days=rules.core_days if only_core else rules.x_days,
                recipient=setup.contact_phone.strip(),
                text=SETUP_TEMPLATES[ROUND_MIDWAY].format_map(
                    {**values, "round": number, "deadline": chinese_date(deadline)}
                ),
                project_id=None,
            )
        )
    return cases


# --- electronic supervision to departments and supervisors -----------------------------------


def _covers(
    user_region: int | None, project: Project | None, parents: dict[int, int | None]
) -> bool:
    """A supervisor sees the whole city (no region) or a region at or above the project's."""
    if user_region is None:
        return True
    region: int | None = project.region_id if project is not None else None
    while region is not None:
        if region == user_region:
            return True
        region = parents.get(region)
    return False


def _user_address(user: User) -> str:
    address = f"user:{user.username}"
    return address if len(address) <= 64 else f"user#{user.id}"


async def _commitment_phones(events: Sequence[SupervisionEvent]) -> dict[int, str]:
    """The applicant's phone for each 容缺 event (by event id): the enterprise's for a
    project's commitment, the contact's for a company setup's."""
    phones: dict[int, str] = {}
    setup_materials = [
        e.entity_id for e in events if e.kind == "commitment" and e.entity_type == "setup_material"
    ]
    by_material = (
        dict(
            await SetupMaterial.filter(id__in=setup_materials).values_list(
                "id", "setup__contact_phone"
            )
        )
        if setup_materials
        else {}
    )
    for event in events:
        if event.kind != "commitment":
            continue
        if event.entity_type == "setup_material":
            phone = str(by_material.get(event.entity_id) or "")
        elif event.project is not None:
            phone = event.project.enterprise.contact_phone
        else:
            continue
        if phone.strip():
            phones[event.id] = phone.strip()
    return phones


async def _collect_supervision(*, now: datetime, batch: int) -> int:
    created = 0
    mark = await _mark(SUPERVISION_MOMENTS)
    events = list(
        await SupervisionEvent.filter(id__lte=mark)
        .order_by("-id")
        .limit(LOOKBACK)
        .select_related("project__enterprise", "department")
    )
    supervisors = await User.filter(role=Role.SUPERVISOR, active=True).order_by("username")
    parents: dict[int, int | None] = dict(await Region.all().values_list("id", "parent_id"))
    while True:
        fresh = list(
            await SupervisionEvent.filter(id__gt=mark)
            .order_by("id")
            .limit(batch)
            .select_related("project__enterprise", "department")
        )
        events = sorted(events + fresh, key=lambda e: e.id)
        planned: list[tuple[SupervisionEvent, str, list[str]]] = []
        applicants = await _commitment_phones(events)
        for event in events:
            moment = LEVEL_MOMENTS.get(event.level, SUPERVISION)
            recipients = [event.department.code] if event.department is not None else []
            if event.level is WarningLevel.RED or not recipients:
                recipients += [
                    _user_address(u)
                    for u in supervisors
                    if _covers(u.region_id, event.project if event.project_id else None, parents)
                ]
            phone = applicants.get(event.id, "")
            recipients += [phone] if phone else []  # 容缺: the applicant who signed, too
            planned.append((event, moment, recipients or [""]))
        done = await _existing(
            f"supervision:{e.id}:{r or '-'}" for e, _, recipients in planned for r in recipients
        )
        for event, moment, recipients in planned:
            project = event.project if event.project_id else None
            subject = f"项目“{project.name}”({project.code}) " if project is not None else ""
            text = render(moment, subject=subject, message=event.message)
            applicant = applicants.get(event.id)
            for recipient in recipients:
                key = f"supervision:{event.id}:{recipient or '-'}"
                if key in done:
                    continue
                created += await _insert(
                    _row(
                        key=key,
                        moment=moment,
                        recipient=recipient,
                        text=render(COMMITMENT, subject=subject, message=event.message)
                        if applicant is not None and recipient == applicant
                        else text,
                        project_id=event.project_id,
                        now=now,
                    )
                )
        if len(fresh) < batch:
            return created
        mark, events = fresh[-1].id, []
