"""The client side of mutual TLS to the Temporal frontend, from settings (``ONETHING_TEMPORAL_TLS_*``).

The compose stack's server refuses a connection without a client certificate signed by its CA
(docker-compose.yml, docs/deployment.md "Certificates"); the local dev server speaks plaintext,
so with nothing set the client does too.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.service import TLSConfig

from settings import Settings


def _read(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        # Named here, not deep in the Rust core as an opaque connection failure.
        raise RuntimeError(f"{setting} {path} cannot be read: {error.strerror}") from error


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """The TLS of the client's connection: False (plaintext) when no TLS file is set."""
    ca = _read(settings.temporal_tls_ca_file, "ONETHING_TEMPORAL_TLS_CA_FILE")
    cert = _read(settings.temporal_tls_cert_file, "ONETHING_TEMPORAL_TLS_CERT_FILE")
    key = _read(settings.temporal_tls_key_file, "ONETHING_TEMPORAL_TLS_KEY_FILE")
    if ca is None and cert is None:
        return False
    return TLSConfig(
        server_root_ca_cert=ca,
        domain=settings.temporal_tls_server_name,
        client_cert=cert,
        client_private_key=key,
    )
