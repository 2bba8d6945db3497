"""A year of the region's traffic through the real pipeline and store, checked against the model.

The world (`world.py`) draws the reports and every party's behaviour; the
driver (`driver.py`) plays them through `submit`, `relay_once`,
`receive_batch`, `fire_due_timers` and the escalation service on the real
SQLite store with a fake clock; the model (`model.py`) says from the plan
alone what must have happened. The year runs once per module; each test
checks one promise against it.

`VTGW_SIMULATION_REPORTS` sets the number of reports (default below: what
fits the suite's time budget on a 2-core machine; the full region is about
10,000 a year).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.email.content import Sender, compose, dutch_date
from adapters.email.outbound import mail_facts
from adapters.store.engine import create_engine
from adapters.store.sql import migrate, open_store
from adapters.store.tables import alerts, messages, overdrachten, rejected
from gateway.bootstrap import Paths, load_core
from gateway.domain.contracts import Contracts, Transport
from gateway.domain.escalation import Escalation
from gateway.domain.ledger import EntryKind, LedgerEntry, ResponsibilityLedger, verify_chain
from gateway.domain.report import Quarter
from gateway.service.pipeline import Accepted, Verifier, verify_message
from gateway.service.reporting import report
from gateway.service.views import case_view
from gateway.vectors import with_test_keys
from tests.simulation import world as w
from tests.simulation.driver import Driver, Observed, hub_for
from tests.simulation.model import COUNTED, QUARTERS, Model, expect

pytestmark = pytest.mark.simulation

ROOT = Path(__file__).resolve().parents[2]
REPORTS = int(os.environ.get("VTGW_SIMULATION_REPORTS", "300"))
SEED = 20260105
LEDGER_PAGE = 5000


@dataclass
class Year:
    """The simulated year: the plan, the model, what the driver saw, and what the store holds."""

    world: w.World
    model: Model
    observed: Observed
    driver: Driver
    contracts: Contracts
    verifier: Verifier
    path: Path
    dsn: str
    entries: list[LedgerEntry]
    reports: dict[str, dict[str, Any]]
    escalations: list[tuple[int, Escalation]]
    alerts: list[tuple[str, datetime, datetime | None]]
    confirmations: dict[tuple[str, str], Any]
    overdrachten: dict[str, Any]
    rejected: list[tuple[str | None, str]]
    views: dict[tuple[str, datetime], str | None]


async def _entries(dsn: str) -> list[LedgerEntry]:
    store = await open_store(dsn)
    try:
        found: list[LedgerEntry] = []
        while True:
            async with store.transaction() as uow:
                page = await uow.ledger.entries(
                    after=found[-1].sequence if found else 0, limit=LEDGER_PAGE
                )
            if not page:
                return found
            found += page
    finally:
        await store.close()


async def _simulate(path: Path) -> Year:
    core = load_core(Paths.defaults())
    contracts = with_test_keys(core.contracts)
    verifier = Verifier(contracts, core.validator, "vt-gz")
    hub = hub_for(verifier, core.region)
    dsn = f"sqlite+aiosqlite:///{path}"
    await migrate(dsn)
    store = await open_store(dsn)
    world = w.generate(SEED, REPORTS)
    driver = Driver(store, hub, core.region, world, dsn)
    try:
        observed = await driver.run()
        reports = {
            q: await report(store, core.region, hub.calendar, Quarter.parse(q)) for q in QUARTERS
        }
        async with store.transaction() as uow:
            escalations = list(await uow.escalations.since(datetime(2025, 1, 1, tzinfo=UTC)))
        model = expect(world, {m.code: m.name for m in core.region})
        rng = random.Random(SEED)
        sample = rng.sample(list(world.reports), min(40, len(world.reports)))
        views: dict[tuple[str, datetime], str | None] = {}
        for case in sample:
            for at, _, _ in model.timelines[case.ref]:
                for moment in (at - timedelta(minutes=1), at):
                    view = await case_view(store, case.ref, moment)
                    views[(case.ref, moment)] = view["holder"] if view else None
    finally:
        await store.close()
    engine = create_engine(dsn)
    async with engine.connect() as db:
        alert_rows = [
            (r.key, r.opened_at, r.closed_at)
            for r in await db.execute(select(alerts.c.key, alerts.c.opened_at, alerts.c.closed_at))
        ]
        confirmation_rows = {
            (r.sender, r.id): r
            for r in await db.execute(
                select(messages).where(
                    messages.c.type == "overdracht.confirmation", messages.c.direction == "in"
                )
            )
        }
        overdracht_rows = {r.id: r for r in await db.execute(select(overdrachten))}
        rejected_rows = [
            (r.message_id, r.code)
            for r in await db.execute(select(rejected.c.message_id, rejected.c.code))
        ]
    await engine.dispose()
    return Year(
        world=world,
        model=model,
        observed=observed,
        driver=driver,
        contracts=contracts,
        verifier=verifier,
        path=path,
        dsn=dsn,
        entries=await _entries(dsn),
        reports=reports,
        escalations=escalations,
        alerts=alert_rows,
        confirmations=confirmation_rows,
        overdrachten=overdracht_rows,
        rejected=rejected_rows,
        views=views,
    )


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Year:
    """The year, simulated once for the module."""
    path = tmp_path_factory.mktemp("simulation") / "gateway.db"
    return asyncio.run(_simulate(path))


@pytest.fixture(scope="module")
def ledger(year: Year) -> ResponsibilityLedger:
    """The stored ledger, rebuilt in memory (which checks its chain)."""
    return ResponsibilityLedger(year.entries)


def _first(problems: list[str], limit: int = 15) -> str:
    return f"{len(problems)} problem(s), first: " + "\n".join(problems[:limit])


# --- the run ---------------------------------------------------------------------------


def test_the_year_ran_as_planned_and_shows_its_figures(
    year: Year, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every planned act happened as the plan said; the run's figures are printed."""
    o, m = year.observed, year.model
    outcomes = Counter(m.handovers.values())
    lines = [
        f"simulation: {len(year.world.reports)} reports "
        f"({sum(r.kind is w.Kind.ZORGMELDING for r in year.world.reports)} zorgmeldingen), "
        f"{w.FIRST_DAY} .. {year.world.end.date()}, {o.ticks} ticks, {o.elapsed:.1f} s",
        f"  messages: {sum(o.published.values())} published by the hub "
        f"{dict(sorted(o.published.items()))}",
        f"  {sum(o.accepted.values())} accepted from partners {dict(sorted(o.accepted.items()))}",
        f"  {sum(o.refused.values())} refused {dict(sorted(o.refused.items()))}",
        f"  handovers: {len(m.handovers)} {dict(sorted(outcomes.items()))}",
        f"  overdue confirmations {len(m.overdue)}, monitoring requests "
        f"{len(m.monitoring_requests)}, escalations {len(m.escalations)}, "
        f"ledger entries {len(year.entries)}, timers fired {o.timers_fired}",
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert o.unexpected == [], _first(o.unexpected)
    assert len(year.world.reports) == REPORTS
    assert o.submitted["enrichment.request"] == sum(
        r.kind is w.Kind.MELDING for r in year.world.reports
    )


def test_enrichment_fans_out_and_the_informing_rules_add_their_messages(year: Year) -> None:
    """§5.1: JBG, the Raad, the Veiligheidshuis and the lokaal team are asked; §5.1 D, §5.1:
    a handover to a care provider or a GI tells the lokaal team, a zorgmelding the police."""
    wrong = [
        f"{r.ref}: {year.observed.enrichment_recipients.get(r.ref)}"
        for r in year.world.reports
        if r.kind is w.Kind.MELDING
        and sorted(year.observed.enrichment_recipients.get(r.ref, ()))
        != sorted((*w.ENRICHMENT_PARTIES, r.team))
    ]
    assert wrong == [], _first(wrong)
    assert sorted(year.observed.informing) == sorted(year.model.informing)


# --- the ledger ------------------------------------------------------------------------


def test_every_case_is_held_by_whom_the_model_says(
    year: Year, ledger: ResponsibilityLedger
) -> None:
    """At the end of the year the ledger's holder and regievoerder of each case are the model's."""
    wrong = [
        f"{r.ref}: ledger {ledger.holder(r.ref)}/{ledger.regievoerder(r.ref)}, "
        f"model {year.model.holder(r.ref)}/{year.model.regievoerder(r.ref)}"
        for r in year.world.reports
        if (ledger.holder(r.ref), ledger.regievoerder(r.ref))
        != (year.model.holder(r.ref), year.model.regievoerder(r.ref))
    ]
    assert wrong == [], _first(wrong)
    # every melding's case is in the ledger; an overige zorgmelding's is not (§5.1: no dossier)
    meldingen = {r.ref for r in year.world.reports if r.kind is w.Kind.MELDING}
    assert {e.case_ref for e in year.entries} == meldingen


def test_who_held_a_case_at_sampled_moments_is_the_models(
    year: Year, ledger: ResponsibilityLedger
) -> None:
    """Holder at a moment: a minute before and at every change of sampled cases, and at
    random moments, from the stored ledger and from the API's case view."""
    rng = random.Random(SEED + 1)
    end = year.model.end
    pairs = list(year.views)
    for report_ in rng.sample(list(year.world.reports), min(3000, len(year.world.reports))):
        start = report_.received.astimezone(UTC) - timedelta(days=1)
        span = (end - start).total_seconds()
        pairs.append((report_.ref, start + timedelta(seconds=rng.uniform(0, span))))
    wrong = [
        f"{ref} at {at}: ledger {ledger.holder_at(ref, at)}, model {year.model.holder_at(ref, at)}"
        for ref, at in pairs
        if ledger.holder_at(ref, at) != year.model.holder_at(ref, at)
    ]
    wrong += [
        f"{ref} at {at}: case view {holder}, model {year.model.holder_at(ref, at)}"
        for (ref, at), holder in year.views.items()
        if holder != year.model.holder_at(ref, at)
    ]
    assert wrong == [], _first(wrong)
    assert len(pairs) > len(year.views)


def test_no_case_moved_without_its_recipients_valid_confirmation(year: Year) -> None:
    """Every move to a party rests on that party's stored, signed confirmation of an
    overdracht addressed to it; forged, foreign and after-withdrawal confirmations were
    refused with their code and moved nothing."""
    problems = []
    moves = [e for e in year.entries if e.kind is EntryKind.OVERDRACHT_BEVESTIGD]
    for entry in moves:
        overdracht = year.overdrachten.get(entry.evidence["overdracht_id"])
        message = year.confirmations.get((entry.by, entry.evidence["confirmation_id"]))
        if overdracht is None or overdracht.recipient != entry.by:
            problems.append(f"entry {entry.sequence}: not the overdracht's recipient")
            continue
        if message is None or message.reply_to != overdracht.id:
            problems.append(f"entry {entry.sequence}: no confirmation of that overdracht")
            continue
        if message.digest != entry.evidence["confirmation_digest"]:
            problems.append(f"entry {entry.sequence}: the confirmation's digest differs")
        signer = year.contracts.signer_of(entry.by)
        verified = verify_message(
            bytes(message.raw),
            transport_identity=signer.party if signer is not None else entry.by,
            now=message.created_at,
            verifier=year.verifier,
        )
        if not isinstance(verified, Accepted):
            problems.append(f"entry {entry.sequence}: the confirmation does not verify")
    assert problems == [], _first(problems)
    assert len(moves) == sum(
        1 for outcome in year.model.handovers.values() if outcome.startswith("confirmed")
    )
    assert year.observed.refusals == year.model.refusals
    refused_ids = {message_id for message_id, _ in year.rejected}
    assert not refused_ids & {e.evidence["confirmation_id"] for e in moves}
    codes = Counter(code for _, code in year.rejected)
    expected = Counter(year.model.refusals.values())
    assert {c: codes[c] for c in expected} == dict(expected)


# --- deadlines, alerts, escalations, monitoring ----------------------------------------


def test_one_alert_per_overdue_handover_and_per_unanswered_question(year: Year) -> None:
    """§8.5 C: one confirmation_overdue alert per handover past its term, closed once it is
    confirmed or withdrawn; §8.4: one alert per question VT left past its answer deadline;
    §7.1 C: one alert per monitoring answer past its date."""
    by_key = Counter(key for key, _, _ in year.alerts)
    closed = {key: closed_at is not None for key, _, closed_at in year.alerts}
    notices = {key: notice.id for key, notice in year.driver.notices.items()}
    expected = {f"confirmation_overdue:{notices[key]}": key for key in year.model.overdue}
    overdue = {k for k in by_key if k.startswith("confirmation_overdue:")}
    assert overdue == set(expected)
    assert all(by_key[k] == 1 for k in overdue)
    wrong = [
        f"{key}: closed {closed[key]}, model {year.model.overdue_closed[plan]}"
        for key, plan in expected.items()
        if closed[key] != year.model.overdue_closed[plan]
    ]
    assert wrong == [], _first(wrong)
    questions = {
        f"vt_answer_overdue:{year.driver.questions[key]}" for key in year.model.unanswered_questions
    }
    assert {k for k in by_key if k.startswith("vt_answer_overdue:")} == questions
    monitoring = [k for k in by_key if k.startswith("monitoring_answer_overdue:")]
    assert len(monitoring) == year.model.monitoring_overdue
    assert all(by_key[k] == 1 for k in monitoring)


def test_escalations_open_at_the_overdue_moment_and_keep_their_recorded_history(
    year: Year,
) -> None:
    """§8.6: route a proposed when a confirmation or monitoring answer is overdue; each
    outcome VT staff recorded is in the history: I solves, II moves on to b, then c."""
    stored = {
        (e.case_ref, e.party, e.reason.value, e.opened_at): (n, e) for n, e in year.escalations
    }
    assert set(stored) == set(year.model.escalations)
    wrong = []
    for key, expected in year.model.escalations.items():
        _, escalation = stored[key]
        outcomes = tuple(
            (step.at, step.outcome) for step in escalation.history if step.outcome is not None
        )
        if (escalation.route.value, escalation.state.value, outcomes) != (
            expected.route,
            expected.state,
            expected.outcomes,
        ):
            wrong.append(f"{key}: {escalation.route} {escalation.state} {outcomes} vs {expected}")
    assert wrong == [], _first(wrong)


def test_monitoring_requests_go_to_the_holder_at_3_and_12_months(year: Year) -> None:
    """§7.1 B, C, D: at 3 and 12 months after the confirmation, to the party holding the
    case then; none after a handover to a GI, none once the case is back with VT."""
    assert sorted(year.observed.monitoring_requests) == sorted(year.model.monitoring_requests)


# --- the quarterly report ----------------------------------------------------------------


def test_the_quarterly_report_equals_the_models_counts(year: Year) -> None:
    """§7.2: per quarter and municipality, every column of the report is the model's count."""
    wrong = []
    for quarter in QUARTERS:
        rows = {row["gemeente"]: row for row in year.reports[quarter]["rows"]}
        assert set(rows) == set(year.model.rows[quarter])
        for gemeente, expected in year.model.rows[quarter].items():
            wrong += [
                f"{quarter} {gemeente} {column}: report {rows[gemeente][column]}, "
                f"model {expected[column]}"
                for column in COUNTED
                if rows[gemeente][column] != expected[column]
            ]
    assert wrong == [], _first(wrong, 40)
    handed_over = sum(
        row[f"overdrachten_{m}"]
        for quarter in QUARTERS
        for row in year.model.rows[quarter].values()
        for m in "abc"
    )
    assert handed_over == len(year.model.handovers) > 0


# --- the chain ------------------------------------------------------------------------------


def _cli_verify(dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "ledger",
            "verify",
            "--config",
            str(ROOT / "config" / "gateway.toml"),
        ],
        capture_output=True,
        text=True,
        env=os.environ | {"VTGW_STORE_DSN": dsn},
        cwd=ROOT,
        check=False,
    )


ALTERATIONS = (
    ("holder", "lt-nijmegen"),
    ("by_party", "jbg"),
    ("case_ref", "VT-2026-999999"),
    ("gemeente", "GM0268"),
    ("kind", "terug_naar_vt"),
    ("regievoerder", "moviera"),
    ("at", "2026-06-01 12:00:00.000000"),
    ("evidence", json.dumps({"message_id": "ingevoegd"})),
    ("previous_hash", "sha256:" + "1" * 64),
    ("hash", "sha256:" + "2" * 64),
)


def test_the_ledger_verifies_and_names_any_altered_entry(year: Year) -> None:
    """The whole chain verifies (domain and `vt-gateway ledger verify`); changing one column
    of one stored entry breaks it at that entry, and restoring it makes it whole again."""
    assert verify_chain(year.entries) is None
    whole = _cli_verify(year.dsn)
    assert whole.returncode == 0, whole.stderr
    assert f"ledger: {len(year.entries)} entries, the chain is whole" in whole.stdout
    rng = random.Random(SEED + 2)
    for index, (column, value) in enumerate(ALTERATIONS):
        while True:
            entry = rng.choice(year.entries)
            with sqlite3.connect(year.path) as db:
                (before,) = db.execute(
                    f"SELECT {column} FROM ledger WHERE sequence = ?",  # noqa: S608 - our own names
                    (entry.sequence,),
                ).fetchone()
            if before != value:
                break
        with sqlite3.connect(year.path) as db:
            db.execute(
                f"UPDATE ledger SET {column} = ? WHERE sequence = ?",  # noqa: S608
                (value, entry.sequence),
            )
        try:
            altered = asyncio.run(_entries(year.dsn))
            assert verify_chain(altered) == entry.sequence, column
            if index % 5 == 0:
                broken = _cli_verify(year.dsn)
                assert broken.returncode == 1
                assert f"ledger: broken at entry {entry.sequence} " in broken.stdout
        finally:
            with sqlite3.connect(year.path) as db:
                db.execute(
                    f"UPDATE ledger SET {column} = ? WHERE sequence = ?",  # noqa: S608
                    (before, entry.sequence),
                )
        assert verify_chain(asyncio.run(_entries(year.dsn))) is None
    assert _cli_verify(year.dsn).returncode == 0


def test_vts_own_terms_and_the_enrichment_answers_alert_exactly_when_late(year: Year) -> None:
    """§8 A-C: VT decides every case of this world within its own term (a handover, a
    follow-up, or closing it), so no case_overdue alert opens; §5.1: one enrichment alert
    per partner that had not answered by the request's antwoord_voor, closed by a late answer."""
    keys = Counter(key for key, _, _ in year.alerts)
    assert [k for k in keys if k.startswith("case_overdue:")] == []
    closed = {key: closed_at is not None for key, _, closed_at in year.alerts}
    expected: dict[str, bool] = {}  # alert key -> closed by a late answer
    for melding in year.world.reports:
        due = w.closing(w.add_working_days(melding.received.date(), 4))
        for answer in melding.enrichment:
            request = year.driver.requests.get((melding.ref, answer.party))
            if request is None or not year.model.happens(due):
                continue
            if answer.at is None or answer.at > due:
                expected[f"enrichment_overdue:{request.id}"] = year.model.happens(answer.at)
    found = {k for k in keys if k.startswith("enrichment_overdue:")}
    assert found == set(expected)
    assert all(keys[k] == 1 for k in found)
    wrong = [k for k, was_closed in expected.items() if closed[k] != was_closed]
    assert wrong == [], _first(wrong)
    assert len(expected) > 0  # the world has silent partners: the rule is exercised


def test_a_case_vt_closes_without_a_handover_is_held_by_nobody(year: Year) -> None:
    """VT closes a melding with no follow-up (or after an onderzoek that refuted the
    suspicion): the ledger's last entry is `afgesloten` by VT and nobody holds the case."""
    closed = [r for r in year.world.reports if r.closed and year.model.happens(r.closed[0])]
    assert closed  # the world closes cases: the rule is exercised
    last: dict[str, LedgerEntry] = {}
    for entry in year.entries:
        last[entry.case_ref] = entry
    wrong = [
        f"{r.ref}: {last[r.ref].kind} by {last[r.ref].by}, holder {last[r.ref].holder}"
        for r in closed
        if (last[r.ref].kind, last[r.ref].by, last[r.ref].holder)
        != (EntryKind.AFGESLOTEN, w.VT, None)
    ]
    assert wrong == [], _first(wrong)


async def _mails_of_the_year(year: Year) -> list[str]:
    """Every message of the year to a team on the e-mail bridge, as the bridge would mail it."""
    email_parties = [c.party for c in year.contracts if c.transport is Transport.EMAIL]
    engine = create_engine(year.dsn)
    try:
        async with engine.connect() as db:
            keys = (
                await db.execute(
                    select(messages.c.sender, messages.c.id).where(
                        messages.c.recipient.in_(email_parties)
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    store = await open_store(year.dsn)
    sender = Sender("overdracht-brug@vt-gz.example", "Veilig Thuis Gelderland-Zuid")
    texts = []
    try:
        async with store.transaction() as uow:
            for key in keys:
                message = await uow.messages.get(key.sender, key.id)
                assert message is not None
                facts = mail_facts(
                    b"s" * 32,
                    message,
                    team_name=message.recipient,
                    link=f"https://vtgw.example/bridge/m/{message.id}/token",
                    link_expires=message.created_at + timedelta(days=7),
                )
                mail = compose(
                    facts, sender=sender, to=("team@example.org",), now=message.created_at
                )
                parts = [str(mail["Subject"])]  # the headers' ids are random digits: not scanned
                parts += [
                    str(part.get_content()) for part in mail.walk() if not part.is_multipart()
                ]
                texts.append("\n".join(parts))
    finally:
        await store.close()
    return texts


def test_no_mail_of_the_year_carries_the_personal_data_of_a_case(year: Year) -> None:
    """Issue 5, NTA 7516: the bridge's mail of every message of the year to an e-mail team
    holds no name, BSN, birth date, address, case reference or free text of the case."""
    forbidden = {"Testpersoon", "Voorbeeldstraat", "9999ZZ"}
    forbidden |= {str(t["omschrijving"]) for t in w.CONDITIONS}
    forbidden |= {
        "Burenruzie",
        "Een gecorrigeerde overdracht volgt",
        "De casusregisseur met de nodige expertise",
        "Geen nieuwe incidenten",
    }
    for melding in year.world.reports:
        forbidden.add(melding.ref)
        for person in year.world.persons[melding.ref]:
            born = date.fromisoformat(person["geboortedatum"])
            forbidden |= {
                person["geboortedatum"],
                dutch_date(born).split(" ", 1)[1],
            }
            if "bsn" in person:
                forbidden.add(person["bsn"])
    mails = asyncio.run(_mails_of_the_year(year))
    assert len(mails) >= len(year.world.reports)  # each report reaches its lokaal team by mail
    leaks = sorted({word for text in mails for word in forbidden if word in text})
    assert leaks == [], leaks[:20]
