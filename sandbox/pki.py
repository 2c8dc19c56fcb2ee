"""A throwaway certificate authority for the sandbox.

Each emulated cluster has a CA certificate, as a real cluster does: it is the
``ca.crt`` in service-account token Secrets and the ``kubernetes_ca_cert`` a
Vault Kubernetes auth mount is configured with. Emulators that must speak
HTTPS (Azure Key Vault's SDK refuses plain HTTP) get a server certificate for
127.0.0.1/localhost from the same kind of CA, and clients trust its PEM.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_VALIDITY = datetime.timedelta(days=365)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vaultflow local sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass(frozen=True)
class ServerCertificate:
    """A leaf certificate and its key, both PEM."""

    certificate_pem: str
    key_pem: str

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side TLS context (``ssl`` only loads key material from files)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as directory:
            cert_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
            cert_path.write_text(self.certificate_pem)
            key_path.write_text(self.key_pem)
            key_path.chmod(0o600)
            context.load_cert_chain(cert_path, key_path)
        return context


class CertificateAuthority:
    """A self-signed CA (ECDSA P-256: fast to generate, accepted everywhere)."""

    @classmethod
    def from_pem(cls, certificate_pem: str, key_pem: str) -> CertificateAuthority:
        """The CA ``certificate_pem`` and ``key_pem`` saved (a sandbox that restarts keeps its CAs)."""
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("a sandbox CA key must be an EC key")
        authority = cls.__new__(cls)
        authority._key = key
        authority._certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        return authority

    @classmethod
    def kept_in(cls, certificate_file: Path, key_file: Path, common_name: str) -> CertificateAuthority:
        """The CA saved in the two files, or a new one saved there (the key with mode 0600)."""
        if certificate_file.is_file() and key_file.is_file():
            return cls.from_pem(certificate_file.read_text(), key_file.read_text())
        authority = cls(common_name)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(authority.key_pem)
        certificate_file.write_text(authority.certificate_pem)
        return authority

    @property
    def key_pem(self) -> str:
        return _pem_key(self._key)

    def __init__(self, common_name: str = "vaultflow sandbox CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
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
            .sign(self._key, hashes.SHA256())
        )

    @property
    def certificate_pem(self) -> str:
        return self._certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue_server_certificate(
        self, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    ) -> ServerCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return ServerCertificate(certificate.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key))
