"""The layout rules of the field documents, exported for the web clients.

``clients/web/shared/layout-rules.json`` is generated from
:mod:`approval.fieldwork.documents` (the one definition the server validates with), so that the
field app refuses in the form what the server would refuse, without a second copy of the rules.
``make layout-rules`` rewrites it and ``tests/test_layout_rules.py`` fails when it is stale.

Next to it, ``layout-rules.examples.json`` holds values at the edges of each rule, each judged
by the real reader of ``approval.fieldwork.documents`` on a real document; the web client's
tests check that its validation agrees with every one of them.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map

from approval.fieldwork.documents import (
    AGENCY_ROOT,
    CHECK_KEYS,
    CHECK_RESULT_LABELS,
    CONCLUSION_KEYS,
    CONCLUSION_LABELS,
    ENTRY_KEYS,
    ENTRY_KIND_LABELS,
    ENTRY_KINDS,
    INSPECTION_ROOT,
    MAX_NAME,
    MAX_PHOTOS,
    MAX_TEXT,
    PHOTO_ID,
    POSITION_BOUNDS,
    RECTIFICATION_KEYS,
    SECTION_KEYS,
    InspectionLayout,
    LayoutError,
    initial_update,
    read_agency,
    read_inspection,
    validate_inspection,
)

SHARED = Path(__file__).resolve().parent / "web" / "shared"
RULES_PATH = SHARED / "layout-rules.json"
EXAMPLES_PATH = SHARED / "layout-rules.examples.json"

# How each key of each item is checked by approval.fieldwork.documents' reader. A key added
# there without a type here fails tests/test_layout_rules.py.
FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "check": {
        "result": {"type": "choice", "vocabulary": "checkResult"},
        "note": {"type": "text", "max": MAX_TEXT},
        "measured": {"type": "measurements", "nameMax": MAX_NAME},
        "photos": {"type": "photos", "max": MAX_PHOTOS},
        "by": {"type": "text", "max": MAX_NAME},
        "at": {"type": "datetime"},
        **{
            key: {"type": "number", "min": low, "max": high}
            for key, (low, high) in POSITION_BOUNDS.items()
        },
    },
    "rectification": {
        "description": {"type": "text", "max": MAX_TEXT},
        "due": {"type": "date"},
        "done": {"type": "boolean"},
    },
    "conclusion": {
        "result": {"type": "choice", "vocabulary": "conclusion"},
        "note": {"type": "text", "max": MAX_TEXT},
        "signed_by": {"type": "text", "max": MAX_NAME},
        "signed_at": {"type": "datetime"},
    },
    "entry": {
        "kind": {"type": "choice", "vocabulary": "entryKind", "required": True},
        "text": {"type": "text", "max": MAX_TEXT},
        "at": {"type": "datetime"},
        "due": {"type": "date"},
        "done": {"type": "boolean"},
    },
}
ITEM_KEYS = {
    "check": CHECK_KEYS,
    "rectification": RECTIFICATION_KEYS,
    "conclusion": CONCLUSION_KEYS,
    "entry": ENTRY_KEYS,
}

# --- judging one value with the real reader ----------------------------------------------------

_DEPARTMENT, _CHECK = "dept", "check"
_KEY = "6f1c2a4e-3b5d-4c7e-9f00-0123456789ab"


def _inspection() -> Doc:
    doc: Doc = Doc()
    doc.apply_update(initial_update(InspectionLayout(departments={_DEPARTMENT: [_CHECK]})))
    return doc


def _section(doc: Doc) -> Map[Any]:
    section = doc.get(INSPECTION_ROOT, type=Map).get(_DEPARTMENT)
    assert isinstance(section, Map)
    return section


def _judge(read: Callable[[], object]) -> bool:
    try:
        read()
    except LayoutError:
        return False
    return True


def _value_valid(item: str, key: str, value: Any) -> bool:
    """Whether approval.fieldwork.documents accepts ``value`` at ``key`` of an ``item``."""
    if item == "entry":
        agency: Doc = Doc()
        entries = agency.get(AGENCY_ROOT, type=Map)
        fields = {"kind": ENTRY_KINDS[0], key: value} if key != "kind" else {"kind": value}
        entries[_KEY] = Map(fields)
        return _judge(lambda: read_agency(agency))
    doc = _inspection()
    section = _section(doc)
    if item == "check":
        target = section["checks"][_CHECK]
        target[key] = value
    elif item == "rectification":
        section["rectifications"][_KEY] = Map({key: value})
    else:
        section["conclusion"][key] = value
    return _judge(lambda: read_inspection(doc))


def _measurement_valid(name: str, value: Any) -> bool:
    doc = _inspection()
    _section(doc)["checks"][_CHECK]["measured"][name] = value
    return _judge(lambda: read_inspection(doc))


def _photos_valid(photos: list[str]) -> bool:
    before = _inspection()
    after = _inspection()
    array = _section(after)["checks"][_CHECK]["photos"]
    assert isinstance(array, Array)
    array.extend(photos)
    return _judge(
        lambda: validate_inspection(
            before, after, department_code=_DEPARTMENT, role="inspector", writable=True
        )
    )


def _key_valid(item: str, key: str) -> bool:
    if item == "entry":
        agency: Doc = Doc()
        agency.get(AGENCY_ROOT, type=Map)[key] = Map({"kind": ENTRY_KINDS[0]})
        return _judge(lambda: read_agency(agency))
    doc = _inspection()
    _section(doc)["rectifications"][key] = Map({"done": False})
    return _judge(lambda: read_inspection(doc))


# --- examples at the edges of each rule --------------------------------------------------------


def _json_value(value: Any) -> Any:
    """JSON has no NaN or infinities: those are written as {"$number": "NaN"}; a long run of
    one character as {"$repeat": "x", "times": 4001}."""
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return {"$number": name}
    if isinstance(value, str) and len(value) > 16 and len(set(value)) == 1:
        return {"$repeat": value[0], "times": len(value)}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _candidates(spec: dict[str, Any], vocabularies: dict[str, list[str]]) -> list[Any]:
    kind = spec["type"]
    if kind == "text":
        most = spec["max"]
        return ["", "正常", "x" * most, "x" * (most + 1), "汉" * most, "😀" * most, 7, True]
    if kind == "choice":
        values: list[Any] = list(vocabularies[spec["vocabulary"]])
        return [*values, values[0].upper(), "other", "", 1]
    if kind == "datetime":
        return [
            "2026-03-02T09:30:00+08:00",
            "2026-03-02T09:30:00.123+08:00",
            "2026-03-02T01:30:00Z",
            "2026-03-02T09:30:00",
            "2026-03-02",
            "",
            "2026-13-02T09:30:00+08:00",
            "2026-02-30T09:30:00+08:00",
            "yesterday",
            20260302,
        ]
    if kind == "date":
        return ["2026-03-20", "", "2026-02-29", "2028-02-29", "2026-13-01", "next week", 1]
    if kind == "boolean":
        return [True, False, "true", 1, 0]
    if kind == "number":
        low, high = spec["min"], spec["max"]
        return [low, high, (low + high) / 2, 12, low - 0.001, high + 0.001, "12", True]
    return []


def examples() -> list[dict[str, Any]]:
    """Values at the edges of each rule, each judged by approval.fieldwork.documents itself."""
    vocabularies = _vocabulary_values()
    found: list[dict[str, Any]] = []
    for item, fields in FIELDS.items():
        for key, spec in fields.items():
            for value in _candidates(spec, vocabularies):
                found.append(
                    {
                        "item": item,
                        "key": key,
                        "value": _json_value(value),
                        "valid": _value_valid(item, key, value),
                    }
                )
    for name, value in [
        ("测点1", 4.2),
        ("value", 0),
        ("value", -12.5),
        ("value", 1e308),
        ("value", math.nan),
        ("value", math.inf),
        ("value", "4.2"),
        ("value", True),
        ("", 1.0),
        ("   ", 1.0),
        ("n" * MAX_NAME, 1.0),
        ("n" * (MAX_NAME + 1), 1.0),
    ]:
        found.append(
            {
                "item": "measurement",
                "key": _json_value(name),
                "value": _json_value(value),
                "valid": _measurement_valid(name, value),
            }
        )
    sha = "ab" * 32
    for photos in [
        [sha],
        ["a/b:c.d-e_f"],
        ["has space"],
        ["照片"],
        ["x" * 128],
        ["x" * 129],
        [f"{n:064x}" for n in range(MAX_PHOTOS)],
        [f"{n:064x}" for n in range(MAX_PHOTOS + 1)],
    ]:
        found.append(
            {
                "item": "photos",
                "key": "photos",
                "value": _json_value(photos),
                "valid": _photos_valid(photos),
            }
        )
    canonical = str(uuid.UUID(_KEY))
    for item in ("rectification", "entry"):
        for key in (canonical, canonical.upper(), canonical.replace("-", ""), "not-a-uuid"):
            found.append(
                {"item": f"{item}Key", "key": key, "value": None, "valid": _key_valid(item, key)}
            )
    return found


def _vocabulary_values() -> dict[str, list[str]]:
    return {
        "checkResult": [m.value for m in CHECK_RESULT_LABELS],
        "conclusion": [m.value for m in CONCLUSION_LABELS],
        "entryKind": list(ENTRY_KINDS),
    }


def layout_rules() -> dict[str, Any]:
    """The rules as plain data (what layout-rules.json holds)."""
    return {
        "source": "approval/fieldwork/documents.py",
        "regenerate": "make layout-rules",
        "roots": {"inspection": INSPECTION_ROOT, "agency": AGENCY_ROOT},
        "sectionKeys": list(SECTION_KEYS),
        "keys": {item: list(keys) for item, keys in ITEM_KEYS.items()},
        "keyedByUuid": ["rectification", "entry"],
        "limits": {"maxText": MAX_TEXT, "maxName": MAX_NAME, "maxPhotos": MAX_PHOTOS},
        "photoId": PHOTO_ID.pattern,
        "vocabularies": {
            "checkResult": [
                {"value": m.value, "label": label} for m, label in CHECK_RESULT_LABELS.items()
            ],
            "conclusion": [
                {"value": m.value, "label": label} for m, label in CONCLUSION_LABELS.items()
            ],
            "entryKind": [{"value": k, "label": ENTRY_KIND_LABELS[k]} for k in ENTRY_KINDS],
        },
        "fields": FIELDS,
    }


def _dump(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def exported() -> dict[Path, str]:
    """The generated files and their text: the rules the app reads, the examples its tests
    check against."""
    return {
        RULES_PATH: _dump(layout_rules()),
        EXAMPLES_PATH: _dump({"source": "approval/fieldwork/documents.py", "examples": examples()}),
    }


def main() -> None:
    for path, text in exported().items():
        path.write_text(text, encoding="utf-8")
        print("wrote", path)


if __name__ == "__main__":
    main()
