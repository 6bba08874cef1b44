"""``hub clients add | list | remove``: roles, the authorities an operator acts for, TLS certificates and JWT keys;
every refusal a one-line message naming the option, exit 2, never a traceback, nothing stored."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from hub.cli import app
from hub.store.db import Database
from hub.store.models import ApiClient


def hub(url: str, *args: str):
    result = CliRunner().invoke(app, [*args, "--database-url", url])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception  # never a traceback
    return result


def stored(url: str) -> dict[str, tuple]:
    database = Database(url)
    try:
        with database.sessions() as session:
            return {c.name: (c.role, c.tenant, c.acts_for, c.key_hash is not None) for c in session.query(ApiClient)}
    finally:
        database.dispose()


def test_each_role_is_made_with_what_it_is_bound_to(sqlite_database_url, pki, tmp_path):
    url = sqlite_database_url
    jwt_key = tmp_path / "client.pub.pem"
    jwt_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    made = {
        "fr": hub(url, "clients", "add", "fr", "--tenant", "fr"),
        "ops": hub(url, "clients", "add", "ops", "--tenant", "*"),
        "broker": hub(url, "clients", "add", "broker", "--role", "operator", "--acts-for", "fr,nl"),
        "audit": hub(url, "clients", "add", "audit", "--role", "auditor", "--acts-for", "*"),
        "usda": hub(url, "clients", "add", "usda", "--role", "foreign-authority", "--tenant", "US"),
        "border": hub(url, "clients", "add", "border", "--tenant", "FR", "--certificate", str(pki.client_certs["FR"])),
        "signer": hub(url, "clients", "add", "signer", "--role", "operator", "--acts-for", "FR", "--jwt-public-key", str(jwt_key)),
    }
    for name, result in made.items():
        assert result.exit_code == 0, (name, result.output)
    assert made["fr"].stdout.startswith("hub_") and "issuing_authority, tenant FR" in made["fr"].stderr
    assert made["border"].stdout == "" and "TLS certificate" in made["border"].stderr  # no key for a certificate client
    assert made["signer"].stdout == "" and "signed JWT" in made["signer"].stderr
    assert stored(url) == {
        "fr": ("issuing_authority", "FR", None, True), "ops": ("administrator", "*", None, True), "broker": ("operator", None, "FR,NL", True),
        "audit": ("auditor", None, "*", True), "usda": ("foreign_authority", "US", None, True), "border": ("issuing_authority", "FR", None, False),
        "signer": ("operator", None, "FR", False),
    }
    listed = hub(url, "clients", "list")
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 7 and "hub_" not in listed.stdout
    assert hub(url, "clients", "remove", "broker").exit_code == 0 and "broker" not in stored(url)
    gone = hub(url, "clients", "remove", "broker")
    assert gone.exit_code == 2 and "no client named 'broker'" in gone.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--role", "operator", "--acts-for", "*"], "never for every tenant"),
    (["--role", "operator"], "acts-for: an operator names the authorities"),
    (["--role", "operator", "--acts-for", "FR", "--tenant", "FR"], "has no tenant of its own"),
    (["--role", "auditor", "--acts-for", "FR,*"], "stands alone"),
    (["--role", "auditor", "--acts-for", "France"], "acts-for 'France'"),
    (["--role", "administrator", "--tenant", "FR"], "--tenant: an administrator sees every tenant"),
    (["--role", "king", "--tenant", "FR"], "role 'king'"),
    (["--tenant", ""], "ISO 3166"),
    (["--tenant", "FR", "--certificate", "/no/such.pem"], "--certificate /no/such.pem: cannot be read"),
    (["--tenant", "FR", "--jwt-public-key", "__file__"], "not a PEM file"),
    (["--tenant", "FR", "--certificate-subject", "not a name"], "RFC 4514"),
])
def test_refusals_are_one_line_naming_the_option_and_store_nothing(sqlite_database_url, args, says):
    args = [__file__ if a == "__file__" else a for a in args]
    result = hub(sqlite_database_url, "clients", "add", "refused", *args)
    assert result.exit_code == 2 and says in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert stored(sqlite_database_url) == {}


def test_a_certificate_or_a_name_is_registered_once(sqlite_database_url, pki):
    url = sqlite_database_url
    assert hub(url, "clients", "add", "one", "--tenant", "FR", "--certificate", str(pki.client_certs["FR"])).exit_code == 0
    again = hub(url, "clients", "add", "two", "--tenant", "FR", "--certificate", str(pki.client_certs["FR"]))
    assert again.exit_code == 2 and "--certificate: this certificate is registered for another client already" in again.stderr
    taken = hub(url, "clients", "add", "one", "--tenant", "NL")
    assert taken.exit_code == 2 and "exists already" in taken.stderr
