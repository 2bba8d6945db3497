"""Contract files: the committed ones are sound, and every problem is reported at once."""

from __future__ import annotations

import base64
import json
import shutil
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import gateway.resources
from gateway.contract_files import (
    ContractProblem,
    check_contracts,
    load_contracts,
    load_region,
    message_catalogue,
)
from gateway.domain.contracts import Role, Transport
from gateway.domain.errors import ConfigurationError
from gateway.domain.region import Region
from gateway.resources import data_dir

CONTRACTS = data_dir("contracts")
SCHEMAS = data_dir("schemas")


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region(data_dir("config") / "region.toml")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the committed contracts, to break one file at a time."""
    copy = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, copy)
    return copy


def edit(folder: Path, file: str, old: str, new: str) -> None:
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append(folder: Path, file: str, text: str) -> None:
    with (folder / file).open("a", encoding="utf-8") as stream:
        stream.write(text)


def where(problems: list[ContractProblem]) -> set[tuple[str, str]]:
    return {(p.file, p.field) for p in problems}


def public_key_text() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def key_table(kid: str, *, not_before: str = "2026-01-01T00:00:00Z") -> str:
    return (
        f'\n[[keys]]\nkid = "{kid}"\npublic_key = "{public_key_text()}"\n'
        f'not_before = "{not_before}"\n'
    )


# --- the committed contracts ---------------------------------------------------


def test_the_committed_contracts_pass_every_check(region: Region) -> None:
    """The contracts in the repository are sound: schema, values and rules across files."""
    assert check_contracts(CONTRACTS, region=region) == []


def test_the_committed_contracts_are_the_region_s_twenty_five_parties(region: Region) -> None:
    """The hub, the bridge, eight partners and the fifteen lokale teams."""
    contracts = load_contracts(CONTRACTS, region=region)
    assert contracts.hub.party == "vt-gz"
    assert len(contracts) == 25
    assert {c.party for c in contracts.with_role(Role.LOKAAL_TEAM)} == {
        f"lt-{m.slug}" for m in region
    }


def test_both_transports_of_the_lokale_teams_are_shown() -> None:
    """Lokale teams use the e-mail bridge by default; some are on AMQP."""
    contracts = load_contracts(CONTRACTS)
    transports = {c.transport for c in contracts.with_role(Role.LOKAAL_TEAM)}
    assert transports == {Transport.EMAIL, Transport.AMQP}
    tiel = contracts.signer_of("lt-tiel")
    assert tiel is not None
    assert tiel.party == "vtgw-bridge"


def test_no_keys_are_committed() -> None:
    """Production keys are the operator's to add; development keys are generated locally."""
    assert all(contract.keys == () for contract in load_contracts(CONTRACTS))


def test_committed_addresses_are_synthetic() -> None:
    """DOMAIN.md Data: test data is synthetic; e-mail lives in .example or .invalid."""
    for contract in load_contracts(CONTRACTS):
        addresses = [*contract.email_addresses, *(c.email for c in contract.contacts if c.email)]
        for address in addresses:
            assert address.endswith((".example", ".invalid")), (contract.party, address)


def test_the_catalogue_is_the_envelope_schemas_list_of_types() -> None:
    """The contracts are checked against the protocol's own list, §8.4's question types included."""
    catalogue = message_catalogue(SCHEMAS)
    assert {"overdracht.notice", "overdracht.question", "overdracht.answer", "receipt"} <= catalogue
    assert len(catalogue) == 16


# --- every problem at once -----------------------------------------------------


def test_a_broken_contract_reports_file_and_field_for_each_error_at_once(
    folder: Path, region: Region
) -> None:
    """Every schema error of a file is reported, each with the JSON pointer of its field."""
    edit(folder, "lt-tiel.toml", 'role = "lokaal_team"', 'role = "lokaal_teem"')
    edit(folder, "lt-tiel.toml", 'receipt_timeout = "PT4H"', 'receipt_timeout = "4 hours"')
    edit(folder, "lt-tiel.toml", "attempt_limit = 6", "attempt_limit = 0\ncolour = 'blue'")
    edit(folder, "lt-tiel.toml", 'signed_by = "vtgw-bridge"\n', "")
    edit(folder, "lt-tiel.toml", 'start = "09:00"', 'start = "9 uur"')
    edit(folder, "jbg.toml", '"GM0281",  # Tiel', '"GM281",')
    problems = check_contracts(folder, region=region)
    assert {
        ("lt-tiel.toml", "/role"),
        ("lt-tiel.toml", "/receipt_timeout"),
        ("lt-tiel.toml", "/attempt_limit"),
        ("lt-tiel.toml", "/colour"),
        ("lt-tiel.toml", "/signed_by"),
        ("lt-tiel.toml", "/office_hours/start"),
        ("jbg.toml", "/werkgebied/11"),
    } <= where(problems)
    by_field = {p.field: p.message for p in problems if p.file == "lt-tiel.toml"}
    assert "ISO 8601 duration" in by_field["/receipt_timeout"]
    assert by_field["/colour"] == "unknown field"
    assert by_field["/signed_by"] == "missing"


def test_a_file_that_is_not_toml_is_reported_and_the_others_are_still_checked(
    folder: Path, region: Region
) -> None:
    """One unreadable file does not hide the problems of another."""
    (folder / "lt-buren.toml").write_text("party = [unclosed", encoding="utf-8")
    edit(folder, "rvdk.toml", "attempt_limit = 8", 'attempt_limit = "8"')
    problems = check_contracts(folder, region=region)
    assert ("lt-buren.toml", "") in where(problems)
    assert ("rvdk.toml", "/attempt_limit") in where(problems)
    assert any("Buren (GM0214) has no lokaal_team" in p.message for p in problems)


def test_a_party_in_a_file_of_another_name_is_reported(folder: Path, region: Region) -> None:
    """The file name is the party id plus .toml."""
    (folder / "rvdk.toml").rename(folder / "raad.toml")
    problems = check_contracts(folder, region=region)
    assert [p.field for p in problems if p.file == "raad.toml"] == ["/party"]


def test_a_second_hub_is_reported(folder: Path, region: Region) -> None:
    """Exactly one party has role vt."""
    shutil.copy(folder / "vt-gz.toml", folder / "vt-two.toml")
    edit(folder, "vt-two.toml", 'party = "vt-gz"', 'party = "vt-two"')
    problems = check_contracts(folder, region=region)
    assert {("vt-gz.toml", "/role"), ("vt-two.toml", "/role")} <= where(problems)


def test_signed_by_must_name_the_bridge(folder: Path, region: Region) -> None:
    """Only the e-mail bridge signs for a party on the e-mail transport."""
    edit(folder, "lt-tiel.toml", 'signed_by = "vtgw-bridge"', 'signed_by = "jbg"')
    edit(folder, "lt-buren.toml", 'signed_by = "vtgw-bridge"', 'signed_by = "vtgw-nobody"')
    problems = check_contracts(folder, region=region)
    assert {("lt-tiel.toml", "/signed_by"), ("lt-buren.toml", "/signed_by")} <= where(problems)


def test_a_party_on_the_email_transport_may_have_no_keys(folder: Path, region: Region) -> None:
    """PROTOCOL.md Signature: an e-mail party has no keys of its own."""
    append(folder, "lt-tiel.toml", key_table("lt-tiel-2026-01"))
    problems = check_contracts(folder, region=region)
    assert [p.field for p in problems] == ["/keys"]
    assert "no keys of its own" in problems[0].message


def test_a_party_on_amqp_may_have_no_signed_by_and_no_email(folder: Path, region: Region) -> None:
    """signed_by and e-mail addresses belong only to the e-mail transport."""
    edit(folder, "jbg.toml", 'transport = "amqp"', 'transport = "amqp"\nsigned_by = "vtgw-bridge"')
    append(folder, "jbg.toml", '\n[email]\naddresses = ["jbg@jbg.example"]\n')
    problems = check_contracts(folder, region=region)
    assert where(problems) == {("jbg.toml", "/signed_by"), ("jbg.toml", "/email")}


def test_a_municipality_needs_exactly_one_lokaal_team(folder: Path, region: Region) -> None:
    """§8 and §10 A: each municipality has its lokaal team, and only one."""
    edit(folder, "lt-buren.toml", '["GM0214"]', '["GM0281"]')
    problems = check_contracts(folder, region=region)
    messages = [p.message for p in problems]
    assert any("Buren (GM0214) has no lokaal_team" in m for m in messages)
    assert any("Tiel (GM0281) has more than one lokaal_team" in m for m in messages)


def test_confused_persons_need_exactly_one_service_per_municipality(
    folder: Path, region: Region
) -> None:
    """§5.1 note 4: Farent or the GGD, never both, never neither."""
    edit(
        folder,
        "farent.toml",
        '"GM0297",  # Zaltbommel\n',
        '"GM0297",  # Zaltbommel\n    "GM0281",\n',
    )
    problems = check_contracts(folder, region=region)
    assert any("Tiel (GM0281) has more than one bijzondere_zorg" in p.message for p in problems)


def test_a_police_unit_other_than_the_region_names_is_reported(
    folder: Path, region: Region
) -> None:
    """§5.2: the region names the police unit of each municipality."""
    edit(folder, "politie-lb.toml", '["GM0944"]  # Mook en Middelaar', '["GM0944", "GM0268"]')
    problems = check_contracts(folder, region=region)
    assert where(problems) == {("politie-lb.toml", "/werkgebied")}
    assert "politie-on" in problems[0].message


def test_a_werkgebied_outside_the_region_is_reported(folder: Path, region: Region) -> None:
    """Werkgebied codes are municipalities of the region."""
    edit(folder, "farent.toml", '"GM0297",  # Zaltbommel', '"GM0297",\n    "GM0363",')
    problems = check_contracts(folder, region=region)
    assert where(problems) == {("farent.toml", "/werkgebied/2")}


def test_a_kid_used_twice_is_reported(folder: Path, region: Region) -> None:
    """A key id names one key across all contracts."""
    append(folder, "vt-gz.toml", key_table("shared-2026-01"))
    append(folder, "jbg.toml", key_table("shared-2026-01"))
    problems = check_contracts(folder, region=region)
    assert where(problems) == {("vt-gz.toml", "/keys/0/kid")}
    assert "jbg.toml" in problems[0].message


def test_a_key_that_ends_before_it_starts_is_reported(folder: Path, region: Region) -> None:
    """not_after comes after not_before."""
    append(folder, "jbg.toml", key_table("jbg-2026-01") + 'not_after = "2025-01-01T00:00:00Z"\n')
    problems = check_contracts(folder, region=region)
    assert where(problems) == {("jbg.toml", "/keys/0/not_after")}


def test_a_message_type_outside_the_catalogue_is_reported(folder: Path, region: Region) -> None:
    """may_send and may_receive name types of the message catalogue."""
    edit(folder, "rvdk.toml", '"enrichment.response"', '"enrichment.gossip"')
    problems = check_contracts(folder, region=region)
    assert where(problems) == {("rvdk.toml", "/may_send/0")}


def test_a_type_the_hub_may_not_receive_is_reported(folder: Path, region: Region) -> None:
    """Every message has VT at one end: what a party sends, the hub must accept."""
    edit(folder, "rvdk.toml", '"enrichment.response"', '"case.notice"')
    problems = check_contracts(folder, region=region)
    assert where(problems) == {("rvdk.toml", "/may_send/0")}
    assert "hub's may_receive" in problems[0].message


def test_retries_that_outlive_the_hubs_max_age_are_reported(folder: Path, region: Region) -> None:
    """A resend keeps its sent_at: the last attempts must still be fresh."""
    edit(folder, "rvdk.toml", 'receipt_timeout = "PT15M"', 'receipt_timeout = "P1D"')
    problems = check_contracts(folder, region=region)
    assert where(problems) == {("rvdk.toml", "/attempt_limit")}


def test_a_contract_with_a_valid_key_loads_it(folder: Path, region: Region) -> None:
    """Keys the operator adds as [[keys]] tables load as public keys."""
    append(folder, "vt-gz.toml", key_table("vt-gz-2026-01"))
    contracts = load_contracts(folder, region=region)
    key = contracts.hub.key("vt-gz-2026-01")
    assert key is not None
    assert len(key.key) == 32


def test_load_contracts_refuses_to_start_with_any_problem(folder: Path, region: Region) -> None:
    """ConfigurationError, listing every problem with its file and field."""
    edit(folder, "rvdk.toml", "attempt_limit = 8", "attempt_limit = 0")
    edit(folder, "jbg.toml", 'name = "Jeugdbescherming Gelderland"', 'name = ""')
    with pytest.raises(ConfigurationError) as refused:
        load_contracts(folder, region=region)
    assert "rvdk.toml#/attempt_limit" in str(refused.value)
    assert "jbg.toml#/name" in str(refused.value)


def test_a_missing_contracts_folder_is_a_configuration_error(tmp_path: Path) -> None:
    """The gateway cannot start without its contracts."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        check_contracts(tmp_path / "nowhere")


# --- the catalogue and the data folders ----------------------------------------


def test_a_missing_envelope_schema_is_a_configuration_error(tmp_path: Path) -> None:
    """Without the envelope schema there is no list of types to check the contracts against."""
    with pytest.raises(ConfigurationError, match="envelope schema"):
        message_catalogue(tmp_path)


def test_the_catalogue_is_read_from_the_envelope_schema(tmp_path: Path) -> None:
    """properties.type.enum of the envelope schema, following a local $ref."""
    envelope = {
        "properties": {"type": {"$ref": "#/$defs/type"}},
        "$defs": {"type": {"enum": ["receipt", "error", "case.notice"]}},
    }
    (tmp_path / "envelope.schema.json").write_text(json.dumps(envelope), encoding="utf-8")
    assert message_catalogue(tmp_path) == {"receipt", "error", "case.notice"}


def test_an_envelope_schema_without_a_type_enum_is_a_configuration_error(tmp_path: Path) -> None:
    """Falling back silently would hide that the two lists disagree."""
    (tmp_path / "envelope.schema.json").write_text('{"properties": {}}', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"properties\.type\.enum"):
        message_catalogue(tmp_path)


def test_the_region_file_must_be_valid_toml(tmp_path: Path) -> None:
    """A broken region file stops the gateway with the file named."""
    path = tmp_path / "region.toml"
    path.write_text("[[municipalities]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_region(path)


def test_data_folders_are_found_in_a_checkout() -> None:
    """In a checkout, schemas/, contracts/ and config/ sit beside gateway/."""
    root = Path(gateway.resources.__file__).resolve().parent.parent
    for name in ("schemas", "contracts", "config"):
        assert data_dir(name) == root / name
    assert tomllib.loads((data_dir("config") / "region.toml").read_text(encoding="utf-8"))


def test_an_installed_wheel_s_data_folders_come_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed wheel carries them as gateway/_data/<name>, looked for first."""
    package = tmp_path / "site-packages" / "gateway"
    (package / "_data" / "schemas").mkdir(parents=True)
    (tmp_path / "site-packages" / "schemas").mkdir()
    monkeypatch.setattr(gateway.resources, "_PACKAGE", package)
    assert data_dir("schemas") == package / "_data" / "schemas"
    with pytest.raises(ConfigurationError, match="contracts"):
        data_dir("contracts")


def test_only_the_three_data_folders_are_known() -> None:
    """A typo in a folder name fails loudly."""
    with pytest.raises(ValueError, match="not a data folder"):
        data_dir("schema")
