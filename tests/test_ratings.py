"""好差评: rating a completed stage by the SMS code, follow-ups of bad ratings, the lists."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from strawberry.relay import GlobalID

from approval.core.calendar import working_calendar
from approval.oversight.notifications import collect
from storage.enums import Decision
from storage.models import AuditEvent, Notification, Rating
from tests.helpers import accept
from tests.test_notifications import accepted_project, complete

CHINA = ZoneInfo("Asia/Shanghai")

RATE = """
mutation($code: String!, $score: Int!, $comment: String! = "") {
  rateService(code: $code, score: $score, comment: $comment) {
    rating { score comment ratedAt followUpDue }
    errors { code field message }
  }
}"""

CLOSE = """
mutation($id: ID!, $note: String!) {
  closeFollowUp(ratingId: $id, note: $note) {
    rating { id score followUpOpen followUpDoneAt followUpNote }
    errors { code field message }
  }
}"""

RATINGS = """
query($followUp: FollowUpState, $rated: Boolean) {
  ratings(followUp: $followUp, rated: $rated) {
    totalCount
    edges { node { id score comment followUpDue followUpOpen followUpOverdue
                   stage { code status } project { code } } }
  }
  followUps { id score followUpDue }
}"""

NOTIFICATIONS = """
query($status: NotificationStatus, $project: String) {
  notifications(status: $status, project: $project) {
    totalCount
    edges { node { moment momentLabel recipient status attempts lastError text
                   project { code } } }
  }
}"""


async def completed_with_code(
    gql: Any, clock: Any, decision: Decision = Decision.APPROVED
) -> tuple[dict[str, Any], str]:
    project, stage = await accepted_project(gql)
    await complete(stage, clock(), decision)
    await collect(now=clock())
    rating = await Rating.get(stage_id=stage.id)
    return project, rating.code


async def rate(gql: Any, code: str, score: int, comment: str = "") -> dict[str, Any]:
    body = await gql(RATE, {"code": code, "score": score, "comment": comment})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["rateService"]
    return payload


async def test_the_code_rates_a_completed_stage_without_login(gql, clock):
    _, code = await completed_with_code(gql, clock)
    payload = await rate(gql, f" {code.lower()} ", 5, "窗口服务热情, 办理高效")
    assert payload["errors"] == []
    assert payload["rating"] == {
        "score": 5,
        "comment": "窗口服务热情, 办理高效",
        "ratedAt": clock().isoformat(),
        "followUpDue": None,
    }
    rating = await Rating.get(code=code)
    assert rating.score == 5 and rating.rated_at == clock() and rating.follow_up_due is None
    event = await AuditEvent.get(action="rating.submit")
    assert event.entity_id == rating.id and event.actor_id is None
    assert event.after == {"score": 5, "stage": "project_approval", "followUpDue": None}


async def test_a_score_out_of_range_is_refused(gql, clock):
    _, code = await completed_with_code(gql, clock)
    for score in (0, 6, -1):
        [error] = (await rate(gql, code, score))["errors"]
        assert error["code"] == "INVALID_INPUT" and error["field"] == "score"
        assert "from 1" in error["message"] and "to 5" in error["message"]
    assert (await Rating.get(code=code)).rated_at is None


async def test_an_unknown_code_is_refused(gql, clock):
    await completed_with_code(gql, clock)
    [error] = (await rate(gql, "ZZZZZZ", 4))["errors"]
    assert error["code"] == "NOT_FOUND" and error["field"] == "code"
    assert "check the code in the SMS" in error["message"]
    [error] = (await rate(gql, "  ", 4))["errors"]
    assert error["code"] == "INVALID_INPUT"


async def test_guessing_codes_is_throttled_and_long_codes_are_refused_cleanly(gql, clock):
    _, code = await completed_with_code(gql, clock)
    assert len(code) == 10  # 31^10 codes
    [error] = (await rate(gql, "2026-371402-84-01-000001-TOO-LONG", 4))["errors"]
    assert error["code"] == "NOT_FOUND"  # longer than any code: no lookup, no crash
    codes = [(await rate(gql, f"GUESS{i:05d}", 4))["errors"][0]["code"] for i in range(12)]
    assert codes[:4] == ["NOT_FOUND"] * 4  # one failure above, then four more are free
    assert set(codes[4:]) == {"TOO_MANY_ATTEMPTS"}
    # even the right code waits now, from this address; the rating is untouched
    [error] = (await rate(gql, code, 5))["errors"]
    assert error["code"] == "TOO_MANY_ATTEMPTS"
    assert (await Rating.get(code=code)).rated_at is None
    clock.now += timedelta(minutes=16)  # the window passed
    assert (await rate(gql, code, 5))["errors"] == []


async def test_a_second_rating_is_refused(gql, clock):
    _, code = await completed_with_code(gql, clock)
    assert (await rate(gql, code, 4))["errors"] == []
    [error] = (await rate(gql, code, 1, "改主意了"))["errors"]
    assert error["code"] == "ALREADY_RATED"
    assert "cannot be changed" in error["message"]
    rating = await Rating.get(code=code)
    assert rating.score == 4 and rating.follow_up_due is None
    assert await AuditEvent.filter(action="rating.submit").count() == 1


async def test_a_stage_not_completed_cannot_be_rated(gql, clock):
    project, code = await completed_with_code(gql, clock, Decision.REJECTED)
    clock.now += timedelta(days=1)
    payload = await accept(gql, project["id"], "project_approval")
    assert payload["errors"] == [], payload
    [error] = (await rate(gql, code, 3))["errors"]
    assert error["code"] == "INVALID_STATE" and error["field"] == "code"
    assert "not completed" in error["message"] and "once it is completed" in error["message"]
    assert (await Rating.get(code=code)).rated_at is None


async def test_a_bad_rating_opens_a_follow_up_due_in_15_working_days(gql, clock):
    _, code = await completed_with_code(gql, clock)
    clock.now = datetime(2026, 4, 30, 10, tzinfo=CHINA)  # before the May Day holiday
    payload = await rate(gql, code, 2, "多次往返窗口")
    assert payload["errors"] == []
    calendar = await working_calendar(years=[2026])
    due = calendar.add_working_days(date(2026, 4, 30), 15)
    assert due > date(2026, 4, 30) + timedelta(days=21)  # the holiday does not count
    assert payload["rating"]["followUpDue"] == due.isoformat()
    rating = await Rating.get(code=code)
    assert rating.follow_up_due == due and rating.follow_up_done_at is None

    body = await gql(RATINGS, {"followUp": "OPEN"}, as_="supervisor")
    [edge] = body["data"]["ratings"]["edges"]
    node = edge["node"]
    assert node["score"] == 2 and node["followUpOpen"] and not node["followUpOverdue"]
    assert node["stage"] == {"code": "project_approval", "status": "COMPLETED"}
    assert body["data"]["followUps"] == [
        {"id": node["id"], "score": 2, "followUpDue": due.isoformat()}
    ]
    clock.now = datetime(due.year, due.month, due.day, tzinfo=CHINA) + timedelta(days=1)
    body = await gql(RATINGS, {"followUp": "OVERDUE"}, as_="supervisor")
    assert body["data"]["ratings"]["totalCount"] == 1

    refused = await gql(CLOSE, {"id": node["id"], "note": "已回访"}, as_="clerk")
    assert refused["data"]["closeFollowUp"]["errors"][0]["code"] == "FORBIDDEN"
    empty = await gql(CLOSE, {"id": node["id"], "note": " "}, as_="supervisor")
    assert empty["data"]["closeFollowUp"]["errors"][0]["field"] == "note"
    body = await gql(
        CLOSE, {"id": node["id"], "note": "已电话回访, 窗口一次性告知整改"}, as_="supervisor"
    )
    closed = body["data"]["closeFollowUp"]
    assert closed["errors"] == []
    assert closed["rating"]["followUpOpen"] is False
    assert closed["rating"]["followUpNote"] == "已电话回访, 窗口一次性告知整改"
    again = await gql(CLOSE, {"id": node["id"], "note": "再次"}, as_="supervisor")
    assert again["data"]["closeFollowUp"]["errors"][0]["code"] == "INVALID_STATE"
    event = await AuditEvent.get(action="rating.close_follow_up")
    assert event.after == {"followUpOpen": False, "note": "已电话回访, 窗口一次性告知整改"}
    body = await gql(RATINGS, {"followUp": "OPEN"}, as_="supervisor")
    assert body["data"]["ratings"]["totalCount"] == 0 and body["data"]["followUps"] == []
    body = await gql(RATINGS, {"followUp": "CLOSED"}, as_="supervisor")
    assert body["data"]["ratings"]["totalCount"] == 1


async def test_a_good_rating_has_no_follow_up_to_close(gql, clock):
    _, code = await completed_with_code(gql, clock)
    await rate(gql, code, 3)
    rating = await Rating.get(code=code)
    rating_id = str(GlobalID("Rating", str(rating.id)))
    body = await gql(CLOSE, {"id": rating_id, "note": "无需回访"}, as_="supervisor")
    [error] = body["data"]["closeFollowUp"]["errors"]
    assert error["code"] == "INVALID_STATE" and "2 or less" in error["message"]
    body = await gql(RATINGS, {"rated": True}, as_="supervisor")
    assert body["data"]["ratings"]["totalCount"] == 1
    body = await gql(RATINGS, {"rated": False}, as_="supervisor")
    assert body["data"]["ratings"]["totalCount"] == 0


async def test_a_follow_up_needs_a_known_calendar(gql, clock):
    _, code = await completed_with_code(gql, clock)
    clock.now = datetime(2026, 12, 21, 10, tzinfo=CHINA)
    [error] = (await rate(gql, code, 1, "差"))["errors"]
    assert error["code"] == "CALENDAR_UNKNOWN" and "2027" in error["message"]
    assert (await Rating.get(code=code)).rated_at is None
    assert (await rate(gql, code, 4))["errors"] == []  # a good rating needs no deadline


async def test_supervisors_see_the_outbox_others_do_not(gql, clock):
    project, _ = await completed_with_code(gql, clock)
    await Notification.filter(moment="received").update(
        status="failed", attempts=6, last_error="SMS gateway answered 500"
    )
    body = await gql(NOTIFICATIONS, {}, as_="supervisor")
    connection = body["data"]["notifications"]
    assert connection["totalCount"] == 3
    labels = sorted(e["node"]["momentLabel"] for e in connection["edges"])
    assert labels == sorted(["办件确认", "领件通知", "办结评议"])
    body = await gql(NOTIFICATIONS, {"status": "FAILED"}, as_="supervisor")
    [edge] = body["data"]["notifications"]["edges"]
    assert edge["node"]["attempts"] == 6 and "500" in edge["node"]["lastError"]
    assert edge["node"]["project"] == {"code": project["code"]}
    body = await gql(NOTIFICATIONS, {"project": "2026-000000-00-00-000000"}, as_="supervisor")
    assert body["data"]["notifications"]["totalCount"] == 0
    for user in ("clerk", "fgw", "agent"):
        body = await gql(NOTIFICATIONS, {}, as_=user)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        body = await gql(RATINGS, {}, as_=user)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(NOTIFICATIONS, {})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
