"""Who receives what, for which municipality: the agreement's routing rules.

Every rule reads the contracts (role and werkgebied) and the region; no party
id is written here except where the agreement itself names the party
(Moviera, annex 5).

A municipality that is not in the region gets `UNKNOWN_RECIPIENT`, pointing at
`/case/gemeente`: the code may be perfectly well-formed (the envelope schema
is the same for every region, so it cannot list this region's municipalities,
and SCHEMA_INVALID would call a valid message malformed), but no recipient can
be found for it. A municipality that is in the region but that a rule may not
serve gets `NOT_PERMITTED` (Moviera in Maasdriel). A municipality the
contracts leave without its lokaal team, police unit or confused-person
service is the gateway's own fault, not the sender's: `ConfigurationError`,
which `check_contracts` keeps from ever reaching a running gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.domain.contracts import Contract, Contracts, Role
from gateway.domain.errors import ConfigurationError, ErrorCode, PermanentError
from gateway.domain.region import Municipality, Region, Subregio

GEMEENTE_POINTER = "/case/gemeente"
"""Where a routing rejection points: the envelope's municipality."""

MOVIERA = "moviera"
"""The party annex 5 of the agreement names."""

ENRICHMENT_REQUEST = "enrichment.request"

ENRICHMENT_ROLES = (Role.GI, Role.LOKAAL_TEAM, Role.VEILIGHEIDSHUIS, Role.RAAD)
"""§5.1: VT enriches at Jeugdbescherming Gelderland, the lokale teams, the
Veiligheidshuis and the Raad voor de Kinderbescherming, in that order."""


def municipality(region: Region, gemeente: str) -> Municipality:
    """The municipality of the region with this CBS code; UNKNOWN_RECIPIENT otherwise."""
    found = region.municipality(gemeente)
    if found is None:
        raise PermanentError(
            ErrorCode.UNKNOWN_RECIPIENT,
            f"gemeente {gemeente} is not in the region of Veilig Thuis: no recipient for it",
            GEMEENTE_POINTER,
        )
    return found


def lokaal_team(region: Region, contracts: Contracts, gemeente: str) -> Contract:
    """The lokaal team of the municipality: the usual handover partner (§8)."""
    return _the_one(contracts, Role.LOKAAL_TEAM, municipality(region, gemeente))


def enrichment_partners(
    region: Region, contracts: Contracts, gemeente: str
) -> tuple[Contract, ...]:
    """Who VT asks whether a client system is known to them (§5.1).

    Jeugdbescherming Gelderland, the lokaal team, the Veiligheidshuis and the
    Raad, each by role and werkgebied; of those only the ones whose contract
    lets them receive an enrichment request (§5.1 note 5: enrichment at other
    GIs is still to be evaluated, so a GI without it is not asked).
    """
    place = municipality(region, gemeente)
    _the_one(contracts, Role.LOKAAL_TEAM, place)
    return tuple(
        contract
        for role in ENRICHMENT_ROLES
        for contract in contracts.serving(role, place.code)
        if ENRICHMENT_REQUEST in contract.may_receive
    )


def confused_person_recipient(region: Region, contracts: Contracts, gemeente: str) -> Contract:
    """Where a police report about a confused person goes (§5.1 and its note 4).

    Bijzondere Zorg of the GGD, except in Maasdriel and Zaltbommel: Farent. The
    werkgebied of the bijzondere_zorg contracts says which.
    """
    return _the_one(contracts, Role.BIJZONDERE_ZORG, municipality(region, gemeente))


def moviera(region: Region, contracts: Contracts, gemeente: str) -> Contract:
    """Moviera, for a case in this municipality (annex 5).

    NOT_PERMITTED where Moviera is not active: Maasdriel and Zaltbommel are not
    in its werkgebied (annex 5, note 18).
    """
    place = municipality(region, gemeente)
    contract = contracts.get(MOVIERA)
    if contract is None:
        raise ConfigurationError(f"no contract for {MOVIERA}, which annex 5 names")
    if not contract.serves(place.code):
        raise PermanentError(
            ErrorCode.NOT_PERMITTED,
            f"Moviera is not active in {place.name} ({place.code}): "
            "not in its werkgebied (annex 5, note 18)",
            GEMEENTE_POINTER,
        )
    return contract


def police_unit(region: Region, contracts: Contracts, gemeente: str) -> Contract:
    """The police unit of the municipality (§5.1); Mook en Middelaar is Limburg (§5.2)."""
    place = municipality(region, gemeente)
    contract = contracts.get(place.police)
    if contract is None or contract.role is not Role.POLITIE or not contract.serves(place.code):
        raise ConfigurationError(
            f"the region names {place.police!r} as police of {place.name} ({place.code}), "
            "but no politie contract with that gemeente in its werkgebied exists"
        )
    return contract


def zorgmelding_recipients(
    region: Region, contracts: Contracts, gemeente: str
) -> tuple[Contract, Contract]:
    """Who gets an "overige zorgmelding" (§5.1).

    The wijkteam (the lokaal team) gets the report forwarded; the police unit is
    told it was forwarded. In that order.
    """
    return (
        lokaal_team(region, contracts, gemeente),
        police_unit(region, contracts, gemeente),
    )


def jeugdbeschermingstafel(region: Region, gemeente: str) -> Subregio:
    """Which sub-region's Jeugdbeschermingstafel a case of this municipality goes to (§6.3)."""
    return municipality(region, gemeente).subregio


def check_jeugdbeschermingstafel(region: Region, gemeente: str, body: Mapping[str, Any]) -> None:
    """§6.3: a request for the Jeugdbeschermingstafel goes to the table of the case's sub-region.

    A case.notice `aanvraag_jeugdbeschermingstafel` names the sub-region; any other
    than the municipality's is refused (NOT_PERMITTED), as is one that names none.
    """
    if body.get("soort") != "aanvraag_jeugdbeschermingstafel":
        return
    table = jeugdbeschermingstafel(region, gemeente)
    named = body.get("subregio")
    if named != table.value:
        raise PermanentError(
            ErrorCode.NOT_PERMITTED,
            f"§6.3: a case of {gemeente} goes to the Jeugdbeschermingstafel of {table.value}, "
            f"not {named or 'none named'}",
            "/body/subregio",
        )


def _the_one(contracts: Contracts, role: Role, place: Municipality) -> Contract:
    serving = contracts.serving(role, place.code)
    if len(serving) != 1:
        parties = ", ".join(c.party for c in serving) or "none"
        raise ConfigurationError(
            f"{place.name} ({place.code}) needs exactly one {role.value} contract, "
            f"found {len(serving)}: {parties}"
        )
    return serving[0]
