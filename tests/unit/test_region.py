"""The region: fifteen municipalities, their CBS codes, sub-regions and police units."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.contract_files import load_region
from gateway.domain.errors import ConfigurationError
from gateway.domain.region import Region, Subregio, region_from_mapping
from gateway.resources import data_dir

# Checked against the CBS municipality list (StatLine region codes); CBS
# writes "West Betuwe" without the agreement's hyphen.
CBS_CODES = {
    "Berg en Dal": "GM1945",
    "Beuningen": "GM0209",
    "Druten": "GM0225",
    "Heumen": "GM0252",
    "Mook en Middelaar": "GM0944",
    "Nijmegen": "GM0268",
    "Wijchen": "GM0296",
    "Buren": "GM0214",
    "Culemborg": "GM0216",
    "Maasdriel": "GM0263",
    "Neder-Betuwe": "GM1740",
    "Tiel": "GM0281",
    "West Betuwe": "GM1960",
    "West Maas en Waal": "GM0668",
    "Zaltbommel": "GM0297",
}


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region(data_dir("config") / "region.toml")


def municipality_data(**overrides: Any) -> dict[str, Any]:
    entry = {
        "code": "GM0281",
        "name": "Tiel",
        "slug": "tiel",
        "subregio": "rivierenland",
        "police": "politie-on",
    }
    entry.update(overrides)
    return {"municipalities": [entry]}


def test_the_region_is_the_fifteen_municipalities_of_the_agreement(region: Region) -> None:
    """§1 note 1: Gelderland-Zuid's fourteen municipalities and Mook en Middelaar."""
    assert {m.name: m.code for m in region} == CBS_CODES


def test_rijk_van_nijmegen_has_seven_municipalities_and_rivierenland_eight(region: Region) -> None:
    """§6.3: each sub-region has its own Jeugdbeschermingstafel."""
    rijk = {m.name for m in region.in_subregio(Subregio.RIJK_VAN_NIJMEGEN)}
    assert rijk == {"Berg en Dal", "Beuningen", "Druten", "Heumen"} | {
        "Mook en Middelaar",
        "Nijmegen",
        "Wijchen",
    }
    assert len(region.in_subregio(Subregio.RIVIERENLAND)) == 8


def test_mook_en_middelaar_is_police_region_limburg(region: Region) -> None:
    """§5.2: Mook en Middelaar is not police region Gelderland-Zuid but Limburg."""
    police = {m.name: m.police for m in region}
    assert police.pop("Mook en Middelaar") == "politie-lb"
    assert set(police.values()) == {"politie-on"}


def test_each_municipality_has_a_unique_slug(region: Region) -> None:
    """The slug names the lokaal team (lt-<slug>), so no two are alike."""
    slugs = [m.slug for m in region]
    assert len(set(slugs)) == 15
    west_betuwe = region.municipality("GM1960")
    assert west_betuwe is not None
    assert west_betuwe.slug == "west-betuwe"


def test_the_calendar_has_no_extra_closing_days_yet(region: Region) -> None:
    """Extra closing days come from config; none are agreed today."""
    assert region.extra_closing_days == ()
    assert region.time_zone == "Europe/Amsterdam"


def test_a_code_outside_the_region_is_not_in_it(region: Region) -> None:
    """Amsterdam is not in the region: lookups say so with None."""
    assert region.municipality("GM0363") is None
    assert "GM0363" not in region
    assert "GM0268" in region
    assert len(region.codes) == len(region) == 15


def test_a_code_that_is_not_a_cbs_code_is_refused() -> None:
    """CBS codes are GM and four digits."""
    with pytest.raises(ConfigurationError, match="not a CBS code"):
        region_from_mapping(municipality_data(code="0281"))


def test_an_unknown_subregio_is_refused() -> None:
    """Only the two sub-regions of §6.3 exist."""
    with pytest.raises(ConfigurationError, match="subregio"):
        region_from_mapping(municipality_data(subregio="betuwe"))


def test_a_municipality_named_twice_is_refused() -> None:
    """One code, one municipality."""
    data = municipality_data()
    data["municipalities"] *= 2
    with pytest.raises(ConfigurationError, match="twice"):
        region_from_mapping(data)


def test_a_municipality_with_a_missing_or_unknown_field_is_refused() -> None:
    """Every field is needed, and nothing else is read."""
    data = municipality_data()
    del data["municipalities"][0]["police"]
    with pytest.raises(ConfigurationError, match="police"):
        region_from_mapping(data)
    with pytest.raises(ConfigurationError, match="unknown fields: colour"):
        region_from_mapping(municipality_data(colour="blue"))


def test_a_region_without_municipalities_is_refused() -> None:
    """The gateway cannot route without its municipalities."""
    with pytest.raises(ConfigurationError, match="municipalities"):
        region_from_mapping({})


def test_extra_closing_days_are_dates_sorted_once() -> None:
    """TOML dates or ISO texts; the calendar gets each day once, in order."""
    data = municipality_data()
    data["calendar"] = {"extra_closing_days": [date(2026, 12, 24), "2026-05-15", "2026-12-24"]}
    region = region_from_mapping(data)
    assert region.extra_closing_days == (date(2026, 5, 15), date(2026, 12, 24))


def test_an_extra_closing_day_that_is_no_date_is_refused() -> None:
    """A closing day must be a date."""
    data = municipality_data()
    data["calendar"] = {"extra_closing_days": ["Christmas Eve"]}
    with pytest.raises(ConfigurationError, match="not a date"):
        region_from_mapping(data)
