"""The web clients' layout rules are generated from approval.fieldwork.documents and current."""

from __future__ import annotations

import json

from approval.fieldwork.documents import CHECK_KEYS, CONCLUSION_KEYS, ENTRY_KEYS, RECTIFICATION_KEYS
from clients.layout_rules import EXAMPLES_PATH, FIELDS, RULES_PATH, exported, layout_rules


def test_committed_layout_rules_are_current() -> None:
    for path, text in exported().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is out of date with approval/fieldwork/documents.py: "
            "run `make layout-rules` and commit the result"
        )


def test_every_key_of_every_item_has_a_rule() -> None:
    # A key added to approval.fieldwork.documents without a type in clients/layout_rules.py
    # fails here.
    for item, keys in (
        ("check", CHECK_KEYS),
        ("rectification", RECTIFICATION_KEYS),
        ("conclusion", CONCLUSION_KEYS),
        ("entry", ENTRY_KEYS),
    ):
        assert set(FIELDS[item]) == set(keys), item


def test_examples_are_judged_by_the_real_reader_and_cover_both_answers() -> None:
    examples = json.loads(EXAMPLES_PATH.read_text(encoding="utf-8"))["examples"]
    by_rule: dict[tuple[str, str], set[bool]] = {}
    for example in examples:
        by_rule.setdefault((example["item"], str(example["key"])), set()).add(example["valid"])
    # Every typed field has examples on both sides of its rule (a rule that accepts or refuses
    # everything would show here).
    for item, fields in FIELDS.items():
        for key, spec in fields.items():
            if spec["type"] not in ("measurements", "photos"):
                assert by_rule[(item, key)] == {True, False}, (item, key)
    for item in ("measurement", "photos", "rectificationKey", "entryKey"):
        answers = {e["valid"] for e in examples if e["item"] == item}
        assert answers == {True, False}, item
    judged = {
        (e["item"], json.dumps(e["value"])): e["valid"] for e in examples if e["key"] == "note"
    }
    assert judged[("check", json.dumps({"$repeat": "x", "times": 4000}))] is True
    assert judged[("check", json.dumps({"$repeat": "x", "times": 4001}))] is False


def test_the_rules_name_the_vocabularies_with_their_labels() -> None:
    rules = layout_rules()
    assert {"value": "not_applicable", "label": "不适用"} in rules["vocabularies"]["checkResult"]
    assert [v["value"] for v in rules["vocabularies"]["entryKind"]] == ["visit", "call", "todo"]
    assert RULES_PATH.stat().st_size < 8000, "the app ships this file: keep examples out of it"
