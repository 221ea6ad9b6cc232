"""The CRDT documents of field work: their layouts, their validation, and reading them back.

Pure: pycrdt and the shared vocabulary only, no IO. Two kinds of document:

``inspection/{id}``
    root Map ``departments``, one section per participating department, keyed by its code::

        departments/{department}/checks/{check code}      Map: result, note, by, at,
                                                               lat, lng, accuracy (where the
                                                               device was, metres),
                                                               measured (Map name -> number),
                                                               photos (Array of photo ids)
        departments/{department}/rectifications/{uuid}    Map: description, due, done
        departments/{department}/conclusion               Map: result, note, signed_by, signed_at

``agency/{project id}``
    root Map ``entries`` keyed by UUID, each a Map: kind (visit/call/todo), text, at, due, done.

Every container of a layout (sections, ``checks``, each check with its ``measured`` and
``photos``, ``rectifications``, ``conclusion``) is created once, by the server, with the fixed
client id :data:`LAYOUT_CLIENT_ID`, in a fixed order: :func:`initial_update` gives the same
bytes whenever it is called with the same layout. Clients only set scalar values in these
containers and add UUID-keyed maps, so two offline tablets never create competing containers.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from pycrdt import Array, ArrayEvent, Doc, Map, MapEvent, TextEvent

from storage.enums import CheckOutcome, Conclusion, Role

LAYOUT_CLIENT_ID = 1
"""The client id of the server's layout update; no tablet ever writes with it."""

INSPECTION_ROOT = "departments"
AGENCY_ROOT = "entries"

CHECK_KEYS = ("result", "note", "measured", "photos", "by", "at", "lat", "lng", "accuracy")
# The device's position when a check was recorded: WGS 84 degrees, accuracy in metres.
POSITION_BOUNDS: dict[str, tuple[float, float]] = {
    "lat": (-90.0, 90.0),
    "lng": (-180.0, 180.0),
    "accuracy": (0.0, 100_000.0),
}
SECTION_KEYS = ("checks", "rectifications", "conclusion")
RECTIFICATION_KEYS = ("description", "due", "done")
CONCLUSION_KEYS = ("result", "note", "signed_by", "signed_at")
ENTRY_KEYS = ("kind", "text", "at", "due", "done")
ENTRY_KINDS = ("visit", "call", "todo")

CHECK_RESULT_LABELS: dict[CheckOutcome, str] = {
    CheckOutcome.PASS: "合格",
    CheckOutcome.FAIL: "不合格",
    CheckOutcome.NOT_APPLICABLE: "不适用",
    CheckOutcome.RECTIFY: "需整改",
}
CONCLUSION_LABELS: dict[Conclusion, str] = {Conclusion.PASS: "合格", Conclusion.FAIL: "不合格"}
ENTRY_KIND_LABELS = {"visit": "走访", "call": "电话", "todo": "待办"}

MAX_TEXT = 4000
MAX_NAME = 64
MAX_PHOTOS = 100
PHOTO_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")

DocKind = Literal["inspection", "agency"]
E = TypeVar("E", CheckOutcome, Conclusion)


class LayoutError(ValueError):
    """A document state breaks its layout or the writer's rights; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- names -------------------------------------------------------------------------------------


def inspection_doc_name(inspection_id: int) -> str:
    return f"inspection/{inspection_id}"


def agency_doc_name(project_id: int) -> str:
    return f"agency/{project_id}"


_DOC_NUMBER = re.compile(r"[1-9][0-9]{0,8}")


def parse_doc_name(doc_name: str) -> tuple[DocKind, int]:
    """``("inspection", 12)`` for ``"inspection/12"``; LayoutError for any other name."""
    kind, _, number = doc_name.partition("/")
    # ASCII digits only (str.isdigit() takes "²") and within the database's 32-bit ids.
    if kind in ("inspection", "agency") and _DOC_NUMBER.fullmatch(number):
        return ("inspection" if kind == "inspection" else "agency"), int(number)
    raise LayoutError(
        f"{doc_name!r} is not a field document name; use 'inspection/<id>' or 'agency/<project id>'"
    )


# --- layouts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InspectionLayout:
    """The departments of one inspection and the check codes of each."""

    departments: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class AgencyLayout:
    """An agency document: only the root map of entries, which needs no container."""


def initial_update(layout: InspectionLayout | AgencyLayout) -> bytes:
    """The update that creates every container of the layout, identical on every call."""
    doc: Doc[Any] = Doc(client_id=LAYOUT_CLIENT_ID)
    if isinstance(layout, InspectionLayout):
        root = doc.get(INSPECTION_ROOT, type=Map)
        with doc.transaction():
            for department in sorted(layout.departments):
                checks = {
                    code: Map({"measured": Map(), "photos": Array()})
                    for code in sorted(set(layout.departments[department]))
                }
                root[department] = Map(
                    {
                        "checks": Map(checks),
                        "rectifications": Map(),
                        "conclusion": Map(),
                    }
                )
    else:
        doc.get(AGENCY_ROOT, type=Map)
    return doc.get_update()


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckState:
    code: str
    result: CheckOutcome | None = None
    note: str = ""
    measured: dict[str, float] = field(default_factory=dict)
    photos: tuple[str, ...] = ()
    by: str = ""
    at: datetime | None = None
    position: Position | None = None


@dataclass(frozen=True)
class Position:
    """Where the device was when the check was recorded (WGS 84), and how sure it was."""

    latitude: float
    longitude: float
    accuracy: float | None = None


@dataclass(frozen=True)
class RectificationState:
    uuid: str
    description: str = ""
    due: date | None = None
    done: bool = False


@dataclass(frozen=True)
class ConclusionState:
    result: Conclusion | None = None
    note: str = ""
    signed_by: str = ""
    signed_at: datetime | None = None


@dataclass(frozen=True)
class SectionState:
    department_code: str
    checks: dict[str, CheckState]
    rectifications: dict[str, RectificationState]
    conclusion: ConclusionState


@dataclass(frozen=True)
class AgencyEntryState:
    uuid: str
    kind: str
    text: str = ""
    at: datetime | None = None
    due: date | None = None
    done: bool = False


def read_inspection(doc: Doc) -> dict[str, SectionState]:
    """The inspection document as plain data, keyed by department code (validates as it reads)."""
    root = doc.get(INSPECTION_ROOT, type=Map)
    return {
        code: _section(code, _map(root.get(code), f"{INSPECTION_ROOT}/{code}"))
        for code in _keys(root)
    }


def read_agency(doc: Doc) -> dict[str, AgencyEntryState]:
    root = doc.get(AGENCY_ROOT, type=Map)
    return {key: _entry(key, root.get(key)) for key in _keys(root)}


def _section(code: str, section: Map[Any]) -> SectionState:
    path = f"{INSPECTION_ROOT}/{code}"
    _only_keys(section, SECTION_KEYS, path)
    checks = _map(section.get("checks"), f"{path}/checks")
    rectifications = _map(section.get("rectifications"), f"{path}/rectifications")
    conclusion = _map(section.get("conclusion"), f"{path}/conclusion")
    return SectionState(
        department_code=code,
        checks={k: _check(k, checks.get(k), f"{path}/checks/{k}") for k in _keys(checks)},
        rectifications={
            k: _rectification(k, rectifications.get(k), f"{path}/rectifications/{k}")
            for k in _keys(rectifications)
        },
        conclusion=_conclusion(conclusion, f"{path}/conclusion"),
    )


def _check(code: str, value: object, path: str) -> CheckState:
    check = _map(value, path)
    _only_keys(check, CHECK_KEYS, path)
    measured = _map(check.get("measured"), f"{path}/measured")
    photos = check.get("photos")
    if not isinstance(photos, Array):
        raise LayoutError(f"{path}/photos must be the list created with the check; it is missing")
    result = _optional_text(check, "result", path)
    return CheckState(
        code=code,
        result=_enum(CheckOutcome, result, f"{path}/result", CHECK_RESULT_LABELS),
        note=_optional_text(check, "note", path) or "",
        measured={
            name: _number(measured.get(name), f"{path}/measured/{name}", name)
            for name in _keys(measured)
        },
        photos=tuple(_photo(p, f"{path}/photos[{i}]") for i, p in enumerate(photos)),
        by=_optional_text(check, "by", path, max_len=MAX_NAME) or "",
        at=_datetime(_optional_text(check, "at", path), f"{path}/at"),
        position=_position(check, path),
    )


def _position(check: Map[Any], path: str) -> Position | None:
    """The check's position: each coordinate in its bounds; a position needs both (a lone
    coordinate or accuracy is kept in the document and not shown)."""
    values = {key: _bounded(check.get(key), f"{path}/{key}", key) for key in POSITION_BOUNDS}
    latitude, longitude = values["lat"], values["lng"]
    if latitude is None or longitude is None:
        return None
    return Position(latitude=latitude, longitude=longitude, accuracy=values["accuracy"])


def _bounded(value: object, path: str, key: str) -> float | None:
    """A number within ``POSITION_BOUNDS[key]``; None when absent."""
    if value is None:
        return None
    low, high = POSITION_BOUNDS[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LayoutError(f"{path} must be a number; found {type(value).__name__} {_short(value)}")
    if not low <= value <= high:
        raise LayoutError(f"{path} must be between {low:g} and {high:g}; found {value}")
    return float(value)


def _rectification(key: str, value: object, path: str) -> RectificationState:
    _uuid(key, path)
    item = _map(value, path)
    _only_keys(item, RECTIFICATION_KEYS, path)
    return RectificationState(
        uuid=key,
        description=_optional_text(item, "description", path) or "",
        due=_date(_optional_text(item, "due", path), f"{path}/due"),
        done=_optional_bool(item, "done", path),
    )


def _conclusion(item: Map[Any], path: str) -> ConclusionState:
    _only_keys(item, CONCLUSION_KEYS, path)
    result = _optional_text(item, "result", path)
    return ConclusionState(
        result=_enum(Conclusion, result, f"{path}/result", CONCLUSION_LABELS),
        note=_optional_text(item, "note", path) or "",
        signed_by=_optional_text(item, "signed_by", path, max_len=MAX_NAME) or "",
        signed_at=_datetime(_optional_text(item, "signed_at", path), f"{path}/signed_at"),
    )


def _entry(key: str, value: object) -> AgencyEntryState:
    path = f"{AGENCY_ROOT}/{key}"
    _uuid(key, path)
    item = _map(value, path)
    _only_keys(item, ENTRY_KEYS, path)
    kind = _optional_text(item, "kind", path)
    if kind not in ENTRY_KINDS:
        allowed = ", ".join(f"{k} ({ENTRY_KIND_LABELS[k]})" for k in ENTRY_KINDS)
        raise LayoutError(f"{path}/kind is {kind!r}; it must be one of {allowed}")
    return AgencyEntryState(
        uuid=key,
        kind=kind,
        text=_optional_text(item, "text", path) or "",
        at=_datetime(_optional_text(item, "at", path), f"{path}/at"),
        due=_date(_optional_text(item, "due", path), f"{path}/due"),
        done=_optional_bool(item, "done", path),
    )


# --- value checks ------------------------------------------------------------------------------


def _keys(item: Map[Any]) -> list[str]:
    return sorted(item.keys())


def _map(value: object, path: str) -> Map[Any]:
    if not isinstance(value, Map):
        got = "nothing" if value is None else type(value).__name__
        raise LayoutError(f"{path} must be a map (Y.Map); found {got}")
    return value


def _only_keys(item: Map[Any], allowed: tuple[str, ...], path: str) -> None:
    unknown = sorted(set(item.keys()) - set(allowed))
    if unknown:
        raise LayoutError(
            f"{path} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed)}"
        )


def _optional_text(item: Map[Any], key: str, path: str, *, max_len: int = MAX_TEXT) -> str | None:
    return _text(item.get(key), f"{path}/{key}", max_len=max_len)


def _optional_bool(item: Map[Any], key: str, path: str) -> bool:
    value = item.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise LayoutError(
            f"{path}/{key} must be true or false; found {type(value).__name__} {_short(value)}"
        )
    return value


def _number(value: object, path: str, name: str) -> float:
    if not name.strip() or len(name) > MAX_NAME:
        raise LayoutError(f"{path}: a measurement needs a name of 1 to {MAX_NAME} characters")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LayoutError(f"{path} must be a number; found {type(value).__name__} {_short(value)}")
    if value != value or value in (float("inf"), float("-inf")):
        raise LayoutError(f"{path} must be a finite number; found {value}")
    return float(value)


def _photo(value: object, path: str) -> str:
    if not isinstance(value, str) or not PHOTO_ID.match(value):
        raise LayoutError(
            f"{path} must be a photo id (letters, digits, '-', '_', '.', ':', '/'); "
            f"found {_short(value)}"
        )
    return value


def _enum(enum: type[E], value: str | None, path: str, labels: Mapping[E, str]) -> E | None:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(f"{m.value} ({labels[m]})" for m in enum)
        raise LayoutError(f"{path} is {value!r}; it must be one of {allowed}") from None


def _datetime(value: str | None, path: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise LayoutError(
            f"{path} is {value!r}; it must be an ISO date and time, e.g. 2026-03-02T09:30:00+08:00"
        ) from None


def _date(value: str | None, path: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LayoutError(f"{path} is {value!r}; it must be an ISO date, e.g. 2026-03-20") from None


def _uuid(key: str, path: str) -> None:
    try:
        parsed = uuid.UUID(key)
    except ValueError:
        raise LayoutError(f"{path}: the key {key!r} must be a UUID made by the client") from None
    if str(parsed) != key:
        raise LayoutError(f"{path}: write the UUID in its canonical form {str(parsed)!r}")


def _short(value: object) -> str:
    text = repr(value if not isinstance(value, Map | Array) else value.to_py())
    return text if len(text) <= 60 else text[:57] + "..."


# --- validation --------------------------------------------------------------------------------

ChangeEvent = MapEvent | ArrayEvent | TextEvent
"""What an update changed, as pycrdt's deep events of a document's root map report it."""

DOCUMENT_ROOTS: dict[DocKind, str] = {"inspection": INSPECTION_ROOT, "agency": AGENCY_ROOT}
DOCUMENT_WRITERS: dict[DocKind, tuple[Role, str]] = {
    "inspection": (Role.INSPECTOR, "an assigned inspector"),
    "agency": (Role.AGENT, "the project's agent"),
}


def changes_between(before: Doc, after: Doc, root: str) -> list[ChangeEvent]:
    """The deep events of ``root`` when ``before`` becomes ``after`` (what the sync room
    collects while it applies an update; rebuilt here for callers that have two documents)."""
    copy: Doc[Any] = Doc()
    copy.apply_update(before.get_update())
    changes: list[ChangeEvent] = []
    observed = copy.get(root, type=Map)
    subscription = observed.observe_deep(lambda events: changes.extend(events))
    try:
        copy.apply_update(after.get_update(before.get_state()))
    finally:
        observed.unobserve(subscription)  # a subscription keeps its Doc alive
    return changes


@functools.lru_cache(maxsize=256)
def _layout_clock(state_vector: bytes) -> int:
    """The layout client's clock in a state vector (O(clients); the ``after`` of one update is
    the ``before`` of the next, so each state vector is read once)."""
    numbers = iter(_var_uints(state_vector))
    for _ in range(next(numbers)):
        client, clock = next(numbers), next(numbers)
        if client == LAYOUT_CLIENT_ID:
            return clock
    return 0


def _var_uints(data: bytes) -> Iterable[int]:
    value, shift = 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            yield value
            value, shift = 0, 0


def _writer(
    before: Doc,
    after: Doc,
    changes: Sequence[ChangeEvent],
    doc_kind: DocKind,
    *,
    writable: bool,
    role: str,
) -> bool:
    """Whether anything of the document changed; refuses a read-only writer, the wrong role, a
    write with the layout's client id and unknown top-level keys."""
    root = DOCUMENT_ROOTS[doc_kind]
    allowed_role, may_write = DOCUMENT_WRITERS[doc_kind]
    unknown = sorted(set(after.keys()) - {root})
    if unknown:
        raise LayoutError(
            f"unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            f"this document has only {root!r}"
        )
    if _layout_clock(after.get_state()) != _layout_clock(before.get_state()):
        raise LayoutError(
            f"client id {LAYOUT_CLIENT_ID} belongs to the server's layout; "
            "a device must write with its own random client id"
        )
    if not changes:
        return False
    if not writable:
        raise LayoutError(
            f"this {doc_kind} document is read-only for you (role {role}); your change was not kept"
        )
    if role != allowed_role.value:
        raise LayoutError(f"role {role} may not write {doc_kind} documents; only {may_write} may")
    return True


def _layout_touched(path: str) -> LayoutError:
    return LayoutError(
        f"{path}: the update adds, removes or replaces a container of the document's layout "
        "(a section, 'checks', a check, 'measured', 'photos', 'rectifications' or "
        "'conclusion'); containers are created once by the server and never removed: "
        "set values inside them instead"
    )


def _steps(change: ChangeEvent) -> list[str]:
    """The keys from the root map to what ``change`` changed (pycrdt sets ``path`` at run
    time)."""
    return [str(step) for step in getattr(change, "path")]  # noqa: B009


def _map_keys(change: ChangeEvent, path: str) -> dict[str, Any]:
    if not isinstance(change, MapEvent):
        raise LayoutError(f"{path} must be a map (Y.Map); the update changes it as a list or text")
    keys: dict[str, Any] = getattr(change, "keys")  # noqa: B009
    return keys


def _key_values(change: ChangeEvent, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The changed keys of a map event with their new values (None: deleted); refuses a key
    outside ``allowed``."""
    out: dict[str, Any] = {}
    for key, what in _map_keys(change, path).items():
        if key not in allowed:
            raise LayoutError(f"{path} has unknown key(s) {key!r}; allowed: {', '.join(allowed)}")
        out[key] = None if what.get("action") == "delete" else what.get("newValue")
    return out


def _text(value: object, path: str, *, max_len: int = MAX_TEXT) -> str | None:
    """A text value (None when absent), as :func:`_optional_text` reads it."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise LayoutError(f"{path} must be a string; found {type(value).__name__} {_short(value)}")
    if len(value) > max_len:
        raise LayoutError(f"{path} has {len(value)} characters; at most {max_len} are kept")
    return value


def _value(key: str, value: object, path: str, *, vocabulary: type[E] | None) -> None:
    """One changed scalar of a check (``vocabulary`` CheckOutcome) or of a conclusion
    (Conclusion), with its new value: the result, a note, who and when."""
    where = f"{path}/{key}"
    if key in ("measured", "photos"):
        raise _layout_touched(where)
    if key == "result" and vocabulary is not None:
        labels: Mapping[Any, str] = (
            CHECK_RESULT_LABELS if vocabulary is CheckOutcome else CONCLUSION_LABELS
        )
        _enum(vocabulary, _text(value, where), where, labels)
    elif key in ("by", "signed_by"):
        _text(value, where, max_len=MAX_NAME)
    elif key in ("at", "signed_at"):
        _datetime(_text(value, where), where)
    elif key in POSITION_BOUNDS:
        _bounded(value, where, key)
    else:
        _text(value, where)


def _inspection_change(change: ChangeEvent, before_root: Map[Any], department_code: str) -> None:
    """One deep event of ``departments``, judged by its path and what it carries alone:
    O(what it changed), the document is not read (but for a conclusion's signature)."""
    steps = _steps(change)
    path = "/".join([INSPECTION_ROOT, *steps])
    if not steps:
        for key, what in sorted(_map_keys(change, path).items()):
            if what.get("action") == "add":
                raise LayoutError(
                    f"{INSPECTION_ROOT}/{key}: no such department takes part in this "
                    "inspection; sections are created by the server"
                )
            raise _layout_touched(f"{INSPECTION_ROOT}/{key}")
    code, rest = steps[0], steps[1:]
    if code != department_code:
        raise LayoutError(
            f"{INSPECTION_ROOT}/{code} belongs to department {code}; an inspector of "
            f"{department_code} may write only {INSPECTION_ROOT}/{department_code}"
        )
    if not rest:
        keys = sorted(_map_keys(change, path))
        unknown = [k for k in keys if k not in SECTION_KEYS]
        if unknown:
            raise LayoutError(
                f"{path} has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(SECTION_KEYS)}"
            )
        raise _layout_touched(f"{path}/{keys[0]}")
    if rest == ["checks"]:
        actions = _map_keys(change, path)
        added = sorted(k for k, what in actions.items() if what.get("action") == "add")
        if added:
            raise LayoutError(
                f"{path}: unknown check(s) {added}; the checks come from the department's checklist"
            )
        raise _layout_touched(f"{path}/{sorted(actions)[0]}")
    if len(rest) == 2 and rest[0] == "checks":
        for key, value in sorted(_key_values(change, path, CHECK_KEYS).items()):
            _value(key, value, path, vocabulary=CheckOutcome)
        return
    if len(rest) == 3 and rest[0] == "checks" and rest[2] == "measured":
        for name, what in sorted(_map_keys(change, path).items()):
            if what.get("action") != "delete":
                _number(what.get("newValue"), f"{path}/{name}", name)
        return
    if len(rest) == 3 and rest[0] == "checks" and rest[2] == "photos":
        photos = getattr(change, "target")  # noqa: B009
        if not isinstance(change, ArrayEvent) or not isinstance(photos, Array):
            raise LayoutError(f"{path} must be the list created with the check")
        if len(photos) > MAX_PHOTOS:
            raise LayoutError(f"{path} holds {len(photos)}; at most {MAX_PHOTOS}")
        position = 0
        for step in getattr(change, "delta"):  # noqa: B009
            position += int(step.get("retain", 0))
            for value in step.get("insert", ()):
                _photo(value, f"{path}[{position}]")
                position += 1
        return
    if rest == ["rectifications"]:
        for key, what in sorted(_map_keys(change, path).items()):
            if what.get("action") != "delete":
                _rectification(key, what.get("newValue"), f"{path}/{key}")
            else:
                _uuid(key, f"{path}/{key}")
        return
    if len(rest) == 2 and rest[0] == "rectifications":
        _rectification(rest[1], getattr(change, "target"), path)  # noqa: B009
        return
    if rest == ["conclusion"]:
        old = _map(_map(before_root.get(code), path).get("conclusion"), path)
        signed = _enum(Conclusion, _optional_text(old, "result", path), path, CONCLUSION_LABELS)
        if signed is not None:
            raise LayoutError(
                f"{path} was signed by {_optional_text(old, 'signed_by', path) or 'someone'} "
                f"as {signed.value}; a signed conclusion cannot be changed"
            )
        for key, value in sorted(_key_values(change, path, CONCLUSION_KEYS).items()):
            _value(key, value, path, vocabulary=Conclusion)
        return
    raise LayoutError(f"{path}: nothing may be written there; see the document's layout")


def validate_inspection(
    before: Doc,
    after: Doc,
    *,
    department_code: str | None,
    role: str,
    writable: bool,
    changes: Sequence[ChangeEvent] | None = None,
) -> None:
    """Raise LayoutError unless ``after`` is an acceptable successor of ``before`` written by an
    inspector of ``department_code`` (only their own section changes).

    Judged by what changed (``changes``: the deep events of ``departments``, as the sync room
    collects them while it applies the update; worked out from the two documents when not
    given), so that the cost follows the update, not the document."""
    if changes is None:
        changes = changes_between(before, after, INSPECTION_ROOT)
    if not _writer(before, after, changes, "inspection", writable=writable, role=role):
        return
    if department_code is None:
        raise LayoutError(
            f"role {role} may not write inspection documents; only an assigned inspector may"
        )
    before_root = before.get(INSPECTION_ROOT, type=Map)
    if _all_signed(before_root, department_code):
        raise LayoutError(
            "every department of this round has signed its conclusion: the round is closed "
            "and its document takes no more changes; record what follows in the re-inspection "
            "round (复查)"
        )
    for change in changes:
        _inspection_change(change, before_root, department_code)


def _all_signed(root: Map[Any], department_code: str) -> bool:
    """Whether every section of the round carries a signed conclusion: the server then closes
    the round (as it writes the rows), and a connection opened while the round was open must
    not write into it either. The writer's own section first: the others are read only once
    it is signed."""
    if not _signed(root.get(department_code)):
        return False
    return all(_signed(section) for section in root.values())


def _signed(section: object) -> bool:
    conclusion = section.get("conclusion") if isinstance(section, Map) else None
    return isinstance(conclusion, Map) and conclusion.get("result") not in (None, "")


def added_photos(changes: Sequence[ChangeEvent]) -> dict[str, str]:
    """The photo ids ``changes`` add to checks' photo lists, with where (path)."""
    added: dict[str, str] = {}
    for change in changes:
        steps = _steps(change)
        if isinstance(change, ArrayEvent) and len(steps) == 4 and steps[3] == "photos":
            for step in getattr(change, "delta"):  # noqa: B009
                for value in step.get("insert", ()):
                    added.setdefault(str(value), "/".join([INSPECTION_ROOT, *steps]))
    return added


def validate_agency(
    before: Doc,
    after: Doc,
    *,
    role: str,
    writable: bool,
    changes: Sequence[ChangeEvent] | None = None,
) -> None:
    """Raise LayoutError unless ``after`` is an acceptable agency document written by its agent;
    judged by what changed, as :func:`validate_inspection`."""
    if changes is None:
        changes = changes_between(before, after, AGENCY_ROOT)
    if not _writer(before, after, changes, "agency", writable=writable, role=role):
        return
    entries = after.get(AGENCY_ROOT, type=Map)
    for change in changes:
        steps = _steps(change)
        path = "/".join([AGENCY_ROOT, *steps])
        if not steps:
            for key, what in sorted(_map_keys(change, path).items()):
                if what.get("action") == "delete":
                    _uuid(key, f"{path}/{key}")
                else:
                    _entry(key, entries.get(key))
        elif len(steps) == 1:
            _entry(steps[0], entries.get(steps[0]))
        else:
            raise LayoutError(f"{path}: nothing may be written there; an entry holds only values")


# --- changes -----------------------------------------------------------------------------------


def check_container(doc: Doc, department_code: str, check_code: str) -> Map[Any]:
    """The check's map, created by the layout; LayoutError if the layout has no such check."""
    root = doc.get(INSPECTION_ROOT, type=Map)
    section = root.get(department_code)
    if not isinstance(section, Map):
        raise LayoutError(f"{INSPECTION_ROOT}/{department_code}: no such section in this document")
    checks = _map(section.get("checks"), f"{INSPECTION_ROOT}/{department_code}/checks")
    check = checks.get(check_code)
    if not isinstance(check, Map):
        raise LayoutError(
            f"{INSPECTION_ROOT}/{department_code}/checks/{check_code}: no such check in the "
            "department's checklist"
        )
    return check


def conclusion_container(doc: Doc, department_code: str) -> Map[Any]:
    root = doc.get(INSPECTION_ROOT, type=Map)
    section = root.get(department_code)
    if not isinstance(section, Map):
        raise LayoutError(f"{INSPECTION_ROOT}/{department_code}: no such section in this document")
    return _map(section.get("conclusion"), f"{INSPECTION_ROOT}/{department_code}/conclusion")
