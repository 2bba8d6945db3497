"""VT's own terms, enrichment and monitoring answers, JBT sub-region, retention (§5.1-§8).

The real submit, pipeline, receive and timer paths on the in-memory store,
with the clock passed in. NOW (2026-11-28) is a Saturday.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from gateway.bootstrap import Core
from gateway.domain.case_terms import subject, terms_ended, terms_started
from gateway.domain.deadlines import ONDERZOEK, VEILIGHEIDSBEOORDELING
from gateway.domain.delivery import TimerKind
from gateway.domain.envelope import CaseRef, format_timestamp
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.escalation import EscalationReason
from gateway.domain.ledger import verify_chain
from gateway.domain.monitoring import CheckState
from gateway.domain.report import Quarter
from gateway.service.case_deadlines import (
    case_overdue_alert,
    enrichment_overdue_alert,
)
from gateway.service.outgoing import Hub
from gateway.service.ports import StoredMessage, Timer
from gateway.service.receiving import Delivery, Disposition, Handled, receive
from gateway.service.relay import fire_due_timers
from gateway.service.reporting import report
from gateway.service.responsibility import monitoring_overdue_alert
from gateway.service.submission import SubmitMessage, submit
from gateway.service.views import overdue_terms
from tests.fakes.store import MemoryStore
from tests.unit.conftest import NOW, Sign
from tests.unit.test_responsibility import CASE, CLAIM, hub, store, team_answers

__all__ = ["hub", "store"]  # the fixtures of test_responsibility, used here too

TERM = subject(VEILIGHEIDSBEOORDELING, CASE["ref"])
SENT = NOW - timedelta(minutes=3)


async def vt_sends(
    store: MemoryStore,
    hub: Hub,
    core: Core,
    message_type: str,
    body: dict[str, Any],
    *,
    at: datetime = SENT,
    recipients: tuple[str, ...] = (),
) -> list[StoredMessage]:
    command = SubmitMessage(
        type=message_type, case=CaseRef(**CASE), body=body, recipients=recipients
    )
    return await submit(store, hub, core.region, command, at)


async def pending(store: MemoryStore, subject_id: str) -> list[Timer]:
    async with store.transaction() as uow:
        return list(await uow.timers.pending("vt-gz", subject_id))


async def open_alert_keys(store: MemoryStore) -> set[str]:
    async with store.transaction() as uow:
        return {a.key for a in await uow.alerts.open_alerts()}


def enrichment_body(examples: dict[str, Any], due: datetime) -> dict[str, Any]:
    body = dict(examples["enrichment.request"]["body"])
    body["antwoord_voor"] = format_timestamp(due)
    return body


# --- the veiligheidsbeoordeling (§8 A) -----------------------------------------------


async def test_the_veiligheidsbeoordeling_is_due_5_working_days_after_the_melding(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """§8 A: melding Saturday 28 Nov; 5 working days is Friday 4 Dec, 17:00 local."""
    due = datetime(2026, 12, 3, 16, tzinfo=UTC)
    await vt_sends(store, hub, core, "enrichment.request", enrichment_body(examples, due))
    timers = await pending(store, TERM)
    assert [(t.kind, t.due_at) for t in timers] == [
        (TimerKind.CASE_DEADLINE_WARNING, datetime(2026, 12, 3, 16, tzinfo=UTC)),
        (TimerKind.CASE_DEADLINE_DUE, datetime(2026, 12, 4, 16, tzinfo=UTC)),
    ]
    assert all(t.rule.startswith("veiligheidsbeoordeling: §5.1 (C), §8 A") for t in timers)


async def test_an_assessment_past_its_term_opens_one_alert_until_vt_decides(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """The term passes: one overdue alert, listed as VT's own late term; the handover ends it."""
    due = datetime(2026, 12, 3, 16, tzinfo=UTC)
    await vt_sends(store, hub, core, "enrichment.request", enrichment_body(examples, due))
    late = datetime(2026, 12, 4, 16, 1, tzinfo=UTC)
    await fire_due_timers(store, hub, CLAIM, late)
    await fire_due_timers(store, hub, CLAIM, late + timedelta(days=1))
    alert = case_overdue_alert(VEILIGHEIDSBEOORDELING, CASE["ref"])
    assert alert in await open_alert_keys(store)
    async with store.transaction() as uow:
        assert len(await uow.alerts.all_alerts(alert)) == 1
    assert await overdue_terms(store) == [
        {
            "case_ref": CASE["ref"],
            "rule": "veiligheidsbeoordeling",
            "overdue_since": format_timestamp(late),
        }
    ]
    notice = dict(examples["overdracht.notice"]["body"], moment="A")
    for key in ("vermoeden_weerlegd", "warme_overdracht"):  # moment A: written handover
        notice.pop(key, None)
    await vt_sends(store, hub, core, "overdracht.notice", notice, at=late + timedelta(days=1))
    assert alert not in await open_alert_keys(store)
    assert await overdue_terms(store) == []


async def test_a_handover_in_time_ends_the_assessment_term_without_an_alert(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """A decision within the 5 working days: the term's timers are cancelled, nothing fires."""
    due = datetime(2026, 12, 3, 16, tzinfo=UTC)
    await vt_sends(store, hub, core, "enrichment.request", enrichment_body(examples, due))
    await vt_sends(store, hub, core, "overdracht.notice", examples["overdracht.notice"]["body"])
    assert await pending(store, TERM) == []
    await fire_due_timers(store, hub, CLAIM, datetime(2026, 12, 10, tzinfo=UTC))
    assert not {k for k in await open_alert_keys(store) if k.startswith("case_")}


# --- onderzoek and voorwaarden en vervolg (§8 B, C) ------------------------------------


async def test_onderzoek_runs_70_days_from_its_start_and_ends_with_its_outcome(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """§8 B: started 20 Nov 2026, due 29 Jan 2027 (70 days, a Friday) at 17:00 local."""
    start = dict(examples["case.notice"]["body"], soort="start_onderzoek", datum="2026-11-20")
    for key in ("uitkomst", "vervolg"):
        start.pop(key)
    await vt_sends(store, hub, core, "case.notice", start)
    name = subject(ONDERZOEK, CASE["ref"])
    timers = await pending(store, name)
    assert [(t.kind, t.due_at) for t in timers] == [
        (TimerKind.CASE_DEADLINE_WARNING, datetime(2027, 1, 22, 16, tzinfo=UTC)),
        (TimerKind.CASE_DEADLINE_DUE, datetime(2027, 1, 29, 16, tzinfo=UTC)),
    ]
    await vt_sends(store, hub, core, "case.notice", examples["case.notice"]["body"])  # outcome
    assert await pending(store, name) == []


def test_which_messages_start_and_end_vts_own_terms() -> None:
    """The assessment starts with the melding's enrichment; V&V with its notice; a handover
    after V&V (C) ends V&V and the assessment; a forwarded zorgmelding gets no assessment."""
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    opened = terms_started("enrichment.request", {}, sent_at=at, opens_case=True)
    assert [(s.rule.name, s.start) for s in opened] == [("veiligheidsbeoordeling", at)]
    assert terms_started("enrichment.request", {}, sent_at=at, opens_case=False) == ()
    vv = {"soort": "start_voorwaarden_en_vervolg", "datum": "2026-11-02"}
    assert [
        (s.rule.name, s.start)
        for s in terms_started("case.notice", vv, sent_at=at, opens_case=False)
    ] == [("voorwaarden_en_vervolg", date(2026, 11, 2))]
    ended = terms_ended("overdracht.notice", {"moment": "C"})
    assert [r.name for r in ended] == ["veiligheidsbeoordeling", "voorwaarden_en_vervolg"]
    assert [r.name for r in terms_ended("zorgmelding.forward", {})] == ["veiligheidsbeoordeling"]


# --- enrichment answers (§5.1) ----------------------------------------------------------


async def test_an_enrichment_answer_ends_its_term_and_silence_opens_one_alert(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§5.1: each partner's answer is due by the request's antwoord_voor; one alert per silence."""
    due = datetime(2026, 12, 3, 16, tzinfo=UTC)
    requests = await vt_sends(
        store, hub, core, "enrichment.request", enrichment_body(examples, due)
    )
    by_partner = {m.recipient: m for m in requests if m.type == "enrichment.request"}
    assert {"jbg", "lt-tiel"} <= set(by_partner)
    to_jbg = by_partner["jbg"]
    answer = sign(
        "enrichment.response",
        id=str(uuid.uuid4()),
        reply_to=to_jbg.id,
        thread=to_jbg.thread,
        case=CASE,
    )
    async with store.transaction() as uow:
        handled = await receive(uow, hub, Delivery(answer, "jbg"), NOW)
    assert handled.disposition is Disposition.ACK
    assert await pending(store, to_jbg.id) == []
    await fire_due_timers(store, hub, CLAIM, due + timedelta(minutes=1))
    alerts = await open_alert_keys(store)
    assert enrichment_overdue_alert(to_jbg.id) not in alerts
    silent = [m for p, m in by_partner.items() if p != "jbg"]
    assert {enrichment_overdue_alert(m.id) for m in silent} <= alerts


# --- monitoring answers (§7.1 C) --------------------------------------------------------

THREE_MONTHS = datetime(2027, 3, 1, 8, 1, tzinfo=UTC)  # the 3-month request goes out


async def monitoring_request(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> StoredMessage:
    """A confirmed handover to lt-tiel whose 3-month monitoring request has gone out."""
    notice = (
        await vt_sends(store, hub, core, "overdracht.notice", examples["overdracht.notice"]["body"])
    )[0]
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    await fire_due_timers(store, hub, CLAIM, THREE_MONTHS)
    async with store.transaction() as uow:
        (check, _twelve) = await uow.monitoring.of_overdracht(notice.id)
        assert check.state is CheckState.REQUESTED
        assert check.request_id is not None
        request = await uow.messages.get("vt-gz", check.request_id)
    assert request is not None
    return request


async def team_answers_monitoring(
    store: MemoryStore,
    hub: Hub,
    sign: Sign,
    request: StoredMessage,
    at: datetime,
    *,
    identity: str = "vtgw-bridge",
    **kw: Any,
) -> Handled:
    raw = sign(
        "monitoring.response",
        id=str(uuid.uuid4()),
        reply_to=request.id,
        thread=request.thread,
        case=CASE,
        sent_at=at - timedelta(minutes=1),
        **kw,
    )
    async with store.transaction() as uow:
        return await receive(uow, hub, Delivery(raw, identity), at)


async def test_a_monitoring_answer_in_time_counts_as_on_time_in_the_report(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§7.1 C, §7.2: the team answers within the term; the quarter's report counts it on time."""
    request = await monitoring_request(store, hub, core, examples, sign)
    handled = await team_answers_monitoring(
        store, hub, sign, request, THREE_MONTHS + timedelta(days=2)
    )
    assert handled.disposition is Disposition.ACK
    assert await pending(store, request.id) == []
    document = await report(store, core.region, hub.calendar, Quarter.parse("2027Q1"))
    (tiel,) = [row for row in document["rows"] if row["gemeente"] == "GM0281"]
    assert (tiel["monitoring_3_op_tijd"], tiel["monitoring_3_te_laat"]) == (1, 0)


async def test_a_monitoring_answer_nobody_gives_opens_one_alert_and_proposes_route_a(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§7.1 C, §8.6: silence past the answer term: one alert, escalation route a, once;
    the late answer closes the alert and counts as late."""
    request = await monitoring_request(store, hub, core, examples, sign)
    late = THREE_MONTHS + timedelta(days=20)
    await fire_due_timers(store, hub, CLAIM, late)
    await fire_due_timers(store, hub, CLAIM, late + timedelta(days=3))
    assert monitoring_overdue_alert(request.id) in await open_alert_keys(store)
    async with store.transaction() as uow:
        escalations = [e for _, e in await uow.escalations.still_open()]
    assert [(e.party, e.reason, e.route.value) for e in escalations] == [
        ("lt-tiel", EscalationReason.MONITORING_ANSWER_OVERDUE, "a")
    ]
    await team_answers_monitoring(store, hub, sign, request, late + timedelta(days=4))
    assert monitoring_overdue_alert(request.id) not in await open_alert_keys(store)
    document = await report(store, core.region, hub.calendar, Quarter.parse("2027Q1"))
    (tiel,) = [row for row in document["rows"] if row["gemeente"] == "GM0281"]
    assert (tiel["monitoring_3_op_tijd"], tiel["monitoring_3_te_laat"]) == (0, 1)


async def test_a_monitoring_answer_from_another_party_is_refused(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """Only the party asked answers the monitoring request (§7.1 C): another is NOT_PERMITTED."""
    request = await monitoring_request(store, hub, core, examples, sign)
    handled = await team_answers_monitoring(
        store,
        hub,
        sign,
        request,
        THREE_MONTHS + timedelta(days=1),
        identity="vtgw-bridge",
        sender="lt-maasdriel",  # another lokaal team on the e-mail bridge
    )
    assert handled.rejection is not None
    assert handled.rejection.code is ErrorCode.NOT_PERMITTED
    async with store.transaction() as uow:
        check = await uow.monitoring.by_request(request.id)
    assert check is not None
    assert check.state is CheckState.REQUESTED


# --- the Jeugdbeschermingstafel (§6.3) ---------------------------------------------------


def jbt_request(examples: dict[str, Any], subregio: str | None) -> dict[str, Any]:
    body = dict(examples["case.notice"]["body"], soort="aanvraag_jeugdbeschermingstafel")
    for key in ("uitkomst", "vervolg"):
        body.pop(key)
    if subregio is not None:
        body["subregio"] = subregio
    return body


async def test_a_jeugdbeschermingstafel_request_goes_to_the_table_of_the_case_sub_region(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """§6.3: Tiel lies in Rivierenland; a request naming Rijk van Nijmegen, or none, is refused;
    the right one informs the lokaal team."""
    for wrong in ("rijk_van_nijmegen", None):
        with pytest.raises(PermanentError) as refused:
            await vt_sends(store, hub, core, "case.notice", jbt_request(examples, wrong))
        assert refused.value.code is ErrorCode.NOT_PERMITTED
        assert refused.value.rejection.pointer == "/body/subregio"
    sent = await vt_sends(store, hub, core, "case.notice", jbt_request(examples, "rivierenland"))
    assert [(m.type, m.recipient) for m in sent] == [("case.notice", "lt-tiel")]


# --- retention of overige zorgmeldingen (§5.1) -----------------------------------------


async def forwarded_zorgmelding(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> list[StoredMessage]:
    body = examples["zorgmelding.forward"]["body"]  # kept until 2028-11-19
    return await vt_sends(store, hub, core, "zorgmelding.forward", body)


async def receipted(store: MemoryStore, hub: Hub, sign: Sign, message: StoredMessage) -> None:
    identity = "vtgw-bridge" if message.recipient.startswith("lt-") else message.recipient
    raw = sign(
        "receipt",
        sender=message.recipient,
        id=str(uuid.uuid4()),
        reply_to=message.id,
        thread=message.thread,
        body={"digest": message.digest, "received_at": format_timestamp(NOW)},
    )
    async with store.transaction() as uow:
        handled = await receive(uow, hub, Delivery(raw, identity), NOW)
    assert handled.disposition is Disposition.ACK, handled


async def test_an_overige_zorgmelding_is_purged_after_its_retention_with_an_audit_entry(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§5.1: kept as an advice for 2 years, then removed; the audit says what, never content."""
    forwards = await forwarded_zorgmelding(store, hub, core, examples)
    assert [m.recipient for m in forwards] == ["lt-tiel", "politie-on"]  # wijkteam, police told
    for message in forwards:
        await receipted(store, hub, sign, message)
    await fire_due_timers(store, hub, CLAIM, datetime(2028, 11, 19, 22, tzinfo=UTC))
    async with store.transaction() as uow:
        assert all([await uow.messages.get("vt-gz", m.id) for m in forwards])  # still the 19th
    await fire_due_timers(store, hub, CLAIM, datetime(2028, 11, 19, 23, 1, tzinfo=UTC))
    async with store.transaction() as uow:
        assert [await uow.messages.get("vt-gz", m.id) for m in forwards] == [None, None]
        assert [await uow.messages.replies_to(m.id) for m in forwards] == [[], []]
        audit = list(await uow.retention.recent(10))
        entries = await uow.ledger.history(CASE["ref"])
    assert sorted((p.type, p.sender) for p in audit) == [
        ("receipt", "lt-tiel"),
        ("receipt", "politie-on"),
        ("zorgmelding.forward", "vt-gz"),
        ("zorgmelding.forward", "vt-gz"),
    ]
    assert {p.retained_until for p in audit} == {date(2028, 11, 19)}
    assert {(p.message_id, p.digest, p.recipient) for p in audit if p.sender == "vt-gz"} == {
        (m.id, m.digest, m.recipient) for m in forwards
    }  # what was removed, by id and digest: the audit holds no content to leak
    assert verify_chain(entries) is None  # the ledger keeps its links


async def test_a_zorgmelding_still_in_delivery_is_kept_and_looked_at_again(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """The purge touches only final messages: one without its receipt waits a day more."""
    forwards = await forwarded_zorgmelding(store, hub, core, examples)
    after = datetime(2028, 11, 20, 9, tzinfo=UTC)
    await fire_due_timers(store, hub, CLAIM, after)
    async with store.transaction() as uow:
        assert all([await uow.messages.get("vt-gz", m.id) for m in forwards])
        assert list(await uow.retention.recent(10)) == []
    again = [t for t in await pending(store, forwards[0].id) if t.kind is TimerKind.RETENTION_PURGE]
    assert [t.due_at for t in again] == [after + timedelta(days=1)]


async def test_an_overige_zorgmelding_opens_no_case_in_the_ledger(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """§5.1: an overige zorgmelding is an advice without assessment or dossier: forwarding it
    writes no ledger entry and starts no veiligheidsbeoordeling term."""
    await forwarded_zorgmelding(store, hub, core, examples)
    async with store.transaction() as uow:
        assert await uow.ledger.history(CASE["ref"]) == []
    assert await pending(store, TERM) == []
