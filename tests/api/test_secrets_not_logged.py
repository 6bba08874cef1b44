"""Secrets never reach the logs (API keys, access tokens, passwords, database URL passwords, private keys), and
secrets given by the environment may come from files (``HUB_…_FILE``)."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.api.auth import create_client
from hub.config import Settings, secret_from_env
from hub.redaction import RedactingFilter, redact
from tests.support.broker import example_record

leak = logging.getLogger("hub.test.careless")


class _CarelessLogging:
    """A middleware logging what a careless debug line would: the raw headers, the URL of a database, and an
    error whose message carries the key."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            leak.debug("request headers %s", scope["headers"])
            leak.debug("as a dict: %r", headers)
            leak.debug("Authorization: %s", headers.get("authorization"))
            leak.info("connecting to postgresql+psycopg://hub:db-pass-w0rd@127.0.0.1:5432/hub?sslmode=require")
            try:
                raise RuntimeError(f"refused X-API-Key: {headers.get('x-api-key')}")
            except RuntimeError:
                leak.exception("while handling %s", scope["path"])
        await self.app(scope, receive, send)


def test_a_request_with_a_key_at_debug_leaves_no_secret_in_the_logs(broker, caplog):
    with broker.database.transaction() as session:
        key = create_client(session, name="fr-system", tenant="FR")[1]
    app = create_app(broker)
    app.add_middleware(_CarelessLogging)
    caplog.set_level(logging.DEBUG)
    with TestClient(app) as client:
        submitted = client.post("/v1/documents", json=example_record(), headers={"X-API-Key": key})
        assert submitted.status_code == 202, submitted.text
        assert client.get(f"/v1/documents/{submitted.json()['id']}", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert client.post("/v1/documents", content=b"{}", headers={"Authorization": "Bearer hub_not-a-key-but-secret-looking"}).status_code == 401
    assert len(caplog.records) > 10
    logged = caplog.text + "".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "refused X-API-Key: ***" in logged  # the careless lines were made, and masked
    for secret in (key, key.removeprefix("hub_"), "db-pass-w0rd", "not-a-key-but-secret-looking"):
        assert secret not in logged


@pytest.mark.parametrize("line, secret", [
    ("GET /x headers={'Authorization': 'Bearer abcdefghijkl0123'}", "abcdefghijkl0123"),
    ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("[(b'x-api-key', b'k3y-without-prefix-123')]", "k3y-without-prefix-123"),
    ("X-API-Key: plainkey12345", "plainkey12345"),
    ("calling with hub_AbCdEfGhIjKlMnOpQrStUv", "AbCdEfGhIjKlMnOpQrStUv"),
    ("token hat_0123456789abcdefghij given", "0123456789abcdefghij"),
    ("login user=hub password=hunter2-hunter2 ok", "hunter2-hunter2"),
    ('{"secret": "whsec-0123456789abcdef", "url": "https://x.example"}', "whsec-0123456789abcdef"),
    ("postgresql://hub:S3cr%40t@db.internal:5432/hub", "S3cr%40t"),
    ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----", "MIIFHDBOBgkqhkiG9w0BBQ0w"),
])
def test_every_kind_of_secret_is_masked(line, secret):
    masked = redact(line)
    assert secret not in masked
    assert "***" in masked


def test_what_is_no_secret_is_left_alone():
    for line in ("POST /v1/documents 202 12 ms", "http://127.0.0.1:8000/v1/documents", "document FR-2026-0001 signed by C=FR,CN=FR NPPO",
                 "postgresql+psycopg://hub@db/hub"):
        assert redact(line) == line


def test_the_filter_masks_records_a_handler_lets_through():
    record = logging.LogRecord("hub.x", logging.INFO, __file__, 1, "key %s in %s", ("hub_0123456789abcdefghij", "postgresql://u:pw-123@h/d"), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "key hub_*** in postgresql://u:***@h/d"


def test_secrets_come_from_files_named_by_the_environment(tmp_path, monkeypatch):
    secret_file = tmp_path / "database-url"
    secret_file.write_text("postgresql+psycopg://hub:from-a-file@db/hub\n")
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    monkeypatch.setenv("HUB_DATABASE_URL_FILE", str(secret_file))
    assert Settings.from_env().database_url == "postgresql+psycopg://hub:from-a-file@db/hub"
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql+psycopg://hub:from-the-env@db/hub")
    with pytest.raises(ValueError, match="both set") as both:
        Settings.from_env()
    assert "from-the-env" not in str(both.value) and "from-a-file" not in str(both.value)
    assert secret_from_env("HUB_DATABASE_URL", {"HUB_DATABASE_URL": "sqlite:///x.db"}) == "sqlite:///x.db"
    assert secret_from_env("HUB_DATABASE_URL", {}) is None
    with pytest.raises(ValueError, match="HUB_DATABASE_URL_FILE: cannot read"):
        secret_from_env("HUB_DATABASE_URL", {"HUB_DATABASE_URL_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        secret_from_env("HUB_DATABASE_URL", {"HUB_DATABASE_URL_FILE": str(tmp_path / "empty")})


def test_the_audit_log_never_holds_a_key(api, broker):
    api.post("/v1/documents", content=json.dumps(example_record()).encode(), headers={"Content-Type": "application/json"})
    key = api.headers["Authorization"].removeprefix("Bearer ")
    with broker.database.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM audit_log").all()
    assert rows and key not in repr(rows)
