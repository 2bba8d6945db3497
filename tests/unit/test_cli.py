"""The `vt-gateway` command, run in-process: 0 done or valid, 1 refused, 2 could not run."""

from __future__ import annotations

import json
import re
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.crypto.keyfiles import read_private_key
from gateway.cli import main
from gateway.contract_files import load_contracts
from gateway.domain.canonical import digest
from gateway.domain.contracts import Transport
from gateway.domain.envelope import format_timestamp
from gateway.resources import data_dir

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = data_dir("contracts")
PROBLEM_LINE = re.compile(r"^(?P<file>[a-z0-9-]+\.toml): (?P<field>/\S*): (?P<message>.+)$")


def examples_dir() -> Path:
    """The example envelopes: schemas/examples/, or tests/fixtures/examples/ before the move."""
    moved = data_dir("schemas") / "examples"
    return moved if moved.is_dir() else ROOT / "tests" / "fixtures" / "examples"


def example(message_type: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        (examples_dir() / f"{message_type}.json").read_text(encoding="utf-8")
    )
    return value


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Run the command with these arguments; its exit code, stdout and stderr."""
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def copy_contracts(target: Path) -> Path:
    """A copy of the committed contract files, free to change."""
    shutil.copytree(CONTRACTS, target, ignore=shutil.ignore_patterns("*.json", "*.md"))
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a scratch folder: a default relative path (var/...) never lands in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    return copy_contracts(tmp_path / "contracts")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture(scope="module")
def jbg_keyed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Contracts where jbg has a fresh key, and that key's private PEM file."""
    base = tmp_path_factory.mktemp("jbg-keyed")
    folder = copy_contracts(base / "contracts")
    assert main(["keys", "generate", "jbg", "--contracts", str(folder), "--keys", str(base)]) == 0
    (pem,) = (base / "jbg").glob("*.pem")
    return folder, pem


@pytest.fixture
def unsigned_response(tmp_path: Path) -> Path:
    """An enrichment.response from jbg to vt-gz, sent now, without signature."""
    obj = example("enrichment.response")
    obj.pop("signature")
    obj["sent_at"] = format_timestamp(datetime.now(UTC))
    path = tmp_path / "response.json"
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def signed_response(
    tmp_path: Path,
    unsigned_response: Path,
    jbg_keyed: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """The same response signed by `vt-gateway sign` with jbg's key, as a file."""
    folder, pem = jbg_keyed
    code, out, _ = run(capsys, "sign", unsigned_response, "--key", pem, "--contracts", folder)
    assert code == 0
    path = tmp_path / "signed.json"
    path.write_text(out, encoding="utf-8")
    return path


# --- usage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [[], ["no-such-command"], ["keys"], ["sign", "file.json"], ["vectors", "regenerate"]],
    ids=["nothing", "unknown-command", "no-action", "sign-without-key", "unknown-action"],
)
def test_a_usage_error_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A command line the parser refuses ends with exit code 2 and a usage message."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert "usage:" in capsys.readouterr().err


# --- contracts check ----------------------------------------------------------------------


def test_contracts_check_passes_the_committed_contracts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The committed contracts check out: exit 0 and 'ok'."""
    code, out, _ = run(capsys, "contracts", "check", CONTRACTS)
    assert code == 0
    assert out.strip().endswith("ok")


def test_contracts_check_names_file_and_field_of_every_problem(
    contracts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No transport for moviera, a foreign gemeente for jbg: exit 1, lines name file and field."""
    edit(contracts / "moviera.toml", 'transport = "amqp"\n', "")
    edit(contracts / "jbg.toml", '"GM0297",  # Zaltbommel\n', '"GM0297",\n    "GM0363",\n')
    code, out, _ = run(capsys, "contracts", "check", contracts)
    assert code == 1
    *lines, summary = out.strip().splitlines()
    assert summary == f"{len(lines)} problem(s)"
    found = [PROBLEM_LINE.match(line) for line in lines]
    assert all(found), lines
    places = {(m["file"], m["field"]) for m in found if m}
    assert ("moviera.toml", "/transport") in places
    assert ("jbg.toml", "/werkgebied/15") in places
    assert any("GM0363" in line for line in lines if line.startswith("jbg.toml: /werkgebied/15"))


def test_contracts_check_of_a_missing_folder_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A contracts folder that does not exist is a command that cannot run."""
    code, _, err = run(capsys, "contracts", "check", tmp_path / "absent")
    assert code == 2
    assert "absent" in err


# --- keys generate -----------------------------------------------------------------------------


def test_keys_generate_writes_the_private_key_and_adds_the_public_key(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """KEYS/jbg/<kid>.pem is written 0600 and jbg's contract now lists that key's public half."""
    code, out, _ = run(capsys, "keys", "generate", "jbg", "--contracts", contracts, "--keys", keys)
    assert code == 0
    (pem,) = (keys / "jbg").glob("*.pem")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    contract = load_contracts(contracts).get("jbg")
    assert contract is not None
    (public,) = contract.keys
    assert public.kid == pem.stem
    assert public.kid in out
    assert public.key == read_private_key(pem).public_bytes()
    assert not public.revoked


def test_keys_generate_leaves_the_other_contracts_alone(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the named party's contract file changes."""
    before = {p.name: p.read_bytes() for p in contracts.glob("*.toml")}
    code, _, _ = run(capsys, "keys", "generate", "jbg", "--contracts", contracts, "--keys", keys)
    assert code == 0
    after = {p.name: p.read_bytes() for p in contracts.glob("*.toml")}
    assert {name for name in before if before[name] != after[name]} == {"jbg.toml"}


def test_keys_generate_for_a_party_on_email_exits_2_naming_the_bridge(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lt-tiel is on the e-mail transport: no key of its own; the message names vtgw-bridge."""
    before = (contracts / "lt-tiel.toml").read_bytes()
    code, _, err = run(
        capsys, "keys", "generate", "lt-tiel", "--contracts", contracts, "--keys", keys
    )
    assert code == 2
    assert "vtgw-bridge" in err
    assert (contracts / "lt-tiel.toml").read_bytes() == before
    assert files_under(keys) == set()


def test_keys_generate_for_an_unknown_party_exits_2(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A party without a contract gets no key."""
    code, _, err = run(
        capsys, "keys", "generate", "nobody", "--contracts", contracts, "--keys", keys
    )
    assert code == 2
    assert "nobody" in err
    assert files_under(keys) == set()


def test_keys_generate_refuses_a_kid_the_party_already_has(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second key with the same kid exits 2; the first key and the contract stay as they were."""
    argv = ("keys", "generate", "jbg", "--contracts", contracts, "--keys", keys, "--kid", "jbg-a")
    assert run(capsys, *argv)[0] == 0
    pem = keys / "jbg" / "jbg-a.pem"
    first, contract = pem.read_bytes(), (contracts / "jbg.toml").read_bytes()
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "jbg-a" in err
    assert pem.read_bytes() == first
    assert (contracts / "jbg.toml").read_bytes() == contract


def test_keys_generate_never_overwrites_a_private_key_file(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PEM file already at the key's path is kept: exit 2, the contract unchanged."""
    pem = keys / "jbg" / "jbg-a.pem"
    pem.parent.mkdir(parents=True)
    pem.write_bytes(b"an existing key")
    before = (contracts / "jbg.toml").read_bytes()
    code, _, _ = run(
        capsys,
        "keys",
        "generate",
        "jbg",
        "--contracts",
        contracts,
        "--keys",
        keys,
        "--kid",
        "jbg-a",
    )
    assert code == 2
    assert pem.read_bytes() == b"an existing key"
    assert (contracts / "jbg.toml").read_bytes() == before


def test_keys_generate_with_a_not_after_that_is_no_moment_exits_2_and_writes_nothing(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--not-after garbage is a usage error: exit 2, no private key left, contract as it was."""
    before = (contracts / "jbg.toml").read_bytes()
    code, _, _ = run(
        capsys,
        "keys",
        "generate",
        "jbg",
        "--contracts",
        contracts,
        "--keys",
        keys,
        "--not-after",
        "garbage",
    )
    assert code == 2
    assert files_under(keys) == set()
    assert (contracts / "jbg.toml").read_bytes() == before


def test_keys_generate_refuses_a_not_after_before_not_before(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A window that ends before it starts is refused (exit 2), so the contracts still load."""
    code, _, _ = run(
        capsys,
        "keys",
        "generate",
        "jbg",
        "--contracts",
        contracts,
        "--keys",
        keys,
        "--not-before",
        "2026-06-01T00:00:00.000Z",
        "--not-after",
        "2026-01-01T00:00:00.000Z",
    )
    assert code == 2
    assert load_contracts(contracts).get("jbg") is not None
    assert files_under(keys) == set()


@pytest.mark.parametrize("kid", ['bad"kid', "../../escaped", "with space"])
def test_keys_generate_refuses_a_kid_the_contract_schema_does_not_allow(
    kid: str, tmp_path: Path, contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kid outside [A-Za-z0-9._-]: exit 2, no file written anywhere, the contracts still load."""
    before = files_under(tmp_path)
    code, _, _ = run(
        capsys, "keys", "generate", "jbg", "--contracts", contracts, "--keys", keys, "--kid", kid
    )
    assert code == 2
    assert files_under(tmp_path) == before
    assert load_contracts(contracts).get("jbg") is not None


# --- dev init --------------------------------------------------------------------------


def test_dev_init_gives_every_party_that_signs_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every party not on e-mail gets a key and its PEM file, e-mail parties none; check passes."""
    contracts, keys = tmp_path / "contracts", tmp_path / "keys"
    code, _, _ = run(capsys, "dev", "init", "--contracts", contracts, "--keys", keys)
    assert code == 0
    loaded = load_contracts(contracts)
    assert len(loaded) == len(list(CONTRACTS.glob("*.toml")))
    for contract in loaded:
        if contract.transport is Transport.EMAIL:
            assert contract.keys == (), contract.party
            continue
        assert contract.keys, contract.party
        for public in contract.keys:
            pem = keys / contract.party / f"{public.kid}.pem"
            assert read_private_key(pem).public_bytes() == public.key
            assert public.not_after is not None
    code, out, _ = run(capsys, "contracts", "check", contracts)
    assert code == 0
    assert out.strip().endswith("ok")


def test_dev_init_a_second_time_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run again on the same folders, dev init adds no key and rewrites no file."""
    contracts, keys = tmp_path / "contracts", tmp_path / "keys"
    assert run(capsys, "dev", "init", "--contracts", contracts, "--keys", keys)[0] == 0
    before = {p: p.read_bytes() for p in files_under(tmp_path)}
    assert run(capsys, "dev", "init", "--contracts", contracts, "--keys", keys)[0] == 0
    assert {p: p.read_bytes() for p in files_under(tmp_path)} == before


def test_dev_init_makes_a_dashboard_admin_whose_password_only_it_knows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The staff file holds an argon2 hash, the password is in a 0600 file beside it, and the
    session secret is 0600; make run then signs in as 'beheerder'."""
    from adapters.dashboard.staff import Role, load_staff

    contracts, keys = tmp_path / "contracts", tmp_path / "keys"
    code, out, _ = run(capsys, "dev", "init", "--contracts", contracts, "--keys", keys)
    assert code == 0
    password_file = tmp_path / "var" / "dashboard-password.txt"
    assert str(password_file.relative_to(tmp_path)) in out
    password = password_file.read_text().strip()
    staff_text = (tmp_path / "var" / "dashboard-staff.toml").read_text()
    assert password not in staff_text
    member = load_staff(tmp_path / "var" / "dashboard-staff.toml").authenticate(
        "beheerder", password
    )
    assert member is not None
    assert member.role is Role.ADMIN
    for secret in (password_file, tmp_path / "var" / "dashboard-secret"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


# --- sign and verify ----------------------------------------------------------------------------


def test_sign_prints_the_signed_envelope(
    unsigned_response: Path, jbg_keyed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout is the envelope as JSON, signed with the key file's kid; nothing else changed."""
    folder, pem = jbg_keyed
    code, out, _ = run(capsys, "sign", unsigned_response, "--key", pem, "--contracts", folder)
    assert code == 0
    signed = json.loads(out)
    assert signed["signature"]["alg"] == "Ed25519"
    assert signed["signature"]["kid"] == pem.stem
    unsigned = json.loads(unsigned_response.read_text(encoding="utf-8"))
    assert {k: v for k, v in signed.items() if k != "signature"} == unsigned


def test_a_signed_message_verifies_with_its_digest(
    signed_response: Path, jbg_keyed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """verify on what sign wrote: exit 0, 'ACCEPTED <type> <id> sha256:<hex>' of that message."""
    folder, _ = jbg_keyed
    code, out, _ = run(capsys, "verify", signed_response, "--contracts", folder)
    assert code == 0
    message = json.loads(signed_response.read_text(encoding="utf-8"))
    assert out.strip() == f"ACCEPTED enrichment.response {message['id']} {digest(message)}"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", out.split()[-1])


def test_a_message_changed_after_signing_is_refused(
    signed_response: Path, jbg_keyed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """One byte altered in the body: exit 1 and SIGNATURE_INVALID."""
    folder, _ = jbg_keyed
    raw = signed_response.read_bytes()
    at = raw.index(b"Testmedewerker") + 1
    signed_response.write_bytes(raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :])
    code, out, _ = run(capsys, "verify", signed_response, "--contracts", folder)
    assert code == 1
    assert out.startswith("SIGNATURE_INVALID")


def test_a_message_from_another_transport_identity_is_refused(
    signed_response: Path, jbg_keyed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed by jbg but delivered as rvdk: exit 1 and SENDER_MISMATCH."""
    folder, _ = jbg_keyed
    code, out, _ = run(capsys, "verify", signed_response, "--contracts", folder, "--as", "rvdk")
    assert code == 1
    assert out.startswith("SENDER_MISMATCH /sender")


def test_a_signed_message_does_not_verify_against_contracts_without_the_key(
    signed_response: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The committed contracts hold no key of jbg: the kid is not valid, exit 1."""
    code, out, _ = run(capsys, "verify", signed_response, "--contracts", CONTRACTS)
    assert code == 1
    assert out.startswith("KEY_NOT_VALID")


def test_sign_refuses_an_envelope_that_fails_the_schema(
    unsigned_response: Path, jbg_keyed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A municipality outside the region: exit 1, SCHEMA_INVALID at its pointer, no JSON printed."""
    folder, pem = jbg_keyed
    obj = json.loads(unsigned_response.read_text(encoding="utf-8"))
    obj["case"]["gemeente"] = "GM0363"
    unsigned_response.write_text(json.dumps(obj), encoding="utf-8")
    code, out, _ = run(capsys, "sign", unsigned_response, "--key", pem, "--contracts", folder)
    assert code == 1
    assert out.startswith("SCHEMA_INVALID /case/gemeente")
    assert "{" not in out


def test_verify_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message file that does not exist: the command cannot run."""
    code, _, _ = run(capsys, "verify", tmp_path / "absent.json")
    assert code == 2


# --- validate -----------------------------------------------------------------------------------


def test_validate_accepts_a_valid_example(capsys: pytest.CaptureFixture[str]) -> None:
    """A valid example: exit 0 and 'valid'."""
    code, out, _ = run(capsys, "validate", examples_dir() / "enrichment.request.json")
    assert code == 0
    assert out.strip() == "valid"


def test_validate_reports_a_bad_bsn_at_its_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A BSN failing the 11-test: exit 1, 'SCHEMA_INVALID /body/...' at its place, not its value."""
    obj = example("enrichment.request")
    obj["body"]["personen"][0]["bsn"] = "111222334"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    code, out, _ = run(capsys, "validate", path)
    assert code == 1
    assert out.splitlines() == [
        "SCHEMA_INVALID /body/personen/0/bsn: fails schema keyword 'format'"
    ]
    assert "111222334" not in out


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"], ids=["not-json", "not-an-object"])
def test_validate_of_a_file_that_is_no_json_object_exits_2(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not a JSON object cannot be validated: exit 2 with a message."""
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    code, _, err = run(capsys, "validate", path)
    assert code == 2
    assert "broken.json" in err


def test_validate_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message file that does not exist: the command cannot run."""
    code, _, _ = run(capsys, "validate", tmp_path / "absent.json")
    assert code == 2


# --- vectors -------------------------------------------------------------------------------------


def test_vectors_check_accepts_the_file_vectors_generate_just_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """generate then check on the same file: both exit 0."""
    target = tmp_path / "test-vectors.json"
    assert run(capsys, "vectors", "generate", "--file", target)[0] == 0
    assert json.loads(target.read_text(encoding="utf-8"))["valid"]
    code, out, _ = run(capsys, "vectors", "check", "--file", target)
    assert code == 0
    assert "current" in out


def test_vectors_check_refuses_a_modified_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One byte changed after generating: check exits 1."""
    target = tmp_path / "test-vectors.json"
    assert run(capsys, "vectors", "generate", "--file", target)[0] == 0
    target.write_text(target.read_text(encoding="utf-8").replace('"now"', '"Now"', 1), "utf-8")
    code, _, _ = run(capsys, "vectors", "check", "--file", target)
    assert code == 1


def test_vectors_check_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A vectors file that does not exist is a missing file: the command cannot run."""
    code, _, _ = run(capsys, "vectors", "check", "--file", tmp_path / "absent.json")
    assert code == 2


# --- a key file the command cannot use ----------------------------------------------------------


def test_sign_with_an_encrypted_key_file_exits_2(
    tmp_path: Path,
    unsigned_response: Path,
    jbg_keyed: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A password-protected PEM cannot be used: exit 2 with a message, not a traceback."""
    folder, _ = jbg_keyed
    pem = tmp_path / "jbg-enc.pem"
    pem.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    code, _, err = run(capsys, "sign", unsigned_response, "--key", pem, "--contracts", folder)
    assert code == 2
    assert "jbg-enc.pem" in err


def test_report_writes_the_quarter_as_csv_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`report --quarter 2026Q4` writes one CSV and one JSON row per municipality."""
    import asyncio

    from adapters.store import migrate

    dsn = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    asyncio.run(migrate(dsn))
    monkeypatch.setenv("VTGW_STORE_DSN", dsn)
    settings = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"
    code, out, _ = run(
        capsys, "report", "--quarter", "2026Q4", "--out", tmp_path, "--config", settings
    )
    assert code == 0, out
    lines = (tmp_path / "report-2026Q4.csv").read_text().splitlines()
    assert len(lines) == 16
    document = json.loads((tmp_path / "report-2026Q4.json").read_text())
    assert (document["quarter"], len(document["rows"])) == ("2026Q4", 15)
    code, _, _ = run(capsys, "report", "--quarter", "2026-4", "--config", settings)
    assert code == 2


def test_retention_log_shows_what_the_purge_removed_without_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`retention log`: the audit of the 2-year purge (§5.1), ids and digests only."""
    import asyncio
    from datetime import date

    from adapters.store import migrate
    from adapters.store.sql import open_store
    from gateway.service.ports import Purged

    dsn = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"

    async def one_purge() -> None:
        await migrate(dsn)
        store = await open_store(dsn)
        try:
            async with store.transaction() as uow:
                await uow.retention.add_many(
                    [
                        Purged(
                            sender="vt-gz",
                            message_id="0b9f4a52-7c55-4d71-9d36-2f3d0e6f3a11",
                            type="zorgmelding.forward",
                            recipient="lt-tiel",
                            case_ref="VT-2026-000123",
                            gemeente="GM0281",
                            digest="sha256:" + "ab" * 32,
                            status="delivered",
                            retained_until=date(2028, 11, 19),
                            purged_at=datetime(2028, 11, 19, 23, 1, tzinfo=UTC),
                            rule="retention: §5.1",
                        )
                    ]
                )
        finally:
            await store.close()

    asyncio.run(one_purge())
    monkeypatch.setenv("VTGW_STORE_DSN", dsn)
    settings = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"
    code, out, _ = run(capsys, "retention", "log", "--config", settings)
    assert code == 0, out
    assert "zorgmelding.forward  vt-gz->lt-tiel  0b9f4a52-7c55-4d71-9d36-2f3d0e6f3a11" in out
    assert "kept until 2028-11-19" in out
    assert out.rstrip().endswith("1 purged message(s) shown")


def test_keys_list_shows_the_windows_and_asks_for_rotation_60_days_before_the_end(
    contracts: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Key rotation: jbg's old key ends 2027-03-01, its successor starts 2027-02-01. At
    2027-01-15 the old key ends within 60 days but the new one lasts: fine. Without the
    successor the listing says to rotate (exit 1)."""

    def generate(kid: str, not_before: str, not_after: str | None = None) -> None:
        window = ["--not-before", not_before] + (["--not-after", not_after] if not_after else [])
        args = ["keys", "generate", "jbg", "--contracts", contracts, "--keys", keys, "--kid", kid]
        code, _, err = run(capsys, *args, *window)
        assert code == 0, err

    generate("jbg-2026", "2026-01-01T00:00:00.000Z", "2027-03-01T00:00:00.000Z")
    listing = ["keys", "list", "--contracts", contracts, "--at", "2027-01-15T00:00:00.000Z"]
    code, out, _ = run(capsys, *listing)
    assert code == 1
    assert "jbg  jbg-2026  ends-soon  from 2026-01-01" in out
    assert "jbg: no key valid beyond 60 days: rotate (docs/keys.md)" in out
    generate("jbg-2027", "2027-02-01T00:00:00.000Z")
    code, out, _ = run(capsys, *listing)
    assert "jbg  jbg-2027  future  from 2027-02-01T00:00:00.000Z  until no end" in out
    assert "jbg: no key" not in out
    code, out, _ = run(capsys, *listing[:-1], "2027-03-02T00:00:00.000Z")
    assert "jbg  jbg-2026  ended" in out
    assert "jbg  jbg-2027  valid" in out
