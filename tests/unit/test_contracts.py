"""Partner contracts: keys and their windows, the contract's shape, the registry."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.contracts import (
    AGREED_OFFICE_HOURS,
    DEFAULT_MAX_AGE,
    ContactPerson,
    Contract,
    Contracts,
    OfficeHours,
    PublicKey,
    Role,
    Transport,
    contract_from_mapping,
    decode_public_key,
    parse_duration,
)
from gateway.domain.errors import ConfigurationError

NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2027, 1, 1, tzinfo=UTC)
INSIDE = datetime(2026, 6, 1, tzinfo=UTC)
RAW_KEY = bytes(range(32))
ENCODED_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"


def key(*, not_after: datetime | None = NOT_AFTER, revoked: bool = False) -> PublicKey:
    return PublicKey("vt-gz-2026-01", RAW_KEY, NOT_BEFORE, not_after, revoked)


def contract(party: str, role: Role, **fields: Any) -> Contract:
    values: dict[str, Any] = {
        "party": party,
        "name": party,
        "role": role,
        "transport": Transport.AMQP,
        "werkgebied": frozenset({"GM0281"}),
        "signed_by": None,
        "may_send": frozenset({"receipt", "error"}),
        "may_receive": frozenset({"receipt", "error"}),
        "keys": (),
        "receipt_timeout": timedelta(minutes=15),
        "attempt_limit": 8,
    }
    values.update(fields)
    return Contract(**values)


def registry() -> Contracts:
    return Contracts(
        [
            contract("vt-gz", Role.VT, transport=Transport.API, keys=(key(),)),
            contract(
                "vtgw-bridge", Role.BRIDGE, transport=Transport.BRIDGE, werkgebied=frozenset()
            ),
            contract(
                "lt-tiel", Role.LOKAAL_TEAM, transport=Transport.EMAIL, signed_by="vtgw-bridge"
            ),
            contract("lt-buren", Role.LOKAAL_TEAM, werkgebied=frozenset({"GM0214"})),
            contract("jbg", Role.GI, werkgebied=frozenset({"GM0281", "GM0214"})),
        ]
    )


# --- keys ---------------------------------------------------------------------


def test_a_key_verifies_a_message_signed_and_verified_inside_its_window() -> None:
    """A key verifies what was signed at or after not_before and is verified before not_after."""
    assert key().valid_for(signed_at=INSIDE, now=INSIDE)


def test_a_revoked_key_verifies_nothing() -> None:
    """PROTOCOL.md Signature: a revoked key does not verify, whatever the moments."""
    assert not key(revoked=True).valid_for(signed_at=INSIDE, now=INSIDE)


def test_not_before_is_judged_by_the_signing_time() -> None:
    """A key cannot sign a message dated before the key existed, even if verified later."""
    signed_before = NOT_BEFORE - timedelta(seconds=1)
    assert not key().valid_for(signed_at=signed_before, now=INSIDE)


def test_not_before_itself_is_inside_the_window() -> None:
    """The window starts at not_before, inclusive."""
    assert key().valid_for(signed_at=NOT_BEFORE, now=NOT_BEFORE)


def test_expiry_is_judged_by_the_verification_time() -> None:
    """A message signed inside the window no longer verifies once the key has expired."""
    assert not key().valid_for(signed_at=INSIDE, now=NOT_AFTER + timedelta(seconds=1))


def test_not_after_itself_is_already_expired() -> None:
    """The window ends at not_after, exclusive."""
    assert not key().valid_for(signed_at=INSIDE, now=NOT_AFTER)


def test_a_resend_keeps_verifying_until_the_key_expires() -> None:
    """A resend keeps its sent_at: it verifies later, as long as the key has not expired."""
    resent_at = NOT_AFTER - timedelta(hours=1)
    assert key().valid_for(signed_at=NOT_BEFORE + timedelta(hours=1), now=resent_at)


def test_a_key_without_not_after_never_expires() -> None:
    """not_after absent: the key has no end."""
    far = datetime(2099, 1, 1, tzinfo=UTC)
    assert key(not_after=None).valid_for(signed_at=INSIDE, now=far)


@given(
    signed_at=st.datetimes(timezones=st.just(UTC)),
    now=st.datetimes(timezones=st.just(UTC)),
)
def test_an_expired_key_never_verifies_whatever_the_claimed_signing_time(
    signed_at: datetime, now: datetime
) -> None:
    """sent_at is the signer's to write, so only the verification time can end a key."""
    if now >= NOT_AFTER:
        assert not key().valid_for(signed_at=signed_at, now=now)


# --- the contract --------------------------------------------------------------


def contract_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "party": "lt-tiel",
        "name": "Lokaal team Tiel",
        "role": "lokaal_team",
        "transport": "email",
        "werkgebied": ["GM0281"],
        "signed_by": "vtgw-bridge",
        "may_send": ["overdracht.confirmation", "receipt", "error"],
        "may_receive": ["overdracht.notice", "receipt", "error"],
        "receipt_timeout": "PT4H",
        "attempt_limit": 6,
        "max_age": "P3D",
        "office_hours": {"start": "08:30", "end": "16:30"},
        "email": {"addresses": ["overdracht@lokaalteam-tiel.example"]},
        "contacts": [
            {"name": "Coördinator", "function": "coördinator", "phone": "+31 344 000 000"}
        ],
    }
    data.update(overrides)
    return data


def test_a_contract_is_read_from_its_file_data() -> None:
    """contract_from_mapping turns durations, clock times and lists into domain values."""
    read = contract_from_mapping(contract_data())
    assert read.role is Role.LOKAAL_TEAM
    assert read.transport is Transport.EMAIL
    assert read.werkgebied == frozenset({"GM0281"})
    assert read.signed_by == "vtgw-bridge"
    assert read.receipt_timeout == timedelta(hours=4)
    assert read.max_age == timedelta(days=3)
    assert read.office_hours == OfficeHours(time(8, 30), time(16, 30))
    assert read.email_addresses == ("overdracht@lokaalteam-tiel.example",)
    assert read.contacts == (
        ContactPerson("Coördinator", "coördinator", email=None, phone="+31 344 000 000"),
    )
    assert read.keys == ()


def test_max_age_and_office_hours_default_to_the_agreed_values() -> None:
    """PROTOCOL.md: max_age 7 days; §8.4: reachable 9:00-17:00."""
    data = contract_data()
    del data["max_age"], data["office_hours"]
    read = contract_from_mapping(data)
    assert read.max_age == DEFAULT_MAX_AGE == timedelta(days=7)
    assert read.office_hours == AGREED_OFFICE_HOURS == OfficeHours(time(9), time(17))


def test_a_contract_reads_its_keys_and_finds_them_by_kid() -> None:
    """Keys are base64url without padding and UTC moments; key(kid) finds one, or None."""
    data = contract_data(
        transport="amqp",
        signed_by=None,
        keys=[
            {
                "kid": "jbg-2026-01",
                "public_key": ENCODED_KEY,
                "not_before": "2026-01-01T00:00:00Z",
                "not_after": "2027-01-01T00:00:00Z",
            },
            {"kid": "jbg-2025-01", "public_key": ENCODED_KEY, "not_before": "2025-01-01T00:00:00Z"},
        ],
    )
    del data["signed_by"], data["email"]
    read = contract_from_mapping(data)
    assert read.key("jbg-2026-01") == PublicKey(
        "jbg-2026-01", RAW_KEY, NOT_BEFORE, NOT_AFTER, revoked=False
    )
    old = read.key("jbg-2025-01")
    assert old is not None
    assert old.not_after is None
    assert read.key("jbg-2099-01") is None


def test_office_hours_cover_nine_to_five_with_five_excluded() -> None:
    """§8.4: reachable from 9:00 until 17:00."""
    assert AGREED_OFFICE_HOURS.covers(time(9, 0))
    assert AGREED_OFFICE_HOURS.covers(time(16, 59))
    assert not AGREED_OFFICE_HOURS.covers(time(17, 0))
    assert not AGREED_OFFICE_HOURS.covers(time(8, 59))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("PT4H", timedelta(hours=4)),
        ("PT15M", timedelta(minutes=15)),
        ("PT30S", timedelta(seconds=30)),
        ("P1DT12H", timedelta(days=1, hours=12)),
    ],
)
def test_durations_are_iso_8601_in_days_hours_minutes_and_seconds(
    text: str, expected: timedelta
) -> None:
    """Timeouts are written as ISO 8601 durations."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "P1W", "P1M", "P1Y", "7D", "PT4", "P1.5D", "3600"])
def test_durations_without_a_fixed_length_or_form_are_refused(text: str) -> None:
    """Weeks, months and years, or anything not ISO 8601, are no timeout."""
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


@given(
    days=st.integers(0, 400),
    hours=st.integers(0, 48),
    minutes=st.integers(0, 120),
    seconds=st.integers(0, 120),
)
def test_any_days_hours_minutes_seconds_duration_reads_back(
    days: int, hours: int, minutes: int, seconds: int
) -> None:
    """Every combination of the four parts is read as their sum."""
    text = f"P{days}DT{hours}H{minutes}M{seconds}S"
    assert parse_duration(text) == timedelta(
        days=days, hours=hours, minutes=minutes, seconds=seconds
    )


def test_a_public_key_is_32_bytes_base64url_without_padding() -> None:
    """PROTOCOL.md: Ed25519 public keys, base64url, no padding."""
    assert decode_public_key(ENCODED_KEY) == RAW_KEY
    with pytest.raises(ValueError, match="padding"):
        decode_public_key(ENCODED_KEY + "=")
    with pytest.raises(ValueError, match="not 32"):
        decode_public_key("AAAA")


# --- the registry --------------------------------------------------------------


def test_the_signer_of_a_party_on_the_email_transport_is_the_bridge() -> None:
    """PROTOCOL.md: an e-mail party has no keys of its own; the bridge signs for it."""
    signer = registry().signer_of("lt-tiel")
    assert signer is not None
    assert signer.party == "vtgw-bridge"


def test_the_signer_of_any_other_party_is_the_party_itself() -> None:
    """A party on AMQP or the API signs with its own keys."""
    signer = registry().signer_of("lt-buren")
    assert signer is not None
    assert signer.party == "lt-buren"


def test_an_unknown_party_has_no_contract_and_no_signer() -> None:
    """Unknown parties are None, for the pipeline to turn into UNKNOWN_SENDER."""
    assert registry().get("lt-atlantis") is None
    assert registry().signer_of("lt-atlantis") is None


def test_the_hub_is_the_one_contract_with_role_vt() -> None:
    """Every message has VT at one end: the registry names it."""
    assert registry().hub.party == "vt-gz"


def test_a_registry_without_exactly_one_hub_cannot_name_it() -> None:
    """No hub, or two, is a configuration error."""
    with pytest.raises(ConfigurationError, match="role vt"):
        _ = Contracts([contract("jbg", Role.GI)]).hub


def test_two_contracts_for_one_party_are_refused() -> None:
    """A party id names one contract."""
    with pytest.raises(ConfigurationError, match="two contracts"):
        Contracts([contract("jbg", Role.GI), contract("jbg", Role.GI)])


def test_serving_lists_the_parties_of_a_role_whose_werkgebied_holds_the_gemeente() -> None:
    """Routing asks the registry by role and municipality."""
    parties = [c.party for c in registry().serving(Role.LOKAAL_TEAM, "GM0214")]
    assert parties == ["lt-buren"]
    assert [c.party for c in registry().serving(Role.GI, "GM0214")] == ["jbg"]
    assert registry().serving(Role.RAAD, "GM0214") == ()


def test_the_registry_iterates_its_contracts_by_party_id() -> None:
    """Iteration order is stable: by party id."""
    assert [c.party for c in registry()] == sorted(c.party for c in registry())
    assert len(registry()) == 5
    assert "jbg" in registry()
