"""Fixtures shared by the connectors' tests: the signed certificates a connector sends to its sandbox.

Each connector's folder adds its own harness (``in_process``, ``over_tls``…) in its modules or conftest.py.
"""

from __future__ import annotations

import pytest

from hub.signing import Signer
from tests.contract.suite import SampleCertificates


@pytest.fixture(scope="module")
def certificates(pki):
    """Phytosanitary certificates signed by FR in the full SPSCertificate profile, numbered afresh in each module."""
    return SampleCertificates(Signer(pki.key_provider("FR")))


@pytest.fixture(scope="module")
def ephyto_certificates(pki):
    """The same certificates in the ePhyto profile, the one the IPPC Hub carries (its tests)."""
    return SampleCertificates(Signer(pki.key_provider("FR")), profile="ephyto")
