"""Timing of GraphQL operations: a schema extension that reports each query's and mutation's
duration to whoever the app was given (the server's Prometheus metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

# (operation type, the client's operation name or None, seconds)
ObserveOperation = Callable[[str, str | None, float], None]


class OperationTimer(SchemaExtension):
    """Times each query and mutation; subscriptions (open as long as a dashboard is) are
    not timed. A document that does not parse, or that the request guard refuses before it
    runs, counts as type ``invalid``."""

    def __init__(self, *, observe: ObserveOperation) -> None:
        self.observe = observe

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._observe(time.perf_counter() - started)

    def _observe(self, seconds: float) -> None:
        context: Any = self.execution_context
        try:
            kind: str = context.operation_type.value
        except Exception:  # no parsed operation: nothing to name
            kind, name = "invalid", None
        else:
            name = context.operation_name
        if kind != "subscription":
            self.observe(kind, name, seconds)
