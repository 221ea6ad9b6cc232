"""Logins behave like a bank's: throttled per account and per client address with growing
delays and a lockout an administrator lifts, every failure audited, argon2 off the event loop
with bounded concurrency and the same work for unknown users; logout, password change and
revocation in GraphQL and on the command line."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.routing import Route

from approval.core import auth, throttle
from approval.core.auth import create_user, issue_token
from schema.app import graphql_app
from storage.enums import Role
from storage.models import AuditEvent, LoginThrottle, Region, User
from tests.conftest import PASSWORD, Clock, GraphQLClient
from tests.hashing import CHEAP_HASHER

pytestmark = pytest.mark.usefixtures("catalog")

LOGIN = """mutation($u: String!, $p: String!) {
  login(username: $u, password: $p) { token errors { code message } } }"""


@pytest.fixture
async def api(gql: GraphQLClient, clock: Clock) -> AsyncIterator[Callable[..., Any]]:
    """Ask the API as a client at some address (``at``), with a token or none."""
    await LoginThrottle.all().delete()
    app = graphql_app(token_ttl=timedelta(hours=8), clock=clock)
    starlette = Starlette(routes=[Route("/graphql", app)])
    clients: dict[str, httpx.AsyncClient] = {}

    async def ask(
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        at: str = "10.0.0.1",
        token: str | None = None,
    ) -> dict[str, Any]:
        if at not in clients:
            transport = httpx.ASGITransport(app=starlette, client=(at, 40000))
            clients[at] = httpx.AsyncClient(transport=transport, base_url="http://test")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await clients[at].post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    yield ask
    for client in clients.values():
        await client.aclose()
    await LoginThrottle.all().delete()


async def login(api: Callable[..., Any], username: str, password: str, **kw: Any) -> dict[str, Any]:
    body = await api(LOGIN, {"u": username, "p": password}, **kw)
    payload: dict[str, Any] = body["data"]["login"]
    return payload


def code(payload: dict[str, Any]) -> str | None:
    return payload["errors"][0]["code"] if payload["errors"] else None


# --- throttling ---------------------------------------------------------------------------------


async def test_wrong_passwords_slow_down_then_lock_until_an_administrator_unlocks(
    api: Callable[..., Any], gql: GraphQLClient, clock: Clock
) -> None:
    outcomes = []
    for _ in range(200):  # the attack of the issue: 200 wrong passwords, as fast as answered
        outcomes.append(code(await login(api, "fgw", "guess-" + uuid.uuid4().hex)))
    assert outcomes[:3] == ["INVALID_CREDENTIALS"] * 3
    assert outcomes[3:] == ["TOO_MANY_ATTEMPTS"] * 197
    # With the delays waited out, a guess is heard again, each wait twice as long ...
    waits = []
    for _ in range(7):
        payload = await login(api, "fgw", "wrong-password")
        while code(payload) == "TOO_MANY_ATTEMPTS":
            clock.now += timedelta(seconds=1)
            waits.append(1)
            payload = await login(api, "fgw", "wrong-password")
        assert code(payload) == "INVALID_CREDENTIALS"
    assert len(waits) >= 1 + 2 + 4 + 8 + 16 + 32 - 6
    # ... until the tenth failure locks the account: the right password is refused too.
    locked = await login(api, "fgw", PASSWORD)
    assert code(locked) == "TOO_MANY_ATTEMPTS" and "locked until" in locked["errors"][0]["message"]
    clock.now += timedelta(minutes=5)
    assert code(await login(api, "fgw", PASSWORD)) == "TOO_MANY_ATTEMPTS"
    # Another account from another address is not held up.
    assert code(await login(api, "zrzy", PASSWORD, at="10.0.0.2")) is None
    # An administrator lifts the lock; the right password works at once.
    unlock = "mutation($u: String!) { unlockLogin(username: $u) { ok errors { code } } }"
    refused = await api(unlock, {"u": "fgw"}, token=gql.tokens["clerk"])
    assert refused["data"]["unlockLogin"]["errors"] == [{"code": "FORBIDDEN"}]
    lifted = await api(unlock, {"u": "fgw"}, token=gql.tokens["supervisor"])
    assert lifted["data"]["unlockLogin"] == {"ok": True, "errors": []}
    assert (await login(api, "fgw", PASSWORD))["token"]
    actions = await AuditEvent.filter(entity_type="user").values_list("action", flat=True)
    assert actions.count("user.login_failed") == 3 + 7
    assert "user.unlock" in actions


async def test_a_lock_ends_by_itself(api: Callable[..., Any], clock: Clock) -> None:
    for _ in range(10):
        await login(api, "fgw", "wrong-password")
        clock.now += timedelta(minutes=1)
    assert code(await login(api, "fgw", PASSWORD)) == "TOO_MANY_ATTEMPTS"
    clock.now += timedelta(minutes=16)
    assert (await login(api, "fgw", PASSWORD))["token"]


async def test_aliased_logins_in_one_request_are_throttled_like_separate_ones(
    api: Callable[..., Any],
) -> None:
    fields = " ".join(
        f'a{i}: login(username: "fgw", password: "guess-{i}") {{ errors {{ code }} }}'
        for i in range(15)
    )
    body = await api("mutation { " + fields + " }")
    codes = [body["data"][f"a{i}"]["errors"][0]["code"] for i in range(15)]
    assert codes.count("INVALID_CREDENTIALS") == 3
    assert codes.count("TOO_MANY_ATTEMPTS") == 12


async def test_guesses_sent_at_once_are_counted_one_after_another(
    api: Callable[..., Any],
) -> None:
    # All at once from addresses of their own: each one's throttle reading happens after the
    # failures before it were counted, so no more guesses are heard than one after another.
    outcomes = await asyncio.gather(
        *(login(api, "fgw", f"guess-{i}", at=f"10.4.0.{i}") for i in range(12))
    )
    codes = [code(outcome) for outcome in outcomes]
    assert codes.count("INVALID_CREDENTIALS") == 3, codes
    assert codes.count("TOO_MANY_ATTEMPTS") == 9, codes
    assert await AuditEvent.filter(action="user.login_failed").count() == 3


async def test_one_address_guessing_many_accounts_at_once_is_throttled(
    api: Callable[..., Any],
) -> None:
    outcomes = await asyncio.gather(
        *(login(api, f"guess-{i}", "wrong-password", at="10.9.9.8") for i in range(30))
    )
    codes = [code(outcome) for outcome in outcomes]
    # The address is read again with a hashing slot held: at most the slots' worth beyond 10.
    assert 10 <= codes.count("INVALID_CREDENTIALS") <= 10 + auth.HASHING_SLOTS - 1, codes
    assert set(codes) == {"INVALID_CREDENTIALS", "TOO_MANY_ATTEMPTS"}


async def test_one_address_guessing_many_accounts_is_throttled(
    api: Callable[..., Any], clock: Clock
) -> None:
    names = [f"guess-{i}" for i in range(30)]
    outcomes = [code(await login(api, name, "wrong-password", at="10.9.9.9")) for name in names]
    assert outcomes[:10] == ["INVALID_CREDENTIALS"] * 10
    assert set(outcomes[10:]) == {"TOO_MANY_ATTEMPTS"}
    # The same user from another address is still heard.
    assert (await login(api, "fgw", PASSWORD, at="10.0.0.3"))["token"]


async def test_failed_logins_are_audited_with_name_and_address(api: Callable[..., Any]) -> None:
    await login(api, "fgw", "wrong-password", at="10.1.2.3")
    await login(api, "nobody-here", "wrong-password", at="10.1.2.4")
    events = await AuditEvent.filter(action="user.login_failed").order_by("id")
    fgw = await User.get(username="fgw")
    assert [(e.entity_id, e.after) for e in events] == [
        (fgw.id, {"username": "fgw", "address": "10.1.2.3", "locked": False}),
        (0, {"username": "nobody-here", "address": "10.1.2.4", "locked": False}),
    ]


# --- hashing: off the loop, bounded, the same work for everyone -----------------------------------


class CountingHasher(PasswordHasher):
    """The production hasher that also counts verifications and how many ran at once."""

    def __init__(self, production: PasswordHasher) -> None:
        super().__init__(
            time_cost=production.time_cost,
            memory_cost=production.memory_cost,
            parallelism=production.parallelism,
        )
        self.lock = threading.Lock()
        self.running = self.most = self.calls = 0
        self.hashes: list[str] = []
        self.threads: set[int] = set()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
            self.hashes.append(str(hash))
            self.threads.add(threading.get_ident())
        try:
            return super().verify(hash, password)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def counting(production_hasher: PasswordHasher) -> Iterator[CountingHasher]:
    hasher = CountingHasher(production_hasher)
    auth._hasher = hasher
    try:
        yield hasher
    finally:
        auth._hasher = CHEAP_HASHER


async def test_password_hashing_leaves_the_event_loop_free_and_is_bounded(
    api: Callable[..., Any], counting: CountingHasher
) -> None:
    user = await User.get(username="fgw")
    user.password_hash = counting.hash(PASSWORD)
    await user.save()
    late: list[float] = []

    async def ticker() -> None:
        for _ in range(40):
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            late.append(time.perf_counter() - started - 0.01)

    logins = [login(api, "fgw", PASSWORD, at=f"10.2.0.{i}") for i in range(8)]
    results = await asyncio.gather(ticker(), *logins)
    assert all(r["token"] for r in results[1:])
    # 8 argon2 hashes of ~0.1 s each ran in worker threads, never on the loop's thread, so
    # the loop kept ticking (a loaded machine may delay a tick now and then: the median)
    assert threading.get_ident() not in counting.threads
    assert sorted(late)[len(late) // 2] < 0.02, late
    assert counting.most <= auth.HASHING_SLOTS


async def test_unknown_users_cost_the_same_work(
    api: Callable[..., Any], counting: CountingHasher
) -> None:
    user = await User.get(username="fgw")
    user.password_hash = counting.hash(PASSWORD)
    await user.save()
    timings: dict[str, list[float]] = {"fgw": [], "no-such-user": []}
    # the CPU the process spends on each answer, hashing threads included (the wall clock of a
    # loaded machine varied 0.2-2.2 s for the same work); the least of five rounds
    rounds = 5
    for round_ in range(rounds):
        for name in sorted(timings, reverse=bool(round_ % 2)):  # each goes first in turn
            started = time.process_time()
            payload = await login(api, name, "wrong-password", at=f"10.3.{round_}.{len(name)}")
            timings[name].append(time.process_time() - started)
            assert code(payload) == "INVALID_CREDENTIALS"
        for name in timings:  # below the account's throttle: every round is a first guess
            await throttle.clear(key=throttle.account_key(name))
    assert counting.calls == 2 * rounds  # every attempt verified a hash, known user or not
    params = {counting.check_needs_rehash(h) for h in counting.hashes}
    assert params == {False}  # with the production parameters every time
    known, unknown = min(timings["fgw"]), min(timings["no-such-user"])
    assert 0.5 < unknown / known < 2, timings


async def test_a_hash_made_with_other_parameters_is_redone_at_login(
    api: Callable[..., Any],
) -> None:
    user = await User.get(username="fgw")
    older = PasswordHasher(time_cost=1, memory_cost=16, parallelism=2).hash(PASSWORD)
    user.password_hash = older
    await user.save()
    assert (await login(api, "fgw", PASSWORD))["token"]
    await user.refresh_from_db()
    assert user.password_hash != older
    assert not auth._hasher.check_needs_rehash(user.password_hash)
    assert (await login(api, "fgw", PASSWORD))["token"]  # the new hash verifies


def test_hashing_leaves_a_core_to_the_event_loop() -> None:
    assert auth.hashing_slots(1) == 1
    assert auth.hashing_slots(2) == 1
    assert auth.hashing_slots(3) == 2
    assert auth.hashing_slots(64) == auth.HASHING_SLOTS


# --- logout, password change, revocation ----------------------------------------------------------

VIEWER = "{ viewer { username } }"


async def fresh_token(username: str, clock: Clock) -> str:
    user = await User.get(username=username)
    token, _ = await issue_token(user=user, now=clock(), ttl=timedelta(hours=8))
    return token


def unauthenticated(body: dict[str, Any]) -> bool:
    return body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_logout_revokes_the_token_it_came_with(api: Callable[..., Any], clock: Clock) -> None:
    mine, other = await fresh_token("fgw", clock), await fresh_token("fgw", clock)
    body = await api("mutation { logout { ok errors { code } } }", token=mine)
    assert body["data"]["logout"] == {"ok": True, "errors": []}
    assert unauthenticated(await api(VIEWER, token=mine))
    assert (await api(VIEWER, token=other))["data"]["viewer"]["username"] == "fgw"


CHANGE = """mutation($c: String!, $n: String!) {
  changePassword(currentPassword: $c, newPassword: $n) {
    ok tokensRevoked errors { code field } } }"""


async def test_a_password_change_revokes_every_other_token(
    api: Callable[..., Any], clock: Clock
) -> None:
    mine, others = await fresh_token("fgw", clock), [await fresh_token("fgw", clock) for _ in "ab"]
    wrong = await api(CHANGE, {"c": "not-it-at-all", "n": "a-new-password"}, token=mine)
    assert wrong["data"]["changePassword"]["errors"] == [
        {"code": "INVALID_CREDENTIALS", "field": "currentPassword"}
    ]
    short = await api(CHANGE, {"c": PASSWORD, "n": "short"}, token=mine)
    assert short["data"]["changePassword"]["errors"] == [
        {"code": "INVALID_INPUT", "field": "newPassword"}
    ]
    body = await api(CHANGE, {"c": PASSWORD, "n": "a-new-password"}, token=mine)
    # the two others and the one the gql fixture made
    assert body["data"]["changePassword"] == {"ok": True, "tokensRevoked": 3, "errors": []}
    assert (await api(VIEWER, token=mine))["data"]["viewer"]["username"] == "fgw"
    for token in others:
        assert unauthenticated(await api(VIEWER, token=token))
    assert code(await login(api, "fgw", PASSWORD)) == "INVALID_CREDENTIALS"
    assert (await login(api, "fgw", "a-new-password"))["token"]


async def test_guessing_through_password_change_is_throttled(
    api: Callable[..., Any], clock: Clock
) -> None:
    mine = await fresh_token("fgw", clock)
    codes = []
    for i in range(6):
        body = await api(CHANGE, {"c": f"guess-{i}-wrong", "n": "a-new-password"}, token=mine)
        codes.append(body["data"]["changePassword"]["errors"][0]["code"])
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"] * 3


REVOKE = """mutation($u: String!) {
  revokeUserTokens(username: $u) { ok tokensRevoked errors { code } } }"""


async def test_an_administrator_revokes_a_users_tokens_within_their_region(
    api: Callable[..., Any], gql: GraphQLClient, clock: Clock
) -> None:
    tokens = [await fresh_token("fgw", clock) for _ in range(3)]
    refused = await api(REVOKE, {"u": "fgw"}, token=gql.tokens["clerk"])
    assert refused["data"]["revokeUserTokens"]["errors"] == [{"code": "FORBIDDEN"}]
    district = await Region.get(code="371402")
    regional = await create_user(
        username="district-supervisor",
        password=PASSWORD,
        display_name="区监督",
        role=Role.SUPERVISOR,
        region_code=district.code,
    )
    regional_token, _ = await issue_token(user=regional, now=clock(), ttl=timedelta(hours=1))
    outside = await api(REVOKE, {"u": "fgw"}, token=regional_token)  # fgw works city-wide
    assert outside["data"]["revokeUserTokens"]["errors"] == [{"code": "NOT_FOUND"}]
    body = await api(REVOKE, {"u": "fgw"}, token=gql.tokens["supervisor"])
    assert body["data"]["revokeUserTokens"]["tokensRevoked"] >= 3
    for token in tokens:
        assert unauthenticated(await api(VIEWER, token=token))
    assert await AuditEvent.filter(action="user.tokens_revoked").count() == 1
