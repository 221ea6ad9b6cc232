"""The review engine: a case's round of department tasks, decided in parallel.

A *case* (the current round of a construction stage, a company setup) hands one task to each
department at once. Every change to a task takes one path, written here once:

1. lock the case row, then the task row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
   serialises writers), so decisions, 超时默认, clock stops and supplement requests on one case
   queue up and the fan-in always sees every other committed change;
2. check the task is still open and the case still in review (typed errors otherwise);
3. write and audit (``<entity>.decide``, ``<entity>.pause``, ``<entity>.resume`` ...);
4. fan in: when no task of the round is open any more, the case takes the most severe decision
   (:func:`approval.review.rules.most_severe`) and the kind closes it.

Clock stops (行政许可法 Art. 45) are kept here too: a stopped clock's deadline moves later by
the working days it stood still when it restarts, and a decision ends a stopped clock.

What differs between kinds of case is a :class:`CaseReview`: the two tables and their locks,
which rows make up the current round, where a stopped clock's history is kept, and what closing
the case means (a stage completes and stage 4 completes its project; a setup is ready for
统一发证 or refused). The tables stay two (``task``, ``setup_task``): see ARCHITECTURE.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.calendar import calendar_for
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid
from approval.core.workdays import CalendarUnknownError, WorkingCalendar
from approval.review.rules import OPEN, most_severe, resumed_deadline
from storage.enums import Decision, TaskStatus
from storage.models import CompanySetup, MaterialType, SetupTask, Stage, Task


class PauseReason(StrEnum):
    """Why a reviewer stops a task's clock (行政许可法 Art. 45)."""

    EXPERT_REVIEW = "expert_review"  # 专家评审
    HEARING = "hearing"  # 听证
    TESTING = "testing"  # 检验、检测、检疫
    SUPPLEMENT = "supplement"  # 补正材料


# The two kinds of case and their task tables (kept apart: see ARCHITECTURE.md). The type
# variables are restricted to them, so the engine is type-checked once against each.
C = TypeVar("C", Stage, CompanySetup)
T = TypeVar("T", Task, SetupTask)


def calendar_error(exc: CalendarUnknownError, *, field: str | None = None) -> DomainError:
    return DomainError(ErrorCode.CALENDAR_UNKNOWN, str(exc), field=field)


def pause_reason(reason: str) -> PauseReason:
    """A reason the law allows for stopping a clock, else INVALID_INPUT naming them."""
    try:
        return PauseReason(reason)
    except ValueError:
        allowed = ", ".join(r.value for r in PauseReason)
        raise invalid(f"reason {reason!r} is not one of {allowed}", field="reason") from None


def written_opinion(decision: Decision, opinion: str, *, max_length: int | None = None) -> str:
    """The opinion as recorded: anything but an approval states why; optionally bounded."""
    text = opinion.strip()
    if decision is not Decision.APPROVED and not text:
        raise invalid(
            "a decision other than approved needs a written opinion stating why", field="opinion"
        )
    if max_length is not None and len(text) > max_length:
        raise invalid(f"the opinion is longer than {max_length} characters", field="opinion")
    return text


def supplement_reason(reason: str) -> str:
    """What a 补正 request asks for, required."""
    text = reason.strip()
    if not text:
        raise invalid("say what must be supplied and why", field="reason")
    return text


async def supplement_material(code: str | None) -> MaterialType | None:
    """The catalog's material type a 补正 request names (None: none named)."""
    if code is None:
        return None
    material_type = await MaterialType.get_or_none(code=code)
    if material_type is None:
        raise invalid(f"material type {code!r} is not in the catalog", field="materialType")
    return material_type


async def clock_calendar(task: Task | SetupTask, now: datetime) -> WorkingCalendar | None:
    """The calendar a stopped clock needs to restart at ``now`` (None while it runs), read
    before any lock; CALENDAR_UNKNOWN naming ``taskId`` when a year is not loaded."""
    if task.paused_at is None:
        return None
    try:
        return await calendar_for(local_day(task.paused_at), local_day(now), task.deadline)
    except CalendarUnknownError as exc:
        raise calendar_error(exc, field="taskId") from None


@dataclass(frozen=True)
class Verdict:
    """A decision about to be recorded on a task."""

    decision: Decision
    opinion: str
    actor_id: int | None  # None: the system (超时默认)
    action: str  # the audit action, e.g. ``task.decide``
    default_approved: bool = False
    after: dict[str, Any] = field(default_factory=dict)  # more for the audit record


class CaseReview(ABC, Generic[C, T]):
    """One kind of case under the engine; subclasses name the tables and the close."""

    entity: str  # the task's audit entity type and action prefix: "task", "setup_task"
    label: str  # how messages name a task: "task", "setup task"

    # --- what each kind says ------------------------------------------------------------

    @abstractmethod
    async def lock(self, task: T) -> tuple[C, T]:
        """Inside a transaction: the case row, then the task row, locked in that order."""

    @abstractmethod
    def in_review(self, case: C) -> bool:
        """The case still takes decisions."""

    @abstractmethod
    async def round_rows(self, case: C) -> list[tuple[str, str | None]]:
        """(status, decision) of every task of the case's current round."""

    @abstractmethod
    async def close(
        self, *, case: C, outcome: Decision, now: datetime, actor_id: int | None
    ) -> None:
        """The round's last task was decided: close the case with the fan-in's outcome."""

    @abstractmethod
    async def clock_stopped(self, task: T, *, reason: str, note: str, now: datetime) -> None:
        """Keep the history of a clock just stopped (``paused_at`` is already saved)."""

    @abstractmethod
    async def open_stop(self, task: T) -> tuple[datetime, str | None]:
        """When and why the task's running stop began."""

    @abstractmethod
    async def clock_restarted(self, task: T, *, now: datetime, working_days: int) -> None:
        """Close the history of a stop that just ended (deadline and ``paused_at`` saved)."""

    @abstractmethod
    async def resolve_supplements(self, task: T, *, now: datetime) -> None:
        """Mark the task's open 补正 requests resolved at ``now``."""

    def refuse_held(self, case: C, task_id: int) -> None:
        """Refuse any action while the case is held (a construction stage suspended)."""

    async def audit_change(
        self,
        task: T,
        *,
        verb: str,
        actor_id: int | None,
        project_id: int | None,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """One audit record of a change to ``task``: ``<entity>.<verb>``."""
        await audit.record(
            actor_id=actor_id,
            action=f"{self.entity}.{verb}",
            entity_type=self.entity,
            entity_id=task.id,
            project_id=project_id,
            before=before,
            after=after,
        )

    # --- guards --------------------------------------------------------------------------

    def _refuse_closed(self, case: C, task: T, task_id: int, code: ErrorCode, why: str) -> None:
        self.refuse_held(case, task_id)
        if task.status not in OPEN or not self.in_review(case):
            raise DomainError(code, f"{self.label} {task_id} {why}", field="taskId")

    def require_undecided(self, case: C, task: T, task_id: int) -> None:
        """A decision on a decided task (or a closed case) is ALREADY_DECIDED."""
        decided = task.decision.value if task.decision else "closed"
        self._refuse_closed(
            case,
            task,
            task_id,
            ErrorCode.ALREADY_DECIDED,
            f"was already decided ({decided}); a decision cannot be changed",
        )

    def require_open(self, case: C, task: T, task_id: int) -> None:
        """Only an open task of a case in review can be acted on (INVALID_STATE)."""
        self._refuse_closed(
            case,
            task,
            task_id,
            ErrorCode.INVALID_STATE,
            "is already decided; only an open task's clock can be stopped",
        )

    async def before_decision(self, case: C, task: T, decision: Decision) -> None:
        """What the kind requires before ``decision`` (e.g. a site check); raises if unmet."""

    def default_due(self, case: C, task: T, today: date) -> bool:
        """超时默认 may approve: open, in review, clock running, deadline before ``today``."""
        return (
            task.status in OPEN
            and self.in_review(case)
            and task.paused_at is None
            and task.deadline < today
        )

    # --- the clock -----------------------------------------------------------------------

    async def stop_clock(
        self,
        *,
        task: T,
        reason: str,
        note: str,
        now: datetime,
        actor_id: int | None,
        project_id: int | None,
    ) -> None:
        """Stop a running clock (locks held, ``paused_at is None`` checked); audited."""
        await self._stop(task=task, reason=reason, note=note, now=now)
        await self.audit_change(
            task,
            verb="pause",
            actor_id=actor_id,
            project_id=project_id,
            before={"paused": False},
            after={"paused": True, "reason": reason, "note": note},
        )

    async def _stop(self, *, task: T, reason: str, note: str, now: datetime) -> None:
        task.paused_at = now
        await task.save(update_fields=["paused_at"])
        await self.clock_stopped(task, reason=reason, note=note, now=now)

    def require_running(self, task: T, task_id: int) -> None:
        if task.paused_at is not None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the clock of {self.label} {task_id} is already stopped since "
                f"{local_day(task.paused_at)}; resume it before stopping it for another "
                "reason",
                field="taskId",
            )

    def require_stopped(self, task: T, task_id: int) -> None:
        if task.paused_at is None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the clock of {self.label} {task_id} is running; there is nothing to resume",
                field="taskId",
            )

    async def restart_clock(
        self, *, task: T, now: datetime, calendar: WorkingCalendar | None
    ) -> tuple[date, int, str | None] | None:
        """Restart a stopped clock: the deadline moves later by the working days it stood.

        Returns the deadline before, those days and the stop's reason; None if it ran.
        Raises CalendarUnknownError when ``calendar`` (read here if None) lacks a year.
        """
        if task.paused_at is None:
            return None
        started, reason = await self.open_stop(task)
        if calendar is None:
            calendar = await calendar_for(local_day(started), local_day(now), task.deadline)
        before = task.deadline
        task.deadline, days = resumed_deadline(
            deadline=task.deadline, stopped=started, resumed=now, calendar=calendar
        )
        task.paused_at = None
        await task.save(update_fields=["deadline", "paused_at"])
        await self.clock_restarted(task, now=now, working_days=days)
        return before, days, reason

    async def resume_clocks(
        self,
        *,
        tasks: Iterable[T],
        reasons: tuple[str, ...] | None,
        now: datetime,
        calendar: WorkingCalendar | None,
        actor_id: int | None,
        project_id: int | None,
    ) -> list[int]:
        """Restart the clocks of ``tasks`` stopped for one of ``reasons`` (None: any), locks
        held; audited as ``<entity>.resume``. Returns the ids whose clock restarted."""
        restarted: list[int] = []
        for task in tasks:
            if task.paused_at is None:
                continue
            if reasons is not None and (await self.open_stop(task))[1] not in reasons:
                continue
            result = await self.restart_clock(task=task, now=now, calendar=calendar)
            if result is None:
                continue
            before, days, reason = result
            await self.audit_change(
                task,
                verb="resume",
                actor_id=actor_id,
                project_id=project_id,
                before={"paused": True, "reason": reason, "deadline": before.isoformat()},
                after={
                    "paused": False,
                    "deadline": task.deadline.isoformat(),
                    "pausedWorkingDays": days,
                },
            )
            restarted.append(task.id)
        return restarted

    async def pause(self, *, task: T, reason: str, note: str, now: datetime, actor_id: int) -> T:
        """A reviewer stops an open task's clock for a reason the law allows; audited."""
        allowed = pause_reason(reason)
        async with in_transaction():
            case, current = await self.lock(task)
            self.require_open(case, current, task.id)
            self.require_running(current, task.id)
            await self.stop_clock(
                task=current,
                reason=allowed.value,
                note=note.strip(),
                now=now,
                actor_id=actor_id,
                project_id=case.project_id,
            )
        return current

    async def resume(self, *, task: T, now: datetime, actor_id: int) -> T:
        """A reviewer restarts a stopped clock: the deadline moves later by the working days
        it stood (CALENDAR_UNKNOWN if a year is not loaded); audited, then :meth:`resumed`."""
        self.require_stopped(task, task.id)
        calendar = await clock_calendar(task, now)
        async with in_transaction():
            case, current = await self.lock(task)
            self.require_stopped(current, task.id)
            self.refuse_held(case, task.id)
            try:
                await self.resume_clocks(
                    tasks=[current],
                    reasons=None,
                    now=now,
                    calendar=calendar,
                    actor_id=actor_id,
                    project_id=case.project_id,
                )
            except CalendarUnknownError as exc:
                raise calendar_error(exc, field="taskId") from None
            await self.resumed(current, now=now)
        return current

    async def resumed(self, task: T, *, now: datetime) -> None:
        """A reviewer restarted the clock (locks held): a task waiting for a supplement
        counts it received, pending again with its open 补正 requests resolved."""
        if task.status is TaskStatus.SUPPLEMENT_REQUESTED:
            task.status = TaskStatus.PENDING
            await task.save(update_fields=["status"])
            await self.resolve_supplements(task, now=now)

    # --- 补正 ----------------------------------------------------------------------------

    def require_pending(self, task: T, task_id: int) -> None:
        if task.status is not TaskStatus.PENDING:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"{self.label} {task_id} is {task.status.value}; a supplement can only be "
                "requested while it is pending",
                field="taskId",
            )

    async def supplement_requested(self, *, task: T, reason: str, now: datetime) -> bool:
        """补正 asked on a locked pending task: it waits for the material, its clock stopped
        for ``supplement`` unless it already stood (the request's audit says which)."""
        task.status = TaskStatus.SUPPLEMENT_REQUESTED
        await task.save(update_fields=["status"])
        if task.paused_at is not None:
            return False
        await self._stop(task=task, reason=PauseReason.SUPPLEMENT.value, note=reason, now=now)
        return True

    async def audit_supplement(
        self,
        *,
        task: T,
        reason: str,
        material_type_code: str | None,
        clock_stopped: bool,
        actor_id: int | None,
        project_id: int | None,
    ) -> None:
        await self.audit_change(
            task,
            verb="request_supplement",
            actor_id=actor_id,
            project_id=project_id,
            before={"status": TaskStatus.PENDING.value},
            after={
                "status": task.status.value,
                "reason": reason,
                "materialType": material_type_code,
                "clockStopped": clock_stopped,
            },
        )

    # --- a new round -------------------------------------------------------------------

    async def round_ended(self, task: T, *, now: datetime, actor_id: int | None) -> None:
        """A decided task's round is over and the task opens again (locks held, the task
        still as decided): keep that round where the kind keeps its history, and count the
        next one. Nothing by default: a construction stage's new round is new task rows."""

    async def reopen(
        self,
        *,
        task: T,
        deadline: date,
        now: datetime,
        actor_id: int | None,
        project_id: int | None,
    ) -> None:
        """A decided task of a locked case open again for a new round (a setup's permit
        after 补正): the round that ended kept (:meth:`round_ended`), then pending,
        undecided, clock running, due ``deadline``, its open 补正 requests resolved; audited
        as ``<entity>.reopen`` with the decision it had."""
        await self.round_ended(task, now=now, actor_id=actor_id)
        before = {
            "status": task.status.value,
            "decision": task.decision.value if task.decision else None,
            "opinion": task.opinion,
            "deadline": task.deadline.isoformat(),
        }
        task.status = TaskStatus.PENDING
        task.decision = None  # type: ignore[assignment]
        task.opinion = ""
        task.decided_at = None
        task.decided_by_id = None
        task.default_approved = False
        task.paused_at = None
        task.deadline = deadline
        await task.save()
        await self.resolve_supplements(task, now=now)
        await self.audit_change(
            task,
            verb="reopen",
            actor_id=actor_id,
            project_id=project_id,
            before=before,
            after={"status": task.status.value, "deadline": deadline.isoformat()},
        )

    # --- decisions and the fan-in --------------------------------------------------------

    async def record(
        self,
        *,
        case: C,
        task: T,
        verdict: Verdict,
        now: datetime,
        calendar: WorkingCalendar | None,
    ) -> None:
        """Record a decision on a locked task (ending a stopped clock; the history keeps it),
        audit it and close the case when it was the round's last open task.

        Raises CalendarUnknownError when a stopped clock needs a year not loaded."""
        before = {"status": task.status.value}
        await self.restart_clock(task=task, now=now, calendar=calendar)
        task.status = TaskStatus.DECIDED
        task.decision = verdict.decision
        task.opinion = verdict.opinion
        task.decided_at = now
        task.decided_by_id = verdict.actor_id
        task.default_approved = verdict.default_approved
        await task.save()
        await audit.record(
            actor_id=verdict.actor_id,
            action=verdict.action,
            entity_type=self.entity,
            entity_id=task.id,
            project_id=case.project_id,
            before=before,
            after={
                "status": task.status.value,
                "decision": verdict.decision.value,
                "opinion": task.opinion,
                **verdict.after,
            },
        )
        await self.fan_in(case=case, now=now, actor_id=verdict.actor_id)

    async def decide(self, *, task: T, verdict: Verdict, now: datetime) -> T:
        """A reviewer's decision: lock, refuse a decided task, the kind's preconditions,
        record and fan in (CALENDAR_UNKNOWN if a stopped clock needs a year not loaded)."""
        calendar = await clock_calendar(task, now)
        async with in_transaction():
            # Lock the case first: decisions on one case queue up here, so the fan-in always
            # sees every other committed decision.
            case, current = await self.lock(task)
            self.require_undecided(case, current, task.id)
            await self.before_decision(case, current, verdict.decision)
            try:
                await self.record(
                    case=case, task=current, verdict=verdict, now=now, calendar=calendar
                )
            except CalendarUnknownError as exc:
                raise calendar_error(exc, field="taskId") from None
        return current

    async def fan_in(self, *, case: C, now: datetime, actor_id: int | None) -> Decision | None:
        """Close the case with the most severe decision once no task of its round is open;
        the outcome, or None while some task is open."""
        rows = await self.round_rows(case)
        if not rows or any(TaskStatus(status) in OPEN for status, _ in rows):
            return None
        outcome = most_severe(Decision(d) for _, d in rows if d is not None)
        await self.close(case=case, outcome=outcome, now=now, actor_id=actor_id)
        return outcome
