"""联审联办: joint review meetings, opinions with promised days, 缺席默认 at closing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approval.core.access import Viewer
from approval.core.auth import viewer_of
from approval.core.errors import DomainError, ErrorCode
from approval.oversight.meetings import close_meeting, record_opinion, schedule_meeting
from storage.enums import MeetingStatus
from storage.models import AuditEvent, MeetingInvitation, ReviewMeeting, User
from tests.conftest import Clock, GraphQLClient
from tests.helpers import create_project, db_id

INVITED = ["fgw", "zrzy", "sthj"]
FGW_LIMIT = 15  # the shortest statutory limit of fgw's project_approval items (节能审查)

SCHEDULE = """
mutation($input: ScheduleMeetingInput!) {
  scheduleMeeting(input: $input) {
    meeting { id stageCode status statusLabel place
              invitations { department { code } statusLabel } }
    errors { code field message }
  }
}"""

OPINION = """
mutation($input: RecordMeetingOpinionInput!) {
  recordMeetingOpinion(input: $input) {
    meeting { id invitations { department { code } attended agrees promisedDays statusLabel } }
    errors { code field message }
  }
}"""

CLOSE = """
mutation($id: ID!) {
  closeMeeting(meetingId: $id) {
    meeting { status statusLabel heldAt
              invitations { department { code } attended agrees absentDefault statusLabel } }
    errors { code field message }
  }
}"""

MEETINGS = """
query($id: ID!) {
  meetings(projectId: $id) { id status stageName invitations { department { code } opinion } }
}"""


async def as_user(name: str) -> Viewer:
    return await viewer_of(await User.get(username=name))


async def scheduled(gql: GraphQLClient, clock: Clock) -> tuple[dict, ReviewMeeting]:
    project = await create_project(gql)
    meeting = await schedule_meeting(
        viewer=await as_user("clerk"),
        project_id=db_id(project["id"]),
        stage_code="project_approval",
        at=clock() + timedelta(days=2),
        place="三楼联审会议室",
        department_codes=INVITED,
        now=clock(),
    )
    return project, meeting


async def opinion(
    meeting: ReviewMeeting,
    clock: Clock,
    *,
    by: str,
    department: str,
    agrees: bool = True,
    text: str = "",
    days: int | None = 5,
) -> MeetingInvitation:
    return await record_opinion(
        viewer=await as_user(by),
        meeting_id=meeting.id,
        department_code=department,
        agrees=agrees,
        opinion=text,
        promised_days=days,
        now=clock(),
    )


async def test_schedule_invites_each_department_once_and_is_audited(gql, clock) -> None:
    project = await create_project(gql)
    meeting = await schedule_meeting(
        viewer=await as_user("supervisor"),
        project_id=db_id(project["id"]),
        stage_code="project_approval",
        at=clock() + timedelta(hours=3),
        place=" 联审会议室 ",
        department_codes=["fgw", "fgw", "zrzy"],
        now=clock(),
    )
    assert meeting.status is MeetingStatus.SCHEDULED and meeting.place == "联审会议室"
    assert await MeetingInvitation.filter(meeting_id=meeting.id).count() == 2
    event = await AuditEvent.get(action="meeting.schedule")
    assert event.after is not None and event.after["departments"] == ["fgw", "zrzy"]


@pytest.mark.parametrize(
    ("who", "change", "code", "field"),
    [
        ("fgw", {}, ErrorCode.FORBIDDEN, None),
        ("clerk", {"at": -1}, ErrorCode.INVALID_INPUT, "at"),
        ("clerk", {"department_codes": ["fgw", "nope"]}, ErrorCode.INVALID_INPUT, "departments"),
        ("clerk", {"department_codes": []}, ErrorCode.INVALID_INPUT, "departments"),
        ("clerk", {"stage_code": "nope"}, ErrorCode.INVALID_INPUT, "stage"),
        ("clerk", {"place": "  "}, ErrorCode.INVALID_INPUT, "place"),
    ],
)
async def test_schedule_refusals(gql, clock, who, change, code, field) -> None:
    project = await create_project(gql)
    arguments = {
        "project_id": db_id(project["id"]),
        "stage_code": "project_approval",
        "at": clock() + timedelta(days=1),
        "place": "联审会议室",
        "department_codes": INVITED,
        **change,
    }
    if arguments["at"] == -1:
        arguments["at"] = clock() - timedelta(minutes=1)
    with pytest.raises(DomainError) as caught:
        await schedule_meeting(viewer=await as_user(who), now=clock(), **arguments)
    assert caught.value.code is code and caught.value.field == field
    assert not await ReviewMeeting.exists()


async def test_an_opinion_from_a_department_not_invited_is_refused(gql, clock) -> None:
    _, meeting = await scheduled(gql, clock)
    with pytest.raises(DomainError) as caught:
        await opinion(meeting, clock, by="clerk", department="zjj")
    assert caught.value.code is ErrorCode.NOT_INVITED
    assert "住房和城乡建设局" in caught.value.message
    assert not await MeetingInvitation.exists(meeting_id=meeting.id, recorded_at__not_isnull=True)


async def test_a_reviewer_speaks_only_for_their_own_department(gql, clock) -> None:
    _, meeting = await scheduled(gql, clock)
    # fgw has no task on the project yet: the invitation is what lets its reviewer in
    recorded = await opinion(meeting, clock, by="fgw", department="fgw", text="同意立项")
    assert recorded.attended and recorded.agrees and recorded.promised_days == 5
    with pytest.raises(DomainError) as caught:
        await opinion(meeting, clock, by="fgw", department="zrzy")
    assert caught.value.code is ErrorCode.WRONG_DEPARTMENT


@pytest.mark.parametrize(
    ("days", "ok"), [(0, False), (-3, False), (FGW_LIMIT + 1, False), (FGW_LIMIT, True)]
)
async def test_promised_days_must_be_positive_and_within_the_statutory_limit(
    gql, clock, days, ok
) -> None:
    _, meeting = await scheduled(gql, clock)
    if ok:
        recorded = await opinion(meeting, clock, by="clerk", department="fgw", days=days)
        assert recorded.promised_days == days
        return
    with pytest.raises(DomainError) as caught:
        await opinion(meeting, clock, by="clerk", department="fgw", days=days)
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert caught.value.field == "promisedDays"


async def test_a_disagreement_needs_a_reason(gql, clock) -> None:
    _, meeting = await scheduled(gql, clock)
    with pytest.raises(DomainError) as caught:
        await opinion(meeting, clock, by="clerk", department="sthj", agrees=False, text=" ")
    assert caught.value.field == "opinion"
    recorded = await opinion(
        meeting, clock, by="clerk", department="sthj", agrees=False, text="须补充环评公众参与"
    )
    assert recorded.agrees is False


async def test_closing_records_absent_departments_as_agreeing_and_audits_each(gql, clock) -> None:
    project, meeting = await scheduled(gql, clock)
    await opinion(meeting, clock, by="fgw", department="fgw", agrees=False, text="规模需论证")
    clock.now += timedelta(days=2, hours=1)
    closed = await close_meeting(viewer=await as_user("clerk"), meeting_id=meeting.id, now=clock())
    assert closed.status is MeetingStatus.HELD and closed.held_at == clock()
    rows = {
        i.department.code: i
        for i in await MeetingInvitation.filter(meeting_id=meeting.id).select_related("department")
    }
    assert rows["fgw"].attended is True and rows["fgw"].agrees is False
    assert not rows["fgw"].absent_default
    for code in ("zrzy", "sthj"):
        assert rows[code].attended is False
        assert rows[code].agrees is True
        assert rows[code].absent_default is True
        assert rows[code].recorded_at == clock()
    defaults = await AuditEvent.filter(action="meeting.absent_default").order_by("id")
    assert [e.after["department"] for e in defaults if e.after] == ["zrzy", "sthj"]
    assert all(e.project_id == db_id(project["id"]) for e in defaults)
    summary = await AuditEvent.get(action="meeting.close")
    assert summary.after is not None and summary.after["absent"] == ["zrzy", "sthj"]


async def test_closing_twice_and_speaking_after_closing_are_refused(gql, clock) -> None:
    _, meeting = await scheduled(gql, clock)
    clerk = await as_user("clerk")
    await close_meeting(viewer=clerk, meeting_id=meeting.id, now=clock())
    with pytest.raises(DomainError) as caught:
        await close_meeting(viewer=clerk, meeting_id=meeting.id, now=clock())
    assert caught.value.code is ErrorCode.MEETING_CLOSED
    with pytest.raises(DomainError) as caught:
        await opinion(meeting, clock, by="fgw", department="fgw")
    assert caught.value.code is ErrorCode.MEETING_CLOSED
    assert await AuditEvent.filter(action="meeting.close").count() == 1


async def test_meeting_through_graphql(gql, clock) -> None:
    project = await create_project(gql)
    body = await gql(
        SCHEDULE,
        {
            "input": {
                "projectId": project["id"],
                "stage": "project_approval",
                "at": (clock() + timedelta(days=1)).isoformat(),
                "place": "联审会议室",
                "departments": INVITED,
            }
        },
        as_="clerk",
    )
    payload = body["data"]["scheduleMeeting"]
    assert payload["errors"] == [], payload
    meeting = payload["meeting"]
    assert meeting["statusLabel"] == "待召开"
    assert [i["statusLabel"] for i in meeting["invitations"]] == ["未表态"] * 3

    body = await gql(
        OPINION,
        {"input": {"meetingId": meeting["id"], "department": "zjj", "agrees": True}},
        as_="clerk",
    )
    [error] = body["data"]["recordMeetingOpinion"]["errors"]
    assert error["code"] == "NOT_INVITED" and error["field"] == "department"

    body = await gql(
        OPINION,
        {
            "input": {
                "meetingId": meeting["id"],
                "department": "zrzy",
                "agrees": True,
                "promisedDays": 3,
            }
        },
        as_="zrzy",
    )
    payload = body["data"]["recordMeetingOpinion"]
    assert payload["errors"] == [], payload
    zrzy = next(i for i in payload["meeting"]["invitations"] if i["department"]["code"] == "zrzy")
    assert zrzy == {
        "department": {"code": "zrzy"},
        "attended": True,
        "agrees": True,
        "promisedDays": 3,
        "statusLabel": "同意",
    }

    body = await gql(CLOSE, {"id": meeting["id"]}, as_="clerk")
    payload = body["data"]["closeMeeting"]
    assert payload["errors"] == [], payload
    assert payload["meeting"]["statusLabel"] == "已召开"
    labels = {i["department"]["code"]: i["statusLabel"] for i in payload["meeting"]["invitations"]}
    assert labels == {"fgw": "缺席, 视为同意", "zrzy": "同意", "sthj": "缺席, 视为同意"}

    body = await gql(CLOSE, {"id": meeting["id"]}, as_="clerk")
    assert body["data"]["closeMeeting"]["errors"][0]["code"] == "MEETING_CLOSED"

    body = await gql(MEETINGS, {"id": project["id"]}, as_="supervisor")
    [listed] = body["data"]["meetings"]
    assert listed["status"] == "HELD" and listed["stageName"]
    body = await gql(MEETINGS, {"id": project["id"]}, as_="zrzy")  # invited reviewer
    assert len(body["data"]["meetings"]) == 1
    body = await gql(MEETINGS, {"id": project["id"]}, as_="agent")  # the project's agent
    assert len(body["data"]["meetings"]) == 1
