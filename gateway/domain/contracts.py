"""Partner contracts: who a party is, how it is reached, what it may send and receive.

One contract per party (contracts/<party>.toml, shaped by
schemas/contract.schema.json). Every message has VT at one end, so a contract
is the party's agreement with the hub: `may_send` are the types it may send to
VT, `may_receive` the types VT may send to it. `Contracts` is the registry the
verification pipeline and the routing read.

Pure: no files are read here (gateway/contract_files.py does that).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from gateway.domain.errors import ConfigurationError

ED25519_PUBLIC_KEY_BYTES = 32

DEFAULT_MAX_AGE = timedelta(days=7)
"""PROTOCOL.md, "Idempotency and replay": older than this is STALE."""

_DURATION = re.compile(
    r"P(?!$)(?:(?P<days>[0-9]+)D)?"
    r"(?:T(?=[0-9])(?:(?P<hours>[0-9]+)H)?(?:(?P<minutes>[0-9]+)M)?(?:(?P<seconds>[0-9]+)S)?)?"
)


class Role(StrEnum):
    """What a party is in the agreement; routing picks recipients by role."""

    VT = "vt"
    GI = "gi"
    RAAD = "raad"
    VEILIGHEIDSHUIS = "veiligheidshuis"
    VROUWENOPVANG = "vrouwenopvang"
    LOKAAL_TEAM = "lokaal_team"
    BIJZONDERE_ZORG = "bijzondere_zorg"
    POLITIE = "politie"
    BRIDGE = "bridge"


class Transport(StrEnum):
    """How the gateway reaches a party."""

    API = "api"
    """VT's own case system, over the gateway's HTTP API."""
    AMQP = "amqp"
    """RabbitMQ: the party's broker user name is its party id."""
    EMAIL = "email"
    """Through the e-mail bridge, which signs on the party's behalf."""
    BRIDGE = "bridge"
    """The e-mail bridge itself."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key of a signer, with its validity window.

    `key` is the 32 raw bytes. `not_after` None means no end.
    """

    kid: str
    key: bytes
    not_before: datetime
    not_after: datetime | None
    revoked: bool = False

    def valid_for(self, *, signed_at: datetime, now: datetime) -> bool:
        """May this key verify a message signed at `signed_at`, verified at `now`?

        Not revoked; signed at or after `not_before`; and, when the key has an
        end, verified before `not_after`.

        The two ends are judged at different moments on purpose. A resend keeps
        its original `sent_at` (and its signature), so `signed_at` is when the
        message was signed: a key cannot sign a message dated before the key
        existed. Expiry is judged at verification time: `sent_at` is written by
        the signer, so a message signed with a retired key could be back-dated
        into the window at will; once the key has expired it verifies nothing.
        A retired key therefore needs a `not_after` at least `max_age` after
        its last signature, or its last messages' resends will not verify.
        Revocation ends the key at once, whatever the moments.
        """
        if self.revoked or signed_at < self.not_before:
            return False
        return self.not_after is None or now < self.not_after


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """When a party is reachable on working days (wall clock, Europe/Amsterdam)."""

    start: time
    end: time

    def covers(self, moment: time) -> bool:
        """Is this wall-clock time within office hours (start included, end not)?"""
        return self.start <= moment < self.end


AGREED_OFFICE_HOURS = OfficeHours(start=time(9, 0), end=time(17, 0))
"""§8.4: lokale teams and VT are reachable 9:00-17:00, holiday season included."""


@dataclass(frozen=True, slots=True)
class ContactPerson:
    """A person to reach at a party (§10 A: VT keeps the contact list)."""

    name: str
    function: str
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Contract:
    """One party's contract with the hub.

    - `werkgebied`: the CBS codes of the municipalities the party serves.
    - `signed_by`: only on the e-mail transport, the party (the e-mail bridge)
      whose keys sign for this one; such a party has no keys of its own.
    - `may_send` / `may_receive`: message types this party may send to VT and
      VT may send to it.
    - `receipt_timeout`, `attempt_limit`: how long the gateway waits for this
      party's receipt before sending again, and how many sends in all (the
      first included) before the message is undeliverable.
    - `max_age`: how old a message *from* this party may be when it arrives
      before it is STALE; a resend keeps its `sent_at`, so this also bounds
      the sender's retries.
    - `office_hours`: when the party is reachable on working days (§8.4).
    """

    party: str
    name: str
    role: Role
    transport: Transport
    werkgebied: frozenset[str]
    signed_by: str | None
    may_send: frozenset[str]
    may_receive: frozenset[str]
    keys: tuple[PublicKey, ...]
    receipt_timeout: timedelta
    attempt_limit: int
    max_age: timedelta = DEFAULT_MAX_AGE
    office_hours: OfficeHours = AGREED_OFFICE_HOURS
    email_addresses: tuple[str, ...] = ()
    contacts: tuple[ContactPerson, ...] = ()

    def key(self, kid: str) -> PublicKey | None:
        """This party's own key with that id, or None."""
        for public_key in self.keys:
            if public_key.kid == kid:
                return public_key
        return None

    def kid_to_sign_with(self, kids: Iterable[str], now: datetime) -> str | None:
        """Of the keys whose private halves are at hand (`kids`), the one to sign with at `now`.

        The newest by `not_before` that verifies a message signed now: during a
        rotation's overlap the successor, from its `not_before` on; None when no
        key at hand is valid now.
        """
        at_hand = set(kids)
        usable = [
            key for key in self.keys if key.kid in at_hand and key.valid_for(signed_at=now, now=now)
        ]
        return max(usable, key=lambda key: key.not_before).kid if usable else None

    def serves(self, gemeente: str) -> bool:
        """Is this municipality in the party's werkgebied?"""
        return gemeente in self.werkgebied


class Contracts:
    """The registry of all contracts, by party id."""

    __slots__ = ("_by_party",)

    def __init__(self, contracts: Iterable[Contract]) -> None:
        by_party: dict[str, Contract] = {}
        for contract in contracts:
            if contract.party in by_party:
                raise ConfigurationError(f"two contracts for party {contract.party!r}")
            by_party[contract.party] = contract
        self._by_party: Mapping[str, Contract] = dict(sorted(by_party.items()))

    def get(self, party: str) -> Contract | None:
        """The contract of this party, or None when the party is unknown."""
        return self._by_party.get(party)

    def __iter__(self) -> Iterator[Contract]:
        """All contracts, by party id."""
        return iter(self._by_party.values())

    def __len__(self) -> int:
        return len(self._by_party)

    def __contains__(self, party: object) -> bool:
        return party in self._by_party

    def with_role(self, role: Role) -> tuple[Contract, ...]:
        """The contracts of one role, by party id."""
        return tuple(c for c in self if c.role is role)

    def serving(self, role: Role, gemeente: str) -> tuple[Contract, ...]:
        """The parties of this role whose werkgebied holds the municipality, by party id."""
        return tuple(c for c in self if c.role is role and gemeente in c.werkgebied)

    def signer_of(self, party: str) -> Contract | None:
        """The contract whose keys sign for this party.

        The e-mail bridge's contract for a party on the e-mail transport, the
        party's own contract otherwise; None when either is unknown.
        """
        contract = self.get(party)
        if contract is None or contract.transport is not Transport.EMAIL:
            return contract
        return None if contract.signed_by is None else self.get(contract.signed_by)

    @property
    def hub(self) -> Contract:
        """The contract of Veilig Thuis (role vt): every message has it at one end."""
        hubs = self.with_role(Role.VT)
        if len(hubs) != 1:
            raise ConfigurationError(f"contracts name {len(hubs)} parties with role vt, not 1")
        return hubs[0]


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration in days, hours, minutes and seconds (P7D, PT4H, P1DT12H).

    Years, months and weeks are refused: a timeout needs a fixed length.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration like P7D or PT4H")
    parts = {name: int(value) for name, value in match.groupdict().items() if value is not None}
    return timedelta(**parts)


def parse_utc_moment(text: str) -> datetime:
    """An RFC 3339 moment in UTC with Z (2026-01-01T00:00:00Z), as an aware datetime."""
    if not text.endswith("Z"):
        raise ValueError(f"{text!r} is not a UTC moment ending in Z")
    return datetime.fromisoformat(text)


def decode_public_key(text: str) -> bytes:
    """The raw bytes of a base64url public key without padding; 32 bytes or ValueError."""
    if "=" in text:
        raise ValueError("public key must be base64url without padding")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        raise ValueError(f"public key is {len(raw)} bytes, not {ED25519_PUBLIC_KEY_BYTES}")
    return raw


def contract_from_mapping(data: Mapping[str, Any]) -> Contract:
    """Build a contract from a parsed contract file.

    Assumes the data passed schemas/contract.schema.json; values the schema
    cannot judge (a key that does not decode, a moment that is no date) raise
    ValueError.
    """
    office = data.get("office_hours")
    email = data.get("email", {})
    return Contract(
        party=data["party"],
        name=data["name"],
        role=Role(data["role"]),
        transport=Transport(data["transport"]),
        werkgebied=frozenset(data["werkgebied"]),
        signed_by=data.get("signed_by"),
        may_send=frozenset(data["may_send"]),
        may_receive=frozenset(data["may_receive"]),
        keys=tuple(_public_key(entry) for entry in data.get("keys", ())),
        receipt_timeout=parse_duration(data["receipt_timeout"]),
        attempt_limit=data["attempt_limit"],
        max_age=parse_duration(data["max_age"]) if "max_age" in data else DEFAULT_MAX_AGE,
        office_hours=(
            AGREED_OFFICE_HOURS
            if office is None
            else OfficeHours(
                start=time.fromisoformat(office["start"]),
                end=time.fromisoformat(office["end"]),
            )
        ),
        email_addresses=tuple(email.get("addresses", ())),
        contacts=tuple(
            ContactPerson(
                name=entry["name"],
                function=entry["function"],
                email=entry.get("email"),
                phone=entry.get("phone"),
            )
            for entry in data.get("contacts", ())
        ),
    )


def _public_key(entry: Mapping[str, Any]) -> PublicKey:
    not_after = entry.get("not_after")
    return PublicKey(
        kid=entry["kid"],
        key=decode_public_key(entry["public_key"]),
        not_before=parse_utc_moment(entry["not_before"]),
        not_after=None if not_after is None else parse_utc_moment(not_after),
        revoked=entry.get("revoked", False),
    )
