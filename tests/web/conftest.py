"""Shared fixtures of the pages' tests: the site (API and pages) over a broker, and people logged into it.

- ``site``: a TestClient over :func:`hub.web.app.create_site` on the ``broker`` fixture (SQLite and PostgreSQL),
  logged in as nobody, sending no Origin header.
- ``person(role=…, tenant=…, acts_for=…)``: a new person (an API client with a password) logged into the console: a
  TestClient of its own (its own cookie), sending the site's Origin as a browser does; ``.person_name`` is its name.
- ``add_person(session, …)`` (a plain function) makes a person in the store without logging in.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from hub.api.auth import create_client

BASE_URL = "http://testserver"
PASSWORD = "correct horse battery"


def add_person(database, *, role: str = "operator", tenant: str | None = None, acts_for: str | None = None, password: str = PASSWORD, name: str | None = None) -> str:
    """A new person who logs in with ``password``; returns the name."""
    name = name or f"{role.split('_')[0]}-{uuid.uuid4().hex[:8]}"
    if acts_for is None and tenant is None and role in ("operator", "auditor"):
        acts_for = "FR"
    if tenant is None and role in ("issuing_authority", "foreign_authority"):
        tenant = "FR"
    with database.transaction() as session:
        create_client(session, name=name, role=role, tenant=tenant, acts_for=acts_for, password=password)
    return name


def log_in(client: TestClient, name: str, password: str = PASSWORD):
    """POST the login form as a browser on the site's page would; returns the response (not followed)."""
    return client.post("/console/login", data={"name": name, "password": password, "next": "/console"}, headers={"Origin": BASE_URL}, follow_redirects=False)


@pytest.fixture
def site_app(broker):
    from hub.web.app import create_site

    return create_site(broker)


@pytest.fixture
def site(site_app):
    with TestClient(site_app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def person(site_app, broker):
    """A factory: ``person(role="operator", acts_for="FR")`` → a TestClient logged in as a new person."""
    clients = []

    def make(role: str = "operator", *, tenant: str | None = None, acts_for: str | None = None) -> TestClient:
        name = add_person(broker.database, role=role, tenant=tenant, acts_for=acts_for)
        client = TestClient(site_app, base_url=BASE_URL, headers={"Origin": BASE_URL})
        clients.append(client)
        answer = log_in(client, name)
        assert answer.status_code == 303, answer.text
        client.person_name = name
        return client

    yield make
    for client in clients:
        client.close()
