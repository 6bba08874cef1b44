"""Shared fixtures. Sockets are blocked for every test (pytest-socket, see pyproject): only loopback is reachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.standards import PROJECT_ROOT, standards_dir


@pytest.fixture(scope="session")
def standards() -> Path:
    """The real standards artefacts; a test that needs them fails (never skips) when they are missing."""
    path = standards_dir()
    if not (path / "FACTS.md").is_file():
        pytest.fail(f"real standards artefacts not found at {path} (set HUB_STANDARDS_DIR)")
    return path


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


def standard_file(relative: str) -> Path:
    """A file under the standards folder, failing the test with its path when it is absent."""
    path = standards_dir() / relative
    if not path.is_file():
        pytest.fail(f"real standards artefact missing: {path} (set HUB_STANDARDS_DIR)")
    return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A development PKI for the FR issuing authority and a US counterpart (2048-bit keys: made in a second)."""
    from hub.signing.pki import init_dev_pki

    return init_dev_pki(tmp_path_factory.mktemp("pki"), authorities=("FR", "US"), rsa_key_bits=2048)


@pytest.fixture
def broker(database_url, pki):
    """A broker on the test database, its destinations ``authority`` and ``customs`` played by scripted
    counterparts (see tests/support/broker.py)."""
    from tests.support.broker import make_broker

    broker = make_broker(database_url, pki)
    yield broker
    broker.close()


@pytest.fixture
def ched_broker(database_url, pki):
    """A broker that also routes CHEDs to customs: the customs registry's tests."""
    from tests.support.broker import ROUTES_WITH_CHEDS, make_broker

    broker = make_broker(database_url, pki, routes=ROUTES_WITH_CHEDS)
    yield broker
    broker.close()


@pytest.fixture
def permit_broker(database_url, pki):
    """A broker that also routes CITES exports and re-exports: the CITES tests."""
    from tests.support.broker import ROUTES_WITH_PERMITS, make_broker

    broker = make_broker(database_url, pki, routes=ROUTES_WITH_PERMITS)
    yield broker
    broker.close()


@pytest.fixture
def permit_api(permit_broker):
    """The API over ``permit_broker``, as France's CITES authority; ``.nl`` holds the headers of another authority."""
    from fastapi.testclient import TestClient

    from hub.api.app import create_app
    from hub.api.auth import create_client

    with permit_broker.database.transaction() as session:
        fr, nl = create_client(session, name="fr-cites", tenant="FR")[1], create_client(session, name="nl-cites", tenant="NL")[1]
    with TestClient(create_app(permit_broker)) as client:
        client.headers["Authorization"] = f"Bearer {fr}"
        client.nl = {"Authorization": f"Bearer {nl}"}
        yield client


# Database fixtures for the broker (SQLite and a real PostgreSQL): see tests/support/databases.py.
pytest_plugins = ["tests.support.databases"]
