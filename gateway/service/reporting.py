"""The quarterly report (§7.2) from the store, as rows, JSON and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.region import Region
from gateway.domain.report import COLUMNS, Quarter, quarterly_report
from gateway.service.ports import Store


async def report(
    store: Store, region: Region, calendar: WorkingDayCalendar, quarter: Quarter
) -> dict[str, Any]:
    """The report of a quarter: one row per municipality."""
    start, end = quarter.bounds(region.time_zone)
    async with store.transaction() as uow:
        overdrachten = await uow.handovers.opened_between(start, end)
        escalations = [e for _, e in await uow.escalations.since(start) if e.opened_at < end]
        checks = await uow.monitoring.requested_between(start, end)
        case_gemeente = {o.case_ref: o.gemeente for o in overdrachten}
        for escalation in escalations:
            if escalation.case_ref not in case_gemeente:
                earlier = await uow.handovers.of_case(escalation.case_ref)
                if earlier:
                    case_gemeente[escalation.case_ref] = earlier[0].gemeente
    rows = quarterly_report(
        region, overdrachten, escalations, case_gemeente, calendar, checks=checks
    )
    return {"quarter": str(quarter), "columns": list(COLUMNS), "rows": rows}


def as_csv(document: dict[str, Any]) -> str:
    """The report's rows as CSV, a header line first."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=document["columns"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(document["rows"])
    return out.getvalue()
