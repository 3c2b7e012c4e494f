"""Infrastructure settings, read from ``LETTERHEAD_*`` environment variables.

Everything a tenant edits lives in the database (DESIGN.md convention 6). There is no import-time singleton:
callers build a ``Settings`` (``load_settings()``) and pass it down, so tests can run many configurations in one
process.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from letterhead.errors import ConfigurationError
from letterhead.smtp.hosts import parse_ports

DEV_INBOX = "devinbox"


class PlatformTransport:
    """The platform's SMTP transport, parsed from ``LETTERHEAD_PLATFORM_SMTP_URL``.

    ``smtp://`` plain, ``smtp+starttls://`` STARTTLS, ``smtps://`` implicit TLS; ``user:pass@`` optional
    (percent-encoded). The default, ``devinbox``, is the built-in development inbox.
    """

    SCHEMES = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "ssl"}
    DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_dev_inbox = url == DEV_INBOX
        self.host = "127.0.0.1"
        self.port = 0
        self.security = "none"
        self.username: str | None = None
        self.password: str | None = None
        if self.is_dev_inbox:
            return
        parts = urlsplit(url)
        if parts.scheme not in self.SCHEMES or not parts.hostname:
            raise ConfigurationError(
                "LETTERHEAD_PLATFORM_SMTP_URL must look like smtp+starttls://user:pass@host:587, "
                "smtps://user:pass@host:465 or smtp://host:25 (or 'devinbox')."
            )
        self.security = self.SCHEMES[parts.scheme]
        self.host = parts.hostname
        self.port = parts.port or self.DEFAULT_PORTS[self.security]
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def __repr__(self) -> str:  # never show the password
        return f"PlatformTransport({self.security}://{self.host}:{self.port})"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LETTERHEAD_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path(".data")
    database_url: str | None = None
    platform_smtp_url: str = DEV_INBOX
    platform_name: str = "Letterhead"
    platform_from: str = "notifications@letterhead.localhost"
    #: Display-name format of the default sender. ``{tenant}`` and ``{platform}`` are substituted.
    platform_sender_name: str = "{tenant} via {platform}"
    public_url: str = "http://127.0.0.1:8025"
    host: str = "127.0.0.1"
    port: int = 8025
    secret_key: SecretStr | None = None
    #: Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
    encryption_keys: SecretStr | None = None
    dev_inbox_port: int = 0  # 0: any free port on loopback
    #: Comma-separated addresses or networks (IPv4 and IPv6) of reverse proxies whose Forwarded /
    #: X-Forwarded-For / X-Real-IP / X-Forwarded-Proto headers are believed; empty: none (clientaddr.py).
    trusted_proxies: str = ""
    dns_nameservers: str | None = None
    allow_private_smtp_hosts: bool = False
    #: Ports a tenant's SMTP settings may use (comma-separated, or ``*`` for any): a test is a connection Letterhead
    #: makes on the tenant's behalf, and should not probe arbitrary services.
    smtp_allowed_ports: str = "25,465,587,2525"
    max_payload_bytes: int = 2_000_000
    max_recipients: int = 50
    message_lifetime_seconds: int = 3 * 24 * 3600
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    #: How long a worker's claim on a message lasts unless renewed: a live worker renews it every third of this
    #: for the messages in its hands, so this is how long a killed worker's mail waits before another worker
    #: retries it (docs/reliability.md).
    lease_seconds: int = Field(default=30, ge=1)
    #: SQLite only: bytes of the database file read through a memory map (PRAGMA mmap_size; 0: off). With
    #: several processes on one file every write by one empties the others' page caches, and each page read
    #: back is a pread() and a copy; mapped pages are shared and cost neither (measured: ~10% less worker CPU
    #: per message with 2 workers, RSS with 1,000,000 queued unchanged). Only pages read count towards RSS.
    sqlite_mmap_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    #: SQLite only: pages written to the write-ahead log before a commit copies them back into the database file
    #: (PRAGMA wal_autocheckpoint; SQLite's default is 1,000). A message's row and index pages are written twice
    #: (leased, then its result) and the hot index pages by every batch: a larger log copies each of them back
    #: once per checkpoint instead of several times (measured: ~5% more msgs/s with 2 workers at 10,000, the
    #: log file then ~40 MB on disk).
    sqlite_wal_autocheckpoint: int = Field(default=10_000, ge=1)
    #: Messages a worker leases at once. 500 measured ~10% faster than 200 end to end (fewer claims, commits
    #: and per-batch route reads per message); larger batches only hold more mail behind a slow route.
    worker_batch_size: int = 500
    #: Batches a worker process has in flight at once ("pipelines": one claims or records while another renders
    #: or waits for SMTP replies). None: 2 on SQLite (one writer at a time anyway), 3 on PostgreSQL (measured on
    #: 2 cores with the server local: 3 beat 4 and 8, which only add claims competing for the same CPU; raise
    #: it when the database is across a network and round trips dominate).
    worker_concurrency: int | None = Field(default=None, ge=1, le=64)
    worker_poll_seconds: float = 0.5
    smtp_timeout_seconds: float = 30.0
    #: API server processes of ``letterhead serve`` sharing its port (SO_REUSEPORT). The first also runs the
    #: worker and the development inbox; the others only answer requests. 1 with the development inbox.
    api_workers: int = Field(default=1, ge=1, le=64)
    #: JSON object overriding or adding plans, e.g. ``{"pro": {"features": ["branded", "smtp", "domains"]}}``.
    plans: dict[str, Any] = Field(default_factory=dict)
    #: What tenants put in their SPF record as ``include:<this>`` for custom sending domains; unset: ``_spf.``
    #: followed by the domain of ``platform_from`` (publish the platform's sending IPs there).
    spf_include: str | None = None
    #: DKIM selectors of sending domains are this prefix plus the UTC date of creation (``lh20261127``).
    dkim_selector_prefix: str = "lh"

    @field_validator("plans", mode="before")
    @classmethod
    def _parse_plans(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        from letterhead.clientaddr import parse_networks

        try:
            parse_networks(value)
        except ConfigurationError as exc:
            raise ValueError(exc.detail) from None
        return value

    @field_validator("smtp_allowed_ports")
    @classmethod
    def _check_ports(cls, value: str) -> str:
        parse_ports(value)  # ValueError names the bad entry
        return value

    @property
    def allowed_smtp_ports(self) -> frozenset[int] | None:
        """The ports of ``smtp_allowed_ports``; None: any."""
        return parse_ports(self.smtp_allowed_ports)

    @cached_property
    def platform_transport(self) -> PlatformTransport:
        return PlatformTransport(self.platform_smtp_url)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'letterhead.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def secret_bytes(self) -> bytes:
        assert self.secret_key is not None, "ensure_keys() must run first"
        return self.secret_key.get_secret_value().encode()

    def worker_env(self, **extra: str) -> dict[str, str]:
        """LETTERHEAD_* variables that make another process (a `letterhead worker`) share this configuration:
        the same data dir, database and keys."""
        assert self.secret_key and self.encryption_keys, "ensure_keys() must run first"
        env = {
            "LETTERHEAD_ENV": self.env,
            "LETTERHEAD_DATA_DIR": str(self.data_dir),
            "LETTERHEAD_DATABASE_URL": self.effective_database_url,
            "LETTERHEAD_SECRET_KEY": self.secret_key.get_secret_value(),
            "LETTERHEAD_ENCRYPTION_KEYS": self.encryption_keys.get_secret_value(),
        }
        env.update(extra)
        return env

    def fernet_keys(self) -> list[str]:
        assert self.encryption_keys is not None, "ensure_keys() must run first"
        return [k.strip() for k in self.encryption_keys.get_secret_value().split(",") if k.strip()]


def ensure_keys(settings: Settings) -> None:
    """Fill in the secret and encryption keys.

    In production both must be given explicitly (a generated key that lives only on one machine would make
    the data unreadable on the next). In development they are generated once into the data dir, so that a
    newcomer needs no configuration and restarts keep working.
    """
    if settings.secret_key and settings.encryption_keys:
        return
    if settings.env == "production":
        raise ConfigurationError(
            "LETTERHEAD_ENV=production needs LETTERHEAD_SECRET_KEY and LETTERHEAD_ENCRYPTION_KEYS. "
            "Generate them with: letterhead keys generate"
        )
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_file(settings)
    if path.exists():
        stored = read_keys_file(path)
    else:
        stored = generate_keys()
        if not write_keys_file(path, stored, replace=False):
            stored = read_keys_file(path)  # another process started at the same moment and wrote it first
    if not settings.secret_key:
        settings.secret_key = SecretStr(stored["secret_key"])
    if not settings.encryption_keys:
        settings.encryption_keys = SecretStr(stored["encryption_key"])


def require_platform_transport(settings: Settings) -> None:
    """Refuse to run a production service on the development inbox: it captures every platform email
    (verification and set-password links included) and would show it at /dev/inbox."""
    if settings.env == "production" and settings.platform_transport.is_dev_inbox:
        raise ConfigurationError(
            "LETTERHEAD_ENV=production needs LETTERHEAD_PLATFORM_SMTP_URL (the platform's own SMTP server, e.g. "
            "smtp+starttls://user:pass@smtp.example.com:587): the development inbox is for development only."
        )


def keys_file(settings: Settings) -> Path:
    """Where development keeps its generated keys. ``encryption_key`` may hold several, comma-separated, newest
    first, as ``LETTERHEAD_ENCRYPTION_KEYS`` does (``letterhead keys rotate --new-key`` prepends one)."""
    return settings.data_dir / "keys.json"


def read_keys_file(path: Path) -> dict[str, str]:
    stored: dict[str, str] = json.loads(path.read_text())
    return stored


def write_keys_file(path: Path, stored: dict[str, str], *, replace: bool = True) -> bool:
    """Write ``path`` at once (never half a file), owner-only whatever the umask: these keys decrypt every stored
    secret. Without ``replace`` an existing file is kept and the answer is False."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)


def generate_keys() -> dict[str, str]:
    return {
        "secret_key": secrets.token_urlsafe(48),
        "encryption_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }


def load_settings(**overrides: Any) -> Settings:
    settings = Settings(**overrides)
    ensure_keys(settings)
    return settings
