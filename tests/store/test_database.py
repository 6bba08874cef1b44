"""The store on both engines: migrations equal the models, payloads by digest, UTC moments, business key, `hub db`."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from hub.store import Database, get_payload, put_payload
from hub.cli.db import db_app
from hub.store.embedded_postgres import EmbeddedPostgres
from hub.store.migrate import current, downgrade, head, render_item, upgrade
from hub.store.models import Base, Document, Payload


def _differences(url: str) -> list:
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    finally:
        db.dispose()


def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        return set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    finally:
        db.dispose()


def test_a_new_database_is_empty_and_at_head(database: Database):
    assert current(database.url) == head()
    with database.transaction() as session:
        for table in Base.metadata.sorted_tables:
            assert session.scalar(select(func.count()).select_from(table)) == 0, table.name


def test_migrations_equal_the_models(database_url: str):
    assert _differences(database_url) == []


def test_downgrade_to_base_drops_every_table_and_upgrade_restores_them(database_url: str):
    assert _tables(database_url) == set(Base.metadata.tables)
    downgrade(database_url, "base")
    assert _tables(database_url) == set()
    assert current(database_url) is None
    upgrade(database_url)
    assert current(database_url) == head()
    assert _differences(database_url) == []


def test_autogenerate_renders_custom_types_as_plain_sqlalchemy(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with db.engine.connect() as connection:
            script = produce_migrations(MigrationContext.configure(connection), Base.metadata)
            code = render_python_code(script.upgrade_ops, render_item=render_item)
    finally:
        db.dispose()
    assert "hub.store" not in code
    assert "sa.DateTime(timezone=True)" in code
    assert 'sa.BigInteger().with_variant(sa.Integer(), "sqlite")' in code


def test_put_payload_stores_the_same_bytes_once(database: Database):
    content = b"<rsm:SPSCertificate/>"
    with database.transaction() as session:
        first = put_payload(session, content)
        assert put_payload(session, content) == first
    with database.transaction() as session:
        assert put_payload(session, content, media_type="text/xml") == first
        other = put_payload(session, b"<rsm:SPSCertificate></rsm:SPSCertificate>")
    assert first == hashlib.sha256(content).hexdigest()
    assert other != first
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Payload)) == 2
        stored = get_payload(session, first)
        assert (stored.content, stored.size, stored.media_type) == (content, len(content), "application/xml")


def test_utc_datetime_round_trips_as_aware_utc(database: Database):
    if database.dialect == "postgresql":
        # A server outside UTC, so that a naive value left to the server's zone would show.
        with database.engine.connect() as connection:
            name = connection.scalar(text("SELECT current_database()"))
            connection.execute(text(f'ALTER DATABASE "{name}" SET timezone TO \'Asia/Kolkata\''))
            connection.commit()
        database.dispose()
    paris_summer = timezone(timedelta(hours=2))
    aware = datetime(2026, 7, 14, 12, 30, 15, 123456, tzinfo=paris_summer)
    naive = datetime(2026, 1, 2, 3, 4, 5)
    with database.transaction() as session:
        put_payload(session, b"aware")
        put_payload(session, b"naive")
        session.get(Payload, hashlib.sha256(b"aware").hexdigest()).created_at = aware
        session.get(Payload, hashlib.sha256(b"naive").hexdigest()).created_at = naive
    with database.transaction() as session:
        read = dict(session.execute(select(Payload.content, Payload.created_at)).all())
        # The same instant written in another zone must find the row: both engines compare moments, not wall times.
        new_york = aware.astimezone(timezone(timedelta(hours=-4)))
        found = session.scalar(select(Payload.content).where(Payload.created_at == new_york))
        if database.dialect == "postgresql":
            assert session.scalar(text("SHOW timezone")) == "Asia/Kolkata"
    assert read[b"aware"] == aware
    assert read[b"aware"].utcoffset() == timedelta(0)
    assert read[b"aware"].hour == 10
    assert read[b"naive"] == naive.replace(tzinfo=timezone.utc)
    assert read[b"naive"].utcoffset() == timedelta(0)
    assert found == b"aware"


def _document(payload_digest: str, **overrides) -> Document:
    values = dict(
        id=str(uuid.uuid4()), tenant="FR", correlation_id=uuid.uuid4().hex, kind="phytosanitary",
        issuing_country="FR", certificate_number="FR-2026-000123", status="original", version=1,
        source_format="json", record={}, report={}, payload_digest=payload_digest, request_digest="0" * 64,
    )
    return Document(**{**values, **overrides})


def test_business_key_is_unique(database: Database):
    with database.transaction() as session:
        digest = put_payload(session, b"<certificate/>")
        session.add(_document(digest))
    with database.transaction() as session:
        session.add(_document(digest, version=2))  # another version of the same certificate is a new document
    with pytest.raises(IntegrityError):
        with database.transaction() as session:
            session.add(_document(digest, tenant="NL", idempotency_key="other"))
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 2


def test_cli_upgrade_and_current_on_a_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the scripts are found in the package, not from the working directory
    url = f"sqlite:///{tmp_path / 'var' / 'hub.db'}"
    runner = CliRunner()
    before = runner.invoke(db_app, ["current", "--database-url", url])
    assert (before.exit_code, before.output) == (0, "base (not migrated)\n")
    upgraded = runner.invoke(db_app, ["upgrade", "--database-url", url])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.output == f"{head()} (head)\n"
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    after = runner.invoke(db_app, ["current"])
    assert (after.exit_code, after.output) == (0, f"{head()} (head)\n")
    assert _tables(url) == set(Base.metadata.tables)
    down = runner.invoke(db_app, ["downgrade", "base"])
    assert (down.exit_code, down.output) == (0, "base (not migrated)\n")


def test_cli_reports_an_unsupported_database(tmp_path):
    result = CliRunner().invoke(db_app, ["upgrade", "--database-url", "mysql://localhost/hub"])
    assert result.exit_code == 2
    assert "only sqlite:/// and postgresql://" in result.output


def test_embedded_postgres_as_a_context_manager_starts_a_server_then_stops_it_and_removes_its_directory():
    # A second server besides the session's (~0.5 s): only this one shows the directory going away.
    embedded = EmbeddedPostgres()
    with embedded as server:
        base = embedded.base
        assert (base / "data" / "PG_VERSION").is_file()
        with closing(server.connect()) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    assert not base.exists()
    with pytest.raises(psycopg.OperationalError):
        server.connect()


# --- Core transactions on SQLite: one writer connection, kept between them -----------------------------------------


def _payload_count(db: Database) -> int:
    with db.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Payload))


def _insert_payload(connection, content: bytes) -> None:
    connection.execute(Payload.__table__.insert(), {"digest": hashlib.sha256(content).hexdigest(), "content": content,
                                                     "size": len(content), "media_type": "application/xml",
                                                     "created_at": datetime.now(timezone.utc)})


def test_core_transactions_on_sqlite_keep_one_connection_between_them(sqlite_database_url: str):
    db = Database(sqlite_database_url)
    checkouts = []
    event.listen(db.engine, "checkout", lambda *_: checkouts.append(1))
    try:
        for n in range(5):
            with db.core_transaction() as connection:
                _insert_payload(connection, b"step %d" % n)
        assert len(checkouts) == 1
        assert _payload_count(db) == 5
    finally:
        db.dispose()
    assert db._held is None


def test_a_failed_core_transaction_writes_nothing_and_the_next_one_goes_through(sqlite_database_url: str):
    db = Database(sqlite_database_url)
    try:
        with pytest.raises(ValueError), db.core_transaction() as connection:
            _insert_payload(connection, b"half-way")
            raise ValueError("a step refused")
        with db.core_transaction() as connection:
            assert connection.scalar(select(func.count()).select_from(Payload)) == 0
            _insert_payload(connection, b"whole")
        assert _payload_count(db) == 1
    finally:
        db.dispose()


def test_a_core_transaction_whose_rollback_failed_is_followed_by_one_on_a_new_connection(sqlite_database_url: str, monkeypatch):
    db = Database(sqlite_database_url)
    try:
        first = []

        def failing_rollback(dbapi_connection):
            raise sqlite3.OperationalError("disk I/O error")

        with pytest.raises(Exception), db.core_transaction() as connection:
            _insert_payload(connection, b"lost")
            first.append(connection.connection.driver_connection)
            monkeypatch.setattr(db.engine.dialect, "do_rollback", failing_rollback)
            raise ValueError("a step failed, and then its rollback")
        monkeypatch.undo()
        with db.core_transaction() as connection:
            assert connection.connection.driver_connection is not first[0]
            _insert_payload(connection, b"kept")
        assert _payload_count(db) == 1
    finally:
        db.dispose()


def test_a_core_transaction_inside_another_is_refused_at_once_and_the_outer_one_goes_on(sqlite_database_url: str):
    db = Database(sqlite_database_url)
    try:
        with db.core_transaction() as outer:
            with pytest.raises(RuntimeError, match="one writer at a time"), db.core_transaction():
                pass
            _insert_payload(outer, b"outer")
        assert _payload_count(db) == 1
    finally:
        db.dispose()
