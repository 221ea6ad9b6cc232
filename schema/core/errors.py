"""Expected failures as data in the schema; everything else is masked."""

from __future__ import annotations

from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from approval.core.errors import DomainError, ErrorCode

ErrorCodeEnum = strawberry.enum(ErrorCode, name="ErrorCode")


@strawberry.type(description="An expected failure: what went wrong, where, and what to do.")
class UserError:
    code: ErrorCodeEnum  # type: ignore[valid-type]
    message: str
    field: str | None = None

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(code=error.code, message=error.message, field=error.field)


def as_graphql_error(error: DomainError) -> GraphQLError:
    """A domain error met while answering a query: a GraphQL error with its code."""
    extensions = {"code": error.code.value, "field": error.field}
    return GraphQLError(error.message, extensions=extensions)


class TypedErrors(SchemaExtension):
    """A domain error that reached the result without a code (a resolver let it through)
    gets its code, like every other expected failure."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in (result.errors if result is not None else None) or ():
            original = error.original_error
            if isinstance(original, DomainError) and "code" not in (error.extensions or {}):
                error.extensions = {"code": original.code.value, "field": original.field}


def should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, DomainError | GraphQLError)
