"""Who is e-mailed which alerts, and when a cause becomes an alert: ``config/alerts.yaml`` (or ``HUB_ALERTS``).

::

    thresholds:                     # all optional; these are the defaults
      error_rate: 0.5               # a counterpart fails when this share of its attempts failed…
      min_attempts: 5               # … out of at least this many…
      error_window_minutes: 60      # … over this window,
      stalled_after_minutes: 30     # or when it has had no success, and held a backlog, this long
      expiring_within_days: 7       # a permit is about to expire this long before its validity ends
      late_window_days: 7           # a late simplified-procedure completion stays an alert this long
    email:
      - to: [cites-desk@example.org]
        tenants: FR                 # whose alerts: FR, "FR,NL", or "*" (every tenant's and the hub-wide ones)
        kinds: [permit_expiring, permit_expired, pssm_completion_late]   # omitted: every kind
        min_severity: warning       # warning (every alert) or error

An alert goes to every address of every entry that matches it, in one message; an alert of a counterpart (no
tenant's) matches only entries for ``"*"``. The server and the sender come from the environment:
``HUB_SMTP_URL`` (:mod:`hub.notify.mail`) and ``HUB_ALERT_EMAIL_FROM``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.config import secret_from_env
from hub.errors import ConfigurationError
from hub.notify.alerts import AlertKind, Severity, Thresholds
from hub.notify.mail import SmtpServer
from hub.scope import Scope
from hub.standards import PROJECT_ROOT

DEFAULT_FILE = PROJECT_ROOT / "config" / "alerts.yaml"
DEFAULT_SENDER = "trade-document-hub@localhost"
#: Seconds between two looks at the store (``HUB_ALERTS_INTERVAL``).
DEFAULT_INTERVAL = 30.0


class ThresholdsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(0.5, gt=0, le=1)
    min_attempts: int = Field(5, ge=1)
    error_window_minutes: float = Field(60, gt=0)
    stalled_after_minutes: float = Field(30, gt=0)
    expiring_within_days: float = Field(7, ge=0)
    late_window_days: float = Field(7, ge=0)

    def thresholds(self) -> Thresholds:
        return Thresholds(
            error_rate=self.error_rate, min_attempts=self.min_attempts, error_window=timedelta(minutes=self.error_window_minutes),
            stalled_after=timedelta(minutes=self.stalled_after_minutes), expiring_within=timedelta(days=self.expiring_within_days),
            late_window=timedelta(days=self.late_window_days),
        )


class EmailSubscription(BaseModel):
    """Addresses told of the alerts of some tenants, kinds and severities."""

    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(min_length=1)
    tenants: str = "*"
    kinds: list[AlertKind] | None = None
    min_severity: Severity = Severity.WARNING

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c in address for c in " ,;<>\r\n"):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value

    def matches(self, *, kind: str, tenant: str, severity: str) -> bool:
        """Whether an alert of ``kind``, ``tenant`` and ``severity`` goes to these addresses."""
        if self.kinds is not None and kind not in self.kinds:
            return False
        if Severity(severity).rank < self.min_severity.rank:
            return False
        return Scope.of(self.tenants).sees(tenant)


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    email: list[EmailSubscription] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> "AlertsConfig":
        """The configuration in ``path`` (none at all when the file does not exist); :class:`ConfigurationError`
        naming the file and the field when it is malformed."""
        if not path.is_file():
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls.model_validate(data)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{path}: not YAML: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"{path}: {problems}") from None

    def recipients(self, *, kind: str, tenant: str, severity: str) -> list[str]:
        """Every address an alert goes to, each once, in the order the file gives them."""
        found: dict[str, None] = {}
        for subscription in self.email:
            if subscription.matches(kind=kind, tenant=tenant, severity=severity):
                found.update(dict.fromkeys(subscription.to))
        return list(found)


class AlertSettings(BaseModel):
    """What the alert service reads from the environment: ``HUB_ALERTS`` (the file above), ``HUB_SMTP_URL`` (or
    ``HUB_SMTP_URL_FILE``), ``HUB_ALERT_EMAIL_FROM`` and ``HUB_ALERTS_INTERVAL`` (seconds)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    config: AlertsConfig
    smtp: SmtpServer | None = None
    sender: str = DEFAULT_SENDER
    interval: float = DEFAULT_INTERVAL

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "AlertSettings":
        environ = dict(os.environ) if environ is None else environ
        path = Path(environ.get("HUB_ALERTS") or DEFAULT_FILE)
        try:
            url = secret_from_env("HUB_SMTP_URL", environ)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        interval = environ.get("HUB_ALERTS_INTERVAL") or DEFAULT_INTERVAL
        try:
            interval = float(interval)
        except ValueError:
            raise ConfigurationError(f"HUB_ALERTS_INTERVAL: {interval!r} is not a number of seconds") from None
        if interval <= 0:
            raise ConfigurationError("HUB_ALERTS_INTERVAL: must be more than 0 seconds")
        return cls(
            config=AlertsConfig.load(path), smtp=SmtpServer.from_url(url) if url else None,
            sender=environ.get("HUB_ALERT_EMAIL_FROM") or DEFAULT_SENDER, interval=interval,
        )
