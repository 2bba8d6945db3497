"""Which of VT's messages start and end VT's own terms for a case (§5.1, §8).

VT's terms are its own deadlines, not a partner's:

- the veiligheidsbeoordeling (5 working days, §8 A) runs from the melding, which
  the gateway sees as the enrichment.request that opens the case (§5.1), and
  ends with VT's decision on what follows: a handover (overdracht.notice), the
  start of onderzoek or V&V, a handover to a care provider already involved
  (case.notice), or the forward of an overige zorgmelding (no assessment);
- onderzoek (§8 B) and voorwaarden en vervolg (§8 C), 70 days each, run from
  the `datum` of the case.notice that starts them and end with their outcome
  (case.notice uitkomst_*) or with the handover after them (moment B or C).

Pure: a message's type and body in, the rules started and ended out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.domain.deadlines import (
    ONDERZOEK,
    VEILIGHEIDSBEOORDELING,
    VOORWAARDEN_EN_VERVOLG,
    DeadlineRule,
)

CASE_RULES: Mapping[str, DeadlineRule] = {
    rule.name: rule for rule in (VEILIGHEIDSBEOORDELING, ONDERZOEK, VOORWAARDEN_EN_VERVOLG)
}
"""VT's own terms for a case, by name."""

_STARTS = {
    "start_onderzoek": ONDERZOEK,
    "start_voorwaarden_en_vervolg": VOORWAARDEN_EN_VERVOLG,
}

_ENDS_BY_NOTICE = {
    "start_onderzoek": (VEILIGHEIDSBEOORDELING,),
    "start_voorwaarden_en_vervolg": (VEILIGHEIDSBEOORDELING,),
    "overdracht_aan_betrokken_hulpverlener": (VEILIGHEIDSBEOORDELING,),
    "uitkomst_onderzoek": (ONDERZOEK,),
    "uitkomst_voorwaarden_en_vervolg": (VOORWAARDEN_EN_VERVOLG,),
}

_ENDS_BY_MOMENT = {
    "A": (VEILIGHEIDSBEOORDELING,),
    "B": (VEILIGHEIDSBEOORDELING, ONDERZOEK),
    "C": (VEILIGHEIDSBEOORDELING, VOORWAARDEN_EN_VERVOLG),
}


@dataclass(frozen=True, slots=True)
class TermStart:
    """A term that starts: its rule and its start (the melding's moment, or a date)."""

    rule: DeadlineRule
    start: date | datetime


def terms_started(
    message_type: str, body: Mapping[str, Any], *, sent_at: datetime, opens_case: bool
) -> tuple[TermStart, ...]:
    """The terms VT's message starts. `opens_case`: the first message the gateway sees of it."""
    if message_type == "enrichment.request" and opens_case:
        return (TermStart(VEILIGHEIDSBEOORDELING, sent_at),)
    if message_type == "case.notice" and body.get("soort") in _STARTS:
        return (TermStart(_STARTS[str(body["soort"])], date.fromisoformat(str(body["datum"]))),)
    return ()


def terms_ended(message_type: str, body: Mapping[str, Any]) -> tuple[DeadlineRule, ...]:
    """The terms VT's message ends: the deed the term asked for is done."""
    if message_type == "overdracht.notice":
        return _ENDS_BY_MOMENT.get(str(body.get("moment")), ())
    if message_type == "case.notice":
        return _ENDS_BY_NOTICE.get(str(body.get("soort")), ())
    if message_type == "zorgmelding.forward":
        return (VEILIGHEIDSBEOORDELING,)  # §5.1: an overige zorgmelding gets no assessment
    return ()


def subject(rule: DeadlineRule, case_ref: str) -> str:
    """The timer subject of a case's term: `<rule>:<case ref>`."""
    return f"{rule.name}:{case_ref}"


def parse_subject(text: str) -> tuple[DeadlineRule, str] | None:
    """The rule and case of a timer subject, or None when it names no case term."""
    name, _, case_ref = text.partition(":")
    rule = CASE_RULES.get(name)
    return None if rule is None or not case_ref else (rule, case_ref)
