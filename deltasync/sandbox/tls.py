"""Throwaway certificates for the sandbox's HTTPS token endpoint.

azure-identity only talks to an ``https://`` authority (graph-delta.md §4.8), so the sandbox
runs its token endpoint over real TLS: a fresh self-signed CA per sandbox, a server
certificate for the loopback names signed by it, and the CA written out as ``ca.pem`` for
the client to trust (``entra.ca_bundle`` / ``connection_verify``). A client certificate with
an RSA key is available too, for testing ``CertificateCredential`` against ``TokenSim``.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ClientCertificate",
    "TlsFiles",
    "make_client_certificate",
    "make_server_tls",
    "server_context",
    "write_tls_files",
]

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
_VALIDITY = timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """Where the sandbox's TLS material was written."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate for CertificateCredential: ``pem`` holds certificate and key."""

    pem: Path
    certificate: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "deltasync sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by the owner only (created with mode 0600, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def write_tls_files(folder: Path, *, hosts: tuple[str, ...] = LOOPBACK_NAMES) -> TlsFiles:
    """Create a CA and a server certificate for ``hosts``; write ca.pem, server.pem, server.key."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("deltasync sandbox CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0] if hosts else "localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
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
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    _write_private(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS server context presenting the sandbox certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context


def make_server_tls(folder: Path, *, hosts: tuple[str, ...] = LOOPBACK_NAMES) -> ssl.SSLContext:
    """Write a fresh CA and server certificate into ``folder``; return the server's context.

    ``folder/ca.pem`` is what clients trust; ``server.pem`` (certificate and CA) and
    ``server.key`` (mode 0600) are what the server presents.
    """
    return server_context(write_tls_files(folder, hosts=hosts))


def make_client_certificate(folder: Path, *, name: str = "client") -> ClientCertificate:
    """A self-signed RSA client certificate; ``<name>.pem`` holds certificate and key."""
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC) - timedelta(minutes=5)
    subject = _name(f"deltasync sandbox {name}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .sign(key, hashes.SHA256())
    )
    certificate = cert.public_bytes(serialization.Encoding.PEM)
    path = folder / f"{name}.pem"
    _write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + certificate,
    )
    return ClientCertificate(pem=path, certificate=certificate)
