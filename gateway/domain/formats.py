"""The protocol's own string formats, checked identically by both validators.

The standard formats (`date-time`, `email`, ...) are checked differently by
different validators and optionally by some; the protocol therefore names its
own and defines them here, once (PROTOCOL.md via the partner document).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from datetime import date, datetime

BSN_UNKNOWN = "000000000"
BSN_UNBORN = "999999999"
_BSN_SENTINELS = frozenset({BSN_UNKNOWN, BSN_UNBORN})
_UTC_MILLIS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_KALENDERDATUM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

FormatChecker = Callable[[str], bool]


def passes_eleven_test(digits: str) -> bool:
    """The BSN 11-test: 9 digits, sum(d_i * (9 - i)) for i < 8, minus d_8, divisible by 11."""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return False
    weighted = sum(int(d) * (9 - i) for i, d in enumerate(digits[:8])) - int(digits[8])
    return weighted % 11 == 0 and digits != BSN_UNKNOWN


def is_bsn(text: str) -> bool:
    """A BSN as the protocol carries it: passing the 11-test, or one of the two sentinels."""
    return text in _BSN_SENTINELS or passes_eleven_test(text)


def is_utc_millis(text: str) -> bool:
    """`2026-11-28T13:52:35.123Z`: a real UTC moment with milliseconds."""
    if _UTC_MILLIS.fullmatch(text) is None:
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def is_kalenderdatum(text: str) -> bool:
    """`2026-11-28`: a real calendar date."""
    if _KALENDERDATUM.fullmatch(text) is None:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def gemeentecode_checker(codes: Collection[str]) -> FormatChecker:
    """The `gemeentecode` format: one of the region's municipality codes (from config)."""
    known = frozenset(codes)
    return known.__contains__


def protocol_formats(gemeentecodes: Collection[str]) -> dict[str, FormatChecker]:
    """All custom formats of the protocol's schemas, by name."""
    return {
        "bsn": is_bsn,
        "gemeentecode": gemeentecode_checker(gemeentecodes),
        "utc-millis": is_utc_millis,
        "kalenderdatum": is_kalenderdatum,
    }
