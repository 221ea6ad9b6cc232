"""中途提醒 of a company setup's later rounds: a setup accepted again after 补正 hears at the
middle of the new round's time limit (in working days from the re-acceptance), once, under its
own key; the first round's reminder is never sent again nor late, and a setup no longer in
review hears nothing."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from approval.oversight.notifications import collect
from storage.enums import SetupStatus
from storage.models import CompanySetup, Notification
from tests.supervision_support import at
from tests.test_company_setups_api import (
    DECIDE,
    REACCEPT,
    SUPERMARKET,
    _decide_all,
    accept,
    tokens,
)

__all__ = ["tokens"]  # the company catalog and its reviewers, as test_company_setups_api has them

PHONE = "13800000001"  # the form's contact phone
RETURNED = {"organization_code": ("SUPPLEMENT_REQUIRED", "章程需补正后重新提交")}


async def _waiting(gql, tokens, returned=RETURNED) -> tuple[dict, int]:
    """A supermarket setup accepted on Monday 2 March whose fan-in said 需补正."""
    setup = await accept(gql, businessType="supermarket", materials=SUPERMARKET)
    closed = await _decide_all(gql, tokens, setup, returned)
    assert closed["status"] == "SUPPLEMENT_REQUIRED"
    return setup, (await CompanySetup.get(code=setup["code"])).id


async def _reaccept(gql, code: str, material: str = "articles_of_association") -> None:
    body = await gql(REACCEPT, {"code": code, "materials": [material]}, as_="clerk")
    assert body["data"]["reacceptCompanySetup"]["errors"] == [], body


async def _midways() -> list[str]:
    return sorted(n.key for n in await Notification.filter(moment="midway", recipient=PHONE))


async def _midways_by_day(first: str, last: str) -> dict[str, list[str]]:
    """Collect every day from ``first`` to ``last`` (weekends too, three collectors racing
    each day as three instances would): the midway keys made on each day that made any."""
    made: dict[str, list[str]] = {}
    day = date.fromisoformat(first)
    while day <= date.fromisoformat(last):
        before = set(await _midways())
        now = at(day.isoformat(), hour=10)
        await asyncio.gather(collect(now=now), collect(now=now), collect(now=now))
        fresh = sorted(set(await _midways()) - before)
        if fresh:
            made[day.isoformat()] = fresh
        day += timedelta(days=1)
    return made


async def test_the_second_round_hears_once_at_the_middle_of_its_own_limit(gql, tokens, clock):
    setup = await accept(gql, businessType="supermarket", materials=SUPERMARKET)
    code, setup_id = setup["code"], (await CompanySetup.get(code=setup["code"])).id
    # Round 1: accepted Monday 2 March, the X permits' 10 working days: midway on 9 March.
    assert await _midways_by_day("2026-03-02", "2026-03-09") == {
        "2026-03-09": [f"midway:setup:{setup_id}"]
    }
    clock.now = at("2026-03-09", hour=11)
    assert (await _decide_all(gql, tokens, setup, RETURNED))["status"] == "SUPPLEMENT_REQUIRED"
    # Accepted again on Thursday 12 March for 质监局's core permit alone: the core's 4
    # working days (13, 16, 17, 18 March), half of them passed on Monday 16 March; not on
    # the Friday, not over the weekend, and round 1 is not reminded again.
    clock.now = at("2026-03-12", hour=11)
    await _reaccept(gql, code)
    made = await _midways_by_day("2026-03-12", "2026-03-20")
    assert made == {"2026-03-16": [f"midway:setup:{setup_id}:r2"]}
    [reminder] = await Notification.filter(key=f"midway:setup:{setup_id}:r2")
    assert reminder.text == (
        f"【德州市政务服务中心】您的企业设立申请“德州市老街餐饮有限公司”(受理编号 {code}) "
        "补正后第2轮审查承诺时限已过半, 需补正的许可 2026年3月18日 前办结。"
        "如需再次补正请及时到企业设立综合窗口办理。"
    )
    assert (reminder.moment, reminder.recipient, reminder.project_id) == ("midway", PHONE, None)
    assert await _midways() == sorted([f"midway:setup:{setup_id}", f"midway:setup:{setup_id}:r2"])

    # Round 2 ends 需补正 again and a third round is accepted: r3, at its own middle.
    core = next(t["taskId"] for t in setup["tasks"] if t["permitCode"] == "organization_code")
    clock.now = at("2026-03-20", hour=11)
    body = await gql(
        DECIDE,
        {"input": {"taskId": core, "decision": "SUPPLEMENT_REQUIRED", "opinion": "仍缺签章"}},
        token=tokens["zhijian"],
    )
    assert body["data"]["decideSetupTask"]["setup"]["status"] == "SUPPLEMENT_REQUIRED"
    assert await _midways_by_day("2026-03-20", "2026-03-24") == {}  # waiting: nothing
    clock.now = at("2026-03-25", hour=11)  # Wednesday: midway Friday 27 March
    await _reaccept(gql, code)
    assert await _midways_by_day("2026-03-25", "2026-04-03") == {
        "2026-03-27": [f"midway:setup:{setup_id}:r3"]
    }
    assert "第3轮" in (await Notification.get(key=f"midway:setup:{setup_id}:r3")).text


async def test_a_reopened_x_permit_runs_on_the_x_limit(gql, tokens, clock):
    """食药监局 returned the layout with its X permit: the new round has the X permits' 10
    working days from the re-acceptance, so its middle is 5 working days later."""
    returned = {"food_business_license": ("SUPPLEMENT_REQUIRED", "布局图需补正")}
    setup, setup_id = await _waiting(gql, tokens, returned)
    clock.now = at("2026-03-03", hour=11)  # Tuesday, before round 1's middle (9 March)
    await _reaccept(gql, setup["code"], "premises_layout")
    # 5 working days from Tuesday 3 March: Tuesday 10 March; 9 March (round 1's) is silent.
    assert await _midways_by_day("2026-03-03", "2026-03-20") == {
        "2026-03-10": [f"midway:setup:{setup_id}:r2"]
    }
    reminder = await Notification.get(key=f"midway:setup:{setup_id}:r2")
    assert "2026年3月17日 前办结" in reminder.text  # 10 working days from 3 March


async def test_no_reminder_for_a_setup_no_longer_in_review(gql, tokens, clock):
    setup, setup_id = await _waiting(gql, tokens)
    assert await _midways_by_day("2026-03-02", "2026-03-13") == {}  # waiting for 补正
    clock.now = at("2026-03-16", hour=11)
    await _reaccept(gql, setup["code"])
    core = next(t["taskId"] for t in setup["tasks"] if t["permitCode"] == "organization_code")
    body = await gql(DECIDE, {"input": {"taskId": core, "decision": "APPROVED"}},
                     token=tokens["zhijian"])  # fmt: skip
    assert body["data"]["decideSetupTask"]["setup"]["status"] == "READY"
    assert (await CompanySetup.get(id=setup_id)).status is SetupStatus.READY
    # Round 2's middle would have been Wednesday 18 March: decided before, nothing is sent.
    assert await _midways_by_day("2026-03-16", "2026-03-31") == {}
    assert await _midways() == []
