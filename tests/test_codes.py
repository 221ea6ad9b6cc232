import pytest

from approval.core.codes import (
    PROJECT_TYPE_CODES,
    PROJECT_TYPE_LABELS,
    InvalidCodeError,
    ProjectCode,
    credit_code_with_check,
    format_project_code,
    parse_project_code,
    validate_credit_code,
    validate_industry_code,
    validate_region_code,
)

# Published codes, verified against the GB 32100-2015 check character.
REAL_CREDIT_CODES = ["91110000802100433B", "91440300708461136T"]


def invalid(call: object, *args: object, **kwargs: object) -> InvalidCodeError:
    assert callable(call)
    with pytest.raises(InvalidCodeError) as info:
        call(*args, **kwargs)
    return info.value


# --- credit codes ----------------------------------------------------------------------


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_real_credit_codes(code: str) -> None:
    assert validate_credit_code(code) == code
    assert credit_code_with_check(code[:17]) == code


def test_generated_credit_codes() -> None:
    assert credit_code_with_check("91371400MA3C12345") == "91371400MA3C123455"
    for first17 in ["91371400MA3C12345", "12371400004823711", "52371400MJD7654Y1"]:
        code = credit_code_with_check(first17)
        assert len(code) == 18
        assert validate_credit_code(code) == code


def test_check_value_31_maps_to_zero() -> None:
    # All zeros: sum 0, 31 - 0 = 31 -> "0".
    assert credit_code_with_check("00000000000000000") == "000000000000000000"


def test_credit_code_normalised() -> None:
    assert validate_credit_code("  91110000802100433b \n") == "91110000802100433B"


def test_credit_code_wrong_check_character() -> None:
    error = invalid(validate_credit_code, "91110000802100433C")
    assert error.field == "creditCode"
    assert "'B'" in str(error)
    assert "'C'" in str(error)


@pytest.mark.parametrize("code", ["", "91110000802100433", "91110000802100433BB"])
def test_credit_code_length(code: str) -> None:
    error = invalid(validate_credit_code, code)
    assert error.field == "creditCode"
    assert "18 characters" in str(error)
    assert f"got {len(code)}" in str(error)


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_credit_code_illegal_letters(letter: str) -> None:
    code = "9111000080210" + letter + "433B"
    error = invalid(validate_credit_code, code)
    assert error.field == "creditCode"
    assert f"illegal character '{letter}' at position 14" in str(error)


def test_credit_code_region_must_be_digits() -> None:
    error = invalid(validate_credit_code, "911100A0802100433B")
    assert "positions 3-8" in str(error)
    assert "'1100A0'" in str(error)
    invalid(credit_code_with_check, "911100A0802100433")
    invalid(credit_code_with_check, "9111000080210043")


# --- region and industry ---------------------------------------------------------------


def test_region_code() -> None:
    assert validate_region_code("371400") == "371400"
    assert validate_region_code(" 110101 ") == "110101"
    for bad in ["37140", "3714000", "37140A", "001400", "991400", "３７１４００"]:
        error = invalid(validate_region_code, bad)
        assert error.field == "regionCode"
        assert "e.g. 371400" in str(error)


def test_industry_code() -> None:
    assert validate_industry_code("01") == "01"
    assert validate_industry_code("99") == "99"
    for bad in ["00", "1", "100", "4a", ""]:
        error = invalid(validate_industry_code, bad)
        assert error.field == "industryCode"
        assert "01 to 99" in str(error)


# --- project codes ---------------------------------------------------------------------


def test_project_type_tables() -> None:
    assert PROJECT_TYPE_CODES == {"APPROVAL": "01", "VERIFICATION": "02", "FILING": "03"}
    assert PROJECT_TYPE_LABELS == {"APPROVAL": "审批", "VERIFICATION": "核准", "FILING": "备案"}


def test_project_code_round_trip() -> None:
    text = format_project_code(
        year=2026, region_code="371400", industry_code="47", type_code="01", serial=123
    )
    assert text == "2026-371400-47-01-000123"
    parsed = parse_project_code(text)
    assert parsed == ProjectCode(
        year=2026, region_code="371400", industry_code="47", type_code="01", serial=123
    )
    assert str(parsed) == text
    assert parse_project_code(" 2025-110101-01-03-999999 ").serial == 999999


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"year": 999}, "year"),
        ({"year": 10000}, "year"),
        ({"region_code": "37140"}, "regionCode"),
        ({"industry_code": "00"}, "industryCode"),
        ({"type_code": "04"}, "typeCode"),
        ({"type_code": "APPROVAL"}, "typeCode"),
        ({"serial": 0}, "serial"),
        ({"serial": 1_000_000}, "serial"),
    ],
)
def test_format_project_code_refusals(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {
        "year": 2026,
        "region_code": "371400",
        "industry_code": "47",
        "type_code": "01",
        "serial": 1,
    }
    error = invalid(format_project_code, **(args | kwargs))
    assert error.field == field


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("", "YYYY-RRRRRR-II-TT-NNNNNN"),
        ("2026-371400-47-01-123", "YYYY-RRRRRR-II-TT-NNNNNN"),
        ("2026/371400/47/01/000123", "YYYY-RRRRRR-II-TT-NNNNNN"),
        ("26-371400-47-01-000123", "YYYY-RRRRRR-II-TT-NNNNNN"),
        ("2026-371400-47-1-000123", "YYYY-RRRRRR-II-TT-NNNNNN"),
        ("2026-371400-47-01-000123-1", "YYYY-RRRRRR-II-TT-NNNNNN"),
        ("２０２６-371400-47-01-000123", "YYYY-RRRRRR-II-TT-NNNNNN"),
        ("0999-371400-47-01-000123", "four digits"),
        ("2026-991400-47-01-000123", "province"),
        ("2026-371400-00-01-000123", "01 to 99"),
        ("2026-371400-47-05-000123", "01 (审批)"),
        ("2026-371400-47-01-000000", "between 1 and 999999"),
    ],
)
def test_parse_project_code_refusals(code: str, reason: str) -> None:
    error = invalid(parse_project_code, code)
    assert error.field == "code"
    assert reason in str(error)
