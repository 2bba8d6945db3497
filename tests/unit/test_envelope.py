"""The envelope of wire protocol v1: timestamps and the JSON object, both ways."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.envelope import (
    CaseRef,
    Envelope,
    Signature,
    format_timestamp,
    new_message_id,
    parse_timestamp,
)
from gateway.domain.formats import is_utc_millis
from gateway.resources import data_dir

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def examples_dir() -> Path:
    """The example envelopes: schemas/examples/, or tests/fixtures/examples/ before the move."""
    moved = data_dir("schemas") / "examples"
    return moved if moved.is_dir() else ROOT / "tests" / "fixtures" / "examples"


EXAMPLE_FILES = sorted(examples_dir().glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def test_there_is_an_example_of_every_message_type() -> None:
    """The round-trip tests below run over at least one example per catalogue type."""
    assert len(EXAMPLE_FILES) >= 14
    types = {load(path)["type"] for path in EXAMPLE_FILES}
    assert {"enrichment.request", "overdracht.notice", "receipt", "error"} <= types


# --- format_timestamp --------------------------------------------------------------------


def test_a_timestamp_has_milliseconds_and_z() -> None:
    """2026-11-28 13:52:35.123456 UTC is written 2026-11-28T13:52:35.123Z."""
    moment = datetime(2026, 11, 28, 13, 52, 35, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-11-28T13:52:35.123Z"


def test_a_whole_second_still_has_three_fraction_digits() -> None:
    """A moment without microseconds is written with .000, never without a fraction."""
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


@pytest.mark.parametrize(
    ("microsecond", "written"),
    [(999999, "23:59:59.999Z"), (999500, "23:59:59.999Z"), (1999, "23:59:59.001Z"), (999, ".000Z")],
)
def test_sub_millisecond_digits_are_truncated_not_rounded(microsecond: int, written: str) -> None:
    """.999999 stays .999 (no roll-over into the next second, day or year); .000999 is .000."""
    moment = datetime(2026, 12, 31, 23, 59, 59, microsecond, tzinfo=UTC)
    text = format_timestamp(moment)
    assert text.startswith("2026-12-31T23:59:59.")
    assert text.endswith(written)


def test_a_naive_datetime_is_refused() -> None:
    """A moment without a time zone cannot be written: it is not known to be UTC."""
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 11, 28, 13, 52, 35))


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (
            datetime(2026, 11, 28, 14, 52, 35, 123000, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-28T13:52:35.123Z",
        ),
        (
            datetime(2026, 7, 1, 0, 30, tzinfo=ZoneInfo("Europe/Amsterdam")),
            "2026-06-30T22:30:00.000Z",
        ),
        (
            datetime(2026, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2027-01-01T01:00:00.000Z",
        ),
    ],
    ids=["cet", "cest-across-midnight", "west-across-new-year"],
)
def test_a_moment_in_another_zone_is_converted_to_utc(moment: datetime, written: str) -> None:
    """The same instant in another zone is written as its UTC time with Z."""
    assert format_timestamp(moment) == written


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_every_formatted_timestamp_is_utc_millis(moment: datetime) -> None:
    """What format_timestamp writes always passes the protocol's utc-millis format."""
    assert is_utc_millis(format_timestamp(moment))


def test_a_year_before_1000_is_written_with_four_digits() -> None:
    """RFC 3339 years have four digits: year 999 is 0999, as utc-millis requires."""
    moment = datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert format_timestamp(moment) == "0999-12-31T23:59:59.000Z"


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), ZoneInfo("Europe/Amsterdam")]
        ),
    )
)
def test_parse_timestamp_inverts_format_timestamp_to_the_millisecond(moment: datetime) -> None:
    """parse(format(t)) is t in UTC with its microseconds cut to whole milliseconds."""
    parsed = parse_timestamp(format_timestamp(moment))
    expected = moment.astimezone(UTC)
    assert parsed == expected.replace(microsecond=expected.microsecond // 1000 * 1000)
    assert parsed.tzinfo == UTC


def test_a_new_message_id_is_a_lowercase_hyphenated_uuid() -> None:
    """Fresh ids have the protocol's form and are not repeated."""
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(UUID.fullmatch(i) for i in ids)


# --- to_json / from_json -----------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_every_example_survives_from_json_then_to_json(path: Path) -> None:
    """serialise -> parse is the identity: to_json(from_json(x)) == x for each example."""
    example = load(path)
    assert Envelope.from_json(example).to_json() == example


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_every_example_survives_a_trip_through_json_text(path: Path) -> None:
    """from_json(loads(dumps(to_json(e)))) gives back an equal Envelope."""
    envelope = Envelope.from_json(load(path))
    assert Envelope.from_json(json.loads(json.dumps(envelope.to_json()))) == envelope


@pytest.mark.parametrize(
    "sent_at",
    ["2028-02-29T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "1000-01-01T00:00:00.000Z"],
)
def test_edge_moments_survive_the_json_round_trip(sent_at: str) -> None:
    """A leap day and the ends of the four-digit years come back as written."""
    example = load(examples_dir() / "receipt.json") | {"sent_at": sent_at}
    assert Envelope.from_json(example).to_json()["sent_at"] == sent_at


def test_a_schema_valid_moment_before_year_1000_survives_the_json_round_trip() -> None:
    """utc-millis accepts 0999-...; the envelope must give the same text back."""
    sent_at = "0999-12-31T23:59:59.999Z"
    assert is_utc_millis(sent_at)
    example = load(examples_dir() / "receipt.json") | {"sent_at": sent_at}
    assert Envelope.from_json(example).to_json()["sent_at"] == sent_at


def test_optional_members_are_absent_not_null() -> None:
    """Without reply_to, case and signature, to_json leaves those members out."""
    envelope = Envelope(
        id="881a3efd-5221-47fd-8b10-b7e872c95cf4",
        type="enrichment.request",
        sender="vt-gz",
        recipient="jbg",
        sent_at=datetime(2026, 11, 16, 8, 30, tzinfo=UTC),
        thread="881a3efd-5221-47fd-8b10-b7e872c95cf4",
        body={"reden": "verrijking_vt_melding"},
    )
    obj = envelope.to_json()
    assert set(obj) == {"version", "id", "type", "sender", "recipient", "sent_at", "thread", "body"}
    assert obj["version"] == 1
    assert not envelope.is_answer


def test_to_json_writes_every_member_by_its_protocol_name() -> None:
    """reply_to, case and signature are written as the protocol names them."""
    envelope = Envelope(
        id="dd6a30c4-42dd-4a22-9540-f9fe5be1aed8",
        type="enrichment.response",
        sender="jbg",
        recipient="vt-gz",
        sent_at=datetime(2026, 11, 17, 10, 12, 44, 512000, tzinfo=UTC),
        thread="881a3efd-5221-47fd-8b10-b7e872c95cf4",
        reply_to="881a3efd-5221-47fd-8b10-b7e872c95cf4",
        case=CaseRef("VT-2026-000123", "GM0281"),
        body={"personen": []},
        signature=Signature("Ed25519", "jbg-1", "AAAA"),
    )
    assert envelope.is_answer
    assert envelope.to_json() == {
        "version": 1,
        "id": "dd6a30c4-42dd-4a22-9540-f9fe5be1aed8",
        "type": "enrichment.response",
        "sender": "jbg",
        "recipient": "vt-gz",
        "sent_at": "2026-11-17T10:12:44.512Z",
        "thread": "881a3efd-5221-47fd-8b10-b7e872c95cf4",
        "reply_to": "881a3efd-5221-47fd-8b10-b7e872c95cf4",
        "case": {"ref": "VT-2026-000123", "gemeente": "GM0281"},
        "body": {"personen": []},
        "signature": {"alg": "Ed25519", "kid": "jbg-1", "value": "AAAA"},
    }


def test_from_json_reads_sent_at_as_an_aware_utc_moment() -> None:
    """sent_at becomes a timezone-aware datetime in UTC, to the millisecond."""
    envelope = Envelope.from_json(load(examples_dir() / "enrichment.response.json"))
    assert envelope.sent_at.tzinfo == UTC
    assert envelope.sent_at.microsecond % 1000 == 0


def test_to_json_does_not_share_the_body_with_the_envelope() -> None:
    """Changing the returned object's body leaves the envelope's body as it was."""
    envelope = Envelope.from_json(load(examples_dir() / "receipt.json"))
    before = dict(envelope.body)
    obj = envelope.to_json()
    obj["body"]["extra"] = "x"
    assert dict(envelope.body) == before
