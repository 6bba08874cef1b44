"""Fixtures of the TRACES-NT connector's tests."""

from __future__ import annotations

import pytest

from tests.connectors.traces_nt.harness import make_harness


@pytest.fixture
def traces(pki):
    """The TRACES-NT sandbox in-process and the contract harness over it. TRACES signs with a development identity
    (US) other than the hub's own (FR), so the tests tell the two signatures apart."""
    harness = make_harness(pki, signing_key_provider=pki.key_provider("US"))
    yield harness
    harness.close()
