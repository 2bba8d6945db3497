"""Monitoring on case level after a handover (§7.1).

Whether VT monitors (§7.1 A, D):

- after the veiligheidsbeoordeling (moment A) only when VT decided so;
- after onderzoek (B) always, unless the suspicion was refuted;
- after voorwaarden en vervolg (C) always;
- never after a handover to a GI (§7.1 D);
- any other decision not to monitor needs a recorded, well-founded reason
  (§7.1 notes 12 and 13: "dit moet altijd genoteerd worden").

When it monitors, it checks at least at 3 and 12 months after the handover,
and more often where needed (§7.1 B), with the receiving party's help (§7.1 C).

A plan that breaks these rules comes from the overdracht.notice that VT's
case system sent, so it is refused as a `PermanentError` with
`SCHEMA_INVALID` and the JSON pointer of the field to correct: the pipeline
already turns that into a rejection the sender can act on, the schema carries
the same rules (a second line here, so that the rule holds on every path into
the domain), and a plain `ValueError` would read as a programming error of the
gateway, which it is not.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.handover import Moment

DEFAULT_MONTHS = (3, 12)
"""§7.1 B: at least 3 and 12 months after the handover."""

_REQUIRED_MONTHS = frozenset(DEFAULT_MONTHS)
_MAX_MONTHS = 60  # the notice schema's bound


class ReasonNotToMonitor(StrEnum):
    """Why VT does not monitor (the notice's `monitoring.reden_geen_monitoring`)."""

    GEEN_BESLUIT_TOT_MONITORING = "geen_besluit_tot_monitoring"  # A: VT did not decide to
    VERMOEDEN_WEERLEGD = "vermoeden_weerlegd"  # B: the onderzoek refuted the suspicion
    OVERDRACHT_AAN_GI = "overdracht_aan_gi"  # §7.1 D
    ANDERE_GEGRONDE_REDEN = "andere_gegronde_reden"  # notes 12, 13: with a toelichting


@dataclass(frozen=True, slots=True)
class MonitoringPlan:
    """Whether VT monitors a handover, and at how many months after it."""

    moment: Moment
    afgesproken: bool
    months: tuple[int, ...] = ()
    reason_not_to_monitor: ReasonNotToMonitor | None = None
    toelichting: str = ""

    def moments(self, handed_over_on: date) -> tuple[date, ...]:
        """The monitoring dates: the handover's confirmation date plus each number of months.

        A day that the month lacks becomes the month's last day (31 January + 1 = 28 February).
        """
        return tuple(add_months(handed_over_on, months) for months in self.months)

    def checks(
        self,
        *,
        overdracht_id: str,
        case_ref: str,
        gemeente: str,
        recipient: str,
        handed_over_on: date,
    ) -> tuple[MonitoringCheck, ...]:
        """The planned checks, one per monitoring moment; none when VT does not monitor."""
        return tuple(
            MonitoringCheck(
                overdracht_id=overdracht_id,
                case_ref=case_ref,
                gemeente=gemeente,
                recipient=recipient,
                due_on=add_months(handed_over_on, months),
                month=months,
            )
            for months in self.months
        )


def monitoring_plan(
    moment: Moment,
    *,
    recipient_is_gi: bool,
    vt_decided_to_monitor: bool,
    vermoeden_weerlegd: bool | None,
    reason_not_to_monitor: ReasonNotToMonitor | None,
    toelichting: str = "",
    months: Iterable[int] = DEFAULT_MONTHS,
) -> MonitoringPlan:
    """The monitoring that §7.1 asks for this handover, or a PermanentError (SCHEMA_INVALID).

    `vt_decided_to_monitor` is VT's decision as the notice records it
    (`monitoring.afgesproken`); `vermoeden_weerlegd` is stated for B only.
    """
    refuted = _refuted(moment, vermoeden_weerlegd)
    if recipient_is_gi:
        if vt_decided_to_monitor:
            raise _invalid("§7.1 D: VT does not monitor after a handover to a GI", "afgesproken")
        return MonitoringPlan(
            moment, False, (), ReasonNotToMonitor.OVERDRACHT_AAN_GI, toelichting.strip()
        )
    if reason_not_to_monitor is ReasonNotToMonitor.OVERDRACHT_AAN_GI:
        raise _invalid("the recipient is not a GI", "reden_geen_monitoring")
    if vt_decided_to_monitor:
        if reason_not_to_monitor is not None:
            raise _invalid(
                "monitoring agreed, yet a reason not to monitor", "reden_geen_monitoring"
            )
        return MonitoringPlan(moment, True, _months(months))

    required = moment is Moment.C or (moment is Moment.B and not refuted)
    if required:
        allowed = {ReasonNotToMonitor.ANDERE_GEGRONDE_REDEN}
        default = None
    elif moment is Moment.A:
        allowed = {ReasonNotToMonitor.GEEN_BESLUIT_TOT_MONITORING}
        default = ReasonNotToMonitor.GEEN_BESLUIT_TOT_MONITORING
    else:
        allowed = {ReasonNotToMonitor.VERMOEDEN_WEERLEGD}
        default = ReasonNotToMonitor.VERMOEDEN_WEERLEGD
    allowed.add(ReasonNotToMonitor.ANDERE_GEGRONDE_REDEN)

    reason = reason_not_to_monitor or default
    if reason is None:
        raise _invalid(
            f"§7.1 A: after moment {moment} VT monitors; not monitoring needs a recorded reason",
            "reden_geen_monitoring",
        )
    if reason not in allowed:
        raise _invalid(
            f"{reason} is no reason not to monitor after moment {moment}", "reden_geen_monitoring"
        )
    if reason is ReasonNotToMonitor.ANDERE_GEGRONDE_REDEN and not toelichting.strip():
        raise _invalid(
            "another well-founded reason must be written down (§7.1 note 12)", "toelichting"
        )
    return MonitoringPlan(moment, False, (), reason, toelichting.strip())


def plan_of_notice(body: Mapping[str, object], *, recipient_is_gi: bool) -> MonitoringPlan:
    """The monitoring plan of an overdracht.notice body (already valid against its schema)."""
    monitoring = body.get("monitoring")
    if not isinstance(monitoring, Mapping):
        raise _invalid("the monitoring agreed is missing", "")
    refuted = body.get("vermoeden_weerlegd")
    reason = monitoring.get("reden_geen_monitoring")
    months = monitoring.get("momenten_maanden", DEFAULT_MONTHS)
    if monitoring.get("afgesproken") is True and not body.get("veiligheidsvoorwaarden"):
        raise PermanentError(
            ErrorCode.SCHEMA_INVALID,
            "§7.1 B: monitoring asks how the veiligheidsvoorwaarden stand; a notice that agrees "
            "monitoring names them",
            "/body/veiligheidsvoorwaarden",
        )
    return monitoring_plan(
        Moment(str(body.get("moment"))),
        recipient_is_gi=recipient_is_gi,
        vt_decided_to_monitor=monitoring.get("afgesproken") is True,
        vermoeden_weerlegd=refuted if isinstance(refuted, bool) else None,
        reason_not_to_monitor=ReasonNotToMonitor(reason) if isinstance(reason, str) else None,
        toelichting=str(monitoring.get("toelichting", "")),
        months=[int(m) for m in months] if isinstance(months, list | tuple) else DEFAULT_MONTHS,
    )


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the last day of that month when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


class CheckState(StrEnum):
    """Where one monitoring check stands."""

    PLANNED = "planned"  # its moment has not been asked for yet
    REQUESTED = "requested"  # the monitoring.request was sent; the answer is awaited
    ANSWERED = "answered"  # the monitoring.response arrived

    @property
    def final(self) -> bool:
        return self is CheckState.ANSWERED


@dataclass(frozen=True, slots=True)
class MonitoringCheck:
    """One monitoring moment of a handover: planned, requested, answered (on time or late).

    `month` is 3, 12 or another agreed month; None for an extra check (§7.1 B,
    "zo veel vaker als nodig"). `recipient` is the party asked: the one that
    took the case over, or its current regievoerder (§7.1 C).
    """

    overdracht_id: str
    case_ref: str
    gemeente: str
    recipient: str
    due_on: date
    month: int | None
    request_id: str | None = None
    requested_at: datetime | None = None
    answer_before: datetime | None = None
    response_id: str | None = None
    answered_at: datetime | None = None

    @property
    def state(self) -> CheckState:
        if self.answered_at is not None:
            return CheckState.ANSWERED
        if self.requested_at is not None:
            return CheckState.REQUESTED
        return CheckState.PLANNED

    @property
    def request_moment(self) -> str:
        """The monitoring.request's `moment`: 3_maanden, 12_maanden, or extra for any other."""
        return {3: "3_maanden", 12: "12_maanden"}.get(self.month or 0, "extra")

    @property
    def answered_on_time(self) -> bool | None:
        """Whether the answer came before its moment; None while there is no answer."""
        if self.answered_at is None or self.answer_before is None:
            return None
        return self.answered_at < self.answer_before

    def is_due(self, today: date) -> bool:
        """Planned and its day has come: time to send the monitoring.request."""
        return self.state is CheckState.PLANNED and today >= self.due_on

    def is_overdue(self, now: datetime) -> bool:
        """Requested, and no answer before the moment the request named."""
        return (
            self.state is CheckState.REQUESTED
            and self.answer_before is not None
            and now >= self.answer_before
        )


def on_request_sent(
    check: MonitoringCheck,
    *,
    message_id: str,
    at: datetime,
    answer_before: datetime,
    recipient: str | None = None,
) -> MonitoringCheck:
    """VT's monitoring.request went out, to be answered before `answer_before`.

    `recipient` replaces the party asked when the case management moved (§7.1 C).
    """
    if check.state is not CheckState.PLANNED:
        raise PermanentError(
            ErrorCode.INVALID_STATE, f"the monitoring check is already {check.state}"
        )
    if answer_before <= at:
        raise PermanentError(
            ErrorCode.SCHEMA_INVALID,
            "the answer must be due after the request",
            "/body/antwoord_voor",
        )
    return replace(
        check,
        recipient=recipient or check.recipient,
        request_id=message_id,
        requested_at=at,
        answer_before=answer_before,
    )


def on_response(
    check: MonitoringCheck, *, sender: str, message_id: str, at: datetime
) -> MonitoringCheck:
    """The monitoring.response: answered, on time or late; once, and only by the party asked."""
    if sender != check.recipient:
        raise PermanentError(
            ErrorCode.NOT_PERMITTED,
            "only the party asked may answer the monitoring request",
            "/sender",
        )
    if check.state is not CheckState.REQUESTED:
        raise PermanentError(
            ErrorCode.INVALID_STATE,
            f"the monitoring check is {check.state}, not awaiting an answer",
            "/type",
        )
    return replace(check, response_id=message_id, answered_at=at)


def _refuted(moment: Moment, vermoeden_weerlegd: bool | None) -> bool:
    if moment is Moment.B:
        if vermoeden_weerlegd is None:
            raise PermanentError(
                ErrorCode.SCHEMA_INVALID,
                "after onderzoek the notice says whether the suspicion was refuted",
                "/body/vermoeden_weerlegd",
            )
        return vermoeden_weerlegd
    if vermoeden_weerlegd:
        raise PermanentError(
            ErrorCode.SCHEMA_INVALID,
            f"only an onderzoek (B) refutes a suspicion, not moment {moment}",
            "/body/vermoeden_weerlegd",
        )
    return False


def _months(months: Iterable[int]) -> tuple[int, ...]:
    chosen = tuple(months)
    if len(set(chosen)) != len(chosen) or not all(1 <= m <= _MAX_MONTHS for m in chosen):
        raise _invalid("monitoring months are distinct, from 1 to 60", "momenten_maanden")
    if not set(chosen) >= _REQUIRED_MONTHS:
        raise _invalid("§7.1 B: VT monitors at least at 3 and 12 months", "momenten_maanden")
    return tuple(sorted(chosen))


def _invalid(detail: str, field: str) -> PermanentError:
    pointer = "/body/monitoring" + (f"/{field}" if field else "")
    return PermanentError(ErrorCode.SCHEMA_INVALID, detail, pointer)
