"""The alert service: every ``interval`` it raises and clears the alerts (:mod:`hub.notify.alerts_store`), then
e-mails the notices due, on a thread of its own.

The worker only starts it (``attach``): the service's queries and its SMTP conversations never run on the worker's
loops, so a slow or silent mail server delays e-mail, never deliveries, answers or webhooks. Each SMTP step waits at
most the server's ``timeout``, and one pass sends at most ``batch`` messages.

An alert's notice is sent once: the mailer takes it by a compare-and-set on ``email_next_at`` (its lease), and marks
it told once the server accepted it. A failure waits (exponential backoff with jitter, ``retry``) and tries again, at
most ``max_attempts`` times; then the notice is given up and ``email_error`` says so. Without ``HUB_SMTP_URL``, or
with nobody subscribed to an alert, its notices are marked told without a message: mail is for alerts raised while
someone listens. Webhook subscribers need nothing from here: ``alert.raised`` and ``alert.cleared`` are trace events.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Mapping

from sqlalchemy import or_, select, update

from hub.delivery.retry import RetryStrategy
from hub.notify.alerts import current_alerts
from hub.notify.alerts_config import AlertSettings
from hub.notify.alerts_store import TO_RAISE, TOLD_ALL, TOLD_RAISED, Synced, alert_view, sync_alerts
from hub.notify.mail import MailError, compose, send
from hub.store.db import Database
from hub.store.models import Alert, utcnow
from hub.store.text import storable

if TYPE_CHECKING:
    from hub.delivery.worker import Worker

log = logging.getLogger("hub.alerts")


@dataclass(frozen=True)
class Pass:
    """What one pass did: alerts raised and cleared, notices e-mailed, notices that failed (to be tried again)."""

    raised: int = 0
    cleared: int = 0
    mailed: int = 0
    failed: int = 0


class AlertService:
    """Raises, clears and e-mails the alerts of ``database`` for the configured ``destinations`` (name → connector
    type); :meth:`run_once` does one pass (tests), :meth:`start` runs passes on its own thread until :meth:`close`."""

    def __init__(
        self,
        database: Database,
        *,
        destinations: Mapping[str, str],
        settings: AlertSettings,
        console_url: str | None = None,
        batch: int = 20,
        lease_seconds: float = 120.0,
        retry: RetryStrategy | None = None,
        max_attempts: int = 8,
        name: str | None = None,
    ) -> None:
        self.database = database
        self.destinations = dict(destinations)
        self.settings = settings
        self.thresholds = settings.config.thresholds.thresholds()
        self.console_url = console_url
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.retry = retry or RetryStrategy(base=30.0, max_delay=3600.0)
        self.max_attempts = max_attempts
        self.name = name or f"alerts:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        if settings.config.email and settings.smtp is None:
            log.warning("alerts: %d e-mail subscriptions but no HUB_SMTP_URL: no alert will be e-mailed", len(settings.config.email))

    @classmethod
    def from_env(cls, database: Database, *, destinations: Mapping[str, str], public_url: str | None = None, **options) -> "AlertService":
        """A service configured by the environment (:class:`~hub.notify.alerts_config.AlertSettings`); e-mails link
        to ``public_url``'s console."""
        console = f"{public_url.rstrip('/')}/console/alerts" if public_url else None
        return cls(database, destinations=destinations, settings=AlertSettings.from_env(), console_url=console, **options)

    def attach(self, worker: "Worker") -> "AlertService":
        """Run beside ``worker``: started by its periodic loop (the first pass one ``interval`` later), stopped with it."""
        worker.periodic.append(self.start)
        worker.on_stop.append(self.close)
        return self

    # --- one pass -------------------------------------------------------------------------------------------------

    def run_once(self, *, now: datetime | None = None) -> Pass:
        synced = self.sync(now=now)
        mailed, failed = self.mail(now=now)
        return Pass(raised=len(synced.raised), cleared=len(synced.cleared), mailed=mailed, failed=failed)

    def sync(self, *, now: datetime | None = None) -> Synced:
        """Raise and clear the alerts against what the store shows now."""
        now = now or utcnow()
        with self.database.transaction() as session:
            return sync_alerts(session, current_alerts(session, destinations=self.destinations, thresholds=self.thresholds, now=now), now=now)

    def mail(self, *, now: datetime | None = None) -> tuple[int, int]:
        """Send the notices due (at most ``batch``); (how many were sent, how many failed and wait)."""
        now = now or utcnow()
        if self.settings.smtp is None or not self.settings.config.email:
            self._nobody_listens()
            return 0, 0
        mailed = failed = 0
        for alert_id in self._due(now):
            taken = self._take(alert_id, now)
            if taken is None:
                continue
            notice, row = taken
            recipients = self.settings.config.recipients(kind=row["kind"], tenant=row["tenant"], severity=row["severity"])
            if not recipients or self.settings.smtp is None:
                self._told(row, notice, note=None)
                continue
            try:
                refused = send(self.settings.smtp, self._message(row, notice, recipients))
            except MailError as exc:
                failed += 1
                self._failed(row, str(exc))
                continue
            mailed += 1
            self._told(row, notice, note=f"refused by the server: {', '.join(refused)}" if refused else None)
        return mailed, failed

    def _nobody_listens(self) -> None:
        """Without a server or a subscriber, every notice due is told at once, with no message."""
        with self.database.transaction() as session:
            session.execute(update(Alert).where(Alert.notified == TO_RAISE, Alert.cleared_at.is_(None)).values(notified=TOLD_RAISED).execution_options(synchronize_session=False))
            session.execute(update(Alert).where(_notice_due()).values(notified=TOLD_ALL).execution_options(synchronize_session=False))

    def _due(self, now: datetime) -> list[int]:
        with self.database.sessions() as session:
            return list(session.scalars(
                select(Alert.id).where(Alert.email_next_at <= now, _notice_due()).order_by(Alert.email_next_at, Alert.id).limit(self.batch)
            ))

    def _take(self, alert_id: int, now: datetime) -> tuple[str, dict] | None:
        """Lease the alert's notice (compare-and-set on ``email_next_at``); (which notice, the alert) or None when
        another mailer has it or nothing is due any more."""
        with self.database.transaction() as session:
            won = session.execute(
                update(Alert).where(Alert.id == alert_id, Alert.email_next_at <= now, _notice_due())
                .values(email_next_at=now + timedelta(seconds=self.lease_seconds))
                .execution_options(synchronize_session=False)
            ).rowcount == 1
            if not won:
                return None
            row = session.get(Alert, alert_id)
            session.refresh(row)
            notice = "raised" if row.notified == TO_RAISE else "cleared"
            return notice, {**alert_view(row), "email_attempts": row.email_attempts, "notified": row.notified}

    def _current(self, session, taken: dict) -> Alert | None:
        """The alert taken, if it is still as it was taken (not raised again nor told meanwhile)."""
        row = session.get(Alert, taken["id"])
        if row is None or row.notified != taken["notified"] or _iso(row.raised_at) != taken["raised_at"]:
            return None
        return row

    def _told(self, taken: dict, notice: str, *, note: str | None) -> None:
        with self.database.transaction() as session:
            row = self._current(session, taken)
            if row is None:
                return
            # Cleared while its raise went out: the clear is still to tell.
            row.notified = TOLD_ALL if notice == "cleared" else TOLD_RAISED
            row.email_attempts = 0
            row.email_error = storable(note) if note else None
            row.email_next_at = utcnow()

    def _failed(self, taken: dict, error: str) -> None:
        attempts = taken["email_attempts"] + 1
        with self.database.transaction() as session:
            row = self._current(session, taken)
            if row is None:
                return
            if attempts >= self.max_attempts:
                log.warning("alert %s: e-mail given up after %d attempts: %s", row.key, attempts, error)
                row.notified = TOLD_ALL if row.cleared_at is not None or row.notified == TOLD_RAISED else TOLD_RAISED
                row.email_attempts = 0
                row.email_error = storable(f"given up after {attempts} attempts; last: {error}")
                row.email_next_at = utcnow()
                return
            delay = self.retry.delay(attempts)
            log.warning("alert %s: e-mail failed (attempt %d), next in %.0fs: %s", row.key, attempts, delay, error)
            row.email_attempts = attempts
            row.email_error = storable(error)
            row.email_next_at = utcnow() + timedelta(seconds=delay)

    def _message(self, row: dict, notice: str, recipients: list[str]):
        state = "cleared" if notice == "cleared" else row["severity"].upper()
        about = f" → {row['destination']}" if row["destination"] and row["kind"] != "counterpart_failing" else ""
        subject = f"[hub] {state}: {row['kind'].replace('_', ' ')} — {row['subject']}{about}"
        lines = [
            f"Alert {row['kind']} ({row['severity']}) {'cleared' if notice == 'cleared' else 'raised'}.",
            "",
            f"subject:     {row['subject']}",
            f"tenant:      {row['tenant']}",
            f"since:       {row['since'] or '-'}",
            f"raised at:   {row['raised_at']}",
        ]
        if notice == "cleared":
            lines.append(f"cleared at:  {row['cleared_at']}")
        for name in ("document_id", "message_id", "destination"):
            if row[name]:
                lines.append(f"{name + ':':<13}{row[name]}")
        for name, value in sorted((row["detail"] or {}).items()):
            if value not in (None, "", []):
                lines.append(f"{name + ':':<13}{'; '.join(map(str, value)) if isinstance(value, list) else value}")
        if self.console_url:
            lines += ["", f"Console: {self.console_url}"]
        return compose(sender=self.settings.sender, recipients=recipients, subject=subject, text="\n".join(lines) + "\n",
                       headers={"X-Hub-Alert": row["key"], "X-Hub-Alert-Notice": notice})

    # --- its own thread -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Run passes every ``interval`` on the service's own thread until :meth:`close`; calling it again does
        nothing (the worker's periodic loop calls it)."""
        with self._starting:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, name="hub-alerts", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread (a pass under way ends first, each SMTP wait bounded by the server's timeout)."""
        self._stop.set()
        with self._starting:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join((self.settings.smtp.timeout if self.settings.smtp else 0) * 3 + 10)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.interval):
            try:
                done = self.run_once()
                if done.raised or done.cleared:
                    log.info("alerts: %d raised, %d cleared, %d e-mailed", done.raised, done.cleared, done.mailed)
            except Exception:  # a failing pass (the database away, say) must not end the thread
                log.exception("alerts: a pass failed")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _notice_due():
    """An alert whose raise is untold, or cleared with only its raise told."""
    return or_(Alert.notified == TO_RAISE, (Alert.notified == TOLD_RAISED) & Alert.cleared_at.is_not(None))
