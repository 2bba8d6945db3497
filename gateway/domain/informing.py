"""The agreement's informing rules: who else is told when VT sends a message (pure).

- §5.1 D, §8.1: when VT hands a case to a care provider already involved,
  the lokaal team is always informed (`case.notice`,
  `overdracht_aan_betrokken_hulpverlener`).
- §5.1: an overige zorgmelding forwarded to the wijkteam is also reported to
  the police unit of the municipality (`zorgmelding.forward` in its police
  version: only that, to whom and when it was forwarded; no persons).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.domain.contracts import Contract, Role
from gateway.domain.envelope import format_timestamp


@dataclass(frozen=True, slots=True)
class Informing:
    """A message the gateway adds: its type, recipient and body."""

    type: str
    recipient: str
    body: Mapping[str, Any]


def informing_messages(
    message_type: str,
    body: Mapping[str, Any],
    recipient: Contract,
    *,
    lokaal_team: Contract,
    police: Contract,
    today: date,
    now: datetime,
) -> list[Informing]:
    """What VT must also send when it sends `message_type` to `recipient`."""
    if message_type == "overdracht.notice" and recipient.role is not Role.LOKAAL_TEAM:
        return [
            Informing(
                "case.notice",
                lokaal_team.party,
                {
                    "soort": "overdracht_aan_betrokken_hulpverlener",
                    "datum": today.isoformat(),
                    "hulpverlener": {"naam": recipient.name, "partij": recipient.party},
                    "vt_contact": body["vt_contact"],
                },
            )
        ]
    if message_type == "zorgmelding.forward" and body.get("ontvanger_rol") == "wijkteam":
        return [
            Informing(
                "zorgmelding.forward",
                police.party,
                {
                    "ontvanger_rol": "politie",
                    "politie_kenmerk": body["politie_kenmerk"],
                    "bewaartermijn_tot": body["bewaartermijn_tot"],
                    "doorgezet_aan": {"naam": recipient.name, "partij": recipient.party},
                    "doorgezet_op": format_timestamp(now),
                },
            )
        ]
    return []
