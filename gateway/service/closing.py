"""VT closes a case it holds without handing it over (§8: no follow-up needed, or the
onderzoek or V&V ended in VT's own care): the ledger says nobody holds it any more."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.domain.envelope import format_timestamp
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.ledger import EntryDraft
from gateway.service import case_deadlines, responsibility
from gateway.service.ports import Store

CLOSE_REASONS = (
    "geen_vervolg_na_veiligheidsbeoordeling",
    "afgesloten_na_onderzoek",
    "afgesloten_na_voorwaarden_en_vervolg",
    "andere_reden",
)
"""Why VT closes a case it holds, as its case system records it (no client data)."""


async def close_case(
    store: Store,
    case_ref: str,
    *,
    vt: str,
    by: str,
    reason: str,
    at: datetime,
) -> dict[str, Any]:
    """VT closes a case it holds without a handover (the assessment found no follow-up needed,
    or an onderzoek or V&V ended in VT's own care): a ledger entry `afgesloten` by VT, and
    VT's own terms for the case stop (their timers cancelled, their alerts closed).

    UNKNOWN_THREAD when the ledger has no such case; NOT_PERMITTED when another party holds
    it; INVALID_STATE when it is closed already or a handover of it is still open (withdraw
    that first).
    """
    if reason not in CLOSE_REASONS:
        raise PermanentError(ErrorCode.SCHEMA_INVALID, "unknown reason to close", "/reason")
    async with store.transaction() as uow:
        last = await uow.ledger.last_of(case_ref)
        if last is None:
            raise PermanentError(ErrorCode.UNKNOWN_THREAD, "the ledger has no such case", "")
        if any(not o.state.final for o in await uow.handovers.of_case(case_ref)):
            raise PermanentError(
                ErrorCode.INVALID_STATE,
                "a handover of this case is still open: withdraw it before closing",
                "",
            )
        draft = EntryDraft.afgesloten(
            case_ref, last.gemeente, vt, at, evidence={"by": by, "reason": reason}
        )
        await responsibility.append(uow, draft, vt)
        *_, entry = await uow.ledger.link()  # its sequence, for the answer
        await case_deadlines.end_terms(uow, vt, case_ref, at)
    return {
        "case_ref": case_ref,
        "closed_at": format_timestamp(entry.at),
        "by": by,
        "reason": reason,
        "sequence": entry.sequence,
    }
