"""Logs while serving: the app's own loggers print at ONEWINDOW_LOG_LEVEL, one JSON object a
line (or text), with extras, tracebacks, access fields, and bearer tokens in URLs hidden."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from server.logs import JsonFormatter, redact_tokens

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import logging, sys
from server.logs import configure_logging
configure_logging(level=sys.argv[1], log_format=sys.argv[2])
log = logging.getLogger("onewindow.server.test")
log.debug("a detail")
log.info("room %s loaded", "inspection/7", extra={"doc": "inspection/7"})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("materialising 验收 failed")
path = "/sync/inspection/7?token=abc&ack=1"
logging.getLogger("uvicorn.access").info(
    '%s - "%s %s HTTP/%s" %d', "10.0.0.9:5000", "GET", path, "1.1", 101
)
logging.getLogger("tortoise").info("ORM chatter")
"""


def logged(level: str, log_format: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, level, log_format],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert result.stdout == ""
    return result.stderr.splitlines()


def test_json_lines_at_info() -> None:
    lines = logged("info", "json")
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(entries) == 3, lines  # no debug line, no ORM chatter at info
    loaded, failed, access = entries
    assert loaded["level"] == "info" and loaded["logger"] == "onewindow.server.test"
    assert loaded["message"] == "room inspection/7 loaded" and loaded["doc"] == "inspection/7"
    assert loaded["time"].endswith("+00:00") and isinstance(loaded["pid"], int)
    assert failed["level"] == "error" and failed["message"] == "materialising 验收 failed"
    assert "ZeroDivisionError" in failed["exception"]
    assert "验收" in lines[1], "Chinese is written as itself"
    assert (access["method"], access["status"], access["client"]) == ("GET", 101, "10.0.0.9:5000")
    assert access["path"] == "/sync/inspection/7?token=***&ack=1"
    assert "abc" not in "".join(lines)


def test_debug_level_and_text_format() -> None:
    lines = logged("debug", "text")
    assert any(line.endswith("onewindow.server.test: a detail") for line in lines), lines
    assert any("DEBUG" in line for line in lines)
    assert not any(line.startswith("{") for line in lines)
    assert "abc" not in "".join(lines) and "token=***" in "".join(lines)


def test_redaction_and_the_formatter_alone() -> None:
    assert redact_tokens("/notice?token=x1&y=2#f") == "/notice?token=***&y=2#f"
    assert redact_tokens("/a?access_token=x&token=y") == "/a?access_token=***&token=***"
    assert redact_tokens("/ledger.xlsx?month=2026-03&ticket=t1") == (
        "/ledger.xlsx?month=2026-03&ticket=***"
    )
    record = logging.LogRecord("onewindow.x", logging.WARNING, __file__, 1, "plain", None, None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning" and entry["message"] == "plain"
