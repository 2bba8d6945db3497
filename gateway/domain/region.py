"""The region Veilig Thuis Gelderland-Zuid serves: its municipalities.

The fourteen municipalities of Gelderland-Zuid and Mook en Middelaar (agreement
§1, note 1), each with its CBS code, its sub-region (which decides the
Jeugdbeschermingstafel, §6.3) and its police unit (Mook en Middelaar is police
region Limburg, §5.2). The data lives in config/region.toml; this module only
gives it a shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from gateway.domain.errors import ConfigurationError

_GEMEENTE_CODE = re.compile(r"GM[0-9]{4}")
_SLUG = re.compile(r"[a-z]+(-[a-z]+)*")


class Subregio(StrEnum):
    """The two sub-regions, each with its own Jeugdbeschermingstafel (§6.3)."""

    RIJK_VAN_NIJMEGEN = "rijk_van_nijmegen"
    RIVIERENLAND = "rivierenland"


@dataclass(frozen=True, slots=True)
class Municipality:
    """One gemeente of the region.

    `code` is the CBS gemeentecode (GM0268) that a case carries; `slug` names
    its lokaal team (`lt-<slug>`); `police` is the party id of the police unit
    that covers it.
    """

    code: str
    name: str
    slug: str
    subregio: Subregio
    police: str


@dataclass(frozen=True, slots=True)
class Region:
    """The municipalities of the region and its calendar settings."""

    municipalities: tuple[Municipality, ...]
    time_zone: str = "Europe/Amsterdam"
    extra_closing_days: tuple[date, ...] = ()
    _by_code: Mapping[str, Municipality] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_code: dict[str, Municipality] = {}
        slugs: set[str] = set()
        for municipality in self.municipalities:
            if municipality.code in by_code:
                raise ConfigurationError(f"region names {municipality.code} twice")
            if municipality.slug in slugs:
                raise ConfigurationError(f"region names slug {municipality.slug!r} twice")
            by_code[municipality.code] = municipality
            slugs.add(municipality.slug)
        object.__setattr__(self, "_by_code", by_code)

    def municipality(self, code: str) -> Municipality | None:
        """The municipality with this CBS code, or None when it is not in the region."""
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Municipality]:
        return iter(self.municipalities)

    def __len__(self) -> int:
        return len(self.municipalities)

    @property
    def codes(self) -> frozenset[str]:
        """The CBS codes of all municipalities of the region."""
        return frozenset(self._by_code)

    def in_subregio(self, subregio: Subregio) -> tuple[Municipality, ...]:
        """The municipalities of one sub-region, in the order of the region data."""
        return tuple(m for m in self.municipalities if m.subregio is subregio)


def region_from_mapping(data: Mapping[str, Any]) -> Region:
    """Build the region from the parsed config/region.toml.

    Raises ConfigurationError, naming the place, for anything missing or wrong:
    the gateway must not start with a region it cannot route by.
    """
    entries = data.get("municipalities")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError("region: [[municipalities]] is missing or empty")
    municipalities = tuple(_municipality(index, entry) for index, entry in enumerate(entries))
    calendar = data.get("calendar", {})
    if not isinstance(calendar, Mapping):
        raise ConfigurationError("region: [calendar] must be a table")
    time_zone = calendar.get("time_zone", "Europe/Amsterdam")
    if not isinstance(time_zone, str) or not time_zone:
        raise ConfigurationError("region: calendar.time_zone must be a time zone name")
    return Region(
        municipalities=municipalities,
        time_zone=time_zone,
        extra_closing_days=_closing_days(calendar.get("extra_closing_days", [])),
    )


def _municipality(index: int, entry: object) -> Municipality:
    where = f"region: municipalities[{index}]"
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where} must be a table")
    unknown = set(entry) - {"code", "name", "slug", "subregio", "police"}
    if unknown:
        raise ConfigurationError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    code = _text(entry, "code", where)
    if not _GEMEENTE_CODE.fullmatch(code):
        raise ConfigurationError(f"{where}.code {code!r} is not a CBS code like GM0268")
    slug = _text(entry, "slug", where)
    if not _SLUG.fullmatch(slug):
        raise ConfigurationError(f"{where}.slug {slug!r} must be lowercase words joined by -")
    subregio = _text(entry, "subregio", where)
    try:
        sub = Subregio(subregio)
    except ValueError as exc:
        choices = ", ".join(s.value for s in Subregio)
        raise ConfigurationError(f"{where}.subregio {subregio!r} is not one of {choices}") from exc
    return Municipality(
        code=code,
        name=_text(entry, "name", where),
        slug=slug,
        subregio=sub,
        police=_text(entry, "police", where),
    )


def _text(entry: Mapping[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where}.{name} is missing or not a text")
    return value


def _closing_days(value: object) -> tuple[date, ...]:
    if not isinstance(value, list):
        raise ConfigurationError("region: calendar.extra_closing_days must be a list of dates")
    days: list[date] = []
    for item in value:
        # TOML gives a bare 2026-12-24 as a date; a quoted one is text.
        if isinstance(item, date) and not isinstance(item, datetime):
            days.append(item)
        elif isinstance(item, str):
            try:
                days.append(date.fromisoformat(item))
            except ValueError as exc:
                raise ConfigurationError(
                    f"region: extra closing day {item!r} is not a date YYYY-MM-DD"
                ) from exc
        else:
            raise ConfigurationError(f"region: extra closing day {item!r} is not a date YYYY-MM-DD")
    return tuple(sorted(set(days)))
