"""Field document layouts: made once, validated per writer, merged offline without loss."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from approval.fieldwork.documents import (
    LAYOUT_CLIENT_ID,
    AgencyLayout,
    InspectionLayout,
    LayoutError,
    initial_update,
    parse_doc_name,
    read_agency,
    read_inspection,
    validate_agency,
    validate_inspection,
)
from storage.enums import CheckOutcome, Conclusion

LAYOUT = InspectionLayout(
    departments={
        "zjj": ["fire-lane", "alarm", "sprinkler"],
        "zrzy": ["height", "setback"],
    }
)
RECT_ID = "5b0c6f0e-9a53-4f5e-8d3e-0c2f1a9b7e41"


def server_doc() -> Doc:
    doc: Doc = Doc()
    doc.apply_update(initial_update(LAYOUT))
    return doc


def copy_of(doc: Doc) -> Doc:
    other: Doc = Doc()
    other.apply_update(doc.get_update())
    return other


def edited(before: Doc, change: Callable[[Doc], None]) -> Doc:
    after = copy_of(before)
    change(after)
    return after


def section(doc: Doc, code: str) -> Map[Any]:
    value = doc.get("departments", type=Map)[code]
    assert isinstance(value, Map)
    return value


def check(doc: Doc, department: str, code: str) -> Map[Any]:
    value = section(doc, department)["checks"][code]
    assert isinstance(value, Map)
    return value


def as_inspector(before: Doc, after: Doc, department: str = "zjj") -> None:
    validate_inspection(before, after, department_code=department, role="inspector", writable=True)


def sync(a: Doc, b: Doc) -> None:
    """Exchange what each side lacks, as y-websocket's sync step 2 does."""
    a_missing = b.get_update(a.get_state())
    b_missing = a.get_update(b.get_state())
    a.apply_update(a_missing)
    b.apply_update(b_missing)


def test_layout_is_made_once_the_same_way_with_every_container():
    assert initial_update(LAYOUT) == initial_update(LAYOUT)
    doc = server_doc()
    assert doc.get("departments", type=Map).to_py() == {
        "zjj": {
            "checks": {
                code: {"measured": {}, "photos": []} for code in ("alarm", "fire-lane", "sprinkler")
            },
            "rectifications": {},
            "conclusion": {},
        },
        "zrzy": {
            "checks": {code: {"measured": {}, "photos": []} for code in ("height", "setback")},
            "rectifications": {},
            "conclusion": {},
        },
    }
    sections = read_inspection(doc)
    assert sections["zjj"].checks["alarm"].result is None
    assert initial_update(AgencyLayout()) == initial_update(AgencyLayout())


def test_doc_names_are_parsed_strictly():
    assert parse_doc_name("inspection/12") == ("inspection", 12)
    assert parse_doc_name("agency/3") == ("agency", 3)
    for bad in ("inspection/", "inspection/012", "agency/x", "photos/1", "inspection/1/2"):
        with pytest.raises(LayoutError):
            parse_doc_name(bad)


def test_inspector_records_own_departments_checks_in_chinese():
    before = server_doc()

    def record(doc: Doc) -> None:
        lane = check(doc, "zjj", "fire-lane")
        with doc.transaction():
            lane["result"] = "pass"
            lane["note"] = "消防车道宽度满足要求，无占用"
            lane["measured"]["宽度"] = 4.5
            lane["measured"]["净高"] = 5
            lane["photos"].append("photo-3f9a")
            lane["by"] = "inspector"
            lane["at"] = "2026-03-04T10:15:00+08:00"
            section(doc, "zjj")["rectifications"][RECT_ID] = Map(
                {"description": "疏散指示标志缺失，需补设", "due": "2026-03-20", "done": False}
            )

    after = edited(before, record)
    as_inspector(before, after)
    state = read_inspection(after)["zjj"]
    lane_state = state.checks["fire-lane"]
    assert lane_state.result is CheckOutcome.PASS
    assert lane_state.note == "消防车道宽度满足要求，无占用"
    assert lane_state.measured == {"宽度": 4.5, "净高": 5.0}  # ints come back as floats
    assert lane_state.photos == ("photo-3f9a",)
    assert state.rectifications[RECT_ID].description == "疏散指示标志缺失，需补设"
    assert str(state.rectifications[RECT_ID].due) == "2026-03-20"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda d: check(d, "zrzy", "height").__setitem__("result", "pass"),
            "departments/zrzy belongs to department zrzy",
        ),
        (
            lambda d: check(d, "zjj", "alarm").__setitem__("result", "合格"),
            "departments/zjj/checks/alarm/result is '合格'; it must be one of pass (合格)",
        ),
        (
            lambda d: check(d, "zjj", "alarm").__setitem__("note", 3),
            "departments/zjj/checks/alarm/note must be a string; found float 3.0",
        ),
        (
            lambda d: check(d, "zjj", "alarm")["measured"].__setitem__("压力", "高"),
            "departments/zjj/checks/alarm/measured/压力 must be a number; found str '高'",
        ),
        (
            lambda d: check(d, "zjj", "alarm")["measured"].__setitem__("flag", True),
            "must be a number; found bool True",
        ),
        (
            lambda d: check(d, "zjj", "alarm").__setitem__("at", "昨天下午"),
            "departments/zjj/checks/alarm/at is '昨天下午'; it must be an ISO date and time",
        ),
        (
            lambda d: check(d, "zjj", "alarm").__setitem__("colour", "红"),
            "departments/zjj/checks/alarm has unknown key(s) 'colour'",
        ),
        (
            lambda d: check(d, "zjj", "alarm").__setitem__("note", Text("富文本")),
            "note must be a string; found Text",
        ),
        (
            lambda d: check(d, "zjj", "alarm")["photos"].append(7),
            "departments/zjj/checks/alarm/photos[0] must be a photo id",
        ),
        (
            lambda d: section(d, "zjj")["checks"].__setitem__("new-check", Map()),
            "unknown check(s) ['new-check']",
        ),
        (
            lambda d: section(d, "zjj")["rectifications"].__setitem__("r1", Map()),
            "the key 'r1' must be a UUID made by the client",
        ),
        (
            lambda d: section(d, "zjj")["rectifications"].__setitem__(RECT_ID, Map({"done": "是"})),
            f"departments/zjj/rectifications/{RECT_ID}/done must be true or false",
        ),
        (
            lambda d: section(d, "zjj")["conclusion"].__setitem__("result", "rectify"),
            "departments/zjj/conclusion/result is 'rectify'; it must be one of pass (合格), fail",
        ),
        (
            lambda d: d.get("departments", type=Map).__setitem__("rfb", Map()),
            "departments/rfb: no such department takes part in this inspection",
        ),
        (
            lambda d: d.get("notes", type=Map).__setitem__("x", "备注"),
            "unknown top-level key(s) 'notes'",
        ),
        (
            lambda d: section(d, "zjj").pop("conclusion"),
            "removes or replaces a container of the document's layout",
        ),
        (
            lambda d: section(d, "zjj")["checks"].pop("alarm"),
            "removes or replaces a container",
        ),
        (
            lambda d: check(d, "zjj", "alarm").__setitem__("photos", Array(["photo-1"])),
            "removes or replaces a container",
        ),
        (
            lambda d: d.get("departments", type=Map).pop("zrzy"),
            "removes or replaces a container",
        ),
    ],
)
def test_refusals_name_the_path_and_the_bad_value(change, reason):
    before = server_doc()
    after = edited(before, change)
    with pytest.raises(LayoutError) as refused:
        as_inspector(before, after)
    assert reason in refused.value.reason


def test_read_only_roles_and_unassigned_departments_may_not_write():
    before = server_doc()
    after = edited(before, lambda d: check(d, "zjj", "alarm").__setitem__("note", "正常"))
    with pytest.raises(LayoutError, match="read-only for you"):
        validate_inspection(before, after, department_code=None, role="supervisor", writable=False)
    with pytest.raises(LayoutError, match="only an assigned inspector may"):
        validate_inspection(before, after, department_code=None, role="agent", writable=True)
    with pytest.raises(LayoutError, match="belongs to department zjj"):
        as_inspector(before, after, department="zrzy")
    # A read-only client that sends nothing new is not refused (sync step 2 with no news).
    validate_inspection(
        before, copy_of(before), department_code=None, role="supervisor", writable=False
    )


def test_the_layout_client_id_is_the_servers_alone():
    before = server_doc()
    forged: Doc = Doc(client_id=LAYOUT_CLIENT_ID)
    forged.apply_update(before.get_update())
    check(forged, "zjj", "alarm")["note"] = "伪造"
    with pytest.raises(LayoutError, match="belongs to the server's layout"):
        as_inspector(before, forged)


def test_a_signed_conclusion_is_final():
    before = server_doc()

    def sign(doc: Doc) -> None:
        conclusion = section(doc, "zjj")["conclusion"]
        conclusion["result"] = "pass"
        conclusion["signed_by"] = "inspector"

    signed = edited(before, sign)
    as_inspector(before, signed)
    changed = edited(
        signed, lambda d: section(d, "zjj")["conclusion"].__setitem__("result", "fail")
    )
    with pytest.raises(LayoutError, match="a signed conclusion cannot be changed"):
        as_inspector(signed, changed)
    assert read_inspection(signed)["zjj"].conclusion.result is Conclusion.PASS


def test_once_every_department_signed_the_round_takes_no_more_changes():
    """The last signature closes the round: a tablet still connected from before (its rights
    those of an open round) cannot write into it, in any section; until then the others can."""

    def sign(code: str, result: str) -> Callable[[Doc], None]:
        def signing(doc: Doc) -> None:
            conclusion = section(doc, code)["conclusion"]
            conclusion["result"] = result
            conclusion["signed_by"] = f"{code}-inspector"

        return signing

    first = edited(server_doc(), sign("zjj", "pass"))
    note = edited(first, lambda d: check(d, "zrzy", "height").__setitem__("note", "复核"))
    as_inspector(first, note, "zrzy")  # one section still open: the round is open
    both = edited(note, sign("zrzy", "fail"))
    as_inspector(note, both, "zrzy")
    late = [
        ("zrzy", lambda d: check(d, "zrzy", "height").__setitem__("note", "签字后补记")),
        ("zjj", lambda d: check(d, "zjj", "alarm").__setitem__("result", "pass")),
        (
            "zrzy",
            lambda d: section(d, "zrzy")["rectifications"].__setitem__(
                RECT_ID, Map({"description": "关闭后整改"})
            ),
        ),
    ]
    for department, change in late:
        with pytest.raises(LayoutError, match="the round is closed"):
            as_inspector(both, edited(both, change), department)


def test_two_offline_tablets_merge_without_loss():
    server = server_doc()
    tablet_a, tablet_b = copy_of(server), copy_of(server)
    # Offline: different checks, and different fields of the same check.
    with tablet_a.transaction():
        lane = check(tablet_a, "zjj", "fire-lane")
        lane["result"] = "rectify"
        lane["measured"]["宽度"] = 3.2
        lane["photos"].append("photo-a1")
        section(tablet_a, "zjj")["rectifications"][RECT_ID] = Map(
            {"description": "消防车道被临时建筑占用，需拆除", "due": "2026-03-20"}
        )
    with tablet_b.transaction():
        check(tablet_b, "zjj", "alarm")["result"] = "pass"
        lane = check(tablet_b, "zjj", "fire-lane")
        lane["note"] = "东侧车道宽度不足"
        lane["measured"]["净高"] = 4.8
        lane["photos"].append("photo-b1")
        other = str(uuid.uuid4())
        section(tablet_b, "zjj")["rectifications"][other] = Map({"description": "补设疏散指示"})
    # Back online: each tablet's update is validated against the server's doc and merged.
    for tablet in (tablet_a, tablet_b):
        incoming = tablet.get_update(server.get_state())
        after = copy_of(server)
        after.apply_update(incoming)
        as_inspector(server, after)
        server.apply_update(incoming)
    sync(tablet_a, server)
    sync(tablet_b, server)
    for doc in (server, tablet_a, tablet_b):
        state = read_inspection(doc)["zjj"]
        lane_state = state.checks["fire-lane"]
        assert lane_state.result is CheckOutcome.RECTIFY
        assert lane_state.note == "东侧车道宽度不足"
        assert lane_state.measured == {"宽度": 3.2, "净高": 4.8}
        assert sorted(lane_state.photos) == ["photo-a1", "photo-b1"]
        assert state.checks["alarm"].result is CheckOutcome.PASS
        assert set(state.rectifications) == {RECT_ID, other}
    assert server.get_update() and tablet_a.get("departments", type=Map).to_py() == (
        tablet_b.get("departments", type=Map).to_py()
    )


def test_the_same_field_written_offline_on_both_sides_converges():
    server = server_doc()
    tablet_a, tablet_b = copy_of(server), copy_of(server)
    check(tablet_a, "zjj", "alarm")["result"] = "pass"
    check(tablet_b, "zjj", "alarm")["result"] = "fail"
    sync(tablet_a, tablet_b)
    result_a = read_inspection(tablet_a)["zjj"].checks["alarm"].result
    assert result_a is read_inspection(tablet_b)["zjj"].checks["alarm"].result
    assert result_a in (CheckOutcome.PASS, CheckOutcome.FAIL)
    # Both tablets still share the server's one map for the check: nothing was duplicated.
    assert set(section(tablet_a, "zjj")["checks"].keys()) == {"alarm", "fire-lane", "sprinkler"}


def agency_doc() -> Doc:
    doc: Doc = Doc()
    doc.apply_update(initial_update(AgencyLayout()))
    return doc


def test_agency_entries_keyed_by_uuid_and_only_the_agent_writes():
    before = agency_doc()
    key = str(uuid.uuid4())

    def visit(doc: Doc) -> None:
        doc.get("entries", type=Map)[key] = Map(
            {
                "kind": "visit",
                "text": "走访建设单位，催办竣工测绘报告",
                "at": "2026-03-05T14:00:00+08:00",
                "due": "2026-03-10",
                "done": False,
            }
        )

    after = edited(before, visit)
    validate_agency(before, after, role="agent", writable=True)
    [entry] = read_agency(after).values()
    assert entry.kind == "visit" and entry.text == "走访建设单位，催办竣工测绘报告"
    with pytest.raises(LayoutError, match="read-only for you"):
        validate_agency(before, after, role="supervisor", writable=False)
    with pytest.raises(LayoutError, match="only the project's agent may"):
        validate_agency(before, after, role="inspector", writable=True)
    bad_kind = edited(
        before, lambda d: d.get("entries", type=Map).__setitem__(key, Map({"kind": "会议"}))
    )
    with pytest.raises(
        LayoutError, match=r"entries/.*/kind is '会议'; it must be one of visit \(走访\)"
    ):
        validate_agency(before, bad_kind, role="agent", writable=True)
    bad_key = edited(before, lambda d: d.get("entries", type=Map).__setitem__("第一条", Map()))
    with pytest.raises(LayoutError, match="must be a UUID"):
        validate_agency(before, bad_key, role="agent", writable=True)
    removed = edited(after, lambda d: d.get("entries", type=Map).pop(key))
    validate_agency(after, removed, role="agent", writable=True)
    assert read_agency(removed) == {}


def test_validation_reads_only_what_the_update_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Judged by the deep events the room collects: a note on one check of a document with 8
    departments x 30 checks and 2,000 measurements reads no snapshot, converts no section and
    looks at no other check (it used to re-read whole sections and both delete sets)."""
    codes = [f"d{number}" for number in range(8)]
    layout = InspectionLayout(departments={c: [f"c{i:02d}" for i in range(30)] for c in codes})
    before: Doc = Doc()
    before.apply_update(initial_update(layout))
    writer: Doc = Doc()
    writer.apply_update(before.get_update())
    measured = writer.get("departments", type=Map)["d0"]["checks"]["c00"]["measured"]
    with writer.transaction():
        for index in range(2000):
            measured[f"m{index}"] = float(index)
    before.apply_update(writer.get_update(before.get_state()))
    made: list[bytes] = []
    subscription = writer.observe(lambda event: made.append(event.update))
    writer.get("departments", type=Map)["d0"]["checks"]["c07"]["note"] = "墙面裂缝已标记"
    writer.unobserve(subscription)
    after = copy_of(before)
    changes: list[Any] = []
    root = after.get("departments", type=Map)
    watch = root.observe_deep(changes.extend)
    after.apply_update(made[0])
    root.unobserve(watch)

    reads: list[str] = []
    for name in ("to_py", "keys", "items", "values"):
        original = getattr(Map, name)

        def counted(
            self: Map[Any], *args: Any, _name: str = name, _original: Any = original
        ) -> Any:
            reads.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(Map, name, counted)
    validate_inspection(
        before, after, department_code="d0", role="inspector", writable=True, changes=changes
    )
    assert reads == [], reads
    with pytest.raises(LayoutError, match="belongs to department d0"):
        validate_inspection(
            before, after, department_code="d1", role="inspector", writable=True, changes=changes
        )


def test_a_check_keeps_where_the_tablet_was_within_bounds():
    before = server_doc()

    def located(**values: object) -> Callable[[Doc], None]:
        return lambda d: [check(d, "zjj", "alarm").__setitem__(k, v) for k, v in values.items()]

    after = edited(before, located(result="pass", lat=37.4341, lng=116.3575, accuracy=12))
    as_inspector(before, after)
    position = read_inspection(after)["zjj"].checks["alarm"].position
    assert position is not None
    assert (position.latitude, position.longitude, position.accuracy) == (37.4341, 116.3575, 12.0)
    # a lone coordinate is valid but is no position
    lone = edited(before, located(lat=37.4))
    as_inspector(before, lone)
    assert read_inspection(lone)["zjj"].checks["alarm"].position is None
    for bad, reason in [
        ({"lat": 91}, "alarm/lat must be between -90 and 90; found 91"),
        ({"lng": -180.5}, "alarm/lng must be between -180 and 180"),
        ({"accuracy": -1}, "alarm/accuracy must be between 0 and 100000"),
        ({"lat": float("nan")}, "alarm/lat must be between"),
        ({"lng": "116.3"}, "alarm/lng must be a number; found str"),
        ({"accuracy": True}, "alarm/accuracy must be a number; found bool"),
    ]:
        with pytest.raises(LayoutError) as refused:
            as_inspector(before, edited(before, located(**bad)))
        assert reason in refused.value.reason, (bad, refused.value.reason)

    # another department's check is never this inspector's to locate
    def located_elsewhere(d: Doc) -> None:
        check(d, "zrzy", "height")["lat"] = 1

    with pytest.raises(LayoutError, match="belongs to department zrzy"):
        as_inspector(
            before, edited(before, lambda d: check(d, "zrzy", "height").__setitem__("lat", 1))
        )
