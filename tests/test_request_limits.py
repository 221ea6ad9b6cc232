"""No request stalls the server: validation linear in the document, cost and time limits, a
body limit on every endpoint, and a typed error (never a 500) for malformed input."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
import strawberry.schema.schema as strawberry_schema
from graphql import parse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from schema.core.limits import BudgetedSchema, RequestLimits, measure
from server.app import create_app, tune_gc
from server.body_limit import BodyLimit
from server.settings import Settings
from tests.conftest import GraphQLClient
from tests.helpers import create_project

pytestmark = pytest.mark.usefixtures("catalog")


def bomb(levels: int, leaf: str = "__typename", name: str = "F") -> str:
    """Fragments that each spread the next one twice: 2^levels leaves from a few bytes."""
    fragments = [
        f"fragment {name}{i} on Query {{ ...{name}{i + 1} ...{name}{i + 1} }}"
        for i in range(levels)
    ]
    fragments.append(f"fragment {name}{levels} on Query {{ {leaf} }}")
    return f"query Bomb {{ ...{name}0 }}\n" + "\n".join(fragments)


def max_bomb_levels(limits: RequestLimits) -> int:
    """The deepest bomb whose tokens the limit lets through (10 tokens a level)."""
    return (limits.max_tokens - 20) // 10


def codes(body: dict[str, Any]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


async def post_raw(gql: GraphQLClient, body: str) -> httpx.Response:
    """POST a JSON body written by hand (what json= would refuse to send), as the clerk."""
    return await gql.http.post(
        "/graphql",
        content=body.encode("utf-8", "surrogatepass"),
        headers={
            "Authorization": f"Bearer {gql.tokens['clerk']}",
            "content-type": "application/json",
        },
    )


# --- the fragment bomb ---------------------------------------------------------------------------


def test_measuring_visits_each_fragment_once() -> None:
    """With limits too high to stop it, the one pass still measures a 2^150 expansion at
    once: each fragment is measured at its first spread and remembered."""
    limits = RequestLimits(max_cost=10**60, max_repeats=10**60, max_aliases=10**60, max_nesting=999)
    document = parse(bomb(150))
    started = time.perf_counter()
    figures = measure(document, {}, limits)
    elapsed = time.perf_counter() - started
    assert figures["Bomb"].names["__typename"] == 2**150
    assert elapsed < 0.05, elapsed


@pytest.mark.parametrize("levels", [16, 18, 30, 60, 120, "max"])
async def test_a_fragment_bomb_is_refused_within_50_ms(
    gql: GraphQLClient, levels: int | str
) -> None:
    depth = max_bomb_levels(RequestLimits()) if levels == "max" else int(levels)
    await gql("{ __typename }")  # warm: the first request builds what every request reuses
    timings = []
    for attempt in range(3):  # the best of three: a shared machine may pause any one of them
        query = bomb(depth, name=f"F{attempt}x")  # a new document each time: never remembered
        started = time.perf_counter()
        body = await gql(query)
        timings.append(time.perf_counter() - started)
        assert codes(body) == ["QUERY_TOO_COMPLEX"], body
    elapsed = min(timings)
    assert body.get("data") is None
    assert elapsed < 0.05, f"{depth} levels took {elapsed * 1000:.1f} ms"


async def test_a_fragment_bomb_does_not_hold_the_event_loop(gql: GraphQLClient) -> None:
    """While bombs are answered the event loop keeps ticking: no bomb holds it for long (a
    large document is read in a worker thread)."""
    levels = max_bomb_levels(RequestLimits())
    await gql(bomb(levels))  # warm: the first request builds what every request reuses
    thresholds = gc.get_threshold()
    late: list[float] = []

    async def ticker() -> None:
        for _ in range(40):
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            late.append(time.perf_counter() - started - 0.005)

    async def bombs() -> None:
        for i in range(8):  # a new document each time: none is remembered as refused
            await gql(bomb(levels, name=f"Loop{i}x"))

    tune_gc(50_000)  # as the server does (server.app.tune_gc): no full collection mid-test
    try:
        await asyncio.gather(ticker(), bombs())
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    # Before the fix one 30-level bomb held the loop for hours (16 levels: 0.58 s). The bound
    # leaves room for a machine shared with other work, which delays ticks by itself.
    assert sorted(late)[len(late) // 2] < 0.05 and max(late) < 0.25, late


async def test_a_document_refused_once_is_refused_again_without_reading_it(
    gql: GraphQLClient,
) -> None:
    query = bomb(100, name="Again")
    first = await gql(query)
    started = time.perf_counter()
    again = await gql(query)
    assert codes(first) == codes(again) == ["QUERY_TOO_COMPLEX"]
    assert first["errors"][0]["message"] == again["errors"][0]["message"]
    assert time.perf_counter() - started < 0.02


async def test_a_repeated_document_is_validated_once_and_its_inputs_checked_each_time(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated: list[object] = []
    validate = strawberry_schema.validate_document

    def counting(*args: Any) -> Any:
        validated.append(args[1])
        return validate(*args)

    monkeypatch.setattr(strawberry_schema, "validate_document", counting)
    fields = (
        "id code name address statusLabel "
        "stages { name code status deadline tasks { id deadline status decidedAt } }"
    )
    query = (
        "query($n: Int) { "
        + " ".join(
            f"p{i}: projects(first: $n) {{ edges {{ node {{ {fields} }} }} }}" for i in range(14)
        )
        + " }"
    )
    for _ in range(3):
        body = await gql(query, {"n": 2}, as_="clerk")
        assert "errors" not in body, body
    assert len(validated) == 1  # parsed and validated once, read from memory twice
    # What depends on the variables is still checked each time: the page's cost, the strings.
    body = await gql(query, {"n": 100}, as_="clerk")
    assert codes(body) == ["QUERY_TOO_COMPLEX"], body
    wrong = "{ viewer { noSuchField } }"
    first, again = await gql(wrong, as_="clerk"), await gql(wrong, as_="clerk")
    assert first["errors"] == again["errors"] and "noSuchField" in first["errors"][0]["message"]
    assert len(validated) == 2
    filtered = "query($q: String) { projects(filter: {text: $q}) { totalCount } }"
    for text in ("ok", "nul\x00", "ok"):
        body = await gql(filtered, {"q": text}, as_="clerk")
        assert codes(body) == ([] if text == "ok" else ["INVALID_INPUT"]), body


async def test_wider_bombs_and_repeated_fields_are_refused_fast(gql: GraphQLClient) -> None:
    repeated = "{ " + "viewer { id } " * 400 + "}"  # graphql-core compares each pair
    typenames = "{ " + "__typename " * 1900 + "}"
    inline = "{ " + " ".join("... on Query { viewer { id } }" for _ in range(150)) + " }"
    for query in (repeated, typenames, inline):
        gc.collect()  # earlier tests' garbage (in this worker) is not this request's work
        # the CPU the process spent on it (every thread: a large document is read in a worker
        # thread), not the wall clock, which a loaded machine stretched to 0.14 s once
        started = time.process_time()
        body = await gql(query, as_="clerk")
        assert codes(body) == ["QUERY_TOO_COMPLEX"], body
        assert time.process_time() - started < 0.1


# --- depth, aliases, tokens and cost: typed refusals -------------------------------------------


async def test_depth_aliases_tokens_and_cost_are_refused_with_a_code(gql: GraphQLClient) -> None:
    deep = "{ viewer " + "{ a " * 11 + "{ id }" + " }" * 11 + " }"
    aliases = "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(16)) + " }"
    tokens = "{ " + " ".join(f"a{i}: __typename" for i in range(1100)) + " }"
    fields = (
        "id code name address statusLabel "
        "stages { name code status deadline tasks { id deadline status decidedAt } }"
    )
    costly = (
        "{ "
        + " ".join(
            f"p{i}: projects(first: 100) {{ edges {{ node {{ {fields} }} }} }}" for i in range(14)
        )
        + " }"
    )
    for query in (deep, aliases, tokens):
        body = await gql(query, as_="clerk")
        assert codes(body) == ["QUERY_TOO_COMPLEX"], (query[:60], body)
    limits = RequestLimits()
    figures = measure(parse(costly), {}, RequestLimits(max_cost=10**9))
    assert figures["anonymous"].cost > limits.max_cost
    body = await gql(costly, as_="clerk")
    assert codes(body) == ["QUERY_TOO_COMPLEX"], body


async def test_ordinary_queries_pass(gql: GraphQLClient) -> None:
    await create_project(gql)
    body = await gql(
        """query($first: Int!) { projects(first: $first) { totalCount edges { node {
            code name stages { name tasks { department { shortName } deadline } }
            materials { materialType { name } } } } } }""",
        {"first": 100},
        as_="supervisor",
    )
    assert "errors" not in body, body
    assert body["data"]["projects"]["totalCount"] == 1


async def test_a_page_asked_through_a_variable_counts_its_size() -> None:
    query = parse("query($n: Int) { projects(first: $n) { edges { node { id name code } } } }")
    small = measure(query, {"n": 1}, RequestLimits())["anonymous"].cost
    large = measure(query, {"n": 100}, RequestLimits())["anonymous"].cost
    assert large > 50 * small


# --- the time budget -----------------------------------------------------------------------------


async def test_a_request_over_its_time_budget_ends_with_a_code() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        async def slow(self) -> int:
            await asyncio.sleep(5)
            return 1

        @strawberry.field
        def fast(self) -> int:
            return 2

    schema = BudgetedSchema(query=Query)
    schema.time_budget_seconds = 0.05
    started = time.perf_counter()
    result = await schema.execute("{ slow }")
    assert time.perf_counter() - started < 1
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "REQUEST_TIMEOUT", "field": None}
    assert (await schema.execute("{ fast }")).data == {"fast": 2}


# --- malformed input: typed errors, never a 500 -------------------------------------------------


def global_id(type_name: str, node_id: str) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


@pytest.mark.parametrize("node_id", ["²", "٣", "99999999999999999999999", "2147483648", "-1", "0"])
async def test_malformed_ids_are_not_found_or_refused_with_a_code(
    gql: GraphQLClient, node_id: str
) -> None:
    project = await create_project(gql)
    body = await gql(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": global_id("Project", node_id)},
        as_="clerk",
    )
    assert body == {"data": {"node": None}}, body
    body = await gql(
        "query($id: ID!) { inspection(id: $id) { id } }",
        {"id": global_id("Inspection", node_id)},
        as_="clerk",
    )
    assert "Unexpected error." not in json.dumps(body), body
    body = await gql(
        """mutation($input: PauseTaskInput!) { pauseTask(input: $input) {
            errors { code field } } }""",
        {"input": {"taskId": global_id("Task", node_id), "reason": "EXPERT_REVIEW"}},
        as_="fgw",
    )
    assert body["data"]["pauseTask"]["errors"][0]["code"] == "INVALID_INPUT", body
    body = await gql(
        "query($after: String) { projects(first: 5, after: $after) { totalCount } }",
        {"after": base64.b64encode(f"cursor:{node_id}".encode()).decode()},
        as_="clerk",
    )
    assert codes(body) == ["INVALID_INPUT"], body
    assert project["id"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("\ud800医院", "INVALID_INPUT"),  # a lone surrogate
        ("医院\x00", "INVALID_INPUT"),
        ("医" * 1_000_000, "INVALID_INPUT"),  # 1 MB of search text (3 MB of UTF-8)
        ("医" * 300, "INVALID_INPUT"),  # longer than any name or code to search for
    ],
)
async def test_malformed_filter_text_is_refused_with_a_code(
    gql: GraphQLClient, text: str, code: str
) -> None:
    query = "query($f: ProjectFilterInput) { projects(filter: $f) { totalCount } }"
    response = await post_raw(gql, json.dumps({"query": query, "variables": {"f": {"text": text}}}))
    assert response.status_code == 200, response.text[:300]
    assert codes(response.json()) == [code], response.text[:300]


async def test_a_lone_surrogate_in_a_literal_is_refused(gql: GraphQLClient) -> None:
    body = await gql('{ projects(filter: {text: "\\ud800"}) { totalCount } }', as_="clerk")
    assert codes(body) == ["INVALID_INPUT"], body


async def test_deeply_nested_variables_are_refused_with_a_code(gql: GraphQLClient) -> None:
    query = "query($f: ProjectFilterInput) { projects(filter: $f) { totalCount } }"
    for depth in (50_000, 40):
        variables = "[" * depth + "]" * depth
        raw = f'{{"query": {json.dumps(query)}, "variables": {{"f": {variables}}}}}'
        response = await post_raw(gql, raw)
        assert response.status_code in (200, 400), response.text[:300]
        assert codes(response.json()) == ["INVALID_INPUT"], response.text[:300]


# --- the body limit -----------------------------------------------------------------------------


@pytest.fixture
async def limited() -> AsyncIterator[httpx.AsyncClient]:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"size": len(await request.body())})

    app = Starlette(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/objects/upload/{t}", echo, methods=["PUT"]),
        ]
    )
    transport = httpx.ASGITransport(app=BodyLimit(app, max_bytes=1000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_a_body_over_the_limit_is_refused(limited: httpx.AsyncClient) -> None:
    assert (await limited.post("/echo", content=b"x" * 1000)).json() == {"size": 1000}
    response = await limited.post("/echo", content=b"x" * 1001)
    assert response.status_code == 413
    assert codes(response.json()) == ["TOO_LARGE"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(100):
            yield b"x" * 100

    response = await limited.post("/echo", content=chunks())
    assert response.status_code == 413
    # Uploads stream to the object store under their ticket's own limit.
    assert (await limited.put("/objects/upload/t", content=b"x" * 5000)).json() == {"size": 5000}


async def test_every_endpoint_of_the_app_has_the_body_limit(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite://{tmp_path / 'db.sqlite3'}", object_dir=tmp_path, max_body_kb=16
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for path in ("/graphql", "/ledger.xlsx", "/healthz", "/projects/X/notice", "/sync/a"):
            response = await http.post(path, content=b"{" * (17 * 1024))
            assert response.status_code == 413, (path, response.status_code)
            assert codes(response.json()) == ["TOO_LARGE"]


def test_the_body_limit_is_configurable() -> None:
    assert Settings.from_env({"ONEWINDOW_MAX_BODY_KB": "64"}).max_body_kb == 64
    assert Settings.from_env({}).max_body_kb == 1024
    assert Settings.from_env({"ONEWINDOW_REQUEST_SECONDS": "3"}).request_seconds == 3
