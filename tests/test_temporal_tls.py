"""Mutual TLS to Temporal: the certificates `onething certs issue` writes, the settings that name
them, and the client connect_temporal makes from those settings.

The local dev server (`temporal server start-dev`) has no TLS options, so the handshake is tested
through a TLS terminator in front of it that, like the compose stack's frontend
(TEMPORAL_TLS_REQUIRE_CLIENT_AUTH), serves only clients whose certificate the CA signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

import cli
from infra.temporal import connect_temporal
from infra.temporal_tls import temporal_tls
from ops.certificates import CA_DIR, CLIENT_UIDS, SERVER_DIR, issue_certificates
from settings import Settings, installed_binary

SECRET = "a-test-secret-of-at-least-thirty-two-characters"
SERVER_NAME = "temporal"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    assert cli.main(["certs", "issue", "--dir", str(directory)]) == 0
    return directory


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def tls_settings(certs: Path, client: str = "worker", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "secret_key": SECRET,
        "temporal_tls_ca_file": certs / client / "ca.pem",
        "temporal_tls_cert_file": certs / client / "client.pem",
        "temporal_tls_key_file": certs / client / "client-key.pem",
        "temporal_tls_server_name": SERVER_NAME,
    }
    return Settings(**(values | overrides))


# -- the certificates ------------------------------------------------------------------------


def test_every_certificate_is_signed_by_the_ca_for_its_use(certs: Path) -> None:
    ca = load(certs / CA_DIR / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    store = Store([ca])
    now = datetime.datetime.now(datetime.UTC)

    server = load(certs / SERVER_DIR / "server.pem")
    server.verify_directly_issued_by(ca)
    # As a TLS client checks it (RFC 5280 path building, name and key usage): the compose
    # services dial `temporal`, operators' CLI on the host 127.0.0.1.
    server_verifier = PolicyBuilder().store(store).time(now)
    server_verifier.build_server_verifier(x509.DNSName(SERVER_NAME)).verify(server, [])
    server_verifier.build_server_verifier(x509.IPAddress(ipaddress.ip_address("127.0.0.1"))).verify(server, [])
    with pytest.raises(VerificationError):
        server_verifier.build_server_verifier(x509.DNSName("elsewhere.example")).verify(server, [])

    client_verifier = PolicyBuilder().store(store).time(now).build_client_verifier()
    for client in CLIENT_UIDS:
        certificate = load(certs / client / "client.pem")
        client_verifier.verify(certificate, [])
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH], f"{client} is a client only"
        assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == client
        assert (certs / client / "ca.pem").read_bytes() == (certs / CA_DIR / "ca.pem").read_bytes()
        # The key beside each certificate is the one it certifies.
        key = serialization.load_pem_private_key((certs / client / "client-key.pem").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key() == certificate.public_key()
    # The server's own services call the frontend and each other with its certificate.
    client_verifier.verify(server, [])


def test_keys_are_readable_by_their_owner_only(certs: Path) -> None:
    keys = [certs / CA_DIR / "ca-key.pem", certs / SERVER_DIR / "server-key.pem"]
    keys += [certs / client / "client-key.pem" for client in CLIENT_UIDS]
    for key in keys:
        assert key.stat().st_mode & 0o777 == 0o600, key
    # The CA's key is beside no certificate a container mounts (tests/test_compose.py: the mounts).
    for directory in (SERVER_DIR, *CLIENT_UIDS):
        assert sorted(path.name for path in (certs / directory).iterdir()) in (
            ["ca.pem", "client-key.pem", "client.pem"],
            ["ca.pem", "server-key.pem", "server.pem"],
        ), directory


def test_renewing_keeps_the_ca_and_replaces_every_key(tmp_path: Path) -> None:
    issue_certificates(tmp_path)
    ca_before = (tmp_path / CA_DIR / "ca.pem").read_bytes()
    key_before = (tmp_path / "api" / "client-key.pem").read_bytes()
    with pytest.raises(FileExistsError):
        issue_certificates(tmp_path)  # an existing CA is never overwritten by accident
    issue_certificates(tmp_path, renew=True, days=30)
    assert (tmp_path / CA_DIR / "ca.pem").read_bytes() == ca_before
    assert (tmp_path / "api" / "client-key.pem").read_bytes() != key_before
    renewed = load(tmp_path / "api" / "client.pem")
    renewed.verify_directly_issued_by(load(tmp_path / CA_DIR / "ca.pem"))
    lifetime = renewed.not_valid_after_utc - renewed.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=30, minutes=5)
    with pytest.raises(FileNotFoundError):
        issue_certificates(tmp_path / "empty", renew=True)


# -- the settings ----------------------------------------------------------------------------


def test_a_certificate_without_its_key_is_refused(certs: Path) -> None:
    for env in ("dev", "test", "prod"):
        with pytest.raises(ValidationError, match="set together"):
            tls_settings(certs, env=env, temporal_tls_key_file=None)
        with pytest.raises(ValidationError, match="set together"):
            tls_settings(certs, env=env, temporal_tls_cert_file=None)
    with pytest.raises(ValidationError, match="SERVER_NAME needs"):
        Settings(env="test", secret_key=SECRET, temporal_tls_server_name=SERVER_NAME)


def test_production_refuses_mutual_tls_half_configured(certs: Path) -> None:
    with pytest.raises(ValidationError, match=r"half-configured in production: set ONETHING_TEMPORAL_TLS_CERT_FILE"):
        tls_settings(certs, env="prod", temporal_tls_cert_file=None, temporal_tls_key_file=None)
    with pytest.raises(ValidationError, match=r"half-configured in production: set ONETHING_TEMPORAL_TLS_CA_FILE"):
        tls_settings(certs, env="prod", temporal_tls_ca_file=None)
    # Outside production a CA alone is server-verified TLS without a client certificate.
    assert tls_settings(certs, temporal_tls_cert_file=None, temporal_tls_key_file=None).temporal_tls_cert_file is None


def test_the_client_tls_is_built_from_the_settings_files(certs: Path) -> None:
    config = temporal_tls(tls_settings(certs, client="api"))
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == (certs / "api" / "ca.pem").read_bytes()
    assert config.client_cert == (certs / "api" / "client.pem").read_bytes()
    assert config.client_private_key == (certs / "api" / "client-key.pem").read_bytes()
    assert config.domain == SERVER_NAME
    assert temporal_tls(Settings(env="test", secret_key=SECRET)) is False
    with pytest.raises(RuntimeError, match=r"ONETHING_TEMPORAL_TLS_KEY_FILE .* cannot be read"):
        temporal_tls(tls_settings(certs, temporal_tls_key_file=certs / "missing.pem"))


async def test_connect_temporal_hands_the_tls_to_the_client(certs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    async def connect(target: str, **options: Any) -> None:
        calls.append({"target": target, **options})

    monkeypatch.setattr(Client, "connect", connect)
    await connect_temporal(tls_settings(certs, temporal_address="temporal:7233"), worker=True)
    await connect_temporal(Settings(env="test", secret_key=SECRET))
    assert calls[0]["target"] == "temporal:7233"
    assert calls[0]["tls"] == temporal_tls(tls_settings(certs))
    assert calls[1]["tls"] is False


# -- a real handshake ------------------------------------------------------------------------


@contextlib.contextmanager
def _server_context(certs: Path) -> Iterator[ssl.SSLContext]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs / SERVER_DIR / "ca.pem")
    context.load_cert_chain(certs / SERVER_DIR / "server.pem", certs / SERVER_DIR / "server-key.pem")
    context.verify_mode = ssl.CERT_REQUIRED  # TEMPORAL_TLS_REQUIRE_CLIENT_AUTH
    context.set_alpn_protocols(["h2"])  # gRPC
    yield context


@contextlib.asynccontextmanager
async def mutual_tls_frontend(certs: Path, upstream: str) -> AsyncIterator[str]:
    """A TLS terminator that asks for a client certificate, then passes the bytes to ``upstream``."""
    host, _, port = upstream.rpartition(":")
    connections: set[asyncio.Task[Any]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        for writer in (client_writer, server_writer):
            writer.close()

    with _server_context(certs) as context:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        address = server.sockets[0].getsockname()
        try:
            yield f"{address[0]}:{address[1]}"
        finally:
            server.close()
            for connection in connections:
                connection.cancel()
            await asyncio.gather(*connections, return_exceptions=True)


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[str]:
    async with await WorkflowEnvironment.start_local(dev_server_existing_path=installed_binary("temporal")) as env:
        yield env.client.service_client.config.target_host


async def test_the_issued_client_certificate_connects_and_none_is_refused(certs: Path, dev_server: str) -> None:
    async with mutual_tls_frontend(certs, dev_server) as frontend:
        for client in ("worker", "api"):
            connected = await connect_temporal(tls_settings(certs, client=client, temporal_address=frontend))
            assert await connected.service_client.check_health()
        # The CA alone (server verified, no client certificate): the frontend refuses.
        without_certificate = tls_settings(
            certs, temporal_address=frontend, temporal_tls_cert_file=None, temporal_tls_key_file=None
        )
        with pytest.raises(RuntimeError, match="Failed client connect"):
            await connect_temporal(without_certificate)
        # Plaintext to a TLS port: refused as well.
        with pytest.raises(RuntimeError, match="Failed client connect"):
            await connect_temporal(Settings(env="test", secret_key=SECRET, temporal_address=frontend))
        # A server whose certificate does not name what the client expects: the client refuses.
        with pytest.raises(RuntimeError, match="NotValidForName"):
            await connect_temporal(tls_settings(certs, temporal_address=frontend, temporal_tls_server_name="other"))


async def test_a_certificate_from_another_ca_is_refused(certs: Path, dev_server: str, tmp_path: Path) -> None:
    issue_certificates(tmp_path)  # a CA of its own
    async with mutual_tls_frontend(certs, dev_server) as frontend:
        stranger = tls_settings(
            certs,
            temporal_address=frontend,
            temporal_tls_cert_file=tmp_path / "worker" / "client.pem",
            temporal_tls_key_file=tmp_path / "worker" / "client-key.pem",
        )
        with pytest.raises(RuntimeError, match="Failed client connect"):
            await connect_temporal(stranger)
