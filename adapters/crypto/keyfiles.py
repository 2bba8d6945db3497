"""Private keys on disk and public keys into contract files.

Private keys are PKCS#8 PEM files, readable by their owner only, kept outside
the repository (`var/keys/<party>/<kid>.pem` in development). They are never
logged and never committed; the contract file gets the public half.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.domain.envelope import format_timestamp
from gateway.domain.errors import ConfigurationError
from gateway.domain.signatures import SigningKey, b64url_encode

_EMPTY_KEYS = re.compile(r"^keys\s*=\s*\[\s*\]\s*$", re.MULTILINE)


def key_path(keys_dir: Path, party: str, kid: str) -> Path:
    return keys_dir / party / f"{kid}.pem"


def write_private_key(path: Path, key: SigningKey) -> None:
    """Write a new private key file, mode 0600; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def read_private_key(path: Path, kid: str | None = None) -> SigningKey:
    """A signing key from a PEM file; its kid is the file name unless given."""
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:  # TypeError: the file wants a password
        raise ConfigurationError(f"cannot read private key {path}: {type(exc).__name__}") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigurationError(f"{path} is not an Ed25519 key")
    return SigningKey(kid or path.stem, loaded)


def signing_key_for(keys_dir: Path, party: str, kid: str) -> SigningKey:
    return read_private_key(key_path(keys_dir, party, kid), kid)


def public_key_entry(key: SigningKey, *, not_before: datetime, not_after: datetime | None) -> str:
    """The `[[keys]]` table of a contract file for this key's public half."""
    lines = [
        "",
        "[[keys]]",
        f'kid = "{key.kid}"',
        f'public_key = "{b64url_encode(key.public_bytes())}"',
        f'not_before = "{_seconds(not_before)}"',
    ]
    if not_after is not None:
        lines.append(f'not_after = "{_seconds(not_after)}"')
    lines.append("revoked = false")
    return "\n".join(lines) + "\n"


def add_public_key(contract_file: Path, entry: str) -> None:
    """Append a `[[keys]]` table to a contract file, keeping its comments."""
    text = _EMPTY_KEYS.sub("", contract_file.read_text(encoding="utf-8"))
    contract_file.write_text(text.rstrip("\n") + "\n" + entry, encoding="utf-8")


def _seconds(moment: datetime) -> str:
    return format_timestamp(moment.replace(microsecond=0)).replace(".000Z", "Z")
