"""The protocol's own string formats: bsn, utc-millis, kalenderdatum, gemeentecode."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.contract_files import load_region
from gateway.domain.formats import (
    BSN_UNBORN,
    BSN_UNKNOWN,
    gemeentecode_checker,
    is_bsn,
    is_kalenderdatum,
    is_utc_millis,
    passes_eleven_test,
    protocol_formats,
)
from gateway.resources import data_dir

ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def with_check_digit(first_eight: str) -> str | None:
    """The nine-digit number the 11-test accepts for these eight digits, if there is one."""
    weighted = sum(int(d) * (9 - i) for i, d in enumerate(first_eight))
    check = weighted % 11
    return None if check == 10 else first_eight + str(check)


VALID_BSNS = (
    st.text(alphabet="0123456789", min_size=8, max_size=8)
    .map(with_check_digit)
    .filter(lambda bsn: bsn is not None and bsn != BSN_UNKNOWN)
    .map(str)
)


# --- bsn -------------------------------------------------------------------------------


@pytest.mark.parametrize("bsn", ["111222333", "111111110", "123123124", "123456782"])
def test_known_synthetic_numbers_pass_the_eleven_test(bsn: str) -> None:
    """Synthetic numbers whose weighted sum is a multiple of 11 pass and are BSNs."""
    assert passes_eleven_test(bsn)
    assert is_bsn(bsn)


@given(VALID_BSNS)
def test_every_number_built_with_its_check_digit_passes(bsn: str) -> None:
    """A number whose ninth digit is computed by the 11-test rule is a BSN."""
    assert passes_eleven_test(bsn)
    assert is_bsn(bsn)


@given(VALID_BSNS, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9))
def test_changing_one_digit_of_a_bsn_fails_the_eleven_test(
    bsn: str, position: int, step: int
) -> None:
    """Any single changed digit breaks the 11-test (11 is prime, weights are 2..9 and -1)."""
    digit = (int(bsn[position]) + step) % 10
    altered = bsn[:position] + str(digit) + bsn[position + 1 :]
    assert altered != BSN_UNKNOWN
    assert not passes_eleven_test(altered)
    assert not is_bsn(altered)


@pytest.mark.parametrize("bsn", ["123456789", "111222334", "999999998", "100000000"])
def test_numbers_failing_the_eleven_test_are_not_bsns(bsn: str) -> None:
    """Nine digits whose weighted sum is not a multiple of 11 are refused."""
    assert not passes_eleven_test(bsn)
    assert not is_bsn(bsn)


def test_the_unknown_sentinel_is_a_bsn_but_does_not_pass_the_eleven_test() -> None:
    """000000000 (unknown) is accepted as a BSN only as the sentinel, not by arithmetic."""
    assert BSN_UNKNOWN == "000000000"
    assert is_bsn(BSN_UNKNOWN)
    assert not passes_eleven_test(BSN_UNKNOWN)


def test_the_unborn_sentinel_is_a_bsn_though_it_fails_the_eleven_test() -> None:
    """999999999 (unborn child) is accepted as a BSN, as the sentinel."""
    assert BSN_UNBORN == "999999999"
    assert not passes_eleven_test(BSN_UNBORN)
    assert is_bsn(BSN_UNBORN)


@pytest.mark.parametrize(
    "text",
    ["11122233a", "11122233 ", " 11122233", "+11122233", "1112-2333", "11.22.333", "abcdefghi"],
)
def test_nine_characters_that_are_not_all_digits_are_not_bsns(text: str) -> None:
    """Letters, signs, spaces or separators anywhere make it no BSN."""
    assert len(text) == 9
    assert not passes_eleven_test(text)
    assert not is_bsn(text)


@pytest.mark.parametrize("text", ["", "11122233", "1112223330", "0111222333", "111222333\n"])
def test_a_number_of_the_wrong_length_is_not_a_bsn(text: str) -> None:
    """Only exactly nine digits can be a BSN."""
    assert not passes_eleven_test(text)
    assert not is_bsn(text)


@given(VALID_BSNS)
def test_a_valid_bsn_in_arabic_indic_digits_is_refused(bsn: str) -> None:
    """Arabic-Indic digits are digits to Python's int(), but a BSN is ASCII digits only."""
    assert not is_bsn(bsn.translate(ARABIC_INDIC))
    assert not passes_eleven_test(bsn.translate(ARABIC_INDIC))


def test_non_ascii_digits_are_refused_in_several_scripts() -> None:
    """Arabic-Indic, full-width and mixed non-ASCII digits of a valid BSN are refused."""
    bsn = "111222333"
    for text in (
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0662",  # 123456782
        bsn.translate(ARABIC_INDIC),
        bsn.translate(FULLWIDTH),
        "11122233" + "\u0663",
    ):
        assert not is_bsn(text), text


def test_the_sentinels_in_non_ascii_digits_are_refused() -> None:
    """The sentinels are the ASCII strings only, not look-alikes in another script."""
    assert not is_bsn(BSN_UNKNOWN.translate(ARABIC_INDIC))
    assert not is_bsn(BSN_UNBORN.translate(FULLWIDTH))


# --- utc-millis ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T13:52:35.123Z",
        "2026-01-01T00:00:00.000Z",
        "2026-12-31T23:59:59.999Z",
        "2028-02-29T12:00:00.000Z",
    ],
)
def test_a_real_utc_moment_with_milliseconds_is_utc_millis(text: str) -> None:
    """RFC 3339 UTC with Z and exactly three fraction digits, at a real date and time."""
    assert is_utc_millis(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30T12:00:00.000Z",
        "2026-02-29T12:00:00.000Z",
        "2026-04-31T12:00:00.000Z",
        "2026-13-01T12:00:00.000Z",
        "2026-00-10T12:00:00.000Z",
        "2026-11-28T24:00:00.000Z",
        "2026-11-28T13:60:00.000Z",
        "2026-12-31T23:59:60.000Z",
    ],
)
def test_a_moment_that_does_not_exist_is_not_utc_millis(text: str) -> None:
    """The right shape at an impossible date or time (Feb 30, hour 24, leap second) is refused."""
    assert not is_utc_millis(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T13:52:35Z",  # millis missing
        "2026-11-28T13:52:35.12Z",  # two digits
        "2026-11-28T13:52:35.1234Z",  # four digits
        "2026-11-28T13:52:35.123+00:00",  # offset instead of Z
        "2026-11-28T14:52:35.123+01:00",
        "2026-11-28T13:52:35.123",  # no zone
        "2026-11-28T13:52:35.123z",  # lowercase z
        "2026-11-28 13:52:35.123Z",  # space instead of T
        "2026-11-28t13:52:35.123Z",
        "2026-11-28T13:52:35,123Z",  # comma fraction
        "20261128T135235.123Z",  # basic format
        "2026-11-28T13:52:35.123Z\n",
        " 2026-11-28T13:52:35.123Z",
        "\u0662\u0660\u0662\u0666-11-28T13:52:35.123Z",  # non-ASCII digits
        "2026-11-28",
        "",
    ],
)
def test_other_forms_of_a_moment_are_not_utc_millis(text: str) -> None:
    """Missing or extra fraction digits, offsets, other separators and whitespace are refused."""
    assert not is_utc_millis(text)


@given(st.datetimes())
def test_every_real_moment_written_with_millis_and_z_is_utc_millis(moment: datetime) -> None:
    """Any real date and time written as YYYY-MM-DDTHH:MM:SS.mmmZ passes."""
    text = moment.isoformat(timespec="milliseconds") + "Z"
    assert is_utc_millis(text)


# --- kalenderdatum ---------------------------------------------------------------------


@given(st.dates())
def test_every_real_date_is_a_kalenderdatum(day: date) -> None:
    """Any real calendar date in YYYY-MM-DD passes."""
    assert is_kalenderdatum(day.isoformat())


@pytest.mark.parametrize("text", ["2026-11-28", "2028-02-29", "0001-01-01", "9999-12-31"])
def test_known_dates_are_kalenderdatum(text: str) -> None:
    """Ordinary and edge dates in YYYY-MM-DD are accepted."""
    assert is_kalenderdatum(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30",
        "2026-02-29",
        "2026-04-31",
        "2026-13-01",
        "2026-00-01",
        "2026-01-00",
        "2026-1-5",
        "20261128",
        "2026/11/28",
        "28-11-2026",
        "2026-11-28T00:00:00.000Z",
        "2026-11-28 ",
        "2026-11-28\n",
        "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0668",
        "",
    ],
)
def test_other_texts_are_not_kalenderdatum(text: str) -> None:
    """Impossible dates, other layouts, a time part, whitespace and non-ASCII digits are refused."""
    assert not is_kalenderdatum(text)


# --- gemeentecode ----------------------------------------------------------------------


def test_the_gemeentecode_checker_accepts_exactly_the_given_codes() -> None:
    """A code of the list passes; another well-formed code, or another case, does not."""
    check = gemeentecode_checker(["GM0281", "GM0268"])
    assert check("GM0281")
    assert check("GM0268")
    assert not check("GM0363")  # Amsterdam: a real code, not of this list
    assert not check("gm0281")
    assert not check("GM0281 ")
    assert not check("")


def test_the_gemeentecode_checker_keeps_its_own_copy_of_the_codes() -> None:
    """Changing the list afterwards does not change what the checker accepts."""
    codes = ["GM0281"]
    check = gemeentecode_checker(codes)
    codes.append("GM0363")
    codes.remove("GM0281")
    assert check("GM0281")
    assert not check("GM0363")


def test_the_region_formats_accept_every_municipality_of_the_region() -> None:
    """The `gemeentecode` format built from config/region.toml accepts its codes and no other."""
    region = load_region(data_dir("config") / "region.toml")
    check = protocol_formats(region.codes)["gemeentecode"]
    assert len(region.codes) == 15
    assert all(check(code) for code in region.codes)
    assert not check("GM0363")


def test_protocol_formats_name_the_four_custom_formats() -> None:
    """The schemas' custom formats are bsn, gemeentecode, utc-millis and kalenderdatum."""
    formats = protocol_formats(["GM0281"])
    assert set(formats) == {"bsn", "gemeentecode", "utc-millis", "kalenderdatum"}
    assert formats["bsn"]("111222333")
    assert not formats["bsn"]("111222334")
    assert formats["utc-millis"]("2026-11-28T13:52:35.123Z")
    assert not formats["utc-millis"]("2026-11-28T13:52:35Z")
    assert formats["kalenderdatum"]("2026-11-28")
    assert not formats["kalenderdatum"]("2026-02-30")
    assert formats["gemeentecode"]("GM0281")
    assert not formats["gemeentecode"]("GM0268")
