"""联审联办: a joint review meeting where every invited department states its opinion and its
promised time at one table. 缺席默认: a department absent when the meeting closes is recorded
as agreeing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from approval.core import audit
from approval.core.access import Viewer, require_role, visible_project
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.projects.stages import exempt_by_regional_assessment
from approval.review.rules import PASSING
from storage.enums import MeetingStatus, Role, StageStatus
from storage.models import (
    Department,
    MeetingInvitation,
    Project,
    Region,
    ReviewMeeting,
    ServiceItem,
    Stage,
    StageDefinition,
)

PLACE_MAX = 128
OPINION_MAX = 4000


@dataclass(frozen=True)
class MeetingView:
    """A meeting with its stage and its invitations (department loaded on each)."""

    meeting: ReviewMeeting
    stage_code: str | None
    stage_name: str | None
    invitations: list[MeetingInvitation]


def invitation_label(invitation: MeetingInvitation) -> str:
    """What people read for one department's place at the table."""
    if invitation.recorded_at is None:
        return "未表态"
    if invitation.absent_default:
        return "缺席, 视为同意"
    return "同意" if invitation.agrees else "不同意"


async def _meeting(viewer: Viewer, meeting_id: int) -> ReviewMeeting:
    """The meeting, if the viewer may see its project (reviewers: if their department is
    invited, because before acceptance their department has no task on the project yet)."""
    meeting = await ReviewMeeting.get_or_none(id=meeting_id)
    if meeting is None:
        raise not_found("meeting", meeting_id, field="meetingId")
    if viewer.role is Role.REVIEWER:
        invited = await MeetingInvitation.exists(
            meeting_id=meeting.id, department_id=viewer.department_id or -1
        )
        project = await Project.get(id=meeting.project_id)
        in_region = viewer.region_ids is None or project.region_id in viewer.region_ids
        if invited and in_region:
            return meeting
    try:
        await visible_project(viewer, meeting.project_id)
    except DomainError:
        raise not_found("meeting", meeting_id, field="meetingId") from None
    return meeting


async def schedule_meeting(
    *,
    viewer: Viewer,
    project_id: int,
    stage_code: str,
    at: datetime,
    place: str,
    department_codes: list[str],
    now: datetime,
) -> ReviewMeeting:
    """The window or the center calls a joint review of one stage with the given departments."""
    require_role(viewer, Role.WINDOW_CLERK, Role.SUPERVISOR)
    project = await visible_project(viewer, project_id)
    stage = (
        await Stage.filter(project_id=project.id, definition__code=stage_code)
        .select_related("definition")
        .first()
    )
    if stage is None:
        known = await StageDefinition.all().order_by("order").values_list("code", flat=True)
        raise invalid(
            f"stage {stage_code!r} is not one of {', '.join(map(str, known))}", field="stage"
        )
    if stage.status is StageStatus.COMPLETED and stage.outcome in PASSING:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"stage {stage.definition.name} is already approved; a joint review is for a "
            "stage still to be decided",
            field="stage",
        )
    if at.tzinfo is None:
        raise invalid("give the meeting time with its time zone", field="at")
    if at < now:
        raise invalid(
            f"the meeting time {at.isoformat()} is in the past; pick a time from now on",
            field="at",
        )
    place = place.strip()
    if not place:
        raise invalid("say where the meeting is held (e.g. 三楼联审会议室)", field="place")
    if len(place) > PLACE_MAX:
        raise invalid(f"the place is longer than {PLACE_MAX} characters; shorten it", field="place")
    codes = list(dict.fromkeys(c.strip() for c in department_codes if c.strip()))
    if not codes:
        raise invalid("invite at least one department (their codes)", field="departments")
    departments = {d.code: d for d in await Department.filter(code__in=codes)}
    unknown = [c for c in codes if c not in departments]
    if unknown:
        raise invalid(
            f"department(s) {', '.join(unknown)} are not in the catalog; use codes listed by "
            "the departments query",
            field="departments",
        )
    async with in_transaction():
        meeting = await ReviewMeeting.create(
            project_id=project.id,
            stage_id=stage.id,
            scheduled_for=at,
            place=place,
            status=MeetingStatus.SCHEDULED,
            created_by_id=viewer.user_id,
        )
        await MeetingInvitation.bulk_create(
            [
                MeetingInvitation(meeting_id=meeting.id, department_id=departments[c].id)
                for c in codes
            ]
        )
        await audit.record(
            actor_id=viewer.user_id,
            action="meeting.schedule",
            entity_type="meeting",
            entity_id=meeting.id,
            project_id=project.id,
            after={
                "stage": stage_code,
                "at": at.isoformat(),
                "place": place,
                "departments": codes,
            },
        )
    return meeting


async def _promise_limit(meeting: ReviewMeeting, department: Department) -> tuple[int, str]:
    """The most working days a department may promise: the shortest statutory limit of its
    items in this stage that apply to the project, else the stage's own time limit."""
    stage = await Stage.get(id=meeting.stage_id).select_related("definition")
    project = await Project.get(id=meeting.project_id)
    region = await Region.get(id=project.region_id)
    items = [
        i
        for i in await ServiceItem.filter(
            stage_id=stage.definition_id, department_id=department.id, active=True
        )
        if project.project_type.value in i.project_types
        and not exempt_by_regional_assessment(i, project, region)
    ]
    if items:
        item = min(items, key=lambda i: i.statutory_days)
        return item.statutory_days, f"the statutory limit of {item.name}"
    return stage.definition.time_limit_days, f"the time limit of stage {stage.definition.name}"


async def record_opinion(
    *,
    viewer: Viewer,
    meeting_id: int,
    department_code: str,
    agrees: bool,
    opinion: str,
    promised_days: int | None,
    now: datetime,
) -> MeetingInvitation:
    """One invited department states its opinion and its promised working days.

    The department's own reviewer records it, or the window clerk at the table. Until the
    meeting closes a department may restate its opinion; the audit trail keeps both.
    """
    require_role(viewer, Role.REVIEWER, Role.WINDOW_CLERK)
    meeting = await _meeting(viewer, meeting_id)
    department = await Department.get_or_none(code=department_code.strip())
    if department is None:
        raise invalid(f"department {department_code!r} is not in the catalog", field="department")
    if viewer.role is Role.REVIEWER and viewer.department_id != department.id:
        raise DomainError(
            ErrorCode.WRONG_DEPARTMENT,
            f"you may record only your own department's opinion, not {department.name}'s; "
            "ask that department or the window clerk",
            field="department",
        )
    _refuse_if_closed(meeting)
    invitation = await MeetingInvitation.get_or_none(
        meeting_id=meeting.id, department_id=department.id
    )
    if invitation is None:
        raise DomainError(
            ErrorCode.NOT_INVITED,
            f"{department.name} is not invited to meeting {meeting.id}; only invited "
            "departments state opinions, ask the window to invite it to a new meeting",
            field="department",
        )
    opinion = opinion.strip()
    if not agrees and not opinion:
        raise invalid("a disagreement needs a written opinion stating why", field="opinion")
    if len(opinion) > OPINION_MAX:
        raise invalid(
            f"the opinion is longer than {OPINION_MAX} characters; shorten it", field="opinion"
        )
    if promised_days is not None:
        if promised_days <= 0:
            raise invalid(
                f"promised days must be at least 1 working day, got {promised_days}",
                field="promisedDays",
            )
        limit, what = await _promise_limit(meeting, department)
        if promised_days > limit:
            raise invalid(
                f"{department.name} promised {promised_days} working days, more than "
                f"{what} ({limit} working days); promise {limit} or fewer",
                field="promisedDays",
            )
    async with in_transaction():
        # Lock the meeting: an opinion and the closing never cross.
        locked = await ReviewMeeting.select_for_update().get(id=meeting.id)
        _refuse_if_closed(locked)
        invitation = await MeetingInvitation.get(id=invitation.id)
        before = _state(invitation)
        invitation.attended = True
        invitation.agrees = agrees
        invitation.opinion = opinion
        invitation.promised_days = promised_days
        invitation.absent_default = False
        invitation.recorded_at = now
        await invitation.save()
        await audit.record(
            actor_id=viewer.user_id,
            action="meeting.opinion",
            entity_type="meeting",
            entity_id=meeting.id,
            project_id=meeting.project_id,
            before=before,
            after={"department": department.code, **_state(invitation)},
        )
    invitation.department = department
    return invitation


def _refuse_if_closed(meeting: ReviewMeeting) -> None:
    if meeting.status is MeetingStatus.HELD:
        raise DomainError(
            ErrorCode.MEETING_CLOSED,
            f"meeting {meeting.id} was closed at {meeting.held_at}; opinions can no longer "
            "be recorded, schedule a new meeting if needed",
            field="meetingId",
        )


def _state(invitation: MeetingInvitation) -> dict[str, object]:
    return {
        "attended": invitation.attended,
        "agrees": invitation.agrees,
        "opinion": invitation.opinion,
        "promisedDays": invitation.promised_days,
        "absentDefault": invitation.absent_default,
    }


async def close_meeting(*, viewer: Viewer, meeting_id: int, now: datetime) -> ReviewMeeting:
    """Close the meeting: every invited department without an opinion is absent and, by
    缺席默认, recorded as agreeing; each such default is audited for its department."""
    require_role(viewer, Role.WINDOW_CLERK, Role.SUPERVISOR)
    meeting = await _meeting(viewer, meeting_id)
    async with in_transaction():
        locked = await ReviewMeeting.select_for_update().get(id=meeting.id)
        if locked.status is MeetingStatus.HELD:
            raise DomainError(
                ErrorCode.MEETING_CLOSED,
                f"meeting {meeting.id} was already closed at {locked.held_at}; "
                "a meeting closes once",
                field="meetingId",
            )
        invitations = (
            await MeetingInvitation.filter(meeting_id=locked.id)
            .select_related("department")
            .order_by("id")
        )
        absent = [i for i in invitations if i.recorded_at is None]
        for invitation in absent:
            invitation.attended = False
            invitation.agrees = True
            invitation.absent_default = True
            invitation.recorded_at = now
            await invitation.save(
                update_fields=["attended", "agrees", "absent_default", "recorded_at"]
            )
            await audit.record(
                actor_id=viewer.user_id,
                action="meeting.absent_default",
                entity_type="meeting",
                entity_id=locked.id,
                project_id=locked.project_id,
                before={"department": invitation.department.code, "attended": None},
                after={
                    "department": invitation.department.code,
                    "attended": False,
                    "agrees": True,
                    "absentDefault": True,
                },
            )
        locked.status = MeetingStatus.HELD
        locked.held_at = now
        await locked.save(update_fields=["status", "held_at"])
        await audit.record(
            actor_id=viewer.user_id,
            action="meeting.close",
            entity_type="meeting",
            entity_id=locked.id,
            project_id=locked.project_id,
            before={"status": MeetingStatus.SCHEDULED.value},
            after={
                "status": MeetingStatus.HELD.value,
                "agreeing": sum(1 for i in invitations if i.agrees),
                "disagreeing": sum(1 for i in invitations if i.agrees is False),
                "absent": [i.department.code for i in absent],
            },
        )
    return locked


async def project_meetings(*, viewer: Viewer, project_id: int) -> list[MeetingView]:
    """The meetings of a project, oldest first, with their invitations."""
    project = await Project.get_or_none(id=project_id)
    meetings: list[ReviewMeeting] = []
    if project is not None:
        meetings = await ReviewMeeting.filter(project_id=project.id).order_by("id")
        try:
            await visible_project(viewer, project.id)
        except DomainError:
            # Reviewers see the meetings their department is invited to.
            allowed = {
                m.id
                for m in meetings
                if viewer.role is Role.REVIEWER
                and (viewer.region_ids is None or project.region_id in viewer.region_ids)
                and await MeetingInvitation.exists(
                    meeting_id=m.id, department_id=viewer.department_id or -1
                )
            }
            if not allowed:
                raise
            meetings = [m for m in meetings if m.id in allowed]
    else:
        await visible_project(viewer, project_id)  # raises NOT_FOUND
    stages = {
        s.id: s
        for s in await Stage.filter(
            id__in=[m.stage_id for m in meetings if m.stage_id]
        ).select_related("definition")
    }
    invitations = (
        await MeetingInvitation.filter(meeting_id__in=[m.id for m in meetings])
        .select_related("department")
        .order_by("id")
    )
    views = []
    for m in meetings:
        stage = stages.get(m.stage_id) if m.stage_id else None
        views.append(
            MeetingView(
                meeting=m,
                stage_code=stage.definition.code if stage else None,
                stage_name=stage.definition.name if stage else None,
                invitations=[i for i in invitations if i.meeting_id == m.id],
            )
        )
    return views


async def meeting_view(*, viewer: Viewer, meeting_id: int) -> MeetingView:
    meeting = await _meeting(viewer, meeting_id)
    stage = (
        await Stage.get(id=meeting.stage_id).select_related("definition")
        if meeting.stage_id
        else None
    )
    invitations = (
        await MeetingInvitation.filter(meeting_id=meeting.id)
        .select_related("department")
        .order_by("id")
    )
    return MeetingView(
        meeting=meeting,
        stage_code=stage.definition.code if stage else None,
        stage_name=stage.definition.name if stage else None,
        invitations=list(invitations),
    )
