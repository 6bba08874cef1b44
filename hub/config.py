"""Settings of a running hub: where it stores, which routing table and counterparts it uses, where its keys are.

Every setting has an embedded default (SQLite under ``var/``, the development PKI, the files in ``config/``) so that
``make run`` needs nothing else; each can be overridden by an environment variable (``HUB_…``) or, for the commands
that take them, by a command-line option.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from pydantic import BaseModel, Field

from hub.errors import ConfigurationError
from hub.standards import PROJECT_ROOT

DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'hub.db'}"


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret given by the environment: the content of the file ``<name>_FILE`` names (a mounted secret; one
    trailing line break dropped), else ``<name>`` itself, else None. ``ValueError`` naming the variable (never the
    secret) when both are set or the file cannot be read."""
    environ = os.environ if environ is None else environ
    path = environ.get(f"{name}_FILE")
    if not path:
        return environ.get(name)
    if environ.get(name):
        raise ValueError(f"{name} and {name}_FILE are both set: give the secret one way")
    try:
        content = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}_FILE: cannot read {path} ({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    content = content.removesuffix("\n").removesuffix("\r")
    if not content.strip():
        raise ValueError(f"{name}_FILE: {path} is empty")
    return content


def _body_limits(value: str | None) -> dict[str, str] | None:
    """``/v1/webhooks=65536,/v1/documents=5242880`` as a mapping (the numbers are checked by the model)."""
    if not value:
        return None
    limits = {}
    for item in value.split(","):
        prefix, _, size = item.strip().partition("=")
        if not prefix.startswith("/") or not size:
            raise ConfigurationError(f"HUB_BODY_LIMITS: {item.strip()!r} is not PATH_PREFIX=BYTES (e.g. /v1/webhooks=65536)")
        limits[prefix] = size
    return limits


#: A retention longer than a century is a typing error, not a policy.
MAX_RETENTION_DAYS = 36_500


def _retention_days(value: str | None) -> int | None:
    """``HUB_RETENTION_DAYS`` as a whole number of days from 0 (keep everything) to a century."""
    if value is None or not value.strip():
        return None
    try:
        days = int(value.strip())
    except ValueError:
        raise ConfigurationError(f"HUB_RETENTION_DAYS: {value!r} is not a whole number of days (e.g. 365; 0 keeps everything)") from None
    if not 0 <= days <= MAX_RETENTION_DAYS:
        raise ConfigurationError(f"HUB_RETENTION_DAYS: {days} is out of range: 0 (keep everything) to {MAX_RETENTION_DAYS} days")
    return days


def _archive_dir(value: str | None) -> Path | None:
    """``HUB_ARCHIVE_DIR``: a directory, or a path where one can be made (the first prune makes it)."""
    if value is None or not value.strip():
        return None
    path = Path(value.strip())
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"HUB_ARCHIVE_DIR: {path} exists and is not a directory")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise ConfigurationError(f"HUB_ARCHIVE_DIR: the directory {path} is not writable by this process")
    return path


class Settings(BaseModel):
    """What a hub process needs to start: database, routing table, counterparts, key material, public address."""

    database_url: str = DEFAULT_DATABASE_URL
    routes_file: Path = PROJECT_ROOT / "config" / "routes.yaml"
    connectors_file: Path = PROJECT_ROOT / "config" / "connectors.yaml"
    certs_dir: Path = PROJECT_ROOT / "certs" / "dev"
    signers_file: Path = Field(default=PROJECT_ROOT / "config" / "signers.yaml", description="which certificate may sign for which issuing authority (absent: each for its own country)")
    public_url: str = Field(default="http://127.0.0.1:8000", description="where counterparts push acknowledgements")
    max_body_bytes: int = Field(default=21 * 1024 * 1024, gt=0, description="largest document body the API reads (HUB_MAX_BODY_BYTES)")
    body_limits: dict[str, int] = Field(default_factory=dict, description="largest body per route, by path prefix (HUB_BODY_LIMITS='/v1/webhooks=65536,…')")
    webhook_private_targets: bool = Field(default=False, description="whether webhooks may target loopback and private addresses (HUB_WEBHOOK_PRIVATE_TARGETS=1)")
    worker_concurrency: int = 4
    poll_interval: float = 0.2
    lease_seconds: float = 60.0
    retention_days: int = Field(default=0, ge=0, le=MAX_RETENTION_DAYS, description="history kept whole for this many days, then pruned by the worker (HUB_RETENTION_DAYS; 0: kept for ever)")
    archive_dir: Path | None = Field(default=None, description="where pruned history is archived (HUB_ARCHIVE_DIR; unset: pruned without an archive)")

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Defaults, then ``HUB_DATABASE_URL`` (or the file ``HUB_DATABASE_URL_FILE`` names), ``HUB_ROUTES``, ``HUB_CONNECTORS``, ``HUB_CERTS_DIR``, ``HUB_SIGNERS``,
        ``HUB_PUBLIC_URL``, ``HUB_WORKER_CONCURRENCY``, ``HUB_LEASE_SECONDS``, ``HUB_RETENTION_DAYS``, ``HUB_ARCHIVE_DIR``, then explicit ``overrides`` (those not None)."""
        env = {
            "database_url": secret_from_env("HUB_DATABASE_URL"),
            "routes_file": os.environ.get("HUB_ROUTES"),
            "connectors_file": os.environ.get("HUB_CONNECTORS"),
            "certs_dir": os.environ.get("HUB_CERTS_DIR"),
            "signers_file": os.environ.get("HUB_SIGNERS"),
            "public_url": os.environ.get("HUB_PUBLIC_URL"),
            "worker_concurrency": os.environ.get("HUB_WORKER_CONCURRENCY"),
            "max_body_bytes": os.environ.get("HUB_MAX_BODY_BYTES"),
            "body_limits": _body_limits(os.environ.get("HUB_BODY_LIMITS")),
            "webhook_private_targets": os.environ.get("HUB_WEBHOOK_PRIVATE_TARGETS"),
            "lease_seconds": os.environ.get("HUB_LEASE_SECONDS"),
            "retention_days": _retention_days(os.environ.get("HUB_RETENTION_DAYS")),
            "archive_dir": _archive_dir(os.environ.get("HUB_ARCHIVE_DIR")),
        }
        given = {k: v for k, v in overrides.items() if v is not None}
        values = {k: v for k, v in {**env, **given}.items() if v is not None}
        if "webhook_private_targets" not in values and values.get("database_url", DEFAULT_DATABASE_URL) == DEFAULT_DATABASE_URL:
            values["webhook_private_targets"] = True  # the development hub (make run): receivers on this machine are fine
        return cls(**values)
