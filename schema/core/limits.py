"""What one GraphQL request may cost: tokens, depth, aliases, cost, input shape and time.

strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk a fragment again at every
spread, so fragments that each spread the next one twice cost 2^n (a 1.7 KB query held the
event loop for hours). Here the document is measured in one pass that visits each fragment once
and remembers its figures, before graphql-core's own validation runs; every refusal is a GraphQL
error with ``extensions.code``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    parse,
)
from starlette.responses import JSONResponse
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from approval.core.errors import ErrorCode
from approval.core.inputs import text_problem

# Connections multiply the cost of what they select by the page asked for (schema.core.pagination).
PAGE_ARGUMENTS = ("first", "last")
MAX_PAGE_FACTOR = 100


@dataclass(frozen=True)
class RequestLimits:
    max_tokens: int = 2000
    max_depth: int = 10
    max_aliases: int = 15
    # Fields resolved, a connection's children counted once per item of the page it asks for.
    max_cost: int = 20_000
    # Fields, inline fragments and spreads nested inside one another.
    max_nesting: int = 64
    # Fields under one response name in one selection set (graphql-core compares each pair).
    max_repeats: int = 10
    # Lists and objects nested inside one another in the variables and arguments.
    max_input_nesting: int = 32
    # Characters of one string in the variables or arguments.
    max_string_chars: int = 65_536
    # Wall-clock seconds one query or mutation may take (0: no budget).
    time_budget_seconds: float = 15.0
    # How long an abusive request's refusal (QUERY_TOO_COMPLEX, TOO_MANY_ATTEMPTS) is held
    # before it is answered: an attacker's connection then costs a sleeping coroutine instead
    # of a request a millisecond. The server sets it (ONEWINDOW_REFUSAL_PAUSE_MS).
    refusal_pause_seconds: float = 0.0


class RefusedRequest(Exception):
    """A request refused before GraphQL reads it (its body too large or too deeply nested):
    answered with ``status`` and the usual ``{"errors": [...]}`` body with its code."""

    def __init__(self, code: ErrorCode, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def response(self) -> JSONResponse:
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code.value}}]}
        return JSONResponse(body, status_code=self.status)


# A document this long is read in a worker thread (the GIL is handed back every few ms), so
# that a large one never holds the event loop while it is parsed and measured.
OFF_LOOP_CHARS = 4096
PAUSED_CODES = frozenset({ErrorCode.QUERY_TOO_COMPLEX.value, ErrorCode.TOO_MANY_ATTEMPTS.value})


def limit_error(code: ErrorCode, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code.value, "field": None})


def too_complex(message: str) -> GraphQLError:
    return limit_error(ErrorCode.QUERY_TOO_COMPLEX, message)


@dataclass(frozen=True)
class Figures:
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    # How often each response name occurs in the selection set, fragments included.
    names: Mapping[str, int] = field(default_factory=dict)


class _Measure:
    """One pass over an operation; each fragment measured once, at its first spread."""

    def __init__(
        self,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        limits: RequestLimits,
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        self.known: dict[str, Figures] = {}
        self.open: set[str] = set()

    def selections(self, node: SelectionSetNode | None, nesting: int) -> Figures:
        if node is None:
            return Figures()
        if nesting > self.limits.max_nesting:
            raise too_complex(
                f"the query nests fields and fragments more than {self.limits.max_nesting} "
                "levels deep; flatten it"
            )
        depth = aliases = cost = 0
        names: dict[str, int] = {}
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                inner = self.selections(selection.selection_set, nesting + 1)
                introspection = selection.name.value.startswith("__")
                if selection.selection_set is not None and not introspection:
                    depth = max(depth, 1 + inner.depth)
                aliases += inner.aliases + (selection.alias is not None)
                cost += 1 + self.page_factor(selection) * inner.cost
                name = (selection.alias or selection.name).value
                names[name] = names.get(name, 0) + 1
            else:
                inner = (
                    self.fragment(selection.name.value, nesting + 1)
                    if isinstance(selection, FragmentSpreadNode)
                    else self.selections(
                        cast(InlineFragmentNode, selection).selection_set, nesting + 1
                    )
                )
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                cost += inner.cost
                for name, count in inner.names.items():
                    names[name] = names.get(name, 0) + count
            # Capped, so the figures of a fragment bomb stay small numbers.
            cost = min(cost, self.limits.max_cost + 1)
            aliases = min(aliases, self.limits.max_aliases + 1)
        repeated = max(names.items(), key=lambda item: item[1], default=("", 0))
        if repeated[1] > self.limits.max_repeats:
            raise too_complex(
                f"the field {repeated[0]!r} is asked for {repeated[1]} times in one selection; "
                f"at most {self.limits.max_repeats} are accepted, ask for it once"
            )
        return Figures(depth=depth, aliases=aliases, cost=cost, names=names)

    def fragment(self, name: str, nesting: int) -> Figures:
        if name in self.known:
            return self.known[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.open:
            return Figures()  # unknown or cyclic: graphql-core's validation says so
        self.open.add(name)
        figures = self.selections(definition.selection_set, nesting)
        self.open.discard(name)
        self.known[name] = figures
        return figures

    def page_factor(self, field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value not in PAGE_ARGUMENTS:
                continue
            value: Any = None
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
            if isinstance(value, int) and not isinstance(value, bool):
                return max(1, min(value, MAX_PAGE_FACTOR))
        return 1


def measure(
    document: DocumentNode, variables: Mapping[str, Any], limits: RequestLimits
) -> dict[str, Figures]:
    """The figures of every operation in ``document``; QUERY_TOO_COMPLEX past a limit."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Measure(fragments, variables, limits)
    found: dict[str, Figures] = {}
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        name = definition.name.value if definition.name else "anonymous"
        figures = walk.selections(definition.selection_set, 0)
        if figures.depth > limits.max_depth:
            raise too_complex(
                f"operation {name!r} nests {figures.depth} levels of fields, more than "
                f"{limits.max_depth}; ask for less at once"
            )
        if figures.aliases > limits.max_aliases:
            raise too_complex(
                f"operation {name!r} uses more than {limits.max_aliases} aliases; "
                "send fewer fields under other names"
            )
        if figures.cost > limits.max_cost:
            raise too_complex(
                f"operation {name!r} would resolve more than {limits.max_cost} fields "
                "(a connection's fields count once per item of its page); ask for smaller "
                "pages or fewer fields"
            )
        found[name] = figures
    return found


def _literal_strings(node: ValueNode, depth: int, limits: RequestLimits) -> Iterator[str]:
    if depth > limits.max_input_nesting:
        raise limit_error(
            ErrorCode.INVALID_INPUT,
            f"an argument nests lists and objects more than {limits.max_input_nesting} levels "
            "deep; send flatter input",
        )
    if isinstance(node, StringValueNode):
        yield node.value
    elif isinstance(node, ListValueNode):
        for value in node.values:
            yield from _literal_strings(value, depth + 1, limits)
    elif isinstance(node, ObjectValueNode):
        for field in node.fields:
            yield from _literal_strings(field.value, depth + 1, limits)


def _value_strings(value: object, limits: RequestLimits) -> Iterator[str]:
    """Every string (keys too) in a JSON value, without recursion; INVALID_INPUT when it
    nests deeper than the limit."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list | dict):
            if depth >= limits.max_input_nesting:
                raise limit_error(
                    ErrorCode.INVALID_INPUT,
                    "the variables nest lists and objects more than "
                    f"{limits.max_input_nesting} levels deep; send flatter input",
                )
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def check_inputs(
    document: DocumentNode, variables: Mapping[str, Any] | None, limits: RequestLimits
) -> None:
    """INVALID_INPUT for a string no database could keep (a lone surrogate, a NUL), a string
    longer than the limit, or input nested deeper than the limit."""
    strings: list[Iterator[str]] = [_value_strings(dict(variables or {}), limits)]
    stack: list[Any] = list(document.definitions)
    while stack:  # every argument literal of the document, fragments included
        node = stack.pop()
        for argument in getattr(node, "arguments", None) or ():
            strings.append(_literal_strings(argument.value, 0, limits))
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    for source in strings:
        for text in source:
            if len(text) > limits.max_string_chars:
                raise limit_error(
                    ErrorCode.INVALID_INPUT,
                    f"a string of {len(text)} characters was sent; at most "
                    f"{limits.max_string_chars} are accepted",
                )
            problem = text_problem(text)
            if problem is not None:
                raise limit_error(ErrorCode.INVALID_INPUT, problem)


class RequestGuard(SchemaExtension):
    """Parses with a token limit, then measures the document and checks its inputs before
    graphql-core validates it. A small document seen before comes from ``known``, parsed and
    validated once (graphql-core's validation of a login mutation costs milliseconds of the
    event loop, a guesser's every request)."""

    def __init__(
        self,
        limits: RequestLimits,
        refused: RefusedDocuments | None = None,
        known: KnownDocuments | None = None,
    ) -> None:
        self.limits = limits
        self.refused = refused if refused is not None else RefusedDocuments()
        self.known = known if known is not None else KnownDocuments()
        self.checked = False
        self.entry: KnownDocument | None = None

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            query, variables = context.query, context.variables
            self.refused.check(query)  # the same document refused before: at once
            try:
                entry = self.known.get(query)
                if entry is not None:  # its inputs and figures depend on the variables
                    check_inputs(entry.document, variables, self.limits)
                    measure(entry.document, variables or {}, self.limits)
                    document = entry.document
                elif len(query) >= OFF_LOOP_CHARS:  # reading takes milliseconds: not on the loop
                    document = await asyncio.to_thread(read_document, query, variables, self.limits)
                else:
                    document = read_document(query, variables, self.limits)
                    entry = self.known.add(query, document)
            except GraphQLError as error:
                if (error.extensions or {}).get("code") == ErrorCode.QUERY_TOO_COMPLEX.value:
                    self.refused.remember(query, error)
                raise
            context.graphql_document = document
            self.checked = True
            self.entry = entry
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not self.checked:  # a document given already parsed
            check_inputs(document, context.variables, self.limits)
            measure(document, context.variables or {}, self.limits)
        entry = self.entry
        if entry is not None and entry.errors is not None and context.pre_execution_errors is None:
            context.pre_execution_errors = list(entry.errors)  # validated before: not again
        yield
        if entry is not None and entry.errors is None and context.pre_execution_errors is not None:
            entry.errors = tuple(context.pre_execution_errors)


K = TypeVar("K")
V = TypeVar("V")


@dataclass
class KnownDocument:
    document: DocumentNode
    # graphql-core's validation errors (none: an empty tuple) once it has run; None before.
    errors: tuple[GraphQLError, ...] | None = None


class Recent(Generic[K, V]):
    """The last ``size`` entries, the least recently used dropped first."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value


class KnownDocuments(Recent[str, KnownDocument]):
    """The last small documents read, by their text, each with its validation once it has
    run (one schema's, whose rules never change): a repeated query is neither parsed nor
    validated again. Documents of OFF_LOOP_CHARS or more are not kept."""

    def add(self, query: str, document: DocumentNode) -> KnownDocument:
        return self.put(query, KnownDocument(document))


class RefusedDocuments(Recent[bytes, GraphQLError]):
    """The last documents refused as too complex (the document alone decides), so that an
    attacker repeating one costs a hash, not a parse."""

    @staticmethod
    def _key(query: str) -> bytes:
        return hashlib.blake2b(query.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def check(self, query: str) -> None:
        error = self.get(self._key(query))
        if error is not None:
            raise too_complex(error.message)

    def remember(self, query: str, error: GraphQLError) -> None:
        self.put(self._key(query), error)


def read_document(
    query: str, variables: Mapping[str, Any] | None, limits: RequestLimits
) -> DocumentNode:
    """Parse within the token limit, then check the inputs and measure the document: the
    document, or a GraphQL error with its code."""
    try:
        document = parse(query, max_tokens=limits.max_tokens)
    except GraphQLError as error:
        if "tokens" in error.message:
            raise too_complex(
                f"the query has more than {limits.max_tokens} tokens; send a shorter one"
            ) from None
        error.extensions = {"code": ErrorCode.INVALID_INPUT.value, "field": None}
        raise
    except RecursionError:
        raise too_complex("the query nests too deeply to read; flatten it") from None
    check_inputs(document, variables, limits)
    measure(document, variables or {}, limits)
    return document


def timed_out(seconds: float) -> ExecutionResult:
    return ExecutionResult(
        data=None,
        errors=[
            limit_error(
                ErrorCode.REQUEST_TIMEOUT,
                f"the request took longer than {seconds:g} s and was stopped; "
                "ask for less at once, or try again later",
            )
        ],
    )


class BudgetedSchema(strawberry.Schema):
    """A schema whose queries and mutations stop after ``time_budget_seconds`` (subscriptions
    live as long as their client): the request ends with REQUEST_TIMEOUT and the transaction
    of a mutation cut short is rolled back."""

    time_budget_seconds: float = 0.0
    refusal_pause_seconds: float = 0.0

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        if self.time_budget_seconds <= 0:
            result = await super().execute(*args, **kwargs)
        else:
            try:
                async with asyncio.timeout(self.time_budget_seconds):
                    result = await super().execute(*args, **kwargs)
            except TimeoutError:
                return timed_out(self.time_budget_seconds)
        if self.refusal_pause_seconds > 0 and any(
            (error.extensions or {}).get("code") in PAUSED_CODES for error in result.errors or ()
        ):
            await asyncio.sleep(self.refusal_pause_seconds)
        return result
