"""The overdracht (handover) and its lifecycle (§8, §8.5 C and D; PROTOCOL.md, catalogue).

VT stays responsible for zicht op veiligheid until the recipient has confirmed
the handover (§8.2, §8.3); from the confirmation on, the recipient is
responsible for process and case management (§8.5 D). The recipient picks the
case up within the term VT advised, unless it takes a reasoned decision why it
cannot, with a new date (§8.5 C): a deferral, which does not confirm.

    notice_sent --receipt--> delivered --confirmation--> confirmed (final)
        |                        |  ^
        |                        |  +-- deferral (again, each with a new date)
        |                        +--deferral--> deferred --confirmation--> confirmed
        +-- (any state before confirmed) --withdrawal--> withdrawn (final)
        +-- no receipt within the attempt limit --> undeliverable (final)

A confirmation or deferral before the receipt is fine: it implies delivery.
Each event is one pure function that returns the new `Overdracht` or raises a
`PermanentError`: `NOT_PERMITTED` when the sender is not the overdracht's
recipient, `INVALID_STATE` when the overdracht's state does not admit it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from gateway.domain.errors import ErrorCode, PermanentError


class Moment(StrEnum):
    """When VT hands the case over (§8)."""

    A = "A"  # after the veiligheidsbeoordeling: written handover (§8.1)
    B = "B"  # after onderzoek: warm handover (§8.2)
    C = "C"  # after voorwaarden en vervolg: warm handover (§8.3)


class OverdrachtState(StrEnum):
    """Where a handover stands; a final state never changes again."""

    NOTICE_SENT = "notice_sent"  # VT's overdracht.notice is on its way
    DELIVERED = "delivered"  # the recipient's receipt arrived
    DEFERRED = "deferred"  # a reasoned decision with a new date (§8.5 C); VT still responsible
    CONFIRMED = "confirmed"  # the recipient took the case over (§8.5 D)
    WITHDRAWN = "withdrawn"  # VT withdrew the handover
    UNDELIVERABLE = "undeliverable"  # no receipt within the contract's attempt limit

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {OverdrachtState.CONFIRMED, OverdrachtState.WITHDRAWN, OverdrachtState.UNDELIVERABLE}
)
_OPEN = frozenset(
    {OverdrachtState.NOTICE_SENT, OverdrachtState.DELIVERED, OverdrachtState.DEFERRED}
)


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of a handover's history: the state it reached, when, and the evidence."""

    state: OverdrachtState
    at: datetime
    evidence: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Overdracht:
    """One handover of a case by VT to a recipient, with the history that proves it.

    `id` is the id of the overdracht.notice (the thread); `advised_term` is the
    notice's `geadviseerde_termijn.uiterlijk`; `deferred_to` the new date of the
    latest deferral, if any.
    """

    id: str
    case_ref: str
    gemeente: str
    moment: Moment
    recipient: str
    advised_term: date
    state: OverdrachtState
    history: tuple[Transition, ...]
    deferred_to: date | None = None

    @property
    def deadline(self) -> date:
        """The last day for the confirmation: the advised term, or the latest deferral's date."""
        return self.deferred_to if self.deferred_to is not None else self.advised_term

    @property
    def responsibility_moved(self) -> bool:
        """True once the recipient confirmed: until then VT holds zicht op veiligheid (§8.2)."""
        return self.state is OverdrachtState.CONFIRMED

    @property
    def confirmed_at(self) -> datetime | None:
        """When the confirmation arrived: the start of the monitoring terms (§7.1 B)."""
        for step in self.history:
            if step.state is OverdrachtState.CONFIRMED:
                return step.at
        return None


def on_notice(
    *,
    id: str,
    case_ref: str,
    gemeente: str,
    moment: Moment,
    recipient: str,
    advised_term: date,
    at: datetime,
) -> Overdracht:
    """VT's overdracht.notice was accepted and queued: the handover begins, VT responsible."""
    return Overdracht(
        id=id,
        case_ref=case_ref,
        gemeente=gemeente,
        moment=moment,
        recipient=recipient,
        advised_term=advised_term,
        state=OverdrachtState.NOTICE_SENT,
        history=(Transition(OverdrachtState.NOTICE_SENT, at, {"message_id": id}),),
    )


def on_receipt(overdracht: Overdracht, *, sender: str, message_id: str, at: datetime) -> Overdracht:
    """The recipient's receipt of the notice: delivered.

    A late receipt (after a confirmation, deferral, withdrawal or after the
    handover was given up as undeliverable) moves nothing and raises nothing:
    receipts are never answered (PROTOCOL.md), and a final state stays final.
    """
    _check_sender(overdracht, sender, "receipt")
    if overdracht.state is not OverdrachtState.NOTICE_SENT:
        return overdracht
    return _move(overdracht, OverdrachtState.DELIVERED, at, message_id=message_id, sender=sender)


def on_confirmation(
    overdracht: Overdracht, *, sender: str, message_id: str, at: datetime
) -> Overdracht:
    """The recipient's overdracht.confirmation: responsibility moves to it (§8.5 D).

    Only from the recipient of this overdracht (else NOT_PERMITTED); only once,
    and never after a withdrawal or once undeliverable (else INVALID_STATE).
    """
    _check_sender(overdracht, sender, "overdracht.confirmation")
    _check_open(overdracht, "overdracht.confirmation")
    return _move(overdracht, OverdrachtState.CONFIRMED, at, message_id=message_id, sender=sender)


def on_deferral(
    overdracht: Overdracht,
    *,
    sender: str,
    message_id: str,
    at: datetime,
    new_date: date,
    reason: str,
) -> Overdracht:
    """The recipient's reasoned decision why not within the term, with a new date (§8.5 C).

    The new date becomes the deadline of the confirmation. It must lie after
    the current deadline (else it defers nothing: SCHEMA_INVALID at
    /body/nieuwe_datum), and the decision must give its reasons
    (/body/beargumenteerd_besluit). VT stays responsible until the confirmation.
    """
    _check_sender(overdracht, sender, "overdracht.deferral")
    _check_open(overdracht, "overdracht.deferral")
    if not reason.strip():
        raise PermanentError(
            ErrorCode.SCHEMA_INVALID,
            "a deferral is a reasoned decision: the reasons are missing",
            "/body/beargumenteerd_besluit",
        )
    if new_date <= overdracht.deadline:
        raise PermanentError(
            ErrorCode.SCHEMA_INVALID,
            "the new date of a deferral must lie after the current deadline",
            "/body/nieuwe_datum",
        )
    moved = _move(
        overdracht,
        OverdrachtState.DEFERRED,
        at,
        message_id=message_id,
        sender=sender,
        new_date=new_date.isoformat(),
        reason=reason,
    )
    return replace(moved, deferred_to=new_date)


def on_withdrawal(
    overdracht: Overdracht, *, message_id: str, at: datetime, reason: str = ""
) -> Overdracht:
    """VT withdraws the handover (final); not once it is confirmed, withdrawn or undeliverable.

    Only VT sends an overdracht.withdrawal: its contract says so, and the
    pipeline authorises the type before this runs.
    """
    _check_open(overdracht, "overdracht.withdrawal")
    evidence = {"reason": reason} if reason else {}
    return _move(overdracht, OverdrachtState.WITHDRAWN, at, message_id=message_id, **evidence)


def on_undeliverable(overdracht: Overdracht, *, message_id: str, at: datetime) -> Overdracht:
    """The notice got no receipt within the attempt limit (final; raises an alert elsewhere).

    Only from notice_sent: a receipt, confirmation or deferral proves delivery,
    so a stale timer after one of them is INVALID_STATE.
    """
    if overdracht.state is not OverdrachtState.NOTICE_SENT:
        raise PermanentError(
            ErrorCode.INVALID_STATE, f"the handover is {overdracht.state}, not undelivered"
        )
    return _move(overdracht, OverdrachtState.UNDELIVERABLE, at, message_id=message_id)


def on_bounce(overdracht: Overdracht, *, message_id: str, at: datetime) -> Overdracht:
    """The mail carrying the notice bounced (the e-mail bridge's delivery status notification).

    The bridge's receipt says only that the mail server took the mail; a bounce
    after it proves the team never got the notice, so a delivered handover is
    given up too. Not after a confirmation or deferral: the team answered.
    """
    if overdracht.state not in {OverdrachtState.NOTICE_SENT, OverdrachtState.DELIVERED}:
        raise PermanentError(
            ErrorCode.INVALID_STATE, f"the handover is {overdracht.state}, the team answered it"
        )
    return _move(overdracht, OverdrachtState.UNDELIVERABLE, at, message_id=message_id)


def on_deadline_passed(overdracht: Overdracht, *, rule: str, at: datetime) -> Overdracht:
    """Negative evidence: the deadline passed without a confirmation (§8.5 C).

    The state stays as it is (VT still holds the case); the history records
    that the term ran out, and under which rule.
    """
    if overdracht.state.final:
        return overdracht
    step = Transition(overdracht.state, at, {"deadline_passed": rule})
    return replace(overdracht, history=(*overdracht.history, step))


def confirmation_overdue(overdracht: Overdracht, *, today: date) -> bool:
    """No confirmation after the deadline's day, and the handover still open (§8.5 C).

    `today` is the local date (Europe/Amsterdam) of the caller's clock.
    """
    return overdracht.state in _OPEN and today > overdracht.deadline


def _check_sender(overdracht: Overdracht, sender: str, what: str) -> None:
    if sender != overdracht.recipient:
        raise PermanentError(
            ErrorCode.NOT_PERMITTED,
            f"only the recipient of the handover may send its {what}",
            "/sender",
        )


def _check_open(overdracht: Overdracht, what: str) -> None:
    if overdracht.state is OverdrachtState.CONFIRMED:
        raise PermanentError(
            ErrorCode.INVALID_STATE, f"{what}: the handover is already confirmed", "/type"
        )
    if overdracht.state is OverdrachtState.WITHDRAWN:
        raise PermanentError(
            ErrorCode.INVALID_STATE, f"{what}: the handover was withdrawn", "/type"
        )
    if overdracht.state is OverdrachtState.UNDELIVERABLE:
        raise PermanentError(
            ErrorCode.INVALID_STATE, f"{what}: the handover was given up as undeliverable", "/type"
        )


def _move(
    overdracht: Overdracht, state: OverdrachtState, at: datetime, **evidence: str
) -> Overdracht:
    step = Transition(state, at, evidence)
    return replace(overdracht, state=state, history=(*overdracht.history, step))
