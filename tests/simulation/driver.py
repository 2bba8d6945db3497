"""Plays the world through the real gateway: submission, outbox relay, timers, receive path.

VT's side goes through `submit` (routing, signing, informing, the ledger),
the outbox through `relay_once` to a collecting publisher that stands for
both transports (AMQP and the e-mail bridge): what it collects is what the
partners receive. Partners answer with envelopes signed by their own keys
(the lokale teams by the e-mail bridge's key), fed through `receive_batch`;
due timers fire through `fire_due_timers`; VT staff record escalation
outcomes through the escalation service. The clock is the world's grid of
ticks; nothing reads the wall clock.

Within one tick: VT's submissions first, then the partners' messages of
that moment (one batch), then escalation outcomes, then the relay (and the
partners' receipts for what it delivered), then the due timers.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time as wallclock
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from adapters.store.engine import create_engine
from adapters.store.tables import timers
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.canonical import CanonicalObject, digest_of
from gateway.domain.contracts import Contracts, Transport
from gateway.domain.delivery import expects_receipt
from gateway.domain.envelope import CaseRef, format_timestamp
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.escalation import EscalationReason
from gateway.domain.region import Region
from gateway.domain.signatures import SigningKey
from gateway.service import closing, escalations
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.ports import OutboxItem, Store, StoredMessage
from gateway.service.receiving import Delivery, Handled, receive_batch
from gateway.service.relay import Claim, fire_due_timers, relay_once
from gateway.service.submission import SubmitMessage, submit
from gateway.vectors import signer_key, vector_key, vector_seed
from tests.simulation import world as w

CLAIM = Claim(claimer="simulation", lease=timedelta(seconds=30), limit=500)
ESCALATION_HOUR = 10  # VT staff record an escalation's outcome at 10:00 local


def escalation_steps(opened_at: datetime, plan: w.Handover) -> list[tuple[datetime, Any]]:
    """When VT staff record each planned outcome: working days apart, at 10:00 local."""
    steps = []
    day = opened_at.astimezone(w.ZONE).date()
    for outcome, gap in plan.escalation:
        day = w.add_working_days(day, gap)
        steps.append((w.local(day, ESCALATION_HOUR).astimezone(UTC), outcome))
    return steps


def monitoring_plan(report: w.Report, party: str) -> w.Handover | None:
    """The handover whose plan says how `party` answers the monitoring of this case."""
    plans = [h for h in report.handovers if h.monitoring and h.recipient == party]
    return plans[0] if plans else None


def monitoring_answer_at(requested: datetime, delay: int) -> datetime:
    """A monitoring answer comes at 11:00 local, `delay` working days after the request."""
    day = w.add_working_days(requested.astimezone(w.ZONE).date(), delay)
    return w.local(day, 11).astimezone(UTC)


class Partners:
    """The Publisher port for every transport: what it collects is what the partners receive."""

    def __init__(self) -> None:
        self.inbox: list[OutboxItem] = []
        self.count: Counter[str] = Counter()

    async def publish(self, item: OutboxItem) -> None:
        self.inbox.append(item)
        self.count[item.type] += 1

    def take(self) -> list[OutboxItem]:
        items, self.inbox = self.inbox, []
        return items


@dataclass(frozen=True, slots=True)
class PartnerAct:
    """A message a partner sends at a moment, and what the gateway must make of it."""

    label: str
    key: str
    build: Callable[[datetime], Delivery | None]
    expect: ErrorCode | None = None  # None: accepted
    then: Callable[[Handled, datetime], None] | None = None


@dataclass
class Observed:
    """What the driver saw happen."""

    refusals: dict[tuple[str, str], str] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    escalations: dict[tuple[str, str, str, datetime], int] = field(default_factory=dict)
    monitoring_requests: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    enrichment_recipients: dict[str, tuple[str, ...]] = field(default_factory=dict)
    informing: list[tuple[str, str, str]] = field(default_factory=list)  # ref, type, recipient
    published: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    submitted: Counter[str] = field(default_factory=Counter)
    timers_fired: int = 0
    ticks: int = 0
    elapsed: float = 0.0


Act = Callable[[datetime], Awaitable[None]]


class Driver:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        region: Region,
        world: w.World,
        dsn: str,
        *,
        seed: int = 1,
    ) -> None:
        self.store, self.hub, self.region, self.world = store, hub, region, world
        self._engine = create_engine(dsn)  # to read when the next timer is due
        self.contracts: Contracts = hub.verifier.contracts
        self.rng = random.Random(seed)
        self.partners = Partners()
        self.publishers = {Transport.AMQP: self.partners, Transport.EMAIL: self.partners}
        self.observed = Observed()
        self._queue: list[tuple[datetime, int, int, Any]] = []
        self._seq = itertools.count()
        self.notices: dict[str, StoredMessage] = {}  # handover key -> VT's notice
        self.questions: dict[str, str] = {}  # handover key -> the team's question id
        self.requests: dict[tuple[str, str], StoredMessage] = {}  # (ref, party) -> enrichment
        self.plans = {h.key: (r, h) for r in world.reports for h in r.handovers}
        # Which plan says how VT follows up an escalation about (case, party): the first
        # handover to that party (a later one, after a return or a withdrawal, is on time).
        self.overdue_plan: dict[tuple[str, str], w.Handover] = {}
        for r in world.reports:
            for h in r.handovers:
                self.overdue_plan.setdefault((r.ref, h.recipient), h)
        self.reports = {r.ref: r for r in world.reports}
        self._forger = SigningKey.from_seed("forged", vector_seed("forger", "1"))

    # --- scheduling --------------------------------------------------------------

    def _at(self, moment: datetime | None, priority: int, action: Any) -> None:
        if moment is None:
            return
        moment = moment.astimezone(UTC)
        if moment <= self.world.end:
            heapq.heappush(self._queue, (moment, priority, next(self._seq), action))

    def vt(self, moment: datetime | None, act: Act) -> None:
        self._at(moment, 0, act)

    def partner(self, moment: datetime | None, act: PartnerAct) -> None:
        self._at(moment, 1, act)

    def staff(self, moment: datetime | None, act: Act) -> None:
        self._at(moment, 2, act)

    # --- the run -----------------------------------------------------------------

    async def run(self) -> Observed:
        """Play the world: from one moment that has something to do to the next.

        A moment is one where the world acts (always a half hour in office
        hours) or where a timer of the gateway falls due (the scheduler would
        find it there). Between them nothing happens, so no tick is spent.
        """
        started = wallclock.perf_counter()
        for report in self.world.reports:
            self.vt(report.received, self._open(report))
        end = self.world.end.astimezone(UTC)
        while True:
            next_timer = await self._next_timer()
            moments = [m for m in (next_timer, self._queue[0][0] if self._queue else None) if m]
            if not moments or min(moments) > end:
                break
            now = min(moments)
            await self._tick(now, timers_due=next_timer is not None and next_timer <= now)
        self.observed.elapsed = wallclock.perf_counter() - started
        await self._engine.dispose()
        return self.observed

    async def _next_timer(self) -> datetime | None:
        """When the earliest pending timer falls due (what the scheduler polls for)."""
        async with self._engine.connect() as connection:
            due = await connection.scalar(
                select(func.min(timers.c.due_at)).where(
                    timers.c.fired_at.is_(None), timers.c.cancelled_at.is_(None)
                )
            )
        if due is None:
            return None
        return due.replace(tzinfo=UTC) if due.tzinfo is None else due.astimezone(UTC)

    async def _tick(self, now: datetime, *, timers_due: bool) -> None:
        self.observed.ticks += 1
        due: list[tuple[int, Any]] = []
        while self._queue and self._queue[0][0] <= now:
            moment, priority, _, action = heapq.heappop(self._queue)
            if moment != now:
                self.observed.unexpected.append(f"action off the grid at {moment}")
            due.append((priority, action))
        for priority in (0, 1, 2):
            actions = [a for p, a in due if p == priority]
            if priority == 1 and actions:
                await self._deliver(actions, now)
            else:
                for act in actions:
                    await act(now)
        await self._relay(now)
        if not timers_due:
            return
        while True:
            fired = await fire_due_timers(self.store, self.hub, CLAIM, now)
            self.observed.timers_fired += fired
            if fired == 0:
                break
            await self._escalations_opened(now)
        await self._relay(now)

    async def _relay(self, now: datetime) -> None:
        while await relay_once(self.store, self.publishers, self.contracts, CLAIM, now):
            acts = [self._react(item, now) for item in self.partners.take()]
            await self._deliver([a for a in acts if a is not None], now)

    async def _deliver(self, acts: list[PartnerAct], now: datetime) -> None:
        built = [(act, act.build(now)) for act in acts]
        built = [(act, d) for act, d in built if d is not None]
        if not built:
            return
        async with self.store.transaction() as uow:
            handled = await receive_batch(uow, self.hub, [d for _, d in built], now)
        for (act, _), result in zip(built, handled, strict=True):
            code = result.rejection.code if result.rejection is not None else None
            if code is None:
                self.observed.accepted[result.message_type or act.label] += 1
            else:
                self.observed.refused[act.label] += 1
                self.observed.refusals[(act.key, act.label)] = code.value
            if code != act.expect:
                detail = result.rejection.detail if result.rejection else "accepted"
                self.observed.unexpected.append(
                    f"{act.label} {act.key} at {now}: {code} ({detail}), expected {act.expect}"
                )
            elif act.then is not None:
                act.then(result, now)

    async def _submit(self, command: SubmitMessage, now: datetime) -> list[StoredMessage]:
        try:
            messages = await submit(self.store, self.hub, self.region, command, now)
        except PermanentError as refused:
            self.observed.unexpected.append(
                f"{command.type} {command.case.ref} at {now}: {refused.code} {refused}"
            )
            return []
        self.observed.submitted[command.type] += 1
        for message in messages[1:]:
            if message.type != command.type or command.type == "zorgmelding.forward":
                self.observed.informing.append((command.case.ref, message.type, message.recipient))
        return messages

    # --- partners ----------------------------------------------------------------

    def _message(
        self,
        message_type: str,
        sender: str,
        body: Mapping[str, Any],
        now: datetime,
        *,
        case: CaseRef | None,
        thread: str | None = None,
        reply_to: str | None = None,
        key: SigningKey | None = None,
    ) -> Delivery:
        """A partner's envelope, signed by its signer (the bridge for a lokaal team)."""
        message_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        obj: dict[str, Any] = {
            "version": 1,
            "id": message_id,
            "type": message_type,
            "sender": sender,
            "recipient": self.hub.party,
            "sent_at": format_timestamp(now),
            "thread": thread or message_id,
        }
        if reply_to is not None:
            obj["reply_to"] = reply_to
        if case is not None:
            obj["case"] = {"ref": case.ref, "gemeente": case.gemeente}
        obj["body"] = body
        signer = self.contracts.signer_of(sender)
        identity = signer.party if signer is not None else sender
        real = signer_key(self.contracts, sender)
        signing = real if key is None else SigningKey(real.kid, key.private_key)
        value = signing.sign_bytes(CanonicalObject(obj).whole())
        obj["signature"] = {"alg": "Ed25519", "kid": signing.kid, "value": value}
        transport = "email" if identity == "vtgw-bridge" else "amqp"
        raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        return Delivery(raw, identity, transport)

    def _react(self, item: OutboxItem, now: datetime) -> PartnerAct | None:
        """What a partner does with what it received: a receipt, and perhaps an answer later."""
        self.observed.published[item.type] += 1
        if not expects_receipt(item.type):
            return None
        obj = json.loads(item.raw)
        if item.type == "monitoring.request":
            self._monitoring_requested(item, obj, now)
        digest = digest_of(CanonicalObject(obj).whole())

        def build(at: datetime) -> Delivery:
            body = {"digest": digest, "received_at": format_timestamp(at)}
            return self._message(
                "receipt",
                item.recipient,
                body,
                at,
                case=None,
                thread=obj["thread"],
                reply_to=item.message_id,
            )

        return PartnerAct("receipt", item.message_id, build)

    def _monitoring_requested(self, item: OutboxItem, obj: dict[str, Any], now: datetime) -> None:
        ref = obj["case"]["ref"]
        moment = obj["body"]["moment"]
        self.observed.monitoring_requests.append((ref, item.recipient, moment, now))
        report = self.reports[ref]
        plan = monitoring_plan(report, item.recipient)
        delays = plan.monitoring_answers if plan is not None else (None, None)
        delay = delays[0] if moment == "3_maanden" else delays[1]
        if delay is None:
            return
        case = CaseRef(ref, report.gemeente)

        def build(at: datetime) -> Delivery:
            return self._message(
                "monitoring.response",
                item.recipient,
                w.monitoring_response(),
                at,
                case=case,
                thread=obj["thread"],
                reply_to=item.message_id,
            )

        self.partner(monitoring_answer_at(now, delay), PartnerAct("monitoring", ref, build))

    # --- VT's acts ---------------------------------------------------------------

    def _open(self, report: w.Report) -> Act:
        async def act(now: datetime) -> None:
            case = CaseRef(report.ref, report.gemeente)
            persons = self.world.persons[report.ref]
            if report.kind is w.Kind.ZORGMELDING:
                await self._submit(
                    SubmitMessage("zorgmelding.forward", case, w.zorgmelding(report, persons)), now
                )
                return
            answer_before = w.closing(w.add_working_days(report.received.date(), 4))
            body = w.enrichment_request(persons, answer_before)
            sent = await self._submit(SubmitMessage("enrichment.request", case, body), now)
            self.observed.enrichment_recipients[report.ref] = tuple(m.recipient for m in sent)
            for message in sent:
                self.requests[(report.ref, message.recipient)] = message
            for answer in report.enrichment:
                request = self.requests.get((report.ref, answer.party))
                if request is not None:
                    self.partner(answer.at, self._enrichment_answer(report, request, persons))
            for notice in report.notices:
                self.vt(notice.at, self._case_notice(report, notice))
            for handover in report.handovers:
                self.vt(handover.notice_at, self._hand_over(report, handover))
            if report.closed is not None:
                self.vt(report.closed[0], self._close(report, report.closed[1]))

        return act

    def _close(self, report: w.Report, reason: str) -> Act:
        async def act(now: datetime) -> None:
            await closing.close_case(
                self.store, report.ref, vt=w.VT, by="medewerker VT", reason=reason, at=now
            )

        return act

    def _enrichment_answer(
        self, report: w.Report, request: StoredMessage, persons: tuple[dict[str, Any], ...]
    ) -> PartnerAct:
        known = self.rng.random() < 0.3
        case = CaseRef(report.ref, report.gemeente)

        def build(at: datetime) -> Delivery:
            body = w.enrichment_response(persons, known)
            return self._message(
                "enrichment.response",
                request.recipient,
                body,
                at,
                case=case,
                thread=request.thread,
                reply_to=request.id,
            )

        return PartnerAct("enrichment", report.ref, build)

    def _case_notice(self, report: w.Report, notice: w.CaseNotice) -> Act:
        async def act(now: datetime) -> None:
            case = CaseRef(report.ref, report.gemeente)
            await self._submit(SubmitMessage("case.notice", case, w.case_notice(notice)), now)

        return act

    def _hand_over(self, report: w.Report, plan: w.Handover) -> Act:
        async def act(now: datetime) -> None:
            case = CaseRef(report.ref, report.gemeente)
            body = w.overdracht_notice(plan, self.world.persons[report.ref])
            recipients = () if plan.recipient == report.team else (plan.recipient,)
            sent = await self._submit(
                SubmitMessage("overdracht.notice", case, body, recipients), now
            )
            if not sent:
                return
            notice = self.notices[plan.key] = sent[0]
            self._schedule_answers(report, plan, notice, case)

        return act

    def _schedule_answers(
        self, report: w.Report, plan: w.Handover, notice: StoredMessage, case: CaseRef
    ) -> None:
        def answer(message_type: str, body: Callable[[datetime], Any], **how: Any) -> Any:
            sender = how.pop("sender", plan.recipient)

            def build(at: datetime) -> Delivery:
                return self._message(
                    message_type,
                    sender,
                    body(at),
                    at,
                    case=case,
                    thread=notice.thread,
                    reply_to=notice.id,
                    **how,
                )

            return build

        key = plan.key
        if plan.deferral_at is not None and plan.deferred_to is not None:
            new_date = plan.deferred_to
            self.partner(
                plan.deferral_at,
                PartnerAct(
                    "deferral", key, answer("overdracht.deferral", lambda _: w.deferral(new_date))
                ),
            )
        self.partner(
            plan.confirm_at,
            PartnerAct("confirmation", key, answer("overdracht.confirmation", w.confirmation)),
        )
        self.partner(
            plan.confirm_after_withdrawal_at,
            PartnerAct(
                "after_withdrawal",
                key,
                answer("overdracht.confirmation", w.confirmation),
                ErrorCode.INVALID_STATE,
            ),
        )
        self.partner(
            plan.forged_at,
            PartnerAct(
                "forged",
                key,
                answer("overdracht.confirmation", w.confirmation, key=self._forger),
                ErrorCode.SIGNATURE_INVALID,
            ),
        )
        if plan.foreign is not None:
            party, moment = plan.foreign
            self.partner(
                moment,
                PartnerAct(
                    "foreign",
                    key,
                    answer("overdracht.confirmation", w.confirmation, sender=party),
                    ErrorCode.UNKNOWN_THREAD,
                ),
            )
        if plan.question is not None:
            asked, answered = plan.question

            def remember(handled: Handled, _: datetime) -> None:
                self.questions[key] = handled.message_id or ""

            self.partner(
                asked,
                PartnerAct(
                    "question",
                    key,
                    answer("overdracht.question", lambda _: w.question()),
                    then=remember,
                ),
            )
            self.vt(answered, self._answer(report, plan))
        self.vt(plan.withdraw_at, self._withdraw(report, plan))
        for label, moment, message_type, body in (
            ("regie.change", plan.regie_change_at, "regie.change", w.regie_change),
            ("case.return", plan.return_at, "case.return", lambda _: w.case_return()),
        ):
            self.partner(
                moment,
                PartnerAct(label, key, self._unthreaded(message_type, plan.recipient, case, body)),
            )

    def _unthreaded(
        self, message_type: str, sender: str, case: CaseRef, body: Callable[[datetime], Any]
    ) -> Callable[[datetime], Delivery]:
        def build(at: datetime) -> Delivery:
            return self._message(message_type, sender, body(at), at, case=case)

        return build

    def _withdraw(self, report: w.Report, plan: w.Handover) -> Act:
        async def act(now: datetime) -> None:
            case = CaseRef(report.ref, report.gemeente)
            notice = self.notices[plan.key]
            command = SubmitMessage(
                "overdracht.withdrawal", case, w.withdrawal(), reply_to=notice.id
            )
            await self._submit(command, now)

        return act

    def _answer(self, report: w.Report, plan: w.Handover) -> Act:
        async def act(now: datetime) -> None:
            question_id = self.questions.get(plan.key)
            if question_id is None:
                self.observed.unexpected.append(f"no question to answer for {plan.key}")
                return
            case = CaseRef(report.ref, report.gemeente)
            command = SubmitMessage("overdracht.answer", case, w.answer(), reply_to=question_id)
            await self._submit(command, now)

        return act

    # --- escalations ---------------------------------------------------------------

    async def _escalations_opened(self, now: datetime) -> None:
        async with self.store.transaction() as uow:
            opened = await uow.escalations.since(now)
        for number, escalation in opened:
            where = (escalation.case_ref, escalation.party, escalation.reason.value, now)
            if where in self.observed.escalations:
                continue
            self.observed.escalations[where] = number
            report = self.reports.get(escalation.case_ref)
            plan = None
            if report is not None and escalation.reason is EscalationReason.CONFIRMATION_OVERDUE:
                plan = self.overdue_plan.get((escalation.case_ref, escalation.party))
            elif report is not None:
                plan = monitoring_plan(report, escalation.party)
            if plan is None:
                self.observed.unexpected.append(f"escalation {number} for an unplanned {where}")
                continue
            for moment, outcome in escalation_steps(escalation.opened_at, plan):
                self.staff(moment, self._outcome(number, outcome))

    def _outcome(self, number: int, outcome: Any) -> Act:
        async def act(now: datetime) -> None:
            await escalations.record(
                self.store, number, outcome, by="teamleider-vt", note="simulatie", at=now
            )

        return act


def hub_for(verifier: Verifier, region: Region) -> Hub:
    """VT's hub with the fixed test key of the vectors."""
    return Hub(verifier, vector_key("vt-gz"), WorkingDayCalendar.for_region(region))
