"""The quarterly report per municipality (§7.2), for what the gateway can know.

Counted per gemeente over the overdrachten whose notice went out in the
quarter: handovers per moment (A after the veiligheidsbeoordeling, B after
onderzoek, C after voorwaarden en vervolg), confirmed within the advised
term, confirmed late, deferred with a reasoned decision (§8.5 C), still open,
withdrawn and undeliverable; and the escalations opened in the quarter about
those municipalities' cases, by the route they reached (§8.6).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.deadlines import CONFIRMATION
from gateway.domain.escalation import Escalation
from gateway.domain.handover import Overdracht, OverdrachtState
from gateway.domain.monitoring import MonitoringCheck
from gateway.domain.region import Region

_QUARTER = re.compile(r"(\d{4})Q([1-4])")

COLUMNS = (
    "gemeente",
    "naam",
    "overdrachten_a",
    "overdrachten_b",
    "overdrachten_c",
    "bevestigd_binnen_termijn",
    "bevestigd_te_laat",
    "uitgesteld",
    "nog_open",
    "ingetrokken",
    "onbestelbaar",
    "monitoring_3_op_tijd",
    "monitoring_3_te_laat",
    "monitoring_3_open",
    "monitoring_12_op_tijd",
    "monitoring_12_te_laat",
    "monitoring_12_open",
    "escalaties_route_a",
    "escalaties_route_b",
    "escalaties_route_c",
)


@dataclass(frozen=True, slots=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """`2026Q3`; ValueError for anything else."""
        match = _QUARTER.fullmatch(text)
        if match is None:
            raise ValueError(f"a quarter is written like 2026Q3, not {text!r}")
        year = int(match[1])
        if not 2000 <= year <= 2999:  # the range the API document allows
            raise ValueError(f"a quarter's year lies from 2000 to 2999, not {year}")
        return cls(year, int(match[2]))

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    def bounds(self, time_zone: str) -> tuple[datetime, datetime]:
        """[start, end) of the quarter in the region's local time."""
        zone = ZoneInfo(time_zone)
        first_month = 3 * (self.number - 1) + 1
        start = datetime.combine(date(self.year, first_month, 1), time(), zone)
        if self.number == 4:
            end = datetime.combine(date(self.year + 1, 1, 1), time(), zone)
        else:
            end = datetime.combine(date(self.year, first_month + 3, 1), time(), zone)
        return start, end


def quarterly_report(
    region: Region,
    overdrachten: Iterable[Overdracht],
    escalations: Iterable[Escalation],
    case_gemeente: Mapping[str, str],
    calendar: WorkingDayCalendar,
    *,
    checks: Iterable[MonitoringCheck] = (),
) -> list[dict[str, str | int]]:
    """One row per municipality of the region, in the region's order, zeros included.

    `overdrachten` are those opened in the quarter; `escalations` those opened
    in it; `case_gemeente` gives an escalated case's municipality; `checks`
    the monitoring checks whose request went out in it (at 3 and 12 months:
    answered on time, late, or not yet).
    """
    rows: dict[str, dict[str, str | int]] = {
        m.code: dict.fromkeys(COLUMNS, 0) | {"gemeente": m.code, "naam": m.name} for m in region
    }
    for overdracht in overdrachten:
        row = rows.get(overdracht.gemeente)
        if row is None:
            continue
        _add(row, f"overdrachten_{overdracht.moment.value.lower()}")
        if any(step.state is OverdrachtState.DEFERRED for step in overdracht.history):
            _add(row, "uitgesteld")
        confirmed_at = overdracht.confirmed_at
        if confirmed_at is not None:
            # §8.5 C: within the advised term, or the new date of a reasoned deferral
            due = CONFIRMATION.deadline(overdracht.id, overdracht.deadline, calendar).due
            _add(row, "bevestigd_binnen_termijn" if confirmed_at <= due else "bevestigd_te_laat")
        elif overdracht.state is OverdrachtState.WITHDRAWN:
            _add(row, "ingetrokken")
        elif overdracht.state is OverdrachtState.UNDELIVERABLE:
            _add(row, "onbestelbaar")
        else:
            _add(row, "nog_open")
    for check in checks:
        row = rows.get(check.gemeente)
        if row is None or check.month not in (3, 12):
            continue
        on_time = check.answered_on_time
        outcome = "open" if on_time is None else ("op_tijd" if on_time else "te_laat")
        _add(row, f"monitoring_{check.month}_{outcome}")
    for escalation in escalations:
        gemeente = case_gemeente.get(escalation.case_ref)
        if gemeente in rows:
            _add(rows[gemeente], f"escalaties_route_{escalation.route.value}")
    return list(rows.values())


def _add(row: dict[str, str | int], column: str) -> None:
    value = row[column]
    row[column] = (value if isinstance(value, int) else 0) + 1
