"""Certificates for the TLS tests, made with `cryptography` at test time, never committed.

`tls_material(directory)` writes two certificate authorities into a temporary
folder: ours (`vtgw-test-ca`), which signs the server certificate of
localhost / 127.0.0.1 and a client certificate per partner, and a foreign one
(`foreign-test-ca`) with a server and a client certificate of its own, for the
refusals. Keys are ECDSA P-256 in PKCS#8 PEM, written with mode 0600 from the
first byte; certificates are PEM, mode 0644. Nothing here logs or prints a key.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_MODE: Final = 0o600
CERTIFICATE_MODE: Final = 0o644
SERVER_NAMES: Final = ("localhost",)
SERVER_ADDRESSES: Final = ("127.0.0.1", "::1")
LIFETIME: Final = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A certificate and its private key, as files."""

    certificate: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Authority:
    """One certificate authority's files: its certificate, a server's, and clients' by name."""

    name: str
    certificate: Path
    server: KeyPair
    clients: dict[str, KeyPair]

    def client(self, name: str) -> KeyPair:
        return self.clients[name]


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """Our authority and a foreign one, each with a server and client certificates."""

    ours: Authority
    foreign: Authority


def tls_material(directory: Path, clients: tuple[str, ...] = ("jbg",)) -> TlsMaterial:
    """Both authorities in `directory` (created 0700), with a client certificate per name."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return TlsMaterial(
        ours=_authority(directory / "ours", "vtgw-test-ca", clients),
        foreign=_authority(directory / "foreign", "foreign-test-ca", clients),
    )


class _Issuer:
    """A self-signed CA key and certificate that signs leaf certificates."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        public = self.key.public_key()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self, common_name: str, usage: x509.ObjectIdentifier, alternative: list[x509.GeneralName]
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A leaf key and certificate for one purpose (server or client authentication)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if alternative:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alternative), critical=False
            )
        return key, builder.sign(self.key, hashes.SHA256())


def _authority(directory: Path, name: str, clients: tuple[str, ...]) -> Authority:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    issuer = _Issuer(name)
    ca_file = directory / "ca.pem"
    _write_certificate(ca_file, issuer.certificate)
    server_names: list[x509.GeneralName] = [x509.DNSName(host) for host in SERVER_NAMES]
    server_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_ADDRESSES]
    server = _pair(
        directory,
        "server",
        *issuer.issue("localhost", ExtendedKeyUsageOID.SERVER_AUTH, server_names),
    )
    return Authority(
        name=name,
        certificate=ca_file,
        server=server,
        clients={
            client: _pair(
                directory,
                f"client-{client}",
                *issuer.issue(client, ExtendedKeyUsageOID.CLIENT_AUTH, []),
            )
            for client in clients
        },
    )


def _pair(
    directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> KeyPair:
    pair = KeyPair(directory / f"{stem}.pem", directory / f"{stem}.key")
    _write_certificate(pair.certificate, certificate)
    write_key(pair.key, key)
    return pair


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    path.chmod(CERTIFICATE_MODE)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """The key as unencrypted PKCS#8 PEM in a file that is 0600 from its creation."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
