"""What well-formed input looks like: row ids and strings a database can keep."""

from __future__ import annotations

import re

# Row ids are the database's 32-bit integer primary keys (Tortoise IntField: SERIAL).
MAX_ROW_ID = 2**31 - 1
_ASCII_DIGITS = re.compile(r"[1-9][0-9]{0,9}")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def row_id(text: object) -> int | None:
    """The row id written in ``text`` (ASCII digits, no sign or leading zero, within the
    database's integer), else None: ``"12"`` is 12, ``"²"``, ``"-1"`` and ``"9" * 30`` are None."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text if 0 < text <= MAX_ROW_ID else None
    if not isinstance(text, str) or _ASCII_DIGITS.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


def text_problem(text: str) -> str | None:
    """Why no database could keep ``text`` (a lone UTF-16 surrogate, a NUL), else None."""
    found = _LONE_SURROGATE.search(text)
    if found is not None:
        return (
            f"the text holds a lone surrogate (U+{ord(found.group()):04X}) at character "
            f"{found.start() + 1}, which is not valid Unicode; send the text as UTF-8"
        )
    if "\x00" in text:
        return f"the text holds a NUL character at character {text.index(chr(0)) + 1}; remove it"
    return None
