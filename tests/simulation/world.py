"""The synthetic world of one year in the region: every report and how every party behaves.

Everything is drawn up front from one seeded `random.Random`, as absolute
moments on the simulation's grid of ticks (half hours on working days, two
hours otherwise, Europe/Amsterdam), so that the driver can play it and the
model can say what must have happened without asking the gateway. The data
is synthetic: invented names, BSNs that pass the 11-test, `.example` contacts.

The world keeps its own working-day calendar (the Algemene termijnenwet's
days for 2026 and 2027, written out by hand), independent of the gateway's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.escalation import Outcome

ZONE = ZoneInfo("Europe/Amsterdam")
VT = "vt-gz"
FIRST_DAY = date(2026, 1, 5)
LAST_REPORT_DAY = date(2026, 12, 23)
END = datetime(2027, 3, 31, 19, 0, tzinfo=ZONE)  # the simulation's last tick
REPORTS = 10_000
ZORGMELDING_SHARE = 0.06

# The Algemene termijnenwet's holidays (5 May every year), by hand, for the years simulated.
HOLIDAYS = frozenset(
    {
        date(2026, 1, 1),
        date(2026, 4, 3),  # Good Friday
        date(2026, 4, 6),  # Easter Monday
        date(2026, 4, 27),  # King's Day
        date(2026, 5, 5),
        date(2026, 5, 14),  # Ascension
        date(2026, 5, 25),  # Whit Monday
        date(2026, 12, 25),
        date(2026, 12, 26),
        date(2027, 1, 1),
        date(2027, 3, 26),
        date(2027, 3, 29),
        date(2027, 4, 27),
        date(2027, 5, 5),
        date(2027, 5, 6),
        date(2027, 5, 17),
        date(2027, 12, 25),
        date(2027, 12, 26),
    }
)

# (code, lokaal team, relative weight of reports: roughly the population)
MUNICIPALITIES: tuple[tuple[str, str, int], ...] = (
    ("GM1945", "lt-berg-en-dal", 35),
    ("GM0209", "lt-beuningen", 26),
    ("GM0225", "lt-druten", 19),
    ("GM0252", "lt-heumen", 17),
    ("GM0944", "lt-mook-en-middelaar", 8),
    ("GM0268", "lt-nijmegen", 180),
    ("GM0296", "lt-wijchen", 41),
    ("GM0214", "lt-buren", 27),
    ("GM0216", "lt-culemborg", 29),
    ("GM0263", "lt-maasdriel", 25),
    ("GM1740", "lt-neder-betuwe", 25),
    ("GM0281", "lt-tiel", 42),
    ("GM1960", "lt-west-betuwe", 52),
    ("GM0668", "lt-west-maas-en-waal", 19),
    ("GM0297", "lt-zaltbommel", 29),
)
TEAM = {code: team for code, team, _ in MUNICIPALITIES}
MOVIERA_ABSENT = frozenset({"GM0263", "GM0297"})  # Maasdriel, Zaltbommel (annex 5, note 18)
POLICE = {code: ("politie-lb" if code == "GM0944" else "politie-on") for code in TEAM}
ENRICHMENT_PARTIES = ("jbg", "rvdk", "vhh-gz")  # and the lokaal team (§5.1)


# --- the world's own calendar -----------------------------------------------------


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def next_working_day(day: date) -> date:
    """The day itself when it is a working day, else the next one."""
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def add_working_days(day: date, count: int) -> date:
    """`count` working days after `day` (count >= 0; 0 is the day itself or the next)."""
    day = next_working_day(day)
    for _ in range(count):
        day = next_working_day(day + timedelta(days=1))
    return day


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE)


def closing(day: date) -> datetime:
    """17:00 local: when a term counted in days ends (§8.4)."""
    return local(day, 17)


def add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def ticks(start: date, end: datetime) -> Iterator[datetime]:
    """The simulation's clock, in UTC: every half hour 07:00-19:00 on working days,
    every two hours otherwise (all local)."""
    seen: set[datetime] = set()
    day = start
    while local(day, 0) <= end:
        if is_working_day(day):
            moments = [local(day, h) for h in range(0, 7, 2)]
            moments += [local(day, 7 + m // 60, m % 60) for m in range(0, 12 * 60 + 1, 30)]
            moments += [local(day, h) for h in range(20, 24, 2)]
        else:
            moments = [local(day, h) for h in range(0, 24, 2)]
        for moment in moments:
            utc = moment.astimezone(UTC)
            if utc not in seen and moment <= end:
                seen.add(utc)
                yield utc
        day += timedelta(days=1)


def slot(rng: random.Random, day: date, earliest: int = 9 * 60) -> datetime:
    """A half-hour moment in office hours (9:00-16:30) on a working day, not before `earliest`."""
    day = next_working_day(day)
    minutes = rng.randrange(max(earliest, 9 * 60), 16 * 60 + 31, 30)
    return local(day, minutes // 60, minutes % 60)


def slot_after(rng: random.Random, moment: datetime, working_days: int) -> datetime:
    """A moment `working_days` after `moment`'s day; on the same day, strictly later."""
    moment = moment.astimezone(ZONE)
    day = add_working_days(moment.date(), working_days)
    if day == moment.date():
        later = moment.hour * 60 + moment.minute + 30
        if later > 16 * 60 + 30:
            return slot(rng, add_working_days(day, 1))
        return slot(rng, day, later)
    return slot(rng, day)


# --- the plan ----------------------------------------------------------------------


class Kind(StrEnum):
    MELDING = "melding"
    ZORGMELDING = "zorgmelding"  # overige zorgmelding (§5.1): forwarded, no assessment


class Profile(StrEnum):
    """How the recipient of a handover behaves."""

    ON_TIME = "on_time"  # confirms within the advised term
    LATE = "late"  # confirms after it
    DEFER = "defer"  # reasoned deferral, then confirms by the new date
    DEFER_LATE = "defer_late"  # reasoned deferral, then confirms after the new date
    SILENT = "silent"  # never answers
    WITHDRAWN = "withdrawn"  # VT withdraws before the term ends


@dataclass(frozen=True, slots=True)
class EnrichmentAnswer:
    party: str
    at: datetime | None  # None: never answers


@dataclass(frozen=True, slots=True)
class CaseNotice:
    at: datetime
    soort: str
    uitkomst: str | None = None
    vervolg: str | None = None


@dataclass(frozen=True, slots=True)
class Handover:
    key: str
    moment: str  # A, B, C
    recipient: str
    notice_at: datetime
    advised: date
    refuted: bool  # B: the onderzoek refuted the suspicion
    monitoring: bool  # monitoring.afgesproken
    profile: Profile
    confirm_at: datetime | None = None
    deferral_at: datetime | None = None
    deferred_to: date | None = None
    withdraw_at: datetime | None = None
    confirm_after_withdrawal_at: datetime | None = None
    forged_at: datetime | None = None
    foreign: tuple[str, datetime] | None = None
    question: tuple[datetime, datetime | None] | None = None  # asked, VT answered (or never)
    regie_change_at: datetime | None = None
    return_at: datetime | None = None
    monitoring_answers: tuple[int | None, int | None] = (None, None)  # working days, 3 and 12
    escalation: tuple[tuple[Outcome, int], ...] = ()  # VT's outcomes, working days apart

    @property
    def deadline(self) -> date:
        return self.deferred_to if self.deferred_to is not None else self.advised


@dataclass(frozen=True, slots=True)
class Report:
    ref: str
    gemeente: str
    kind: Kind
    received: datetime
    enrichment: tuple[EnrichmentAnswer, ...] = ()
    notices: tuple[CaseNotice, ...] = ()
    handovers: tuple[Handover, ...] = ()
    closed: tuple[datetime, str] | None = None  # VT closes it without a handover: when, why

    @property
    def team(self) -> str:
        return TEAM[self.gemeente]


@dataclass(frozen=True, slots=True)
class World:
    seed: int
    reports: tuple[Report, ...]
    end: datetime = END
    persons: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)


# --- generation --------------------------------------------------------------------


def generate(seed: int = 20260105, count: int = REPORTS) -> World:
    """The year's reports and every party's behaviour, from one seed."""
    rng = random.Random(seed)
    days = []
    day = FIRST_DAY
    while day <= LAST_REPORT_DAY:
        if is_working_day(day):
            days.append(day)
        day += timedelta(days=1)
    codes = [code for code, _, _ in MUNICIPALITIES]
    weights = [weight for _, _, weight in MUNICIPALITIES]
    arrivals = sorted(
        (slot(rng, rng.choice(days)), rng.choices(codes, weights)[0]) for _ in range(count)
    )
    reports = []
    persons: dict[str, tuple[dict[str, Any], ...]] = {}
    for number, (received, gemeente) in enumerate(arrivals, start=1):
        ref = f"VT-2026-{number:06d}"
        persons[ref] = _persons(rng, gemeente)
        if rng.random() < ZORGMELDING_SHARE:
            reports.append(Report(ref, gemeente, Kind.ZORGMELDING, received))
        else:
            reports.append(_melding(rng, ref, gemeente, received))
    return World(seed, tuple(reports), persons=persons)


def _melding(rng: random.Random, ref: str, gemeente: str, received: datetime) -> Report:
    enrichment = tuple(
        EnrichmentAnswer(party, _answer_moment(rng, received))
        for party in (*ENRICHMENT_PARTIES, TEAM[gemeente])
    )
    path = rng.random()
    notices: list[CaseNotice] = []
    handovers: list[Handover] = []
    closed: tuple[datetime, str] | None = None
    team = TEAM[gemeente]
    if path < 0.24:  # A: after the veiligheidsbeoordeling, within 5 working days
        at = slot_after(rng, received, rng.randint(2, 5))
        handovers += _handovers(rng, ref, gemeente, "A", at)
    elif path < 0.50:  # B after onderzoek, C after voorwaarden en vervolg, within 70 days
        moment = "B" if path < 0.40 else "C"
        started = slot_after(rng, received, rng.randint(2, 5))
        soort = "onderzoek" if moment == "B" else "voorwaarden_en_vervolg"
        notices.append(CaseNotice(started, f"start_{soort}"))
        end_day = started.date() + timedelta(days=rng.randint(35, 66))
        at = slot(rng, end_day)
        handed = _handovers(rng, ref, gemeente, moment, at)
        handovers += handed
        uitkomst = (
            ("vermoeden_weerlegd" if handed[0].refuted else "vermoeden_bevestigd")
            if moment == "B"
            else "veiligheidsvoorwaarden_afgesproken"
        )
        vervolg = (
            "overdracht_lokaal_team"
            if handed[0].recipient == team
            else "overdracht_betrokken_hulpverlener"
        )
        notices.append(CaseNotice(at, f"uitkomst_{soort}", uitkomst, vervolg))
    elif path < 0.54:  # onderzoek that ends without a handover
        started = slot_after(rng, received, rng.randint(2, 5))
        notices.append(CaseNotice(started, "start_onderzoek"))
        ended = slot(rng, started.date() + timedelta(days=rng.randint(30, 60)))
        notices.append(CaseNotice(ended, "uitkomst_onderzoek", "vermoeden_weerlegd", "afsluiten"))
        closed = (ended + timedelta(minutes=5), "afgesloten_na_onderzoek")
    else:  # the veiligheidsbeoordeling finds no follow-up needed: VT closes the case
        closed = (
            slot_after(rng, received, rng.randint(2, 5)),
            "geen_vervolg_na_veiligheidsbeoordeling",
        )
    return Report(
        ref,
        gemeente,
        Kind.MELDING,
        received,
        enrichment,
        tuple(notices),
        tuple(handovers),
        closed,
    )


def _answer_moment(rng: random.Random, requested: datetime) -> datetime | None:
    draw = rng.random()
    if draw < 0.80:
        return slot_after(rng, requested, rng.randint(0, 3))
    if draw < 0.92:
        return slot_after(rng, requested, rng.randint(5, 8))  # after antwoord_voor
    return None


def _recipient(rng: random.Random, gemeente: str) -> str:
    draw = rng.random()
    if draw < 0.10:
        return "jbg"
    if draw < 0.20 and gemeente not in MOVIERA_ABSENT:
        return "moviera"
    return TEAM[gemeente]


def _handovers(
    rng: random.Random, ref: str, gemeente: str, moment: str, at: datetime, *, index: int = 1
) -> list[Handover]:
    """One handover, and what follows it: a corrected notice, a second one after a return."""
    recipient = _recipient(rng, gemeente) if index == 1 else TEAM[gemeente]
    gi = recipient == "jbg"
    refuted = moment == "B" and rng.random() < 0.15
    monitoring = not gi and not refuted and (moment != "A" or rng.random() < 0.4)
    advised = add_working_days(at.astimezone(ZONE).date(), rng.randint(5, 10))
    draw = rng.random()
    profile = (
        Profile.ON_TIME
        if draw < 0.55 or index > 1
        else Profile.LATE
        if draw < 0.67
        else Profile.DEFER
        if draw < 0.75
        else Profile.DEFER_LATE
        if draw < 0.78
        else Profile.SILENT
        if draw < 0.90
        else Profile.WITHDRAWN
    )
    plan = _answers(rng, profile, at, advised)
    confirm_at: datetime | None = plan.get("confirm_at")
    first_answer = plan.get("deferral_at") or confirm_at
    if first_answer is not None and rng.random() < 0.03:
        plan["forged_at"] = _before(rng, at, first_answer)
    if first_answer is not None and rng.random() < 0.03:
        foreign = TEAM[gemeente] if recipient != TEAM[gemeente] else "jbg"
        plan["foreign"] = (foreign, _before(rng, at, first_answer))
    team = recipient.startswith("lt-")
    if team and first_answer is not None and rng.random() < 0.06:
        asked = _before(rng, at, first_answer)
        answered = slot_after(rng, asked, 0) if rng.random() < 0.8 else None
        plan["question"] = (asked, answered)
    follow: list[Handover] = []
    if confirm_at is not None and team:
        if rng.random() < 0.06:
            plan["regie_change_at"] = slot_after(rng, confirm_at, rng.randint(10, 40))
        if rng.random() < 0.05:
            start = plan.get("regie_change_at") or confirm_at
            plan["return_at"] = slot_after(rng, start, rng.randint(15, 80))
            if rng.random() < 0.3 and index == 1:
                again = slot_after(rng, plan["return_at"], rng.randint(20, 40))
                follow = _handovers(rng, ref, gemeente, "C", again, index=index + 1)
    if profile is Profile.WITHDRAWN and rng.random() < 0.5 and index == 1:
        corrected = slot_after(rng, plan["withdraw_at"], 0)
        follow = _handovers(rng, ref, gemeente, moment, corrected, index=index + 1)
    if monitoring:
        plan["monitoring_answers"] = (_monitoring_delay(rng), _monitoring_delay(rng))
    plan["escalation"] = _escalation(rng)
    handover = Handover(
        key=f"{ref}/{index}",
        moment=moment,
        recipient=recipient,
        notice_at=at,
        advised=advised,
        refuted=refuted,
        monitoring=monitoring,
        profile=profile,
        **plan,
    )
    return [handover, *follow]


def _answers(rng: random.Random, profile: Profile, at: datetime, advised: date) -> dict[str, Any]:
    """When the recipient (or VT) answers a notice sent at `at`, by the recipient's profile."""
    due = closing(advised)
    if profile is Profile.ON_TIME:
        return {"confirm_at": _between(rng, at, advised)}
    if profile is Profile.LATE:
        return {"confirm_at": slot_after(rng, due, rng.randint(1, 8))}
    if profile in (Profile.DEFER, Profile.DEFER_LATE):
        deferral_at = _between(rng, at, advised - timedelta(days=1))
        new_date = add_working_days(advised, rng.randint(5, 15))
        confirm_at = (
            _between(rng, deferral_at, new_date)
            if profile is Profile.DEFER
            else slot_after(rng, closing(new_date), rng.randint(1, 6))
        )
        return {"deferral_at": deferral_at, "deferred_to": new_date, "confirm_at": confirm_at}
    if profile is Profile.SILENT:
        if rng.random() < 0.4:  # VT gives up and withdraws, long after the term
            return {"withdraw_at": slot_after(rng, due, rng.randint(10, 20))}
        return {}
    withdraw_at = _between(rng, at, advised - timedelta(days=1))
    plan: dict[str, Any] = {"withdraw_at": withdraw_at}
    if rng.random() < 0.5:
        plan["confirm_after_withdrawal_at"] = slot_after(rng, withdraw_at, rng.randint(1, 3))
    return plan


def _between(rng: random.Random, after: datetime, last_day: date) -> datetime:
    """A moment after `after` and at the latest on `last_day` (16:30)."""
    first = slot_after(rng, after, 0)
    span = 0
    while add_working_days(first.astimezone(ZONE).date(), span + 1) <= last_day:
        span += 1
    if span == 0:
        return first
    return slot_after(rng, after, rng.randint(1, span))


def _before(rng: random.Random, after: datetime, before: datetime) -> datetime:
    """A half-hour moment strictly between two moments; the later one's day when they are close."""
    candidate = slot_after(rng, after, 0)
    return candidate if candidate < before else after + timedelta(0)


def _monitoring_delay(rng: random.Random) -> int | None:
    draw = rng.random()
    if draw < 0.70:
        return rng.randint(1, 8)
    if draw < 0.90:
        return rng.randint(12, 20)  # after antwoord_voor (10 working days)
    return None


def _escalation(rng: random.Random) -> tuple[tuple[Outcome, int], ...]:
    draw = rng.random()
    outcomes: tuple[Outcome, ...]
    if draw < 0.40:
        outcomes = (Outcome.SOLVED,)
    elif draw < 0.65:
        outcomes = (Outcome.NOT_SOLVED, Outcome.SOLVED)
    elif draw < 0.75:
        outcomes = (Outcome.NOT_SOLVED, Outcome.NOT_SOLVED, Outcome.SOLVED)
    elif draw < 0.80:
        outcomes = (Outcome.NOT_SOLVED, Outcome.NOT_SOLVED, Outcome.NOT_SOLVED)
    else:
        outcomes = ()  # left open at route a
    return tuple((outcome, rng.randint(3, 10)) for outcome in outcomes)


# --- synthetic persons and bodies ---------------------------------------------------

_FIRST = ("Een", "Twee", "Drie", "Vier", "Vijf", "Zes", "Zeven", "Acht")
_PLACES = {
    "GM0268": "Nijmegen",
    "GM0281": "Tiel",
}


def bsn(rng: random.Random) -> str:
    """Nine digits that pass the 11-test, never a sentinel."""
    while True:
        digits = [rng.randint(0, 9) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        check = total % 11
        if check < 10 and (digits[0] or any(digits)):
            text = "".join(map(str, digits)) + str(check)
            if text not in {"000000000", "999999999"}:
                return text


def _persons(rng: random.Random, gemeente: str) -> tuple[dict[str, Any], ...]:
    address = {
        "straat": "Voorbeeldstraat",
        "huisnummer": rng.randint(1, 300),
        "postcode": "9999ZZ",
        "woonplaats": _PLACES.get(gemeente, "Voorbeeldplaats"),
    }
    parent = {
        "persoon_id": "p1",
        "bsn": bsn(rng),
        "voornamen": rng.choice(_FIRST),
        "geslachtsnaam": "Testpersoon",
        "geboortedatum": f"{rng.randint(1970, 2000)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "adres": address,
        "rol": "ouder",
        "positie": "slachtoffer",
    }
    child = {
        "persoon_id": "p2",
        "voornamen": rng.choice(_FIRST),
        "geslachtsnaam": "Testpersoon",
        "geboortedatum": f"{rng.randint(2010, 2022)}-0{rng.randint(1, 9)}-2{rng.randint(0, 8)}",
        "adres": address,
        "rol": "kind",
        "positie": "slachtoffer",
    }
    if rng.random() < 0.5:
        child["bsn"] = bsn(rng)
    return (parent, child)


VT_CONTACT = {
    "naam": "Testmedewerker Vt",
    "functie": "medewerker onderzoek",
    "organisatie": "Veilig Thuis Gelderland-Zuid",
    "telefoon": "088 000 0001",
    "email": "testmedewerker.vt@vt.example.org",
}
TEAM_CONTACT = {
    "naam": "Testmedewerker Team",
    "functie": "casusregisseur",
    "organisatie": "Lokaal team (voorbeeld)",
    "telefoon": "0344 000 001",
    "email": "testmedewerker.team@lt.example.org",
}
CONDITIONS = [
    {"nummer": 1, "omschrijving": "Er wordt in het huishouden geen fysiek geweld gebruikt."},
    {"nummer": 2, "omschrijving": "De ouders volgen een hulpverleningstraject."},
]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def enrichment_request(
    persons: Sequence[dict[str, Any]], answer_before: datetime
) -> dict[str, Any]:
    return {
        "reden": "verrijking_vt_melding",
        "aanvrager_type": "medewerker_vt",
        "personen": list(persons),
        "antwoord_voor": iso(answer_before),
        "vt_contact": VT_CONTACT,
    }


def enrichment_response(persons: Sequence[dict[str, Any]], known: bool) -> dict[str, Any]:
    answers: list[dict[str, Any]] = [
        {"persoon_id": p["persoon_id"], "indicatie_bekend": "N"} for p in persons
    ]
    if known:
        answers[-1] = {
            "persoon_id": persons[-1]["persoon_id"],
            "indicatie_bekend": "J",
            "betrokkenheid": {
                "soort_hulp": "ambulante jeugdhulp",
                "sinds": "2024-04-01",
                "status": "afgesloten",
                "afgesloten_op": "2025-04-01",
            },
            "contact": TEAM_CONTACT,
        }
    return {"personen": answers}


def zorgmelding(report: Report, persons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    day = report.received.astimezone(ZONE).date()
    return {
        "ontvanger_rol": "wijkteam",
        "politie_kenmerk": f"PL0000-{report.ref[-6:]}",
        "bewaartermijn_tot": add_months(day, 24).isoformat(),
        "zorgmelding": {
            "ontvangen_op": day.isoformat(),
            "samenvatting": "Burenruzie; geen aanwijzingen voor huiselijk geweld.",
        },
        "personen": [{k: v for k, v in persons[0].items() if k not in {"adres", "rol", "positie"}}],
        "check_directbetrokkenen_op": day.isoformat(),
    }


def case_notice(notice: CaseNotice) -> dict[str, Any]:
    body: dict[str, Any] = {
        "soort": notice.soort,
        "datum": notice.at.astimezone(ZONE).date().isoformat(),
        "vt_contact": VT_CONTACT,
    }
    if notice.uitkomst is not None:
        body["uitkomst"] = notice.uitkomst
        body["vervolg"] = notice.vervolg
    return body


def overdracht_notice(handover: Handover, persons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    day = handover.notice_at.astimezone(ZONE).date()
    body: dict[str, Any] = {
        "moment": handover.moment,
        "overdrachtsinformatie": "Synthetische melding; de veiligheid is beoordeeld.",
        "advies": "Maak met het gezin een veiligheidsplan op basis van de voorwaarden.",
        "geadviseerde_termijn": {"uiterlijk": handover.advised.isoformat()},
        "personen": list(persons),
        "geinformeerde_personen": [
            {"rol": "ouder_met_gezag", "persoon_id": "p1", "geinformeerd_op": day.isoformat()}
        ],
        "vt_contact": VT_CONTACT,
    }
    if handover.moment != "A" or handover.monitoring:
        body["veiligheidsvoorwaarden"] = CONDITIONS
    if handover.moment != "A":
        body["warme_overdracht"] = {"afspraak_op": iso(handover.notice_at), "plaats": "huishouden"}
    if handover.moment == "B":
        body["vermoeden_weerlegd"] = handover.refuted
    if handover.monitoring:
        body["monitoring"] = {"afgesproken": True, "momenten_maanden": [3, 12]}
    elif handover.recipient == "jbg":
        body["monitoring"] = {"afgesproken": False, "reden_geen_monitoring": "overdracht_aan_gi"}
    elif handover.refuted:
        body["monitoring"] = {"afgesproken": False, "reden_geen_monitoring": "vermoeden_weerlegd"}
    else:
        body["monitoring"] = {
            "afgesproken": False,
            "reden_geen_monitoring": "geen_besluit_tot_monitoring",
        }
    return body


def withdrawal() -> dict[str, Any]:
    return {"reden": "onjuiste_gegevens", "toelichting": "Een gecorrigeerde overdracht volgt."}


def confirmation(at: datetime) -> dict[str, Any]:
    return {
        "bevestigd_door": {"naam": "Testcoordinator Team", "functie": "coordinator"},
        "bevestigd_op": iso(at),
        "regisseur": TEAM_CONTACT,
    }


def deferral(new_date: date) -> dict[str, Any]:
    return {
        "beargumenteerd_besluit": "De casusregisseur met de nodige expertise is afwezig.",
        "nieuwe_datum": new_date.isoformat(),
        "besloten_door": {"naam": "Testcoordinator Team", "functie": "coordinator"},
    }


def question() -> dict[str, Any]:
    return {
        "vraag": "Zijn beide ouders op de hoogte van de overdracht?",
        "vraagsteller": {"naam": "Testmedewerker Team", "telefoon": "0344 000 001"},
    }


def answer() -> dict[str, Any]:
    return {"antwoord": "Ja, beide ouders zijn geinformeerd.", "beantwoord_door": VT_CONTACT}


def regie_change(at: datetime) -> dict[str, Any]:
    return {
        "nieuwe_regievoerder": {"naam": "Moviera (voorbeeld)", "partij": "moviera"},
        "per": at.astimezone(ZONE).date().isoformat(),
        "reden": "opvang",
        "veiligheidsvoorwaarden_en_plan_overgedragen": True,
    }


def case_return() -> dict[str, Any]:
    return {
        "reden": "Ondanks het veiligheidsplan zijn er nieuwe incidenten geweest.",
        "urgentie": "regulier",
        "contact": TEAM_CONTACT,
    }


def monitoring_response() -> dict[str, Any]:
    return {
        "veiligheidsvoorwaarden": [
            {"nummer": 1, "voldaan": "ja"},
            {"nummer": 2, "voldaan": "deels"},
        ],
        "veiligheidsscore_professional": {"score": 7, "onderbouwing": "Geen nieuwe incidenten."},
        "directe_veiligheid": True,
        "stabiele_veiligheid": False,
        "herstel_schade_aandacht": True,
        "ingevuld_door": {"naam": "Testmedewerker Team", "functie": "casusregisseur"},
    }
