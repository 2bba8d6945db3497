"""Private key files on disk and public keys into contract files."""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.crypto.keyfiles import (
    add_public_key,
    key_path,
    public_key_entry,
    read_private_key,
    signing_key_for,
    write_private_key,
)
from gateway.domain.contracts import decode_public_key, parse_utc_moment
from gateway.domain.errors import ConfigurationError
from gateway.domain.signatures import SigningKey, signature_verifies

NOT_BEFORE = datetime(2026, 1, 1, 9, 30, 15, 987654, tzinfo=UTC)
NOT_AFTER = datetime(2027, 1, 1, tzinfo=UTC)

CONTRACT = """\
# A contract with comments, kept by every edit.
# Names in this file are synthetic placeholders.

party = "jbg"  # the party id
name = "Jeugdbescherming Gelderland"
keys = []

[office_hours]  # 9-17
start = "09:00"
end = "17:00"

# No keys are committed.
"""


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed("jbg-2026-01", bytes(range(32)))


@pytest.fixture
def contract_file(tmp_path: Path) -> Path:
    path = tmp_path / "jbg.toml"
    path.write_text(CONTRACT, encoding="utf-8")
    return path


def pem(private_key: ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --- private key files -----------------------------------------------------------------


def test_the_key_path_is_party_folder_and_kid(tmp_path: Path) -> None:
    """A key lives at <keys>/<party>/<kid>.pem."""
    assert key_path(tmp_path, "jbg", "jbg-2026-01") == tmp_path / "jbg" / "jbg-2026-01.pem"


def test_a_private_key_file_is_readable_by_its_owner_only(tmp_path: Path, key: SigningKey) -> None:
    """The PEM file is written with mode 0600, whatever the umask allows."""
    path = key_path(tmp_path, "jbg", key.kid)
    write_private_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_private_key_file_is_never_overwritten(tmp_path: Path, key: SigningKey) -> None:
    """Writing a key where a file exists fails and leaves the existing file as it was."""
    path = key_path(tmp_path, "jbg", key.kid)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"an existing key")
    with pytest.raises(FileExistsError):
        write_private_key(path, SigningKey.generate(key.kid))
    assert path.read_bytes() == b"an existing key"


def test_a_private_key_is_not_written_through_a_symlink(tmp_path: Path, key: SigningKey) -> None:
    """A symlink at the key's path is not followed: its target is not replaced."""
    target = tmp_path / "elsewhere"
    target.write_bytes(b"not a key")
    path = key_path(tmp_path, "jbg", key.kid)
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    with pytest.raises(FileExistsError):
        write_private_key(path, key)
    assert target.read_bytes() == b"not a key"


def test_a_private_key_file_is_pkcs8_pem_without_encryption(
    tmp_path: Path, key: SigningKey
) -> None:
    """The file is an unencrypted PKCS#8 PEM private key."""
    path = key_path(tmp_path, "jbg", key.kid)
    write_private_key(path, key)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_a_key_read_back_has_the_same_public_key(tmp_path: Path, key: SigningKey) -> None:
    """write -> read gives the same key pair, named by the file's kid."""
    path = key_path(tmp_path, "jbg", key.kid)
    write_private_key(path, key)
    loaded = read_private_key(path)
    assert loaded.kid == "jbg-2026-01"
    assert loaded.public_bytes() == key.public_bytes()


def test_a_key_read_back_signs_what_the_original_verifies(tmp_path: Path, key: SigningKey) -> None:
    """The loaded private half makes signatures the original public half verifies."""
    path = key_path(tmp_path, "jbg", key.kid)
    write_private_key(path, key)
    loaded = signing_key_for(tmp_path, "jbg", key.kid)
    assert signature_verifies(key.public_bytes(), b"message", loaded.sign_bytes(b"message"))


def test_a_kid_given_when_reading_wins_over_the_file_name(tmp_path: Path, key: SigningKey) -> None:
    """read_private_key(path, kid) names the key by the given kid."""
    path = tmp_path / "some-file.pem"
    write_private_key(path, key)
    assert read_private_key(path, "jbg-other").kid == "jbg-other"
    assert read_private_key(path).kid == "some-file"


@pytest.mark.parametrize(
    "make",
    [
        lambda: pem(ec.generate_private_key(ec.SECP256R1())),
        lambda: pem(x25519.X25519PrivateKey.generate()),
    ],
    ids=["ecdsa-p256", "x25519"],
)
def test_a_pem_key_of_another_algorithm_is_refused(
    tmp_path: Path, make: Callable[[], bytes]
) -> None:
    """An EC or X25519 private key is not a signing key of the protocol."""
    path = tmp_path / "other.pem"
    path.write_bytes(make())
    with pytest.raises(ConfigurationError, match="not an Ed25519 key"):
        read_private_key(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
)
def test_a_file_that_is_no_pem_key_is_refused(tmp_path: Path, content: bytes) -> None:
    """Garbage, an empty file or a broken PEM block raise ConfigurationError."""
    path = tmp_path / "broken.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match="cannot read private key"):
        read_private_key(path)


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    """A key file that does not exist raises ConfigurationError, not OSError."""
    with pytest.raises(ConfigurationError, match="cannot read private key"):
        read_private_key(tmp_path / "absent.pem")


def test_an_encrypted_key_file_is_refused_with_a_configuration_error(tmp_path: Path) -> None:
    """A password-protected PEM cannot be used unattended: ConfigurationError, not TypeError."""
    path = tmp_path / "encrypted.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ConfigurationError):
        read_private_key(path)


def test_an_error_about_a_key_file_does_not_show_its_content(tmp_path: Path) -> None:
    """The message names the file and the kind of failure, never the bytes read."""
    path = tmp_path / "broken.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlZWQ=\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigurationError) as raised:
        read_private_key(path)
    assert "c2VjcmV0LXNlZWQ" not in str(raised.value)
    assert str(path) in str(raised.value)


# --- public keys into contract files ----------------------------------------------------------


def test_a_public_key_entry_is_a_keys_table(key: SigningKey) -> None:
    """The entry parses as one [[keys]] table with kid, key, window and revoked = false."""
    entry = public_key_entry(key, not_before=NOT_BEFORE, not_after=NOT_AFTER)
    (table,) = tomllib.loads(entry)["keys"]
    assert table["kid"] == "jbg-2026-01"
    assert decode_public_key(table["public_key"]) == key.public_bytes()
    assert table["revoked"] is False


def test_public_key_entry_timestamps_are_utc_whole_seconds_with_z(key: SigningKey) -> None:
    """not_before and not_after are written as RFC 3339 UTC, to the second, ending in Z."""
    entry = public_key_entry(key, not_before=NOT_BEFORE, not_after=NOT_AFTER)
    (table,) = tomllib.loads(entry)["keys"]
    assert table["not_before"] == "2026-01-01T09:30:15Z"
    assert table["not_after"] == "2027-01-01T00:00:00Z"
    assert parse_utc_moment(table["not_before"]) == NOT_BEFORE.replace(microsecond=0)


def test_public_key_entry_converts_other_zones_to_utc(key: SigningKey) -> None:
    """A not_before given in +01:00 is written as the same instant in UTC."""
    cet = timezone(timedelta(hours=1))
    entry = public_key_entry(
        key, not_before=datetime(2026, 1, 1, 0, 30, tzinfo=cet), not_after=None
    )
    (table,) = tomllib.loads(entry)["keys"]
    assert table["not_before"] == "2025-12-31T23:30:00Z"


def test_a_public_key_entry_without_end_has_no_not_after(key: SigningKey) -> None:
    """not_after None leaves the member out: a key without an end."""
    (table,) = tomllib.loads(public_key_entry(key, not_before=NOT_BEFORE, not_after=None))["keys"]
    assert "not_after" not in table


def test_a_public_key_entry_refuses_a_naive_moment(key: SigningKey) -> None:
    """A not_before without a time zone is refused rather than guessed."""
    with pytest.raises(ValueError, match="timezone-aware"):
        public_key_entry(key, not_before=datetime(2026, 1, 1), not_after=None)


def test_add_public_key_appends_a_keys_table_that_parses(
    contract_file: Path, key: SigningKey
) -> None:
    """After adding, the file parses with tomllib and `keys` holds the new key."""
    add_public_key(contract_file, public_key_entry(key, not_before=NOT_BEFORE, not_after=None))
    data = tomllib.loads(contract_file.read_text(encoding="utf-8"))
    assert [k["kid"] for k in data["keys"]] == ["jbg-2026-01"]
    assert data["party"] == "jbg"
    assert data["office_hours"] == {"start": "09:00", "end": "17:00"}


def test_add_public_key_keeps_the_files_comments(contract_file: Path, key: SigningKey) -> None:
    """Every comment line of the contract file is still there, in order."""
    add_public_key(contract_file, public_key_entry(key, not_before=NOT_BEFORE, not_after=None))
    text = contract_file.read_text(encoding="utf-8")
    comments = [line for line in CONTRACT.splitlines() if "#" in line]
    assert [line for line in text.splitlines() if "#" in line] == comments


def test_add_public_key_twice_gives_two_keys(contract_file: Path, key: SigningKey) -> None:
    """A second key is appended after the first; both are in `keys`, oldest first."""
    other = SigningKey.from_seed("jbg-2027-01", bytes(range(1, 33)))
    add_public_key(contract_file, public_key_entry(key, not_before=NOT_BEFORE, not_after=None))
    add_public_key(contract_file, public_key_entry(other, not_before=NOT_AFTER, not_after=None))
    data = tomllib.loads(contract_file.read_text(encoding="utf-8"))
    assert [k["kid"] for k in data["keys"]] == ["jbg-2026-01", "jbg-2027-01"]


def test_add_public_key_to_a_file_without_keys_member(tmp_path: Path, key: SigningKey) -> None:
    """A contract file that never mentioned keys gets its first [[keys]] table."""
    path = tmp_path / "vt-gz.toml"
    path.write_text('party = "vt-gz"\n\n[office_hours]\nstart = "09:00"\n', encoding="utf-8")
    add_public_key(path, public_key_entry(key, not_before=NOT_BEFORE, not_after=None))
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["keys"][0]["kid"] == "jbg-2026-01"
    assert data["office_hours"] == {"start": "09:00"}
