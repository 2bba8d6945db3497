"""Delivery of messages: statuses with their evidence, retries, and alerts.

A message's status history is the evidence of what happened to it. Every
status says whether it is final; a final status never changes again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Direction(StrEnum):
    IN = "in"  # received by the gateway from a partner (or VT's case system)
    OUT = "out"  # sent by the gateway to a partner


class Status(StrEnum):
    """Where a message stands. Outgoing: queued -> sent -> delivered | undeliverable."""

    RECEIVED = "received"  # incoming, accepted and stored, receipt queued
    QUEUED = "queued"  # outgoing, stored and in the outbox
    SENT = "sent"  # the broker confirmed the publish (level 1)
    DELIVERED = "delivered"  # the recipient's receipt arrived with the right digest (level 2)
    UNDELIVERABLE = "undeliverable"  # no receipt within the attempt limit
    REFUSED = "refused"  # the recipient answered with a signed `error`

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({Status.RECEIVED, Status.DELIVERED, Status.UNDELIVERABLE, Status.REFUSED})


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One step of a message's history: the status, when, and the evidence for it."""

    status: Status
    at: datetime
    evidence: Mapping[str, str] = field(default_factory=dict)
    closes: bool = False  # ends the message's life though the status alone would not

    @property
    def final(self) -> bool:
        """Final: nothing will change this message's status again."""
        return self.status.final or self.closes


UNANSWERED_TYPES = frozenset({"receipt", "error"})


def expects_receipt(message_type: str) -> bool:
    """Receipts and errors are never answered, not even by a receipt (PROTOCOL.md)."""
    return message_type not in UNANSWERED_TYPES


def sent(message_type: str, at: datetime, evidence: Mapping[str, str]) -> StatusChange:
    """The broker confirmed the publish: final for a message that gets no receipt."""
    return StatusChange(Status.SENT, at, evidence, closes=not expects_receipt(message_type))


def next_attempt_due(sent_at: datetime, receipt_timeout: timedelta, attempt: int) -> datetime:
    """When to give up waiting for the receipt of attempt `attempt` (1-based): doubling."""
    return sent_at + receipt_timeout * (1 << (attempt - 1))


class TimerKind(StrEnum):
    RECEIPT = "receipt"  # the receipt of an outgoing message is due
    CONFIRMATION_WARNING = "confirmation_warning"  # an overdracht's term ends soon
    CONFIRMATION_DUE = "confirmation_due"  # an overdracht's term has ended
    MONITORING_REQUEST = "monitoring_request"  # time to ask for a monitoring answer (§7.1)
    VT_ANSWER_DUE = "vt_answer_due"  # VT's answer to a team's question is due (§8.4)
    CASE_DEADLINE_WARNING = "case_deadline_warning"  # VT's own term for a case ends soon
    CASE_DEADLINE_DUE = "case_deadline_due"  # VT's own term (assessment, onderzoek, V&V) ended
    ENRICHMENT_WARNING = "enrichment_warning"  # a partner's enrichment answer is due soon (§5.1)
    ENRICHMENT_DUE = "enrichment_due"  # a partner's enrichment answer is due (§5.1)
    MONITORING_ANSWER_DUE = "monitoring_answer_due"  # a monitoring answer is due (§7.1 C)
    RETENTION_PURGE = "retention_purge"  # an advice's retention ends (§5.1: 2 years)
