"""The responsibility ledger: who held each case, "zicht op veiligheid", at any moment (§8).

VT is responsible for zicht op veiligheid from its veiligheidsbeoordeling until
the case is handed over *and* VT has received the confirmation (§8.2, §8.3);
from the confirmation the receiving party is responsible (§8.5 D). §8.1 names
only "overgedragen"; we read it with §8.5 D, which starts the team's
responsibility at its confirmation and so leaves no gap in between. When the
team cannot reach lasting safety it asks VT back in (§8.5 F, `case.return`):
VT holds again.

Regie versus responsibility. When case direction (casusregie) moves from the
lokaal team to another party, the team tells VT (§7.1 C). Our reading: the
team keeps the responsibility it took by confirming (§8.5 D makes it
responsible for *determining and organising* process and case management, and
annex 5 says the team has regie "unless it placed the regiefunctie with another
provider": placing regie elsewhere is the team exercising that
responsibility). The new regievoerder confirmed nothing to VT and may be an
organisation outside the gateway, so the gateway cannot prove a handover to
it; the team stays the one VT deals with: it helps with monitoring (§7.1 C)
and it is the one that can ask VT back in (§8.5 F). Note §9 K and L: the
regisseur keeps zicht op veiligheid in the day-to-day work, and the safety
conditions and plan go with the regie. So every entry records both: `holder`
(accountable to VT by a confirmed handover) and `regievoerder` (who directs the
case now); a reader who needs the day-to-day regisseur asks for the latter.

Every entry is hash-chained: its hash is `sha256:` over the RFC 8785 form of
all its other fields, the previous entry's hash included, so an altered,
removed, inserted or reordered entry shows (`verify_chain`). Cutting entries
off the end does not: keep the head hash apart to catch that.

Pure: no I/O; every moment is passed in. Entries of one case go forward in time.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from gateway.domain.canonical import canonical_bytes, digest_of
from gateway.domain.errors import ErrorCode, GatewayError, PermanentError

VEILIG_THUIS = "vt-gz"
"""VT's party id in the contracts (DOMAIN.md, "Who talks to whom")."""

GENESIS_HASH = "sha256:" + "0" * 64
"""The previous hash of the first entry of a ledger."""

FIRST_SEQUENCE = 1

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class EntryKind(StrEnum):
    """What happened to the responsibility for a case."""

    VEILIGHEIDSBEOORDELING = "veiligheidsbeoordeling"
    """VT assessed the report and holds the case (§8.1-§8.3)."""
    OVERDRACHT_BEVESTIGD = "overdracht_bevestigd"
    """The recipient confirmed the overdracht: it holds the case (§8.5 D)."""
    TERUG_NAAR_VT = "terug_naar_vt"
    """`case.return`: the holder asks VT back in, VT holds again (§8.5 F)."""
    REGIE_GEWIJZIGD = "regie_gewijzigd"
    """`regie.change`: case direction moved, the holder stays (§7.1 C)."""
    AFGESLOTEN = "afgesloten"
    """The holder closed the case: nobody holds it any more."""


class Evidence(StrEnum):
    """The names of the evidence an entry carries."""

    OVERDRACHT_ID = "overdracht_id"
    CONFIRMATION_ID = "confirmation_id"
    CONFIRMATION_DIGEST = "confirmation_digest"
    MESSAGE_ID = "message_id"
    DIGEST = "digest"


def _frozen(evidence: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({str(name): value for name, value in evidence.items()})


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("ledger moments must be timezone-aware")
    return moment


def _moment_text(moment: datetime) -> str:
    """UTC, microseconds, `Z`: one text per instant, whatever its offset."""
    return _aware(moment).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _digest_evidence(name: str, value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise ValueError(f"{name} must be sha256: and 64 lowercase hex digits")
    return value


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """An entry before the ledger numbers and chains it; build one with the named constructors."""

    kind: EntryKind
    case_ref: str
    gemeente: str
    by: str
    """The party whose act this records: VT, the confirming recipient, the reporting holder."""
    at: datetime
    evidence: Mapping[str, str] = field(default_factory=dict)
    regievoerder: str | None = None
    """Only for `regie_gewijzigd`: a party id or an organisation outside the gateway."""

    def __post_init__(self) -> None:
        _aware(self.at)
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    @classmethod
    def veiligheidsbeoordeling(
        cls,
        case_ref: str,
        gemeente: str,
        at: datetime,
        *,
        vt: str = VEILIG_THUIS,
        evidence: Mapping[str, str] | None = None,
    ) -> EntryDraft:
        """VT has assessed the report: from now VT holds the case (§8.1-§8.3)."""
        return cls(EntryKind.VEILIGHEIDSBEOORDELING, case_ref, gemeente, vt, at, evidence or {})

    @classmethod
    def overdracht_bevestigd(
        cls,
        case_ref: str,
        gemeente: str,
        recipient: str,
        at: datetime,
        *,
        overdracht_id: str,
        confirmation_id: str,
        confirmation_digest: str,
    ) -> EntryDraft:
        """The recipient's `overdracht.confirmation`: from now the recipient holds (§8.5 D)."""
        evidence: dict[str, str] = {
            Evidence.OVERDRACHT_ID: overdracht_id,
            Evidence.CONFIRMATION_ID: confirmation_id,
            Evidence.CONFIRMATION_DIGEST: _digest_evidence(
                Evidence.CONFIRMATION_DIGEST, confirmation_digest
            ),
        }
        return cls(EntryKind.OVERDRACHT_BEVESTIGD, case_ref, gemeente, recipient, at, evidence)

    @classmethod
    def terug_naar_vt(
        cls, case_ref: str, gemeente: str, by: str, at: datetime, *, message_id: str, digest: str
    ) -> EntryDraft:
        """The holder's `case.return`: VT is asked back in and holds again (§8.5 F)."""
        evidence: dict[str, str] = {
            Evidence.MESSAGE_ID: message_id,
            Evidence.DIGEST: _digest_evidence(Evidence.DIGEST, digest),
        }
        return cls(EntryKind.TERUG_NAAR_VT, case_ref, gemeente, by, at, evidence)

    @classmethod
    def regie_gewijzigd(
        cls,
        case_ref: str,
        gemeente: str,
        by: str,
        regievoerder: str,
        at: datetime,
        *,
        message_id: str,
        digest: str,
    ) -> EntryDraft:
        """The holder's `regie.change`: casusregie moved to `regievoerder` (§7.1 C)."""
        if not regievoerder.strip():
            raise ValueError("a regie change names the new regievoerder")
        evidence: dict[str, str] = {
            Evidence.MESSAGE_ID: message_id,
            Evidence.DIGEST: _digest_evidence(Evidence.DIGEST, digest),
        }
        return cls(EntryKind.REGIE_GEWIJZIGD, case_ref, gemeente, by, at, evidence, regievoerder)

    @classmethod
    def afgesloten(
        cls,
        case_ref: str,
        gemeente: str,
        by: str,
        at: datetime,
        *,
        evidence: Mapping[str, str] | None = None,
    ) -> EntryDraft:
        """The holder closes the case: from now nobody holds it."""
        return cls(EntryKind.AFGESLOTEN, case_ref, gemeente, by, at, evidence or {})


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One numbered, chained fact about who holds a case.

    `hash` is `sha256:` over the RFC 8785 form of every other field,
    `previous_hash` included.
    """

    sequence: int
    case_ref: str
    gemeente: str
    kind: EntryKind
    by: str
    holder: str | None
    regievoerder: str | None
    at: datetime
    evidence: Mapping[str, str]
    previous_hash: str
    hash: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    def hashed_fields(self) -> dict[str, Any]:
        """The fields the hash covers, as a JSON object."""
        return {
            "sequence": self.sequence,
            "case_ref": self.case_ref,
            "gemeente": self.gemeente,
            "kind": str(self.kind),
            "by": self.by,
            "holder": self.holder,
            "regievoerder": self.regievoerder,
            "at": _moment_text(self.at),
            "evidence": dict(self.evidence),
            "previous_hash": self.previous_hash,
        }

    def recomputed_hash(self) -> str:
        """The hash these fields ought to have."""
        return digest_of(canonical_bytes(self.hashed_fields()))


def _is_intact(entry: LedgerEntry) -> bool:
    try:
        return entry.recomputed_hash() == entry.hash
    except (GatewayError, ValueError, TypeError, AttributeError):
        return False


def verify_chain(entries: Sequence[LedgerEntry], *, after: LedgerEntry | None = None) -> int | None:
    """The sequence number of the first broken entry, or None when the chain is whole.

    An entry whose fields no longer give its hash is broken at its own place
    (its rightful sequence); an intact entry that does not follow the one
    before it (one removed, inserted or reordered) is broken at its own
    sequence. `after` continues from a trusted entry, to verify page by page.
    """
    expected = FIRST_SEQUENCE if after is None else after.sequence + 1
    previous = GENESIS_HASH if after is None else after.hash
    for entry in entries:
        if not _is_intact(entry):
            return expected
        if entry.sequence != expected or entry.previous_hash != previous:
            return entry.sequence
        expected, previous = expected + 1, entry.hash
    return None


class BrokenLedgerError(GatewayError):
    """Stored entries do not form a whole chain: the ledger will not build on them."""

    def __init__(self, sequence: int) -> None:
        super().__init__(f"the responsibility ledger is broken at entry {sequence}")
        self.sequence = sequence


UNLINKED = 0
"""The sequence of an entry decided but not yet linked into the chain (`decided_entry`)."""


def chain_entry(
    draft: EntryDraft,
    *,
    case_last: LedgerEntry | None,
    head: LedgerEntry | None,
    vt: str = VEILIG_THUIS,
) -> LedgerEntry:
    """The next entry of the chain for `draft`, or why the transition cannot be.

    `case_last` is the case's latest entry (its state), `head` the chain's
    latest entry (what the new one links to): a store keeps the chain and
    asks only for these two, not for every entry.
    """
    return linked(decided_entry(draft, case_last=case_last, vt=vt), head)


def decided_entry(
    draft: EntryDraft, *, case_last: LedgerEntry | None, vt: str = VEILIG_THUIS
) -> LedgerEntry:
    """The entry `draft` makes after the case's latest, or why the transition cannot be.

    Only the case's own history decides it: who holds the case and who has
    regie after it. Its place in the chain (sequence, previous hash, hash) is
    left open (`UNLINKED`, empty hashes) for `linked`. So a store can decide
    entries of different cases at once, each holding only its case, and take
    the one chain only for the moment it links them.
    """
    if case_last is not None and draft.at < case_last.at:
        raise ValueError("entries of a case go forward in time")
    holder, regievoerder = _after(draft, case_last, vt)
    return LedgerEntry(
        sequence=UNLINKED,
        case_ref=draft.case_ref,
        gemeente=draft.gemeente,
        kind=draft.kind,
        by=draft.by,
        holder=holder,
        regievoerder=regievoerder,
        at=draft.at,
        evidence=draft.evidence,
        previous_hash="",
        hash="",
    )


def linked(entry: LedgerEntry, head: LedgerEntry | None) -> LedgerEntry:
    """`entry` as the one after `head` (the first when None): numbered, linked, hashed."""
    unhashed = replace(
        entry,
        sequence=head.sequence + 1 if head is not None else FIRST_SEQUENCE,
        previous_hash=head.hash if head is not None else GENESIS_HASH,
        hash="",
    )
    return replace(unhashed, hash=unhashed.recomputed_hash())


def _after(draft: EntryDraft, last: LedgerEntry | None, vt: str) -> tuple[str | None, str | None]:
    """Holder and regievoerder once the draft is applied, or the reason it cannot be."""
    holder = last.holder if last is not None else None
    ref = draft.case_ref
    match draft.kind:
        case EntryKind.VEILIGHEIDSBEOORDELING:
            if holder is not None:
                raise PermanentError(
                    ErrorCode.INVALID_STATE, f"case {ref} is already held by {holder}"
                )
            if draft.by != vt:
                raise PermanentError(
                    ErrorCode.NOT_PERMITTED, "only VT makes a veiligheidsbeoordeling"
                )
            return vt, vt
        case EntryKind.OVERDRACHT_BEVESTIGD:
            if holder != vt:
                raise PermanentError(
                    ErrorCode.INVALID_STATE, f"VT does not hold case {ref}: nothing to confirm"
                )
            if draft.by == vt:
                raise PermanentError(
                    ErrorCode.NOT_PERMITTED, "VT cannot confirm a handover to itself"
                )
            return draft.by, draft.by
    if holder is None or last is None:
        raise PermanentError(ErrorCode.INVALID_STATE, f"case {ref} is not open")
    if draft.by != holder:
        raise PermanentError(
            ErrorCode.NOT_PERMITTED, f"only the holder of case {ref} may report this"
        )
    match draft.kind:
        case EntryKind.TERUG_NAAR_VT:
            if holder == vt:
                raise PermanentError(ErrorCode.INVALID_STATE, f"VT already holds case {ref}")
            return vt, vt
        case EntryKind.REGIE_GEWIJZIGD:
            return holder, draft.regievoerder
        case EntryKind.AFGESLOTEN:
            return None, None
    raise AssertionError(f"unhandled kind {draft.kind}")  # pragma: no cover


class ResponsibilityLedger:
    """Append-only, in memory: the chained entries and who holds each case.

    `vt` is VT's own party id. Transitions (codes from PROTOCOL.md):
    a veiligheidsbeoordeling opens a case nobody holds (INVALID_STATE if held);
    a confirmation needs VT to hold the case (INVALID_STATE);
    a case.return, regie.change or closing comes from the current holder
    (NOT_PERMITTED) of an open case (INVALID_STATE).
    """

    def __init__(self, entries: Iterable[LedgerEntry] = (), *, vt: str = VEILIG_THUIS) -> None:
        self.vt = vt
        self._entries: list[LedgerEntry] = []
        self._by_case: dict[str, list[LedgerEntry]] = {}
        stored = list(entries)
        broken = verify_chain(stored)
        if broken is not None:
            raise BrokenLedgerError(broken)
        for entry in stored:
            self._keep(entry)

    @property
    def entries(self) -> tuple[LedgerEntry, ...]:
        return tuple(self._entries)

    @property
    def head_hash(self) -> str:
        """The hash of the last entry (the genesis value when empty): keep it apart."""
        return self._entries[-1].hash if self._entries else GENESIS_HASH

    def append(self, draft: EntryDraft) -> LedgerEntry:
        """Check the transition, then number, chain and keep the entry."""
        history = self._by_case.get(draft.case_ref, [])
        head = self._entries[-1] if self._entries else None
        entry = chain_entry(
            draft, case_last=history[-1] if history else None, head=head, vt=self.vt
        )
        self._keep(entry)
        return entry

    def _keep(self, entry: LedgerEntry) -> None:
        self._entries.append(entry)
        self._by_case.setdefault(entry.case_ref, []).append(entry)

    def history(self, case_ref: str) -> tuple[LedgerEntry, ...]:
        """Every entry of the case, oldest first."""
        return tuple(self._by_case.get(case_ref, ()))

    def holder(self, case_ref: str) -> str | None:
        """Who holds the case now, or None (never opened, or closed)."""
        history = self._by_case.get(case_ref)
        return history[-1].holder if history else None

    def regievoerder(self, case_ref: str) -> str | None:
        """Who directs the case now, or None."""
        history = self._by_case.get(case_ref)
        return history[-1].regievoerder if history else None

    def entry_at(self, case_ref: str, moment: datetime) -> LedgerEntry | None:
        """The entry in force at `moment`: the last one at or before it."""
        history = self._by_case.get(case_ref, [])
        index = bisect.bisect_right(history, _aware(moment), key=lambda entry: entry.at)
        return history[index - 1] if index else None

    def holder_at(self, case_ref: str, moment: datetime) -> str | None:
        """Who held the case at `moment`; an entry holds from its own moment on."""
        entry = self.entry_at(case_ref, moment)
        return entry.holder if entry is not None else None

    def held_by_vt_past(self, deadlines: Mapping[str, datetime], now: datetime) -> list[str]:
        """The cases VT still holds at `now` although their deadline has passed, earliest first."""
        late = [
            (deadline, case_ref)
            for case_ref, deadline in deadlines.items()
            if _aware(deadline) < _aware(now) and self.holder_at(case_ref, now) == self.vt
        ]
        return [case_ref for _, case_ref in sorted(late)]
