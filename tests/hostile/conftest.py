"""Fixtures of the hostile corpus: a hub whose API is attacked (``kit``, see kit.py), the identities that should sign
nothing (``issued``), and a loopback canary that no payload may ever make the hub call (``canary``)."""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest

from tests.hostile import payloads
from tests.hostile.kit import Kit, hostile_broker
from tests.support.api import api_client


@pytest.fixture(scope="session")
def issued(pki) -> dict[str, payloads.IssuedKey]:
    """Identities made once per session from the development CA: expired, not yet valid, enciphering only, a CA
    certificate, an e-mail and client certificate, a self-signed one, a 1024-bit one, and a good FR signer to revoke."""
    return {
        "expired": payloads.issue(pki, days=(-400, -1)),
        "not-yet-valid": payloads.issue(pki, days=(30, 400)),
        "encipher-only": payloads.issue(pki, usage="encipher"),
        "ca": payloads.issue(pki, usage="ca"),
        "email": payloads.issue(pki, usage="email"),
        "code-signing": payloads.issue(pki, usage="code-signing"),
        "self-signed": payloads.issue(pki, self_signed=True),
        "rsa-1024": payloads.issue(pki, key_bits=1024),
        "revoked": payloads.issue(pki),
    }


@pytest.fixture(scope="session")
def canary():
    """The loopback listener hostile payloads point at; a test asserts it was never called."""
    listener = payloads.Canary()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def kit(request, tmp_path_factory, pki, stranger_pki, issued, canary) -> Iterator[Kit]:
    """The attacked hub (kit.py) over a database of its own per module and engine (SQLite, or PostgreSQL with
    ``@pytest.mark.parametrize("kit", ["postgresql"], indirect=True)``), shared by the module's cases: each case
    compares what is stored just before and just after its own request, so it needs no database of its own. The
    database is a copy of the session's migrated template (tests/support/databases.py)."""
    engine = getattr(request, "param", "sqlite")
    if engine == "sqlite":
        path = tmp_path_factory.mktemp("hostile") / "hub.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        url, drop = f"sqlite:///{path}", lambda: None
    else:
        server, template = request.getfixturevalue("postgres_server"), request.getfixturevalue("_postgres_template")
        name = template.create()
        url, drop = server.url_for(name), lambda: template.drop(name)
    broker = hostile_broker(url, pki)
    try:
        with api_client(broker) as client:
            yield Kit(api=client, broker=broker, pki=pki, stranger_pki=stranger_pki, issued=issued, canary=canary)
    finally:
        broker.close()
        drop()
