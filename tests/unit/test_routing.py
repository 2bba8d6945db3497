"""Routing: the agreement's rules for who receives what, per municipality.

Run against the committed contracts and region data, so that the rules and
the data are proved together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from gateway.contract_files import load_contracts, load_region
from gateway.domain.contracts import Contracts, Role
from gateway.domain.errors import ConfigurationError, ErrorCode, PermanentError
from gateway.domain.region import Region, Subregio
from gateway.domain.routing import (
    confused_person_recipient,
    enrichment_partners,
    jeugdbeschermingstafel,
    lokaal_team,
    moviera,
    police_unit,
    zorgmelding_recipients,
)
from gateway.resources import data_dir

MAASDRIEL, ZALTBOMMEL, MOOK, NIJMEGEN, TIEL = "GM0263", "GM0297", "GM0944", "GM0268", "GM0281"
AMSTERDAM = "GM0363"
GGD_BIJZONDERE_ZORG = (
    *("GM1945", "GM0209", "GM0225", "GM0252", MOOK, NIJMEGEN, "GM0296"),
    *("GM0214", "GM0216", "GM1740", TIEL, "GM1960", "GM0668"),
)


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region(data_dir("config") / "region.toml")


@pytest.fixture(scope="module")
def contracts(region: Region) -> Contracts:
    return load_contracts(data_dir("contracts"), region=region)


def parties(found: tuple[object, ...]) -> list[str]:
    return [getattr(contract, "party", "") for contract in found]


def test_tiels_lokaal_team_is_lt_tiel(region: Region, contracts: Contracts) -> None:
    """§8: the lokaal team of the case's municipality is the handover partner."""
    assert lokaal_team(region, contracts, TIEL).party == "lt-tiel"


def test_every_municipality_has_its_own_lokaal_team(region: Region, contracts: Contracts) -> None:
    """Each of the fifteen municipalities routes to its lt-<slug>."""
    for place in region:
        assert lokaal_team(region, contracts, place.code).party == f"lt-{place.slug}"


def test_enrichment_for_nijmegen_fans_out_to_jbg_the_team_the_veiligheidshuis_and_the_raad(
    region: Region, contracts: Contracts
) -> None:
    """§5.1: VT enriches at Jeugdbescherming Gelderland, the lokaal team, the Veiligheidshuis
    and the Raad voor de Kinderbescherming."""
    found = enrichment_partners(region, contracts, NIJMEGEN)
    assert parties(found) == ["jbg", "lt-nijmegen", "vhh-gz", "rvdk"]


def test_enrichment_skips_a_gi_whose_contract_has_no_enrichment_request(
    region: Region, contracts: Contracts
) -> None:
    """§5.1 note 5: enrichment at other GIs is still to be evaluated; the contract decides."""
    jbg = contracts.get("jbg")
    assert jbg is not None
    other_gi = replace(
        jbg,
        party="gi-other",
        may_receive=frozenset({"overdracht.notice", "receipt", "error"}),
    )
    with_other = Contracts([*contracts, other_gi])
    assert "gi-other" not in parties(enrichment_partners(region, with_other, NIJMEGEN))


@pytest.mark.parametrize("gemeente", GGD_BIJZONDERE_ZORG)
def test_confused_persons_go_to_bijzondere_zorg_of_the_ggd(
    region: Region, contracts: Contracts, gemeente: str
) -> None:
    """§5.1: police reports about confused persons go to Bijzondere Zorg of the GGD."""
    assert confused_person_recipient(region, contracts, gemeente).party == "ggd-bz"


@pytest.mark.parametrize("gemeente", [MAASDRIEL, ZALTBOMMEL])
def test_confused_persons_in_maasdriel_and_zaltbommel_go_to_farent(
    region: Region, contracts: Contracts, gemeente: str
) -> None:
    """§5.1 note 4: in Maasdriel and Zaltbommel they go straight to Farent."""
    assert confused_person_recipient(region, contracts, gemeente).party == "farent"


def test_moviera_takes_cases_in_nijmegen(region: Region, contracts: Contracts) -> None:
    """Annex 5: the on-call service can ask Moviera to come along."""
    assert moviera(region, contracts, NIJMEGEN).party == "moviera"


@pytest.mark.parametrize(
    ("gemeente", "name"), [(MAASDRIEL, "Maasdriel"), (ZALTBOMMEL, "Zaltbommel")]
)
def test_moviera_is_refused_for_maasdriel_and_zaltbommel(
    region: Region, contracts: Contracts, gemeente: str, name: str
) -> None:
    """Annex 5 note 18: Maasdriel and Zaltbommel are not in Moviera's werkgebied."""
    with pytest.raises(PermanentError) as refused:
        moviera(region, contracts, gemeente)
    assert refused.value.code is ErrorCode.NOT_PERMITTED
    assert f"Moviera is not active in {name}" in refused.value.rejection.detail
    assert "annex 5, note 18" in refused.value.rejection.detail
    assert refused.value.rejection.pointer == "/case/gemeente"


def test_mook_en_middelaars_police_is_limburg(region: Region, contracts: Contracts) -> None:
    """§5.2: Mook en Middelaar is police region Limburg."""
    assert police_unit(region, contracts, MOOK).party == "politie-lb"


def test_the_police_of_gelderland_zuid_is_oost_nederland(
    region: Region, contracts: Contracts
) -> None:
    """§5.1: the fourteen municipalities of Gelderland-Zuid are police Oost-Nederland."""
    for place in region:
        if place.code != MOOK:
            assert police_unit(region, contracts, place.code).party == "politie-on"


def test_an_overige_zorgmelding_goes_to_the_wijkteam_and_the_police_is_told(
    region: Region, contracts: Contracts
) -> None:
    """§5.1: forwarded to the municipality's wijkteam; the police is informed."""
    assert parties(zorgmelding_recipients(region, contracts, TIEL)) == ["lt-tiel", "politie-on"]
    assert parties(zorgmelding_recipients(region, contracts, MOOK)) == [
        "lt-mook-en-middelaar",
        "politie-lb",
    ]


@pytest.mark.parametrize(
    ("gemeente", "subregio"),
    [
        (NIJMEGEN, Subregio.RIJK_VAN_NIJMEGEN),
        (MOOK, Subregio.RIJK_VAN_NIJMEGEN),
        (TIEL, Subregio.RIVIERENLAND),
        (ZALTBOMMEL, Subregio.RIVIERENLAND),
    ],
)
def test_the_jeugdbeschermingstafel_is_the_one_of_the_subregio(
    region: Region, gemeente: str, subregio: Subregio
) -> None:
    """§6.3: Rijk van Nijmegen and Rivierenland each have their own table."""
    assert jeugdbeschermingstafel(region, gemeente) is subregio


RULES: list[Callable[[Region, Contracts, str], object]] = [
    lokaal_team,
    enrichment_partners,
    confused_person_recipient,
    moviera,
    police_unit,
    zorgmelding_recipients,
    lambda region, _contracts, gemeente: jeugdbeschermingstafel(region, gemeente),
]


@pytest.mark.parametrize("rule", RULES)
def test_a_gemeente_outside_the_region_is_an_unknown_recipient(
    region: Region, contracts: Contracts, rule: Callable[[Region, Contracts, str], object]
) -> None:
    """A well-formed code outside the region has no recipient: UNKNOWN_RECIPIENT, /case/gemeente."""
    with pytest.raises(PermanentError) as refused:
        rule(region, contracts, AMSTERDAM)
    assert refused.value.code is ErrorCode.UNKNOWN_RECIPIENT
    assert AMSTERDAM in refused.value.rejection.detail
    assert refused.value.rejection.pointer == "/case/gemeente"


def test_a_municipality_the_contracts_leave_without_its_lokaal_team_is_a_configuration_error(
    region: Region, contracts: Contracts
) -> None:
    """The gateway's own data is wrong, not the sender's message: refuse, don't reject."""
    without_tiel = Contracts(c for c in contracts if c.party != "lt-tiel")
    with pytest.raises(ConfigurationError, match="Tiel"):
        lokaal_team(region, without_tiel, TIEL)


def test_a_police_unit_the_contracts_do_not_know_is_a_configuration_error(
    region: Region, contracts: Contracts
) -> None:
    """The region names the police unit; its contract must exist and serve the municipality."""
    without_limburg = Contracts(c for c in contracts if c.party != "politie-lb")
    with pytest.raises(ConfigurationError, match="politie-lb"):
        police_unit(region, without_limburg, MOOK)
    assert all(c.role is not Role.POLITIE or c.party != "politie-lb" for c in without_limburg)
