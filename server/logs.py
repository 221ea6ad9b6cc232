"""Logs while serving: one JSON object a line (or plain text for people) on stderr.

``ONEWINDOW_LOG_LEVEL`` sets the level of the app's own loggers (``onewindow.*``) and of
uvicorn's; ``ONEWINDOW_LOG_FORMAT`` picks ``json`` (the default: what log collectors read) or
``text``. A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
``pid``, anything passed with ``extra=``, and ``exception`` with its traceback. uvicorn's
access lines become ``client``, ``method``, ``path`` and ``status`` fields, with the value of a
``token`` query parameter (older clients send their bearer token that way) replaced by ``***``.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
from datetime import UTC, datetime
from typing import Any

# uvicorn's extra level below DEBUG.
TRACE = 5

# The attributes every LogRecord has: anything else on a record came with ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}
_TOKEN_VALUE = re.compile(r"([?&](?:access_token|token|ticket)=)[^&#\s]*", re.IGNORECASE)


def redact_tokens(text: str) -> str:
    """``text`` with the value of every ``token=`` or ``ticket=`` query parameter replaced by
    ``***`` (no credential is taken from a URL, but a client may still put one there)."""
    return _TOKEN_VALUE.sub(r"\1***", text)


def _level_number(level: str) -> int:
    return TRACE if level == "trace" else logging.getLevelName(level.upper())


class JsonFormatter(logging.Formatter):
    """One JSON object a line; Chinese stays readable (no ``\\u`` escapes)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_tokens(record.getMessage()),
            "pid": os.getpid(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args
            entry.update(client=client, method=method, path=redact_tokens(str(path)), status=status)
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message`` for people, tokens in URLs hidden as in JSON."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact_tokens(super().format(record))


def logging_config(*, level: str, log_format: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a serving process (uvicorn's ``log_config`` too)."""
    number = _level_number(level)
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "onewindow": {"level": number},
            "uvicorn": {"level": number},
            "uvicorn.error": {"level": number},
            "uvicorn.access": {"level": number},
            # The ORM's and drivers' own chatter only when something is wrong.
            "tortoise": {"level": max(number, logging.WARNING)},
            "asyncio": {"level": max(number, logging.WARNING)},
        },
        "root": {"level": logging.WARNING, "handlers": ["stderr"]},
    }


def configure_logging(*, level: str, log_format: str) -> None:
    """Set up logging of this process for serving (see :func:`logging_config`)."""
    logging.addLevelName(TRACE, "TRACE")
    logging.config.dictConfig(logging_config(level=level, log_format=log_format))
