"""The overdracht's lifecycle: who may move it, when, and what it proves (§8, §8.5 C, D)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.handover import (
    Moment,
    Overdracht,
    OverdrachtState,
    confirmation_overdue,
    on_bounce,
    on_confirmation,
    on_deferral,
    on_notice,
    on_receipt,
    on_undeliverable,
    on_withdrawal,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TERM = date(2026, 3, 9)
TEAM = "lt-tiel"
OTHER = "lt-nijmegen"


def later(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def handover() -> Overdracht:
    return on_notice(
        id="0d6c1f7e-0000-4000-8000-000000000001",
        case_ref="VT-2026-00042",
        gemeente="GM0281",
        moment=Moment.C,
        recipient=TEAM,
        advised_term=TERM,
        at=T0,
    )


def delivered() -> Overdracht:
    return on_receipt(handover(), sender=TEAM, message_id="r1", at=later(1))


def confirmed() -> Overdracht:
    return on_confirmation(delivered(), sender=TEAM, message_id="c1", at=later(2))


def withdrawn() -> Overdracht:
    return on_withdrawal(delivered(), message_id="w1", at=later(2), reason="wrong team")


def deferred(new_date: date = date(2026, 3, 20)) -> Overdracht:
    return on_deferral(
        delivered(),
        sender=TEAM,
        message_id="d1",
        at=later(2),
        new_date=new_date,
        reason="no capacity this week",
    )


def refused(code: ErrorCode, excinfo: pytest.ExceptionInfo[PermanentError]) -> bool:
    return excinfo.value.code is code


def test_a_new_handover_waits_for_its_receipt_with_vt_responsible() -> None:
    """§8.2: VT holds zicht op veiligheid from the notice until the confirmation."""
    overdracht = handover()
    assert overdracht.state is OverdrachtState.NOTICE_SENT
    assert not overdracht.responsibility_moved
    assert [step.state for step in overdracht.history] == [OverdrachtState.NOTICE_SENT]


def test_the_recipients_receipt_delivers_the_handover() -> None:
    """PROTOCOL.md level 2: the recipient's receipt makes the notice delivered."""
    overdracht = delivered()
    assert overdracht.state is OverdrachtState.DELIVERED
    assert overdracht.history[-1].evidence["message_id"] == "r1"


def test_a_late_receipt_moves_nothing_and_raises_nothing() -> None:
    """PROTOCOL.md: receipts are never answered, and a final state stays final."""
    for overdracht in (confirmed(), withdrawn(), deferred()):
        assert on_receipt(overdracht, sender=TEAM, message_id="r2", at=later(5)) == overdracht


def test_a_receipt_from_another_party_is_not_permitted() -> None:
    """PROTOCOL.md: only the recipient receipts what it received."""
    with pytest.raises(PermanentError) as excinfo:
        on_receipt(handover(), sender=OTHER, message_id="r1", at=later(1))
    assert refused(ErrorCode.NOT_PERMITTED, excinfo)


def test_the_recipients_confirmation_moves_responsibility() -> None:
    """§8.5 D: from the confirmation on the team is responsible for case management."""
    overdracht = confirmed()
    assert overdracht.state is OverdrachtState.CONFIRMED
    assert overdracht.state.final
    assert overdracht.responsibility_moved
    assert overdracht.confirmed_at == later(2)
    assert overdracht.history[-1].evidence == {"message_id": "c1", "sender": TEAM}


def test_a_confirmation_before_the_receipt_implies_delivery() -> None:
    """PROTOCOL.md: a business answer proves delivery even when the receipt is late."""
    overdracht = on_confirmation(handover(), sender=TEAM, message_id="c1", at=later(1))
    assert overdracht.state is OverdrachtState.CONFIRMED


def test_a_confirmation_from_another_party_moves_nothing() -> None:
    """PROTOCOL.md: only the recipient of that overdracht confirms it (NOT_PERMITTED)."""
    before = delivered()
    with pytest.raises(PermanentError) as excinfo:
        on_confirmation(before, sender=OTHER, message_id="c1", at=later(2))
    assert refused(ErrorCode.NOT_PERMITTED, excinfo)
    assert excinfo.value.rejection.pointer == "/sender"
    assert before.state is OverdrachtState.DELIVERED


def test_a_second_confirmation_is_invalid_state() -> None:
    """PROTOCOL.md, error codes: a handover is confirmed once (INVALID_STATE)."""
    with pytest.raises(PermanentError) as excinfo:
        on_confirmation(confirmed(), sender=TEAM, message_id="c2", at=later(3))
    assert refused(ErrorCode.INVALID_STATE, excinfo)


def test_a_confirmation_after_withdrawal_is_invalid_state() -> None:
    """PROTOCOL.md, error codes: nothing confirms a withdrawn handover (INVALID_STATE)."""
    with pytest.raises(PermanentError) as excinfo:
        on_confirmation(withdrawn(), sender=TEAM, message_id="c1", at=later(3))
    assert refused(ErrorCode.INVALID_STATE, excinfo)


def test_a_confirmation_of_an_undeliverable_handover_is_invalid_state() -> None:
    """Undeliverable is final: VT sends a new notice instead."""
    gone = on_undeliverable(handover(), message_id="n1", at=later(48))
    with pytest.raises(PermanentError) as excinfo:
        on_confirmation(gone, sender=TEAM, message_id="c1", at=later(49))
    assert refused(ErrorCode.INVALID_STATE, excinfo)


def test_the_confirmation_is_due_by_the_advised_term() -> None:
    """§8.5 C: the case is picked up within the term VT advised."""
    overdracht = delivered()
    assert overdracht.deadline == TERM
    assert not confirmation_overdue(overdracht, today=TERM)
    assert confirmation_overdue(overdracht, today=TERM + timedelta(days=1))


def test_a_deferral_sets_the_new_deadline() -> None:
    """§8.5 C: a reasoned decision with a new date moves the deadline, not responsibility."""
    overdracht = deferred(date(2026, 3, 20))
    assert overdracht.state is OverdrachtState.DEFERRED
    assert not overdracht.state.final
    assert not overdracht.responsibility_moved
    assert overdracht.deadline == date(2026, 3, 20)
    assert not confirmation_overdue(overdracht, today=date(2026, 3, 20))
    assert overdracht.history[-1].evidence["new_date"] == "2026-03-20"


def test_a_deferred_handover_may_be_deferred_again_with_a_later_date() -> None:
    """§8.5 C: each new reasoned decision names its own new date."""
    again = on_deferral(
        deferred(date(2026, 3, 20)),
        sender=TEAM,
        message_id="d2",
        at=later(100),
        new_date=date(2026, 4, 3),
        reason="the regisseur is ill",
    )
    assert again.deadline == date(2026, 4, 3)
    assert [step.state for step in again.history][-2:] == [OverdrachtState.DEFERRED] * 2


def test_a_deferred_handover_is_then_confirmed() -> None:
    """§8.5 C, D: the deferral ends with the confirmation."""
    overdracht = on_confirmation(deferred(), sender=TEAM, message_id="c1", at=later(200))
    assert overdracht.state is OverdrachtState.CONFIRMED
    assert not confirmation_overdue(overdracht, today=date(2027, 1, 1))


def test_a_deferral_that_does_not_move_the_deadline_is_refused() -> None:
    """§8.5 C: a deferral names a date after the term it cannot keep."""
    with pytest.raises(PermanentError) as excinfo:
        deferred(TERM)
    assert refused(ErrorCode.SCHEMA_INVALID, excinfo)
    assert excinfo.value.rejection.pointer == "/body/nieuwe_datum"


def test_a_deferral_without_reasons_is_refused() -> None:
    """§8.5 C: the decision is a reasoned one."""
    with pytest.raises(PermanentError) as excinfo:
        on_deferral(
            delivered(),
            sender=TEAM,
            message_id="d1",
            at=later(2),
            new_date=date(2026, 4, 1),
            reason=" ",
        )
    assert refused(ErrorCode.SCHEMA_INVALID, excinfo)


def test_a_deferral_from_another_party_is_not_permitted() -> None:
    """PROTOCOL.md: only the recipient answers its handover."""
    with pytest.raises(PermanentError) as excinfo:
        on_deferral(
            delivered(),
            sender=OTHER,
            message_id="d1",
            at=later(2),
            new_date=date(2026, 4, 1),
            reason="x",
        )
    assert refused(ErrorCode.NOT_PERMITTED, excinfo)


def test_a_deferral_after_confirmation_is_invalid_state() -> None:
    """§8.5 D: once confirmed, the team has the case; there is nothing left to defer."""
    with pytest.raises(PermanentError) as excinfo:
        on_deferral(
            confirmed(),
            sender=TEAM,
            message_id="d1",
            at=later(3),
            new_date=date(2026, 4, 1),
            reason="x",
        )
    assert refused(ErrorCode.INVALID_STATE, excinfo)


def test_vt_withdraws_an_open_handover_for_good() -> None:
    """PROTOCOL.md catalogue: VT withdraws the handover; withdrawn is final."""
    overdracht = withdrawn()
    assert overdracht.state is OverdrachtState.WITHDRAWN
    assert overdracht.state.final
    assert not confirmation_overdue(overdracht, today=date(2027, 1, 1))
    assert overdracht.history[-1].evidence["reason"] == "wrong team"


def test_a_confirmed_handover_cannot_be_withdrawn() -> None:
    """§8.5 D: responsibility has moved; a withdrawal comes too late (INVALID_STATE)."""
    with pytest.raises(PermanentError) as excinfo:
        on_withdrawal(confirmed(), message_id="w1", at=later(3))
    assert refused(ErrorCode.INVALID_STATE, excinfo)


def test_a_notice_without_receipt_becomes_undeliverable_and_final() -> None:
    """PROTOCOL.md: no receipt within the attempt limit: undeliverable, VT still responsible."""
    overdracht = on_undeliverable(handover(), message_id="n1", at=later(48))
    assert overdracht.state is OverdrachtState.UNDELIVERABLE
    assert overdracht.state.final
    assert not overdracht.responsibility_moved


def test_a_bounced_mail_gives_up_a_delivered_handover_but_not_a_confirmed_one() -> None:
    """The bridge's receipt only says the mail server took the mail: a bounce after it proves
    the team never got the notice (undeliverable, VT keeps the case); after the team's
    confirmation a bounce changes nothing (INVALID_STATE)."""
    given_up = on_bounce(delivered(), message_id="n1", at=later(2))
    assert given_up.state is OverdrachtState.UNDELIVERABLE
    assert not given_up.responsibility_moved
    confirmed = on_confirmation(delivered(), sender=TEAM, message_id="c1", at=later(3))
    with pytest.raises(PermanentError) as excinfo:
        on_bounce(confirmed, message_id="n1", at=later(4))
    assert refused(ErrorCode.INVALID_STATE, excinfo)


def test_a_delivered_handover_cannot_become_undeliverable() -> None:
    """A stale delivery timer after the receipt is INVALID_STATE."""
    with pytest.raises(PermanentError) as excinfo:
        on_undeliverable(delivered(), message_id="n1", at=later(48))
    assert refused(ErrorCode.INVALID_STATE, excinfo)


def test_the_history_keeps_every_transition_in_order() -> None:
    """DESIGN.md: the gateway can prove who held the case at any moment."""
    overdracht = on_confirmation(deferred(), sender=TEAM, message_id="c1", at=later(200))
    assert [(step.state, step.at) for step in overdracht.history] == [
        (OverdrachtState.NOTICE_SENT, T0),
        (OverdrachtState.DELIVERED, later(1)),
        (OverdrachtState.DEFERRED, later(2)),
        (OverdrachtState.CONFIRMED, later(200)),
    ]


def test_an_overdracht_is_immutable() -> None:
    """DESIGN.md: domain values are frozen; every event returns a new one."""
    overdracht = handover()
    with pytest.raises(FrozenInstanceError):
        overdracht.state = OverdrachtState.CONFIRMED  # type: ignore[misc]


def test_only_confirmed_withdrawn_and_undeliverable_are_final() -> None:
    """The lifecycle's end states; deferred still waits for the confirmation."""
    assert {s for s in OverdrachtState if s.final} == {
        OverdrachtState.CONFIRMED,
        OverdrachtState.WITHDRAWN,
        OverdrachtState.UNDELIVERABLE,
    }
