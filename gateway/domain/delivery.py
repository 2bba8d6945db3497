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

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({Status.RECEIVED, Status.DELIVERED, Status.UNDELIVERABLE})


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One step of a message's history: the status, when, and the evidence for it."""

    status: Status
    at: datetime
    evidence: Mapping[str, str] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.status.final


def next_attempt_due(sent_at: datetime, receipt_timeout: timedelta, attempt: int) -> datetime:
    """When to give up waiting for the receipt of attempt `attempt` (1-based): doubling."""
    return sent_at + receipt_timeout * (1 << (attempt - 1))


class TimerKind(StrEnum):
    RECEIPT = "receipt"  # the receipt of an outgoing message is due
