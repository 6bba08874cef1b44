"""Shared fixtures: the standards folder, the development PKIs, the brokers and the API over them.

Sockets are blocked for every test (pytest-socket, see pyproject): only loopback is reachable. Database fixtures
(SQLite and a real PostgreSQL) come from the plugin tests/support/databases.py; helpers that are no fixtures live in
tests/support/. Each area's folder adds its own conftest.py (tests/connectors/conftest.py: the signed certificates
every connector sends).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.standards import PROJECT_ROOT, standards_dir

# Database fixtures for the broker (SQLite and a real PostgreSQL).
pytest_plugins = ["tests.support.databases"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "standard_unavailable(reason): a parameter taken from a standards file that is "
                                       "missing or unreadable (tests/support/standards.py); its test fails with the reason")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    marker = item.get_closest_marker("standard_unavailable")
    if marker is not None:
        pytest.fail(marker.args[0], pytrace=False)


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


# --- PKI ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The development PKI every broker, connector and sandbox test shares: the FR issuing authority, a US
    counterpart and Japan's CITES authority (the importing country of the worked permit); 2048-bit keys, made in a
    second."""
    from hub.signing.pki import init_dev_pki

    return init_dev_pki(tmp_path_factory.mktemp("pki"), authorities=("FR", "US", "JP"), rsa_key_bits=2048)


@pytest.fixture(scope="session")
def stranger_pki(tmp_path_factory):
    """Another CA, unrelated to ``pki``, issuing look-alike identities (same subjects, FR and US) that nobody may
    trust: the attacker's or a stranger's."""
    from hub.signing.pki import init_dev_pki

    return init_dev_pki(tmp_path_factory.mktemp("stranger-pki"), authorities=("FR", "US"), rsa_key_bits=2048)


@pytest.fixture
def verifier(pki):
    """A verifier trusting ``pki``'s development CA."""
    from hub.signing import Verifier

    return Verifier(pki.trust_store())


# --- brokers and the API over them ------------------------------------------------------------------------------------


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
def api(broker):
    """The API over ``broker``, as France's system; ``api.headers_of("NL" | "EC" | "ops")`` authenticates another
    client (tests/support/api.py)."""
    from tests.support.api import api_client

    with api_client(broker) as client:
        yield client


@pytest.fixture
def ched_api(ched_broker):
    """The API over ``ched_broker``, as France's system (customs' own calls included); ``headers_of`` as for ``api``."""
    from tests.support.api import api_client

    with api_client(ched_broker) as client:
        yield client


@pytest.fixture
def permit_api(permit_broker):
    """The API over ``permit_broker``, as France's CITES authority; ``headers_of`` as for ``api``."""
    from tests.support.api import api_client

    with api_client(permit_broker) as client:
        yield client
