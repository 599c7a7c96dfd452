"""OneThing's settings: one class, read from environment variables (prefix ``ONETHING_``)."""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent
DEV_SECRET = "onething-dev-secret-change-me-0000000000"
# Built-in payload encryption key (base64 of 32 bytes) for dev and test only.
DEV_PAYLOAD_KEY_ID = "dev"
DEV_PAYLOAD_KEY = "b25ldGhpbmctZGV2LXBheWxvYWQta2V5LTAwMDAwMDA="
PAYLOAD_KEY_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONETHING_", extra="ignore", populate_by_name=True)

    env: Literal["dev", "test", "prod"] = "prod"
    secret_key: str = DEV_SECRET
    token_ttl_minutes: int = Field(default=480, ge=1)
    # Each API process remembers whether a token's session is live (services/sessions.py) for
    # this long, so a logout or a revoke holds in every process within these seconds; 0 reads
    # the database on every request.
    session_check_seconds: float = Field(default=2.0, ge=0, le=60)
    # Login rate limits (api/login_limits.py), counted in the read-model database so they
    # hold across API processes: failed logins per account, and attempts per client address.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_account_window_seconds: int = Field(default=15 * 60, ge=1)
    login_max_attempts_per_address: int = Field(default=20, ge=1)
    login_address_window_seconds: int = Field(default=60, ge=1)

    database_url: str = Field(
        default=f"sqlite:///{ROOT / 'var' / 'onething.db'}",
        validation_alias=AliasChoices("DATABASE_URL", "ONETHING_DATABASE_URL"),
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "onething-cases"
    # Mutual TLS to the Temporal frontend (infra/temporal_tls.py; `onething certs issue` makes the
    # files): the CA that signed the server's certificate, this process's client certificate and
    # key (PEM paths), and the name the server's certificate is checked against (default: the
    # host of temporal_address). All unset: plaintext, as the local dev server speaks.
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    temporal_tls_server_name: str | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Proxies whose X-Forwarded-For the API believes (uvicorn's forwarded_allow_ips): behind a
    # load balancer, its address, so per-address login limits see the client, not the proxy.
    forwarded_allow_ips: str = "127.0.0.1"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # The inbox change feed (GET /tasks/events): each API process reads the departments'
    # inbox versions this often, in one query however many streams are open.
    inbox_watch_interval_seconds: float = Field(default=0.5, gt=0, le=60)

    calendar_file: Path | None = None  # holiday notices beyond the calendar package's years
    # Tests, demos and benchmarks on a real server: each working day lasts this many
    # seconds, so SLA timers fall due during the run. Refused in production.
    working_day_seconds: float | None = Field(default=None, gt=0)
    # Cases live for days, so a worker keeps only this many in its sticky cache; the rest
    # are replayed from history when they next move. Bounds the worker's memory (bench/).
    worker_max_cached_workflows: int = Field(default=500, ge=0)
    # Threads for the worker's blocking activities (read-model writes, archive, data sharing).
    worker_activity_threads: int = Field(default=16, ge=1)
    # Workflow tasks the worker runs at once. They are CPU-bound Python under one GIL: a
    # restarted worker replaying dozens of cases at once made each task wait on all the
    # others, past the 10 s workflow-task timeout, so the cases' Updates were refused until
    # their tasks stopped failing. A few at a time each finishes quickly; the rest wait on
    # the server's task queue, where waiting costs nothing.
    worker_max_concurrent_workflow_tasks: int = Field(default=4, ge=1, le=200)
    data_sharing_fixture: Path = ROOT / "activities" / "fixtures" / "data_sharing.json"
    # The data-sharing platform's base URL (activities/data_sharing.py HttpDataSharingGateway);
    # unset, the fixture file above answers. A request slower than the timeout counts as
    # a failure, so the activity retries it (well inside its 30 s start-to-close timeout).
    data_sharing_url: str | None = None
    data_sharing_timeout_seconds: float = Field(default=5.0, gt=0, le=20)
    # The SMS gateway notices to applicants are POSTed to as {"phone", "text"} (infra/sms.py).
    # Unset in dev: the API's own sink, http://127.0.0.1:<api_port>/dev/sms. Unset elsewhere:
    # nothing is sent and the outbox keeps its rows pending until a gateway is configured.
    sms_gateway_url: str | None = Field(default=None, pattern=r"^https?://")
    # Applicants sign in through an OpenID Connect provider (infra/oidc.py) when an issuer is set;
    # the verified ID number, name and phone come from these claims of its ID token.
    oidc_issuer: str | None = Field(default=None, pattern=r"^https?://")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_id_number_claim: str = "id_number"
    oidc_name_claim: str = "name"
    oidc_phone_claim: str = "phone_number"
    # Where citizens reach the console (the links in SMS); unset in dev: this API's own address.
    public_base_url: str | None = Field(default=None, pattern=r"^https?://")
    sms_timeout_seconds: float = Field(default=5.0, gt=0, le=20)
    # Fault injection for the fault-injection tests (services/faults.py): the API process
    # exits at this point of POST /cases. Refused in production.
    fault_crash_at: Literal["before_case_start", "after_case_start"] | None = None
    supervision_phone: str = "12345"
    # The deployment's administrative division (GB/T 2260): the middle of readable case
    # numbers (2026-330000-000123) and a company's registration division.
    division_code: str = Field(default="330000", pattern=r"^\d{6}$")
    archive_dir: Path = ROOT / "var" / "archive"  # electronic archive packages (§7.1.3)
    # Ed25519 seed (base64 of 32 bytes) that signs archive manifests (infra/signing.py); unset,
    # one is derived from secret_key.
    signing_key: str | None = Field(default=None, repr=False)
    # Public halves (base64 of 32 bytes) of signing keys replaced by a rotation, as JSON
    # (ONETHING_SIGNING_RETIRED_PUBLIC_KEYS='["..."]'): archives they signed still verify.
    signing_retired_public_keys: list[str] = Field(default_factory=list)
    # Uploaded materials, encrypted, one file per content hash (infra/file_store.py).
    file_store_dir: Path = ROOT / "var" / "files"
    # With a bucket set, the files go there instead, sealed the same way: an S3-compatible
    # service (AWS S3, MinIO, a cloud's object storage) at endpoint_url (unset: AWS's own),
    # as objects <prefix><sha256>. Keys unset: boto3's own chain (AWS_* variables, the
    # instance's role). "path" addressing (host/bucket/key) suits MinIO; some services want "virtual".
    file_store_s3_bucket: str | None = None
    file_store_s3_prefix: str = ""
    file_store_s3_endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    file_store_s3_region: str | None = None
    file_store_s3_access_key_id: str | None = None
    file_store_s3_secret_access_key: SecretStr | None = None
    file_store_s3_addressing_style: Literal["path", "virtual", "auto"] = "path"
    # The largest material a person may upload (a scan of a few pages, a phone photo).
    max_upload_bytes: int = Field(default=10 * 1_048_576, ge=1024)

    # Temporal payload encryption: key id -> base64 of a 32-byte AES key, from env as
    # JSON (ONETHING_PAYLOAD_KEYS='{"2026-11":"..."}'). New payloads use payload_key_id;
    # older ids stay listed so what they sealed still decrypts.
    payload_keys: dict[str, str] = Field(default_factory=lambda: {DEV_PAYLOAD_KEY_ID: DEV_PAYLOAD_KEY})
    payload_key_id: str = DEV_PAYLOAD_KEY_ID
    # Actor seals (infra/actor_seal.py): key id -> base64 of a 32-byte HMAC key, from env as
    # JSON (ONETHING_ACTOR_SEAL_KEYS='{"2026-12":"..."}'). The API seals each Update's actor
    # with actor_seal_key_id; workers accept every listed key, so a key rotates by listing
    # the new one everywhere, then switching the id, then dropping the old one. Unset in dev
    # and test: one key derived from secret_key. A seal older than max_age is refused.
    actor_seal_keys: dict[str, str] = Field(default_factory=dict, repr=False)
    actor_seal_key_id: str | None = None
    actor_seal_max_age_seconds: int = Field(default=300, ge=5, le=3600)
    # Origins allowed to call the codec server (/codec) from a browser: the Temporal UI.
    codec_cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:8233", "http://127.0.0.1:8233"])

    # Observability (观测). Logs: "text" for people, "json" (one object a line) for a log
    # collector; both masked (domain/redaction.py).
    log_format: Literal["text", "json"] = "text"
    # GET /metrics on the API (Prometheus); with a token set it needs `Authorization: Bearer <token>`.
    metrics_token: SecretStr | None = None
    # The business series are counted in the read model at scrape time and kept this long,
    # so however often (and by however many scrapers) /metrics is read, the database is not.
    metrics_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    # The worker's own series and the Temporal SDK's, each on its own HTTP port (0 = off),
    # bound to metrics_host.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    temporal_metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318; spans go to /v1/traces).
    # Unset: no tracing at all.
    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _no_default_secret_outside_dev(self) -> Settings:
        if self.env != "dev" and (self.secret_key == DEV_SECRET or len(self.secret_key) < 32):
            raise ValueError("ONETHING_SECRET_KEY must be set to a secret of at least 32 characters outside dev")
        return self

    @model_validator(mode="after")
    def _no_accelerated_clock_in_production(self) -> Settings:
        if self.env == "prod" and self.working_day_seconds is not None:
            raise ValueError(
                "ONETHING_WORKING_DAY_SECONDS is for tests and demos; production runs the statutory calendar"
            )
        return self

    @model_validator(mode="after")
    def _complete_temporal_tls(self) -> Settings:
        # A certificate without its key (or a CA without a client certificate in production)
        # would connect in plaintext or be refused by the frontend only at run time.
        files = {
            "ONETHING_TEMPORAL_TLS_CA_FILE": self.temporal_tls_ca_file,
            "ONETHING_TEMPORAL_TLS_CERT_FILE": self.temporal_tls_cert_file,
            "ONETHING_TEMPORAL_TLS_KEY_FILE": self.temporal_tls_key_file,
        }
        given = [name for name, value in files.items() if value is not None]
        if (self.temporal_tls_cert_file is None) != (self.temporal_tls_key_file is None):
            raise ValueError(
                "ONETHING_TEMPORAL_TLS_CERT_FILE and ONETHING_TEMPORAL_TLS_KEY_FILE are set together or not at all"
            )
        if self.temporal_tls_server_name is not None and not given:
            raise ValueError("ONETHING_TEMPORAL_TLS_SERVER_NAME needs the TLS files (ONETHING_TEMPORAL_TLS_*_FILE)")
        if self.env == "prod" and given and len(given) != len(files):
            missing = ", ".join(name for name in files if name not in given)
            raise ValueError(f"Temporal mutual TLS is half-configured in production: set {missing} too")
        return self

    @model_validator(mode="after")
    def _distinct_metrics_ports(self) -> Settings:
        if self.worker_metrics_port and self.worker_metrics_port == self.temporal_metrics_port:
            raise ValueError("ONETHING_WORKER_METRICS_PORT and ONETHING_TEMPORAL_METRICS_PORT must differ")
        return self

    @model_validator(mode="after")
    def _usable_signing_key(self) -> Settings:
        if self.signing_key is not None:
            try:
                seed = base64.b64decode(self.signing_key, validate=True)
            except ValueError:
                seed = b""
            if len(seed) != 32:
                raise ValueError("ONETHING_SIGNING_KEY must be base64 of a 32-byte Ed25519 seed")
        for public in self.signing_retired_public_keys:
            try:
                raw = base64.b64decode(public, validate=True)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError("ONETHING_SIGNING_RETIRED_PUBLIC_KEYS must list base64 of 32-byte Ed25519 public keys")
        return self

    @model_validator(mode="after")
    def _dev_sms_to_the_dev_sink(self) -> Settings:
        if self.env == "dev" and self.sms_gateway_url is None:
            self.sms_gateway_url = f"http://127.0.0.1:{self.api_port}/dev/sms"
        if self.env == "dev" and self.public_base_url is None:
            self.public_base_url = f"http://127.0.0.1:{self.api_port}"
        return self

    @model_validator(mode="after")
    def _no_fault_injection_in_production(self) -> Settings:
        if self.env == "prod" and self.fault_crash_at is not None:
            raise ValueError("ONETHING_FAULT_CRASH_AT is for fault-injection tests; never set it in production")
        return self

    @model_validator(mode="after")
    def _usable_payload_keys(self) -> Settings:
        keys = self.payload_key_bytes()
        if self.payload_key_id not in keys:
            raise ValueError(f"ONETHING_PAYLOAD_KEY_ID {self.payload_key_id!r} is not in ONETHING_PAYLOAD_KEYS")
        dev_key = self._decode_payload_key(DEV_PAYLOAD_KEY_ID, DEV_PAYLOAD_KEY)
        if self.env not in ("dev", "test") and dev_key in keys.values():
            raise ValueError("ONETHING_PAYLOAD_KEYS must not contain the built-in dev key outside dev and test")
        return self

    @model_validator(mode="after")
    def _usable_actor_seal_keys(self) -> Settings:
        if not self.actor_seal_keys:
            if self.env == "prod":
                raise ValueError("ONETHING_ACTOR_SEAL_KEYS must be set in production (docs/deployment.md)")
            return self
        self.actor_seal_key_bytes()  # each one is base64 of 32 bytes
        if self.actor_seal_key_id not in self.actor_seal_keys:
            raise ValueError(
                f"ONETHING_ACTOR_SEAL_KEY_ID {self.actor_seal_key_id!r} is not in ONETHING_ACTOR_SEAL_KEYS"
            )
        return self

    def payload_key_bytes(self) -> dict[str, bytes]:
        """The payload keys as raw AES-256 keys; a key that is not base64 of 32 bytes is named."""
        return {
            key_id: _decode_key("ONETHING_PAYLOAD_KEYS", key_id, encoded)
            for key_id, encoded in self.payload_keys.items()
        }

    def actor_seal_key_bytes(self) -> dict[str, bytes]:
        """The actor seal keys as raw HMAC keys; a key that is not base64 of 32 bytes is named."""
        return {
            key_id: _decode_key("ONETHING_ACTOR_SEAL_KEYS", key_id, encoded)
            for key_id, encoded in self.actor_seal_keys.items()
        }

    @staticmethod
    def _decode_payload_key(key_id: str, encoded: str) -> bytes:
        return _decode_key("ONETHING_PAYLOAD_KEYS", key_id, encoded)


def _decode_key(setting: str, key_id: str, encoded: str) -> bytes:
    """One key of a ``{key id: base64 of 32 bytes}`` setting, as raw bytes."""
    import binascii

    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{setting}[{key_id!r}] is not valid base64") from exc
    if len(key) != PAYLOAD_KEY_BYTES:
        raise ValueError(f"{setting}[{key_id!r}] must be {PAYLOAD_KEY_BYTES} bytes, got {len(key)}")
    return key


@cache
def get_settings() -> Settings:
    return Settings()


def installed_binary(name: str) -> str:
    """Path of a binary installed by pip beside this interpreter (temporal, temporal-test-server).

    pip puts them next to ``python`` in a virtual environment that may not be on PATH;
    nothing is ever downloaded at run time.
    """
    import os
    import shutil
    import sys

    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        # The production image has neither (it runs against the compose stack's Temporal server).
        raise RuntimeError(
            f"{name} is not installed: it comes with the `local` and `dev` extras, which `make run` and "
            "`make test` install (requirements/dev.txt); the production image leaves them out"
        )
    return found
