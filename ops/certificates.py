"""`onething certs issue`: a private CA and the certificates of the compose stack's mutual TLS.

The Temporal server (docker-compose.yml) accepts only clients whose certificate its CA signed, so
each client gets its own certificate and key: the worker, the API, the Temporal UI and the admin
tools' jobs (temporal-setup). One directory per container, mounted read-only into it alone, so a
container holds its own key and no other. The CA's key stays in ``ca/`` (mounted nowhere): it is
needed again only to renew, and belongs offline between renewals (docs/deployment.md, Certificates).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DIR = "ca"
SERVER_DIR = "temporal"
# Each directory's reader, by the user id its image runs as: the Temporal server and admin tools
# (temporal, 1000), the UI (5000), our image (Dockerfile, 10001).
SERVER_UID = 1000
CLIENT_UIDS: dict[str, int] = {"worker": 10001, "api": 10001, "temporal-ui": 5000, "temporal-admin": 1000}
# The frontend's name inside the compose network, and for operators' CLI on the host (127.0.0.1:7233).
DEFAULT_SERVER_NAMES = ("temporal", "localhost", "127.0.0.1")
ORGANISATION = "OneThing"


@dataclass(frozen=True)
class Issued:
    """Where the files went: the CA's certificate, and each directory's certificate and key."""

    ca_certificate: Path
    certificates: dict[str, tuple[Path, Path]]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Created with its final mode: a key is never readable by others, not even for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    path.chmod(mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _subject_alternative_names(names: Sequence[str]) -> list[x509.GeneralName]:
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    return alternatives


def _create_ca(
    directory: Path, days: int, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{ORGANISATION} Temporal CA")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_DIR / "ca-key.pem", _key_pem(key), 0o600)
    _write(directory / CA_DIR / "ca.pem", certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return certificate, key


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Signatures only (ECDSA keys encipher nothing); a CA also signs certificates and revocation lists."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    certificate = x509.load_pem_x509_certificate((directory / CA_DIR / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / CA_DIR / "ca-key.pem").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / CA_DIR / 'ca-key.pem'} is not this tool's CA key (EC P-256)")
    return certificate, key


def _issue_leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    server_names: Sequence[str],
    days: int,
    now: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    # The server's certificate also authenticates it as a client: the Temporal server's own
    # services call its frontend and each other with it (internode TLS).
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server_names else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    # A client's own name too: verifiers that follow RFC 5280 strictly want a subject alternative name.
    names = server_names or [common_name]
    builder = builder.add_extension(x509.SubjectAlternativeName(_subject_alternative_names(names)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def issue_certificates(
    directory: Path,
    *,
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    days: int = 397,
    ca_days: int = 3650,
    renew: bool = False,
    owners: bool = False,
) -> Issued:
    """A CA (or, with ``renew``, the one already in ``directory``) and fresh keys and certificates
    for the server and every client. ``owners`` (as root) hands each directory to the user id of
    the container that reads it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_exists = (directory / CA_DIR / "ca-key.pem").exists()
    if renew and not ca_exists:
        raise FileNotFoundError(f"no CA to renew with in {directory / CA_DIR}: issue without --renew first")
    if not renew and ca_exists:
        raise FileExistsError(
            f"{directory / CA_DIR} already holds a CA: --renew issues new certificates under it; "
            "to replace the CA, move the directory away first"
        )
    ca, ca_key = _load_ca(directory) if renew else _create_ca(directory, ca_days, now)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    readers = {SERVER_DIR: (SERVER_UID, "server", list(server_names))} | {
        name: (uid, "client", []) for name, uid in CLIENT_UIDS.items()
    }
    issued: dict[str, tuple[Path, Path]] = {}
    for name, (uid, kind, names) in readers.items():
        certificate, key = _issue_leaf(ca, ca_key, name, server_names=names, days=days, now=now)
        certificate_path, key_path = directory / name / f"{kind}.pem", directory / name / f"{kind}-key.pem"
        _write(directory / name / "ca.pem", ca_pem, 0o644)
        _write(certificate_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(key_path, _key_pem(key), 0o600)
        if owners:
            for path in (directory / name, *sorted((directory / name).iterdir())):
                os.chown(path, uid, uid)
        issued[name] = (certificate_path, key_path)
    return Issued(ca_certificate=directory / CA_DIR / "ca.pem", certificates=issued)


def issue_command(directory: Path, *, server_names: Sequence[str], days: int, renew: bool, owners: bool) -> int:
    """The CLI's `certs issue`: exit 0 with what was written, 1 with why not."""
    if owners and os.geteuid() != 0:
        print("--chown needs root: it hands each directory to its container's user", file=sys.stderr)
        return 1
    try:
        issued = issue_certificates(
            directory, server_names=server_names or DEFAULT_SERVER_NAMES, days=days, renew=renew, owners=owners
        )
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"CA certificate: {issued.ca_certificate} (its key beside it: keep it offline)")
    for name, (certificate, key) in issued.certificates.items():
        uid = SERVER_UID if name == SERVER_DIR else CLIENT_UIDS[name]
        print(f"{name}: {certificate}, {key} (read by uid {uid})")
    if not owners:
        # Keys are 0600: each container reads its directory only once it owns it.
        by_uid: dict[int, list[str]] = {}
        for name, uid in {SERVER_DIR: SERVER_UID, **CLIENT_UIDS}.items():
            by_uid.setdefault(uid, []).append(str(directory / name))
        print("before `docker compose up`, give each directory to the user its container runs as:")
        for uid, paths in by_uid.items():
            print(f"  sudo chown -R {uid}:{uid} {' '.join(paths)}")
    return 0
