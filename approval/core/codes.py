"""Identifiers: unified social credit codes and investment project codes.

* Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters; 1 registration
  authority, 2 organisation type, 3-8 administrative division (digits), 9-17 organisation code,
  18 check character.
* Project code (投资项目代码): ``YYYY-RRRRRR-II-TT-NNNNNN``: year, region (GB/T 2260), industry
  division (国民经济行业分类 two digits), project type, serial.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_FORM = "18 characters from digits and capital letters except I, O, Z, S and V"

PROJECT_TYPE_CODES: dict[str, str] = {"APPROVAL": "01", "VERIFICATION": "02", "FILING": "03"}
PROJECT_TYPE_LABELS: dict[str, str] = {"APPROVAL": "审批", "VERIFICATION": "核准", "FILING": "备案"}

# First two digits of GB/T 2260 codes: provinces, autonomous regions, municipalities, SARs.
# fmt: off
_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
})
# fmt: on
_PROJECT_FORM = "YYYY-RRRRRR-II-TT-NNNNNN, e.g. 2026-371400-47-01-000123"
_PROJECT_CODE = re.compile(r"(\d{4})-(\d{6})-(\d{2})-(\d{2})-(\d{6})", re.ASCII)


class InvalidCodeError(ValueError):
    """A code is malformed; ``field`` names the input field (as the API spells it)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def _credit_check(first17: str) -> str:
    total = sum(
        w * CREDIT_CHARSET.index(ch) for w, ch in zip(_CREDIT_WEIGHTS, first17, strict=True)
    )
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def _check_credit_body(code: str) -> None:
    for position, ch in enumerate(code, start=1):
        if ch not in CREDIT_CHARSET:
            raise InvalidCodeError(
                f"Credit code has an illegal character {ch!r} at position {position}; "
                f"expected {_CREDIT_FORM}.",
                field="creditCode",
            )
    if not code[2:8].isdigit():
        raise InvalidCodeError(
            f"Credit code positions 3-8 must be the six-digit administrative division code, "
            f"got {code[2:8]!r}.",
            field="creditCode",
        )


def validate_credit_code(code: str) -> str:
    """Normalise (strip, uppercase) and validate a unified social credit code."""
    code = code.strip().upper()
    if len(code) != 18:
        raise InvalidCodeError(
            f"Credit code must have 18 characters, got {len(code)}; expected {_CREDIT_FORM}.",
            field="creditCode",
        )
    _check_credit_body(code)
    expected = _credit_check(code[:17])
    if code[17] != expected:
        raise InvalidCodeError(
            f"Credit code check character is {code[17]!r} but should be {expected!r}; "
            "re-check the code against the business licence.",
            field="creditCode",
        )
    return code


def credit_code_with_check(first17: str) -> str:
    """The full 18-character credit code for its first 17 characters."""
    first17 = first17.strip().upper()
    if len(first17) != 17:
        raise InvalidCodeError(
            f"Expected the first 17 characters of a credit code, got {len(first17)}.",
            field="creditCode",
        )
    _check_credit_body(first17)
    return first17 + _credit_check(first17)


def validate_region_code(code: str) -> str:
    """A six-digit GB/T 2260 administrative division code, e.g. 371400."""
    code = code.strip()
    if len(code) != 6 or not code.isdigit() or not code.isascii():
        raise InvalidCodeError(
            f"Region code {code!r} must be six digits (GB/T 2260), e.g. 371400.",
            field="regionCode",
        )
    if code[:2] not in _PROVINCES:
        raise InvalidCodeError(
            f"Region code {code!r} does not start with a province code (GB/T 2260, 11-82); "
            "check the division code, e.g. 371400.",
            field="regionCode",
        )
    return code


def validate_industry_code(code: str) -> str:
    """A two-digit industry division code (国民经济行业分类), 01..99."""
    code = code.strip()
    if len(code) != 2 or not code.isdigit() or not code.isascii() or code == "00":
        raise InvalidCodeError(
            f"Industry code {code!r} must be a two-digit division code from 01 to 99, e.g. 47.",
            field="industryCode",
        )
    return code


def _validate_type_code(code: str) -> str:
    if code not in PROJECT_TYPE_CODES.values():
        raise InvalidCodeError(
            f"Project type code {code!r} must be 01 (审批), 02 (核准) or 03 (备案).",
            field="typeCode",
        )
    return code


def _validate_year(year: int) -> int:
    if not 1000 <= year <= 9999:
        raise InvalidCodeError(f"Year {year} must have four digits, e.g. 2026.", field="year")
    return year


def _validate_serial(serial: int) -> int:
    if not 1 <= serial <= 999999:
        raise InvalidCodeError(f"Serial {serial} must be between 1 and 999999.", field="serial")
    return serial


@dataclass(frozen=True)
class ProjectCode:
    year: int
    region_code: str
    industry_code: str
    type_code: str
    serial: int

    def __str__(self) -> str:
        return (
            f"{self.year:04d}-{self.region_code}-{self.industry_code}-{self.type_code}-"
            f"{self.serial:06d}"
        )


def _project_code(
    *, year: int, region_code: str, industry_code: str, type_code: str, serial: int
) -> ProjectCode:
    return ProjectCode(
        year=_validate_year(year),
        region_code=validate_region_code(region_code),
        industry_code=validate_industry_code(industry_code),
        type_code=_validate_type_code(type_code),
        serial=_validate_serial(serial),
    )


def format_project_code(
    *, year: int, region_code: str, industry_code: str, type_code: str, serial: int
) -> str:
    """``YYYY-RRRRRR-II-TT-NNNNNN``, e.g. 2026-371400-47-01-000123."""
    return str(
        _project_code(
            year=year,
            region_code=region_code,
            industry_code=industry_code,
            type_code=type_code,
            serial=serial,
        )
    )


def parse_project_code(code: str) -> ProjectCode:
    """Parse and validate a project code; raises InvalidCodeError(field="code")."""
    match = _PROJECT_CODE.fullmatch(code.strip())
    if match is None:
        raise InvalidCodeError(
            f"Project code {code!r} is malformed; expected {_PROJECT_FORM}.", field="code"
        )
    year, region, industry, type_code, serial = match.groups()
    try:
        return _project_code(
            year=int(year),
            region_code=region,
            industry_code=industry,
            type_code=type_code,
            serial=int(serial),
        )
    except InvalidCodeError as error:
        raise InvalidCodeError(f"Project code {code!r}: {error}", field="code") from error
