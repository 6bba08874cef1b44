"""Alerts told to their subscribers (hub/notify/alerts_service.py, hub/notify/mail.py): one e-mail per raise and one
per clear, to the addresses subscribed to that tenant and kind, through a local SMTP server (aiosmtpd on a free
loopback port); a server down or silent is tried again later, a bounded number of times, and never holds the worker;
webhook subscribers receive ``alert.raised`` and ``alert.cleared`` like any trace event. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from connectors.http import bounded_transport
from hub.errors import ConfigurationError
from hub.notify.alerts_config import DEFAULT_FILE, AlertSettings, AlertsConfig
from hub.notify.alerts_service import AlertService
from hub.notify.mail import MailError, SmtpServer, compose, send
from hub.notify.webhooks import WebhookDispatcher, verify_signature
from hub.store.models import Alert, Message, WebhookSubscription, utcnow
from hub.store.states import MessageState
from tests.support.broker import example_record, permanent
from tests.support.loopback import LoopbackServer

SUBSCRIPTIONS = {"email": [
    {"to": ["fr-desk@example.org"], "tenants": "FR"},
    {"to": ["nl-desk@example.org"], "tenants": "NL"},
    {"to": ["ops@example.org"], "tenants": "*", "kinds": ["counterpart_failing"]},
]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """What a local SMTP server received: (envelope recipients, message) per message."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = auth_data.login == b"hub" and auth_data.password == b"s3cret:pass"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp():
    """A local SMTP server on a free loopback port, accepting every message into its :class:`Inbox`; it accepts the
    login ``hub`` / ``s3cret:pass`` when one is given."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=inbox.authenticate, auth_require_tls=False)
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    inbox.port = controller.port
    yield inbox
    controller.stop()


class Silent(LoopbackServer):
    """An SMTP server that accepts connections and never says a word (counts the connections it holds)."""

    def __init__(self) -> None:
        self.held = 0
        super().__init__()

    def answer(self, connection: socket.socket) -> None:
        self.held += 1
        try:
            self.stopped.wait(30)
        finally:
            self.held -= 1


@pytest.fixture
def silent():
    server = Silent()
    yield server
    server.close()


def alert_service(broker, url: str | None, *, config: dict | None = None, **options) -> AlertService:
    settings = AlertSettings(config=AlertsConfig.model_validate(SUBSCRIPTIONS if config is None else config),
                             smtp=SmtpServer.from_url(url) if url else None, sender="hub@example.org")
    destinations = {name: connector.config.type for name, connector in broker.connectors.items()}
    return AlertService(broker.database, destinations=destinations, settings=settings, console_url="http://127.0.0.1:8000/console/alerts", **options)


def dead_letter(broker, number: str = "FR-2026-MAIL-0001") -> Message:
    stored = broker.submit(json.dumps(example_record(certificate_number=number)).encode(), "application/json", tenant="FR", actor="api:test")
    broker.connectors["authority"].fail_next(permanent())
    broker.make_worker(webhooks=False).drain()
    with broker.database.sessions() as session:
        message = session.scalars(select(Message).where(Message.document_id == stored.document.id, Message.destination == "authority")).one()
    assert message.state == MessageState.DEAD_LETTER.value
    return message


def alert_row(broker) -> Alert:
    with broker.database.sessions() as session:
        return session.scalars(select(Alert)).one()


# --- e-mail ---------------------------------------------------------------------------------------------------------


def test_one_email_per_raise_and_one_per_clear_to_the_tenants_subscribers(broker, smtp):
    dead = dead_letter(broker)
    alerts = alert_service(broker, smtp.url)
    assert alerts.run_once().mailed == 1
    for _ in range(3):
        assert alerts.run_once().mailed == 0  # told once, never again while it stays open
    [(recipients, raised)] = smtp.messages
    assert recipients == ["fr-desk@example.org"]  # not NL's desk, not the operators' (counterparts only)
    assert raised["From"] == "hub@example.org" and raised["X-Hub-Alert"] == f"dead_letter:{dead.id}" and raised["X-Hub-Alert-Notice"] == "raised"
    assert "FR-2026-MAIL-0001" in raised["Subject"] and "dead letter" in raised["Subject"] and "ERROR" in raised["Subject"]
    body = raised.get_content()
    assert dead.id in body and "authority" in body and "http://127.0.0.1:8000/console/alerts" in body
    assert alert_row(broker).notified == "raised"
    broker.resend(dead.id, tenant="FR", actor="api:test")
    assert alerts.run_once().mailed == 1 and alerts.run_once().mailed == 0
    assert len(smtp.messages) == 2
    cleared = smtp.messages[1][1]
    assert cleared["X-Hub-Alert-Notice"] == "cleared" and cleared["Subject"].startswith("[hub] cleared:")
    assert alert_row(broker).notified == "cleared"


def test_an_authenticated_server_is_logged_into(broker, smtp):
    dead_letter(broker)
    assert alert_service(broker, f"smtp://hub:s3cret%3Apass@127.0.0.1:{smtp.port}").run_once().mailed == 1
    assert smtp.logins == ["hub"] and len(smtp.messages) == 1


def test_wrong_credentials_are_a_failure_that_names_the_user_not_the_password(smtp):
    message = compose(sender="hub@example.org", recipients=["a@example.org"], subject="s", text="t")
    with pytest.raises(MailError) as refused:
        send(SmtpServer.from_url(f"smtp://hub:wrong-password@127.0.0.1:{smtp.port}"), message)
    assert "'hub'" in str(refused.value) and "wrong-password" not in str(refused.value)
    with pytest.raises(MailError, match="STARTTLS"):
        send(SmtpServer.from_url(f"smtp://127.0.0.1:{smtp.port}?starttls=required"), message)
    assert smtp.messages == []


def test_nobody_subscribed_or_no_server_means_no_mail_and_nothing_pending(broker, smtp):
    dead_letter(broker)
    assert alert_service(broker, smtp.url, config={"email": [{"to": ["nl-desk@example.org"], "tenants": "NL"}]}).run_once().mailed == 0
    assert alert_row(broker).notified == "raised" and smtp.messages == []


def test_a_server_down_is_tried_again_later_and_an_alert_cleared_meanwhile_is_not_sent(broker, smtp):
    dead = dead_letter(broker)
    down = alert_service(broker, f"smtp://127.0.0.1:{free_port()}?timeout=2")  # nothing listens there
    assert down.run_once().failed == 1
    row = alert_row(broker)
    assert (row.notified, row.email_attempts) == ("none", 1) and "ConnectionRefused" in row.email_error
    assert row.email_next_at > utcnow()
    assert down.run_once().failed == 0  # not due yet: no hammering
    broker.resend(dead.id, tenant="FR", actor="api:test")
    broker.make_worker(webhooks=False).drain()
    down.sync()
    assert alert_service(broker, smtp.url).run_once(now=utcnow() + timedelta(hours=2)).mailed == 0
    assert smtp.messages == [] and alert_row(broker).notified == "cleared"  # nothing left to act on, nothing told


def test_a_silent_server_costs_one_bounded_wait_then_the_notice_goes_when_it_is_back(broker, smtp, silent):
    dead_letter(broker)
    stuck = alert_service(broker, f"smtp://127.0.0.1:{silent.port}?timeout=0.5")
    started = time.monotonic()
    assert stuck.run_once().failed == 1
    assert time.monotonic() - started < 5
    assert "timed out" in alert_row(broker).email_error
    back = alert_service(broker, smtp.url)
    assert back.run_once().mailed == 0  # waits its turn
    assert back.run_once(now=utcnow() + timedelta(hours=2)).mailed == 1 and len(smtp.messages) == 1


def test_a_notice_is_given_up_after_its_attempts(broker):
    dead_letter(broker)
    alerts = alert_service(broker, f"smtp://127.0.0.1:{free_port()}?timeout=2", max_attempts=3)
    moment = utcnow()
    for _ in range(3):
        moment += timedelta(hours=2)
        alerts.run_once(now=moment)
    row = alert_row(broker)
    assert row.notified == "raised" and "given up after 3 attempts" in row.email_error
    assert alerts.run_once(now=moment + timedelta(days=1)).failed == 0


def test_a_silent_mail_server_never_holds_the_worker(broker, silent, tmp_path, monkeypatch):
    """The worker as ``hub serve`` builds it (make_worker, configured by the environment): while the alert service
    waits on a server that never answers, the worker delivers."""
    config = tmp_path / "alerts.yaml"
    config.write_text(json.dumps(SUBSCRIPTIONS), encoding="utf-8")
    monkeypatch.setenv("HUB_ALERTS", str(config))
    monkeypatch.setenv("HUB_SMTP_URL", f"smtp://127.0.0.1:{silent.port}?timeout=6")
    monkeypatch.setenv("HUB_ALERTS_INTERVAL", "0.05")
    dead_letter(broker)
    worker = broker.make_worker(webhooks=False, poll_interval=0.02)
    worker.start()
    try:
        assert _wait(lambda: silent.held == 1, 5), "the alert service never called the mail server"
        stored = broker.submit(json.dumps(example_record(certificate_number="FR-2026-MAIL-0002")).encode(), "application/json", tenant="FR", actor="api:test")
        started = time.monotonic()

        def delivered() -> bool:
            with broker.database.sessions() as session:
                return all(m.state == MessageState.AWAITING_ACK.value for m in session.scalars(select(Message).where(Message.document_id == stored.document.id)))

        assert _wait(delivered, 3)
        assert silent.held == 1 and time.monotonic() - started < 3  # delivered while the mail server still held the alerts
    finally:
        worker.stop()
    assert "timed out" in alert_row(broker).email_error


def _wait(condition, seconds: float) -> bool:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# --- webhooks -------------------------------------------------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    """A loopback webhook receiver keeping (headers, body) of each event."""

    daemon_threads = True

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                self.received.append((dict(handler.headers), body))
                handler.send_response(204)
                handler.end_headers()

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_subscribers_receive_alert_raised_and_cleared(broker, receiver):
    with broker.database.transaction() as session:
        for tenant in ("FR", "NL"):
            session.add(WebhookSubscription(id=f"sub-{tenant}", tenant=tenant, url=f"http://127.0.0.1:{receiver.port}/{tenant}", secret="s" * 32, filters={"event": "alert."}))
    dead = dead_letter(broker)
    alerts = alert_service(broker, None)
    alerts.run_once()
    dispatcher = WebhookDispatcher(broker.database, transport=bounded_transport(timeout=5.0), timeout=5.0)
    try:
        dispatcher.run_once()
        [(headers, body)] = receiver.received
        assert headers["X-Hub-Event"] == "alert.raised"
        assert verify_signature("s" * 32, headers["X-Hub-Timestamp"], body, headers["X-Hub-Signature-256"])
        event = json.loads(body)
        assert event["message_id"] == dead.id and event["counterpart"] == "authority"
        assert (event["detail"]["kind"], event["detail"]["severity"], event["detail"]["key"]) == ("dead_letter", "error", f"dead_letter:{dead.id}")
        broker.resend(dead.id, tenant="FR", actor="api:test")
        alerts.run_once()
        dispatcher.run_once()
    finally:
        dispatcher.close()
    assert [h["X-Hub-Event"] for h, _ in receiver.received] == ["alert.raised", "alert.cleared"]  # NL's subscription saw nothing


# --- configuration ----------------------------------------------------------------------------------------------------


def test_the_shipped_configuration_loads():
    config = AlertsConfig.load(DEFAULT_FILE)
    assert config.thresholds.thresholds().error_rate == 0.5


def test_a_malformed_configuration_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "alerts.yaml"
    path.write_text("email:\n  - to: [not-an-address]\n    kinds: [dead_letters]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as bad:
        AlertsConfig.load(path)
    assert str(path) in str(bad.value) and "email.0.to" in str(bad.value) and "email.0.kinds.0" in str(bad.value)
    assert AlertsConfig.load(tmp_path / "absent.yaml").email == []


@pytest.mark.parametrize("url, problem", [
    ("http://mail.example.org", "scheme"),
    ("smtp://user:hunter2@mail.example.org:99999", "smtp://"),
    ("smtp://mail.example.org?starttls=maybe", "starttls"),
    ("smtp://mail.example.org?tls=1", "unknown parameters"),
    ("smtp://mail.example.org?timeout=0", "timeout"),
])
def test_a_malformed_smtp_url_is_refused_without_showing_the_password(url, problem):
    with pytest.raises(ConfigurationError) as bad:
        SmtpServer.from_url(url)
    assert problem in str(bad.value) and "hunter2" not in str(bad.value) and "HUB_SMTP_URL" in str(bad.value)


def test_smtp_urls_are_read():
    assert SmtpServer.from_url("smtps://a%40b:p%2Fw@mail.example.org") == SmtpServer(host="mail.example.org", port=465, implicit_tls=True, starttls="never", user="a@b", password="p/w")
    assert SmtpServer.from_url("smtp://relay:2525?starttls=required&timeout=3").starttls == "required"
    settings = AlertSettings.from_env({"HUB_SMTP_URL": "smtp://relay", "HUB_ALERT_EMAIL_FROM": "alerts@hub.example", "HUB_ALERTS": str(Path("/nonexistent/alerts.yaml"))})
    assert (settings.smtp.port, settings.sender, settings.config.email) == (25, "alerts@hub.example", [])
