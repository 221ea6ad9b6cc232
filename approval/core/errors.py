"""The few errors the domain raises. Each has a code, a message for people, and a field."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_CREDIT_CODE = "INVALID_CREDIT_CODE"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    FORBIDDEN = "FORBIDDEN"
    WRONG_DEPARTMENT = "WRONG_DEPARTMENT"
    INVALID_STATE = "INVALID_STATE"
    ALREADY_DECIDED = "ALREADY_DECIDED"
    MISSING_CORE_MATERIALS = "MISSING_CORE_MATERIALS"
    CALENDAR_UNKNOWN = "CALENDAR_UNKNOWN"
    CONFLICT = "CONFLICT"
    NOT_INVITED = "NOT_INVITED"
    MEETING_CLOSED = "MEETING_CLOSED"
    ALREADY_RATED = "ALREADY_RATED"
    SYNC_UNAVAILABLE = "SYNC_UNAVAILABLE"
    DOCUMENT_REFUSED = "DOCUMENT_REFUSED"
    TOO_LARGE = "TOO_LARGE"
    TYPE_NOT_ALLOWED = "TYPE_NOT_ALLOWED"
    UPLOAD_EXPIRED = "UPLOAD_EXPIRED"
    UPLOAD_NOT_RECEIVED = "UPLOAD_NOT_RECEIVED"
    SIZE_MISMATCH = "SIZE_MISMATCH"
    HASH_MISMATCH = "HASH_MISMATCH"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"


class DomainError(Exception):
    """An expected failure: the caller did something the rules do not allow."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def not_found(what: str, key: object, *, field: str | None = None) -> DomainError:
    return DomainError(
        ErrorCode.NOT_FOUND,
        f"{what} {key!r} does not exist or is not visible to you; check the id",
        field=field,
    )


def invalid(message: str, *, field: str | None = None) -> DomainError:
    return DomainError(ErrorCode.INVALID_INPUT, message, field=field)
