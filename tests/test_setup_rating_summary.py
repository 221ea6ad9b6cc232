"""企业设立好差评汇总: a supervisor's totals over all the setups' ratings of the region (not the
latest 50 the list shows), counted in the database in the same few statements however many
ratings there are; hostile and other-region viewers see nothing of them."""

from __future__ import annotations

import random
from datetime import date, timedelta

from approval.core.access import Viewer
from approval.oversight.ratings import BAD_SCORE, setup_rating_summary
from storage.enums import Role
from storage.models import CompanySetup, Rating
from tests.supervision_support import at
from tests.test_company_setups_api import accept, token_in_another_region, tokens
from tests.test_query_count import count_sql

__all__ = ["tokens"]  # the company catalog and its reviewers, as test_company_setups_api has them

SUMMARY = """{ setupRatingSummary { sent rated average bad byScore { score count }
  followUpsOpen followUpsOverdue followUpsClosed } }"""
TODAY = date(2026, 3, 2)  # the clock's day


async def _rate(setup_ids: list[int], count: int, seed: int) -> None:
    """``count`` ratings spread over the setups: some unrated, the bad ones with follow-ups
    open (some past due) or closed."""
    draw = random.Random(seed)
    rows = []
    for n in range(count):
        score = draw.choice([None, 1, 2, 3, 4, 5, 5])
        due = TODAY + timedelta(days=draw.randint(-10, 10)) if score and score <= 2 else None
        rows.append(
            Rating(
                setup_id=draw.choice(setup_ids),
                code=f"S{seed:03d}{n:08d}",
                score=score,
                rated_at=at("2026-02-20") if score else None,
                follow_up_due=due,
                follow_up_done_at=at("2026-02-25") if due and draw.random() < 0.4 else None,
            )
        )
    await Rating.bulk_create(rows)


async def _expected(setup_ids: list[int]) -> dict:
    """The summary worked out row by row, the slow way, to check the database's."""
    rows = await Rating.filter(setup_id__in=setup_ids)
    scores = [r.score for r in rows if r.score is not None]
    open_ = [r for r in rows if r.follow_up_due and r.follow_up_done_at is None]
    return {
        "sent": len(rows),
        "rated": len(scores),
        "average": round(sum(scores) / len(scores), 2) if scores else None,
        "bad": sum(1 for s in scores if s <= BAD_SCORE),
        "byScore": [{"score": s, "count": scores.count(s)} for s in range(1, 6)],
        "followUpsOpen": len(open_),
        "followUpsOverdue": sum(1 for r in open_ if r.follow_up_due < TODAY),
        "followUpsClosed": sum(1 for r in rows if r.follow_up_done_at is not None),
    }


async def test_the_summary_counts_every_rating_of_the_region_in_the_database(gql, tokens, clock):
    empty = await gql(SUMMARY, as_="supervisor")
    assert empty["data"]["setupRatingSummary"] == {
        "sent": 0, "rated": 0, "average": None, "bad": 0,
        "byScore": [{"score": s, "count": 0} for s in range(1, 6)],
        "followUpsOpen": 0, "followUpsOverdue": 0, "followUpsClosed": 0,
    }  # fmt: skip
    here = [(await CompanySetup.get(code=(await accept(gql))["code"])).id for _ in range(3)]
    there = (await accept(gql, region="371403", companyName="陵城区某餐饮有限公司"))["code"]
    far_id = (await CompanySetup.get(code=there)).id
    await _rate(here, 12, seed=1)
    await _rate([far_id], 9, seed=2)  # 陵城区
    city = (await gql(SUMMARY, as_="supervisor"))["data"]["setupRatingSummary"]
    assert city == await _expected([*here, far_id])  # the city's supervisor sees both regions
    far = await token_in_another_region(clock, Role.SUPERVISOR)  # 陵城区's sees its own
    assert (await gql(SUMMARY, token=far))["data"]["setupRatingSummary"] == await _expected(
        [far_id]
    )

    # Far more than the list's 50: the same statements, whatever the number of ratings.
    viewer = Viewer(user_id=0, username="s", role=Role.SUPERVISOR, region_ids=None)
    with count_sql() as few:
        await setup_rating_summary(viewer=viewer, today=TODAY)
    await _rate(here, 240, seed=3)
    with count_sql() as more:
        counted = await setup_rating_summary(viewer=viewer, today=TODAY)
    assert len(more) == len(few) <= 5, more
    assert counted.sent == 12 + 9 + 240
    summary = (await gql(SUMMARY, as_="supervisor"))["data"]["setupRatingSummary"]
    assert summary == await _expected([*here, far_id])
    assert summary["sent"] == 261 and summary["rated"] > 50
    listed = await gql("{ setupRatings(rated: true, first: 200) { score } }", as_="supervisor")
    assert len(listed["data"]["setupRatings"]) == 200 < summary["rated"]  # the list is capped


async def test_only_supervisors_see_the_summary(gql, tokens, clock):
    await _rate([(await CompanySetup.get(code=(await accept(gql))["code"])).id], 5, seed=4)
    for role in ("clerk", "fgw", "agent", "inspector"):
        body = await gql(SUMMARY, as_=role)
        assert body["data"] is None or body["data"].get("setupRatingSummary") is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (role, body)
    anonymous = await gql(SUMMARY)
    assert anonymous["errors"][0]["extensions"]["code"] in ("UNAUTHENTICATED", "FORBIDDEN")
    reviewer = await gql(SUMMARY, token=tokens["shiyao"])  # a company department
    assert reviewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
