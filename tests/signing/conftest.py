"""Fixtures of the signing tests."""

from __future__ import annotations

import pytest

from hub.signing import init_dev_pki


@pytest.fixture(scope="session")
def rsa_and_ec_pki(tmp_path_factory):
    """A development PKI as ``hub certs init`` makes it (3072-bit RSA keys) for FR, with DE signing on an EC key
    (P-256): the PKI's own tests and the signature tests, which need both key kinds under one CA."""
    return init_dev_pki(tmp_path_factory.mktemp("rsa-and-ec-pki"), authorities=("FR", "DE"), ec_authorities=("DE",))
