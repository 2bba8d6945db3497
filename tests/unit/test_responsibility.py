"""The handover's effect on who holds a case (§8.2, §8.3, §8.5 C, D, F; §7.1 C).

Each test runs the real pipeline and receive path on the in-memory store:
VT submits an overdracht.notice for Tiel, the lokaal team (through the e-mail
bridge's signature) answers, and the ledger says who holds the case.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts
from gateway.domain.delivery import TimerKind
from gateway.domain.envelope import CaseRef
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.handover import OverdrachtState
from gateway.domain.ledger import verify_chain
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.ports import StoredMessage
from gateway.service.receiving import Delivery, Disposition, Handled, receive
from gateway.service.relay import Claim, fire_due_timers
from gateway.service.responsibility import answer_overdue_alert, overdue_alert
from gateway.service.submission import SubmitMessage, submit
from gateway.service.views import case_view, held_past_deadline
from gateway.vectors import vector_key
from tests.fakes.store import MemoryStore
from tests.unit.conftest import NOW, Sign

CASE = {"ref": "VT-2026-000123", "gemeente": "GM0281"}


@pytest.fixture
def hub(core: Core, keyed_contracts: Contracts) -> Hub:
    return Hub(
        Verifier(keyed_contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


async def vt_submits(
    store: MemoryStore,
    hub: Hub,
    core: Core,
    examples: dict[str, Any],
    message_type: str,
    *,
    reply_to: str | None = None,
) -> StoredMessage:
    example = examples[message_type]
    command = SubmitMessage(
        type=message_type, case=CaseRef(**CASE), body=example["body"], reply_to=reply_to
    )
    return (await submit(store, hub, core.region, command, NOW - timedelta(minutes=3)))[0]


async def team_answers(
    store: MemoryStore,
    hub: Hub,
    sign: Sign,
    message_type: str,
    notice: StoredMessage,
    **changes: Any,
) -> Handled:
    raw = sign(
        message_type,
        id=str(uuid.uuid4()),
        reply_to=notice.id,
        thread=notice.thread,
        case=CASE,
        **changes,
    )
    async with store.transaction() as uow:
        return await receive(uow, hub, Delivery(raw, "vtgw-bridge"), NOW)


async def holder(store: MemoryStore) -> str | None:
    view = await case_view(store, CASE["ref"])
    assert view is not None
    return view["holder"]


async def test_responsibility_stays_with_vt_until_the_confirmation(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§8.2/§8.3: VT holds the case from its first message until the team confirms."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    assert await holder(store) == "vt-gz"
    receipt = {"digest": notice.digest, "received_at": "2026-11-28T11:58:00.000Z"}
    await team_answers(store, hub, sign, "receipt", notice, body=receipt)
    assert await holder(store) == "vt-gz"  # delivered is not confirmed
    handled = await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    assert handled.disposition is Disposition.ACK
    assert await holder(store) == "lt-tiel"  # §8.5 D: from the confirmation on


async def test_a_forged_confirmation_moves_nothing(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """A confirmation whose signature does not verify is refused and VT keeps the case."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    raw = json.loads(
        sign("overdracht.confirmation", reply_to=notice.id, thread=notice.thread, case=CASE)
    )
    raw["body"]["opmerking"] = "ingevoegd"
    async with store.transaction() as uow:
        handled = await receive(uow, hub, Delivery(json.dumps(raw).encode(), "vtgw-bridge"), NOW)
    assert handled.rejection is not None
    assert handled.rejection.code is ErrorCode.SIGNATURE_INVALID
    assert await holder(store) == "vt-gz"


async def test_a_confirmation_from_another_party_moves_nothing(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """Only the recipient of that overdracht confirms it: another team's confirmation is refused."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    raw = sign(
        "overdracht.confirmation",
        sender="lt-nijmegen",
        reply_to=notice.id,
        thread=notice.thread,
        case={"ref": CASE["ref"], "gemeente": "GM0268"},
    )
    async with store.transaction() as uow:
        handled = await receive(uow, hub, Delivery(raw, "lt-nijmegen"), NOW)
    assert handled.disposition is Disposition.DEAD_LETTER
    assert await holder(store) == "vt-gz"


async def test_a_confirmation_after_withdrawal_moves_nothing(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """VT withdrew the handover: a later confirmation is INVALID_STATE and VT keeps the case."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    await vt_submits(store, hub, core, examples, "overdracht.withdrawal", reply_to=notice.id)
    handled = await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    assert handled.rejection is not None
    assert handled.rejection.code is ErrorCode.INVALID_STATE
    assert await holder(store) == "vt-gz"
    view = await case_view(store, CASE["ref"])
    assert view is not None
    assert view["overdrachten"][0]["state"] == OverdrachtState.WITHDRAWN.value


async def test_vt_cannot_withdraw_a_confirmed_handover(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """Once confirmed the team holds the case: VT's withdrawal is refused before it is sent."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    with pytest.raises(PermanentError) as refused:
        await vt_submits(store, hub, core, examples, "overdracht.withdrawal", reply_to=notice.id)
    assert refused.value.code is ErrorCode.INVALID_STATE


async def test_a_deferral_sets_the_new_date_and_a_later_confirmation_moves_the_case(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§8.5 C: a reasoned deferral moves the deadline; the confirmation still moves the case."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    deferral = dict(examples["overdracht.deferral"]["body"]) | {"nieuwe_datum": "2026-12-14"}
    await team_answers(store, hub, sign, "overdracht.deferral", notice, body=deferral)
    view = await case_view(store, CASE["ref"])
    assert view is not None
    assert (view["overdrachten"][0]["state"], view["overdrachten"][0]["deadline"]) == (
        "deferred",
        "2026-12-14",
    )
    assert view["holder"] == "vt-gz"
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    assert await holder(store) == "lt-tiel"


async def test_a_case_return_gives_the_case_back_to_vt_and_regie_change_records_the_director(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§7.1 C: regie.change names the new regievoerder; §8.5 F: case.return brings VT back."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    async with store.transaction() as uow:
        for message_type in ("regie.change", "case.return"):
            raw = sign(message_type, id=str(uuid.uuid4()), case=CASE)
            handled = await receive(uow, hub, Delivery(raw, "vtgw-bridge"), NOW)
            assert handled.disposition is Disposition.ACK
            if message_type == "regie.change":
                view = await case_view_in(uow, CASE["ref"])
                assert view[-1].holder == "lt-tiel"
                assert view[-1].regievoerder != "lt-tiel"
    assert await holder(store) == "vt-gz"


async def case_view_in(uow: Any, case_ref: str) -> Any:
    return await uow.ledger.history(case_ref)


async def test_the_ledger_chain_verifies_after_a_handover_and_fails_when_altered(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """The hash chain verifies; one altered holder is found at its entry."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    async with store.transaction() as uow:
        entries = list(await uow.ledger.entries(after=0, limit=100))
    assert verify_chain(entries) is None
    entries[1] = replace(entries[1], holder="lt-nijmegen")
    assert verify_chain(entries) == entries[1].sequence


async def test_a_team_message_about_a_case_the_gateway_never_saw_is_kept_without_ledger_entry(
    store: MemoryStore, hub: Hub, sign: Sign
) -> None:
    """A regie.change for a case handed over before the gateway existed: accepted, no chain."""
    raw = sign("regie.change", case=CASE)
    async with store.transaction() as uow:
        handled = await receive(uow, hub, Delivery(raw, "vtgw-bridge"), NOW)
        assert await uow.ledger.history(CASE["ref"]) == []
    assert handled.disposition is Disposition.ACK


async def overdue(store: MemoryStore, core: Core, at: datetime) -> list[str]:
    calendar = WorkingDayCalendar.for_region(core.region)
    return [h["case_ref"] for h in await held_past_deadline(store, calendar, at, "vt-gz")]


async def test_vt_holding_a_case_past_the_advised_term_is_listed_until_confirmed(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§8.5 C: past the advised term (30 Nov, 17:00 local) with no confirmation, VT is listed."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    assert await overdue(store, core, datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) == []
    assert await overdue(store, core, datetime(2026, 11, 30, 16, 1, tzinfo=UTC)) == [CASE["ref"]]
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    assert await overdue(store, core, datetime(2026, 12, 1, 12, tzinfo=UTC)) == []


async def test_a_deferral_moves_the_deadline_of_the_overdue_list(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """A reasoned deferral to 14 December keeps the case off the list until that day has ended."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    deferral = dict(examples["overdracht.deferral"]["body"]) | {"nieuwe_datum": "2026-12-14"}
    await team_answers(store, hub, sign, "overdracht.deferral", notice, body=deferral)
    assert await overdue(store, core, datetime(2026, 12, 14, 12, tzinfo=UTC)) == []
    assert await overdue(store, core, datetime(2026, 12, 15, 9, tzinfo=UTC)) == [CASE["ref"]]


CLAIM = Claim(claimer="test", lease=timedelta(seconds=30))


async def alerts(store: MemoryStore, key: str) -> list[Any]:
    async with store.transaction() as uow:
        return list(await uow.alerts.all_alerts(key))


async def test_a_handover_sets_its_confirmation_deadline_as_timers_with_their_rule(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """§8.5 C: a warning a working day before, and the end of the advised term at 17:00 local."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    async with store.transaction() as uow:
        timers = {t.kind: t for t in await uow.timers.pending("vt-gz", notice.id)}
    assert timers[TimerKind.CONFIRMATION_DUE].due_at == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert timers[TimerKind.CONFIRMATION_WARNING].due_at == datetime(2026, 11, 27, 16, tzinfo=UTC)
    assert timers[TimerKind.CONFIRMATION_DUE].rule.startswith("confirmation: §8.5 C")


async def test_a_passed_term_records_negative_evidence_and_opens_one_alert(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """No confirmation by the end of the term: evidence on the handover, one alert, VT holds."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    late = datetime(2026, 11, 30, 16, 1, tzinfo=UTC)
    assert await fire_due_timers(store, hub, CLAIM, late) == 2
    assert await fire_due_timers(store, hub, CLAIM, late + timedelta(days=1)) == 0
    view = await case_view(store, CASE["ref"])
    assert view is not None
    assert view["holder"] == "vt-gz"
    async with store.transaction() as uow:
        overdracht = await uow.handovers.get(notice.id)
    assert overdracht is not None
    assert "deadline_passed" in overdracht.history[-1].evidence
    assert len(await alerts(store, overdue_alert(notice.id))) == 1
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    (alert,) = await alerts(store, overdue_alert(notice.id))
    assert alert.closed_at is not None  # closed once the team confirmed


async def test_a_deferral_moves_the_timers_to_the_new_date(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§8.5 C: the reasoned deferral's new date replaces the advised term's timers."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    deferral = dict(examples["overdracht.deferral"]["body"]) | {"nieuwe_datum": "2026-12-14"}
    await team_answers(store, hub, sign, "overdracht.deferral", notice, body=deferral)
    async with store.transaction() as uow:
        due = [
            t.due_at
            for t in await uow.timers.pending("vt-gz", notice.id)
            if t.kind is TimerKind.CONFIRMATION_DUE
        ]
    assert due == [datetime(2026, 12, 14, 16, tzinfo=UTC)]


async def monitoring_timers(store: MemoryStore, notice_id: str) -> list[Any]:
    async with store.transaction() as uow:
        return [
            t
            for t in await uow.timers.pending("vt-gz", notice_id)
            if t.kind is TimerKind.MONITORING_REQUEST
        ]


async def test_monitoring_after_onderzoek_is_scheduled_at_3_and_12_months(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§7.1 A, B: after moment B (not refuted) VT monitors at 3 and 12 months, 9:00 local."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    assert await monitoring_timers(store, notice.id) == []  # only from the confirmation on
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    timers = await monitoring_timers(store, notice.id)
    assert [(t.attempt, t.due_at) for t in timers] == [
        (3, datetime(2027, 3, 1, 8, tzinfo=UTC)),  # 28 Feb 2027 is a Sunday
        (12, datetime(2027, 11, 29, 8, tzinfo=UTC)),  # so is 28 Nov 2027
    ]


async def test_a_monitoring_moment_asks_the_team_holding_the_case(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§7.1 C: at 3 months a signed monitoring.request goes to the lokaal team holding the case."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    await team_answers(store, hub, sign, "overdracht.confirmation", notice)
    await fire_due_timers(store, hub, CLAIM, datetime(2027, 3, 1, 8, 1, tzinfo=UTC))
    async with store.transaction() as uow:
        claimed = await uow.outbox.claim(
            limit=50,
            now=datetime(2027, 3, 1, 9, tzinfo=UTC),
            lease=timedelta(seconds=30),
            claimer="t",
        )
    requests = [json.loads(item.raw) for item in claimed if item.type == "monitoring.request"]
    assert [(r["recipient"], r["body"]["moment"]) for r in requests] == [("lt-tiel", "3_maanden")]


async def test_no_monitoring_after_a_handover_to_jeugdbescherming(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§7.1 D: after a handover to a GI (Jeugdbescherming Gelderland) VT does not monitor."""
    body = dict(examples["overdracht.notice"]["body"])
    body["monitoring"] = {"afgesproken": False, "reden_geen_monitoring": "overdracht_aan_gi"}
    command = SubmitMessage(
        type="overdracht.notice", case=CaseRef(**CASE), body=body, recipients=("jbg",)
    )
    notice, informing = await submit(store, hub, core.region, command, NOW - timedelta(minutes=3))
    assert (informing.type, informing.recipient) == ("case.notice", "lt-tiel")  # §5.1 D
    raw = sign(
        "overdracht.confirmation",
        sender="jbg",
        id=str(uuid.uuid4()),
        reply_to=notice.id,
        thread=notice.thread,
        case=CASE,
    )
    async with store.transaction() as uow:
        handled = await receive(uow, hub, Delivery(raw, "jbg"), NOW)
    assert handled.disposition is Disposition.ACK
    assert await holder(store) == "jbg"
    assert await monitoring_timers(store, notice.id) == []


async def test_a_handover_to_a_gi_that_agrees_monitoring_is_refused(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """§7.1 D: a notice to Jeugdbescherming with monitoring agreed is refused before it is sent."""
    command = SubmitMessage(
        type="overdracht.notice",
        case=CaseRef(**CASE),
        body=examples["overdracht.notice"]["body"],
        recipients=("jbg",),
    )
    with pytest.raises(PermanentError) as refused:
        await submit(store, hub, core.region, command, NOW)
    assert refused.value.code is ErrorCode.SCHEMA_INVALID
    async with store.transaction() as uow:
        assert await uow.ledger.history(CASE["ref"]) == []  # nothing written


async def test_an_overdue_confirmation_proposes_route_a_once(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """§8.6: a term that passes unconfirmed proposes escalation route a, once per handover."""
    await vt_submits(store, hub, core, examples, "overdracht.notice")
    late = datetime(2026, 11, 30, 16, 1, tzinfo=UTC)
    await fire_due_timers(store, hub, CLAIM, late)
    await fire_due_timers(store, hub, CLAIM, late + timedelta(days=2))
    async with store.transaction() as uow:
        open_ones = list(await uow.escalations.still_open())
    assert [(e.case_ref, e.party, e.route.value) for _, e in open_ones] == [
        (CASE["ref"], "lt-tiel", "a")
    ]


async def test_a_question_about_a_handover_is_visible_and_counts_against_vts_answer_deadline(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """§8.4: the team's question shows on the handover; VT's answer closes it and its deadline."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    handled = await team_answers(store, hub, sign, "overdracht.question", notice)
    assert handled.disposition is Disposition.ACK
    question_id = handled.message_id or ""
    view = await case_view(store, CASE["ref"])
    assert view is not None
    assert view["overdrachten"][0]["questions"] == [
        {
            "id": question_id,
            "from": "lt-tiel",
            "asked_at": "2026-11-28T11:59:00.000Z",
            "answered": False,
        }
    ]
    async with store.transaction() as uow:
        (timer,) = await uow.timers.pending("lt-tiel", question_id)
    # asked on a Saturday: the first office moment is Monday 9:00, one working day on
    assert (timer.kind, timer.due_at) == (
        TimerKind.VT_ANSWER_DUE,
        datetime(2026, 12, 1, 8, tzinfo=UTC),
    )
    await vt_submits(store, hub, core, examples, "overdracht.answer", reply_to=question_id)
    view = await case_view(store, CASE["ref"])
    assert view is not None
    assert view["overdrachten"][0]["questions"][0]["answered"] is True
    async with store.transaction() as uow:
        assert await uow.timers.pending("lt-tiel", question_id) == []


async def test_a_question_vt_leaves_unanswered_opens_one_alert(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """Past VT's answer deadline with no answer: one alert for VT itself."""
    notice = await vt_submits(store, hub, core, examples, "overdracht.notice")
    handled = await team_answers(store, hub, sign, "overdracht.question", notice)
    await fire_due_timers(store, hub, CLAIM, datetime(2026, 12, 1, 8, 1, tzinfo=UTC))
    key = answer_overdue_alert(handled.message_id or "")
    assert len(await alerts(store, key)) == 1
