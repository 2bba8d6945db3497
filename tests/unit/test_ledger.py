"""The responsibility ledger: who held each case at any moment, hash-chained (§7.1 C, §8)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.ledger import (
    GENESIS_HASH,
    UNLINKED,
    VEILIG_THUIS,
    BrokenLedgerError,
    EntryDraft,
    EntryKind,
    Evidence,
    LedgerEntry,
    ResponsibilityLedger,
    chain_entry,
    decided_entry,
    linked,
    verify_chain,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 3, 2, 10, 15, tzinfo=AMSTERDAM)
VT = VEILIG_THUIS
TEAM = "lt-tiel"
OTHER_TEAM = "lt-culemborg"
CASE = "VT-2026-000123"
TIEL = "GM0281"
DIGEST = "sha256:" + "ab" * 32
TICK = timedelta(microseconds=1)


def assessed(case_ref: str = CASE, at: datetime = T0) -> EntryDraft:
    return EntryDraft.veiligheidsbeoordeling(case_ref, TIEL, at)


def confirmed(
    case_ref: str = CASE, at: datetime = T0 + timedelta(days=2), by: str = TEAM
) -> EntryDraft:
    return EntryDraft.overdracht_bevestigd(
        case_ref,
        TIEL,
        by,
        at,
        overdracht_id="5c0c1f3e-8a43-4f55-9e3d-6b8e1f0d2a11",
        confirmation_id="0b5e6a8c-6b0f-4a55-8d0e-1c2b3a4d5e6f",
        confirmation_digest=DIGEST,
    )


def returned(
    case_ref: str = CASE, at: datetime = T0 + timedelta(days=60), by: str = TEAM
) -> EntryDraft:
    return EntryDraft.terug_naar_vt(
        case_ref, TIEL, by, at, message_id="7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", digest=DIGEST
    )


def regie_moved(
    regievoerder: str = "moviera",
    case_ref: str = CASE,
    at: datetime = T0 + timedelta(days=30),
    by: str = TEAM,
) -> EntryDraft:
    return EntryDraft.regie_gewijzigd(
        case_ref,
        TIEL,
        by,
        regievoerder,
        at,
        message_id="9a8b7c6d-5e4f-4a3b-8c1d-0e1f2a3b4c5d",
        digest=DIGEST,
    )


def story() -> ResponsibilityLedger:
    """Two cases: one handed over, its regie moved, then returned; one closed by VT."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(assessed("VT-2026-000124", T0 + timedelta(hours=1)))
    ledger.append(confirmed())
    ledger.append(EntryDraft.afgesloten("VT-2026-000124", TIEL, VT, T0 + timedelta(days=3)))
    ledger.append(regie_moved())
    ledger.append(returned())
    return ledger


def refusal(ledger: ResponsibilityLedger, draft: EntryDraft) -> ErrorCode:
    with pytest.raises(PermanentError) as caught:
        ledger.append(draft)
    return caught.value.code


# --- who holds the case ---------------------------------------------------------


def test_vt_holds_the_case_from_its_veiligheidsbeoordeling() -> None:
    """VT is responsible for zicht op veiligheid from its veiligheidsbeoordeling (§8.1)."""
    ledger = ResponsibilityLedger()
    entry = ledger.append(assessed())
    assert (entry.kind, entry.holder, entry.regievoerder) == (
        EntryKind.VEILIGHEIDSBEOORDELING,
        VT,
        VT,
    )
    assert ledger.holder(CASE) == VT


def test_responsibility_stays_with_vt_until_the_confirmation() -> None:
    """VT stays responsible until the handover and its confirmation (§8.2, §8.3)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    confirmation = confirmed()
    assert ledger.holder_at(CASE, confirmation.at) == VT
    ledger.append(confirmation)
    assert ledger.holder_at(CASE, confirmation.at - TICK) == VT


def test_the_confirmation_moves_responsibility_to_the_recipient() -> None:
    """From the moment the team confirms, the team is responsible (§8.5 D)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    entry = ledger.append(confirmed())
    assert (entry.holder, entry.regievoerder) == (TEAM, TEAM)
    assert ledger.holder_at(CASE, entry.at) == TEAM
    assert ledger.holder(CASE) == TEAM


def test_the_confirmation_carries_its_evidence() -> None:
    """The move is proved by the overdracht id and the confirmation's id and digest (§8.5 D)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    entry = ledger.append(confirmed())
    assert dict(entry.evidence) == {
        Evidence.OVERDRACHT_ID: "5c0c1f3e-8a43-4f55-9e3d-6b8e1f0d2a11",
        Evidence.CONFIRMATION_ID: "0b5e6a8c-6b0f-4a55-8d0e-1c2b3a4d5e6f",
        Evidence.CONFIRMATION_DIGEST: DIGEST,
    }


def test_a_confirmation_digest_must_be_a_sha256_digest() -> None:
    """Evidence digests have the form `sha256:` and 64 hex digits (PROTOCOL.md, "Digest")."""
    with pytest.raises(ValueError, match="sha256"):
        EntryDraft.overdracht_bevestigd(
            CASE, TIEL, TEAM, T0, overdracht_id="o", confirmation_id="c", confirmation_digest="x"
        )


def test_a_case_return_moves_responsibility_back_to_vt() -> None:
    """When the team cannot reach lasting safety it asks VT back in: VT holds again (§8.5 F)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(confirmed())
    entry = ledger.append(returned())
    assert (entry.kind, entry.holder, entry.regievoerder, entry.by) == (
        EntryKind.TERUG_NAAR_VT,
        VT,
        VT,
        TEAM,
    )
    assert ledger.holder(CASE) == VT


def test_a_regie_change_records_the_new_regievoerder_without_losing_the_holder() -> None:
    """Casusregie moving away is recorded; the team stays accountable to VT (§7.1 C, §8.5 D)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(confirmed())
    entry = ledger.append(regie_moved("jbg"))
    assert (entry.holder, entry.regievoerder) == (TEAM, "jbg")
    assert (ledger.holder(CASE), ledger.regievoerder(CASE)) == (TEAM, "jbg")


def test_a_regie_change_may_name_an_organisation_outside_the_gateway() -> None:
    """The new regievoerder may be any provider the team placed the regie with (annex 5, §7.1 C)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(confirmed())
    entry = ledger.append(regie_moved("Zorgaanbieder De Linde"))
    assert entry.regievoerder == "Zorgaanbieder De Linde"
    assert ledger.holder(CASE) == TEAM


def test_a_regie_change_names_a_regievoerder() -> None:
    """A regie change without a new regievoerder says nothing (§7.1 C)."""
    with pytest.raises(ValueError, match="regievoerder"):
        regie_moved(" ")


def test_the_holder_may_still_return_the_case_after_the_regie_moved() -> None:
    """The team that confirmed stays the one that can ask VT back in (§8.5 F)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(confirmed())
    ledger.append(regie_moved("moviera"))
    assert ledger.append(returned()).holder == VT


def test_holder_at_answers_for_any_past_moment() -> None:
    """The ledger proves who held the case at any moment, and nobody before its first entry (§8)."""
    ledger = story()
    assert ledger.holder_at(CASE, T0 - TICK) is None
    assert ledger.holder_at(CASE, T0) == VT
    assert ledger.holder_at(CASE, T0 + timedelta(days=1)) == VT
    assert ledger.holder_at(CASE, T0 + timedelta(days=2)) == TEAM
    assert ledger.holder_at(CASE, T0 + timedelta(days=45)) == TEAM
    assert ledger.holder_at(CASE, T0 + timedelta(days=60)) == VT
    assert ledger.holder_at("VT-2026-000124", T0 + timedelta(days=3)) is None
    assert ledger.holder_at("VT-2099-999999", T0) is None


def test_holder_at_reads_a_moment_in_any_offset() -> None:
    """A moment is an instant: the same one in UTC gives the same holder (DOMAIN.md, "Time")."""
    ledger = story()
    moment = (T0 + timedelta(days=2)).astimezone(UTC)
    assert ledger.holder_at(CASE, moment) == TEAM
    assert ledger.holder_at(CASE, moment - TICK) == VT


def test_history_lists_the_entries_of_one_case_oldest_first() -> None:
    """A case's history is its own entries in order (§8)."""
    kinds = [entry.kind for entry in story().history(CASE)]
    assert kinds == [
        EntryKind.VEILIGHEIDSBEOORDELING,
        EntryKind.OVERDRACHT_BEVESTIGD,
        EntryKind.REGIE_GEWIJZIGD,
        EntryKind.TERUG_NAAR_VT,
    ]
    assert story().history("VT-2099-999999") == ()


def test_vt_held_past_deadline_lists_exactly_the_open_ones() -> None:
    """The cases VT still holds past their deadline, earliest deadline first (§8.1, §8.5 C)."""
    ledger = ResponsibilityLedger()
    for ref in ("handed-over", "late", "late-earlier", "in-time", "closed", "returned"):
        ledger.append(assessed(ref))
    ledger.append(confirmed("handed-over"))
    ledger.append(EntryDraft.afgesloten("closed", TIEL, VT, T0 + timedelta(days=1)))
    ledger.append(confirmed("returned"))
    ledger.append(returned("returned"))
    now = T0 + timedelta(days=70)
    deadlines = {
        "handed-over": T0 + timedelta(days=5),
        "late": T0 + timedelta(days=7),
        "late-earlier": T0 + timedelta(days=5),
        "in-time": now + timedelta(days=1),
        "closed": T0 + timedelta(days=5),
        "returned": T0 + timedelta(days=65),
        "never-seen": T0,
    }
    assert ledger.held_by_vt_past(deadlines, now) == ["late-earlier", "late", "returned"]


def test_a_deadline_at_this_very_moment_has_not_passed() -> None:
    """A case is late only after its deadline (§8.1)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    assert ledger.held_by_vt_past({CASE: T0 + timedelta(days=5)}, T0 + timedelta(days=5)) == []


# --- transitions the ledger refuses ------------------------------------------------


def test_a_confirmation_for_a_case_not_held_by_vt_is_invalid_state() -> None:
    """Only a case VT holds can be confirmed over (§8.5 D; PROTOCOL.md INVALID_STATE)."""
    ledger = ResponsibilityLedger()
    assert refusal(ledger, confirmed()) is ErrorCode.INVALID_STATE
    ledger.append(assessed())
    ledger.append(confirmed())
    assert refusal(ledger, confirmed(by=OTHER_TEAM)) is ErrorCode.INVALID_STATE


def test_vt_cannot_confirm_a_handover_to_itself() -> None:
    """The confirmation comes from the receiving party (§8.5 D)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    assert refusal(ledger, confirmed(by=VT)) is ErrorCode.NOT_PERMITTED


def test_a_veiligheidsbeoordeling_of_a_held_case_is_invalid_state() -> None:
    """A veiligheidsbeoordeling opens a case nobody holds (§8.1)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    assert refusal(ledger, assessed(at=T0 + TICK)) is ErrorCode.INVALID_STATE
    ledger.append(confirmed())
    assert refusal(ledger, assessed(at=T0 + timedelta(days=3))) is ErrorCode.INVALID_STATE


def test_a_closed_case_is_opened_again_by_a_new_veiligheidsbeoordeling() -> None:
    """After closing nobody holds the case, so a new assessment may open it (§8.1)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(EntryDraft.afgesloten(CASE, TIEL, VT, T0 + timedelta(days=1)))
    assert ledger.holder(CASE) is None
    assert ledger.append(assessed(at=T0 + timedelta(days=9))).holder == VT


def test_only_vt_makes_a_veiligheidsbeoordeling() -> None:
    """The veiligheidsbeoordeling is VT's own act (§8.1)."""
    ledger = ResponsibilityLedger()
    draft = EntryDraft.veiligheidsbeoordeling(CASE, TIEL, T0, vt=TEAM)
    assert refusal(ledger, draft) is ErrorCode.NOT_PERMITTED


def test_a_case_return_from_anyone_but_the_holder_is_not_permitted() -> None:
    """Only the team that holds the case can ask VT back in (§8.5 F)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(confirmed())
    assert refusal(ledger, returned(by=OTHER_TEAM)) is ErrorCode.NOT_PERMITTED


def test_a_case_return_while_vt_holds_is_refused() -> None:
    """Before the confirmation the team holds nothing to return (§8.2, §8.5 F)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    assert refusal(ledger, returned()) is ErrorCode.NOT_PERMITTED
    assert refusal(ledger, returned(by=VT)) is ErrorCode.INVALID_STATE


def test_a_case_return_for_a_case_nobody_holds_is_invalid_state() -> None:
    """A case that is not open cannot be returned (§8.5 F)."""
    assert refusal(ResponsibilityLedger(), returned()) is ErrorCode.INVALID_STATE


def test_a_regie_change_from_anyone_but_the_holder_is_not_permitted() -> None:
    """The team that holds the case reports where its regie went (§7.1 C)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(confirmed())
    assert refusal(ledger, regie_moved(by=OTHER_TEAM)) is ErrorCode.NOT_PERMITTED


def test_only_the_holder_closes_a_case() -> None:
    """Closing ends the holder's own responsibility, nobody else's (§8.5 D)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    ledger.append(confirmed())
    draft = EntryDraft.afgesloten(CASE, TIEL, VT, T0 + timedelta(days=3))
    assert refusal(ledger, draft) is ErrorCode.NOT_PERMITTED


def test_a_refused_transition_leaves_the_ledger_unchanged() -> None:
    """A refusal appends nothing and moves nothing (§8.5 D)."""
    ledger = story()
    before = ledger.entries
    refusal(ledger, returned(by=OTHER_TEAM, at=T0 + timedelta(days=61)))
    assert ledger.entries == before
    assert ledger.holder(CASE) == VT


def test_entries_of_a_case_go_forward_in_time() -> None:
    """A case's entries are in time order, so holder_at has one answer (DESIGN.md, clock)."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    with pytest.raises(ValueError, match="forward in time"):
        ledger.append(confirmed(at=T0 - TICK))


def test_moments_must_be_timezone_aware() -> None:
    """A moment without a zone is no moment (DOMAIN.md, "Time")."""
    with pytest.raises(ValueError, match="timezone-aware"):
        assessed(at=datetime(2026, 3, 2, 10, 15))


def test_entries_are_frozen() -> None:
    """A written entry cannot change, its evidence neither (DESIGN.md, append-only)."""
    entry = story().entries[2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.holder = VT  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry.evidence[Evidence.OVERDRACHT_ID] = "x"  # type: ignore[index]


# --- the chain ---------------------------------------------------------------------


def test_entries_are_numbered_and_linked_from_the_genesis_hash() -> None:
    """The first entry follows the genesis value, each next one its predecessor (DESIGN.md)."""
    entries = story().entries
    assert [entry.sequence for entry in entries] == list(range(1, len(entries) + 1))
    assert entries[0].previous_hash == GENESIS_HASH == "sha256:" + "0" * 64
    for before, after in itertools.pairwise(entries):
        assert after.previous_hash == before.hash


def test_an_entry_hash_is_sha256_of_its_canonical_fields() -> None:
    """The hash is `sha256:` over RFC 8785 of every field but the hash itself (DESIGN.md)."""
    entry = story().entries[2]
    fields: dict[str, Any] = {
        "sequence": 3,
        "case_ref": CASE,
        "gemeente": TIEL,
        "kind": "overdracht_bevestigd",
        "by": TEAM,
        "holder": TEAM,
        "regievoerder": TEAM,
        "at": "2026-03-04T09:15:00.000000Z",
        "evidence": dict(entry.evidence),
        "previous_hash": entry.previous_hash,
    }
    expected = "sha256:" + hashlib.sha256(rfc8785.dumps(fields)).hexdigest()
    assert entry.hash == expected


def test_the_hash_does_not_depend_on_the_offset_a_moment_was_written_in() -> None:
    """One instant, one hash: moments are hashed in UTC (DOMAIN.md, "Time")."""
    entry = story().entries[0]
    assert dataclasses.replace(entry, at=entry.at.astimezone(UTC)).recomputed_hash() == entry.hash


def test_the_chain_verifies() -> None:
    """A ledger's own entries form a whole chain (DESIGN.md, hash-chained)."""
    assert verify_chain(story().entries) is None
    assert verify_chain([]) is None


def test_verification_continues_after_a_trusted_entry() -> None:
    """A chain can be verified page by page from an entry already trusted (DESIGN.md)."""
    entries = story().entries
    assert verify_chain(entries[3:], after=entries[2]) is None
    assert verify_chain(entries[4:], after=entries[2]) == entries[4].sequence


def _other_party(value: str | None, shift: int) -> str:
    return f"party-{shift}" if value is None else f"{value}{shift}"


def _other_evidence(value: Any, shift: int) -> dict[str, str]:
    if shift % 2 or not value:
        return {**value, "extra": str(shift)}
    return {k: v + "0" for k, v in value.items()}


def _other_kind(value: EntryKind, shift: int) -> EntryKind:
    kinds = list(EntryKind)
    return kinds[(kinds.index(value) + shift) % len(kinds)]


def _other_hash(value: str, shift: int) -> str:
    return "sha256:" + hashlib.sha256(f"{value}{shift}".encode()).hexdigest()


ALTERATIONS: dict[str, Any] = {
    "sequence": lambda value, shift: value + shift,
    "kind": _other_kind,
    "at": lambda value, shift: value + TICK * shift,
    "evidence": _other_evidence,
    "hash": _other_hash,
    "previous_hash": _other_hash,
}


def _altered(value: Any, name: str, shift: int) -> Any:
    """A different value of the same kind for the field `name`."""
    return ALTERATIONS.get(name, _other_party)(value, shift)


FIELDS = [field.name for field in dataclasses.fields(LedgerEntry)]


@given(
    index=st.integers(min_value=0, max_value=5),
    name=st.sampled_from(FIELDS),
    shift=st.integers(min_value=1, max_value=3),
)
def test_altering_any_single_field_of_any_entry_breaks_the_chain_at_that_entry(
    index: int, name: str, shift: int
) -> None:
    """Changing one field of one entry makes verification stop at that entry (DESIGN.md)."""
    entries = list(story().entries)
    target = entries[index]
    entries[index] = dataclasses.replace(
        target, **{name: _altered(getattr(target, name), name, shift)}
    )
    assert verify_chain(entries) == target.sequence


@given(index=st.integers(min_value=0, max_value=4))
def test_removing_an_entry_is_caught_at_the_next_one(index: int) -> None:
    """A removed entry leaves a gap the following entry shows (DESIGN.md, tampering shows)."""
    entries = list(story().entries)
    del entries[index]
    assert verify_chain(entries) == index + 2


@given(index=st.integers(min_value=0, max_value=4))
def test_swapping_two_entries_is_caught(index: int) -> None:
    """Entries out of order break the chain where the first one is out of place (DESIGN.md)."""
    entries = list(story().entries)
    entries[index], entries[index + 1] = entries[index + 1], entries[index]
    assert verify_chain(entries) == index + 2


def test_a_repeated_entry_is_caught() -> None:
    """An entry inserted twice does not follow its own copy (DESIGN.md, tampering shows)."""
    entries = list(story().entries)
    entries.insert(3, entries[2])
    assert verify_chain(entries) == 3


def test_a_ledger_rebuilt_from_its_entries_continues_the_chain() -> None:
    """Stored entries load back and the next entry links to the last one (DESIGN.md)."""
    original = story()
    rebuilt = ResponsibilityLedger(original.entries)
    assert rebuilt.holder(CASE) == VT
    entry = rebuilt.append(confirmed(at=T0 + timedelta(days=62)))
    assert (entry.sequence, entry.previous_hash) == (7, original.head_hash)
    assert verify_chain(rebuilt.entries) is None


def test_a_ledger_refuses_to_build_on_a_broken_chain() -> None:
    """Tampered stored entries stop the ledger where they break (DESIGN.md, tampering shows)."""
    entries = list(story().entries)
    entries[1] = dataclasses.replace(entries[1], holder=TEAM)
    with pytest.raises(BrokenLedgerError) as caught:
        ResponsibilityLedger(entries)
    assert caught.value.sequence == 2


def test_an_empty_ledger_has_the_genesis_head() -> None:
    """Nothing written yet: the head is the genesis value (DESIGN.md)."""
    assert ResponsibilityLedger().head_hash == GENESIS_HASH


def test_an_entry_decided_on_its_case_alone_links_to_what_chain_entry_gives() -> None:
    """Deciding (the case's history) and linking (the chain's head) are two steps: a store
    decides while holding only the case and links at commit, to the same entry."""
    ledger = ResponsibilityLedger()
    ledger.append(assessed())
    other = ledger.append(assessed("VT-2026-000124", T0 + timedelta(hours=1)))
    case_last = ledger.history(CASE)[-1]
    decided = decided_entry(confirmed(), case_last=case_last)
    assert (decided.sequence, decided.previous_hash, decided.hash) == (UNLINKED, "", "")
    assert (decided.holder, decided.regievoerder) == (TEAM, TEAM)
    entry = linked(decided, other)
    assert entry == chain_entry(confirmed(), case_last=case_last, head=other)
    assert (entry.sequence, entry.previous_hash) == (other.sequence + 1, other.hash)
    assert verify_chain([*ledger.entries, entry]) is None
    first = linked(decided_entry(assessed(), case_last=None), None)
    assert (first.sequence, first.previous_hash) == (1, GENESIS_HASH)


def test_deciding_refuses_what_the_cases_history_does_not_allow() -> None:
    """The rules are the case's: a confirmation of a case VT does not hold is refused before
    anything is linked."""
    with pytest.raises(PermanentError) as refused:
        decided_entry(confirmed(), case_last=None)
    assert refused.value.code is ErrorCode.INVALID_STATE
