"""The API in tests.

:func:`api_client` is the hub's whole API over a broker (the ``api``, ``ched_api`` and ``permit_api`` fixtures of
tests/conftest.py). :func:`make_app` is a minimal app over the routers under test, with :func:`api_key` and documents and
trace events written straight to the store: the tests of events, webhooks and metrics share them."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.api.app import create_app
from hub.api.auth import Unauthenticated, create_client
from hub.config import Settings
from hub.errors import HubError, InputError, NotFound, PermissionDenied
from hub.store.models import Document, TraceEvent
from hub.store.payloads import put_payload
from hub.store.trace import add_event


#: The API clients :func:`api_client` makes: tenants' systems, and an administrator who sees every tenant.
API_CLIENTS = {"FR": "FR", "NL": "NL", "EC": "EC", "ops": "*"}


@contextmanager
def api_client(broker, *, tenant: str = "FR") -> Iterator[TestClient]:
    """The hub's API over ``broker``, calling as ``tenant``'s system; ``client.headers_of(name)`` gives the
    Authorization header of another client of :data:`API_CLIENTS` (``"NL"``, ``"EC"``, ``"ops"``…)."""
    with broker.database.transaction() as session:
        keys = {name: create_client(session, name=f"{name.lower()}-system", tenant=client_tenant)[1]
                for name, client_tenant in API_CLIENTS.items()}
    with TestClient(create_app(broker)) as client:
        client.headers["Authorization"] = f"Bearer {keys[tenant]}"
        client.headers_of = lambda name: {"Authorization": f"Bearer {keys[name]}"}
        yield client


def make_app(database, *routers) -> FastAPI:
    """A minimal app over ``routers``, answering the hub's errors with the statuses the real app uses."""
    app = FastAPI()
    app.state.broker = SimpleNamespace(database=database, settings=Settings(database_url=database.url), connectors={})
    app.state.client_cache = {}

    @app.exception_handler(HubError)
    async def _error(_request: Request, exc: HubError) -> JSONResponse:
        status = 401 if isinstance(exc, Unauthenticated) else 403 if isinstance(exc, PermissionDenied) else 404 if isinstance(exc, NotFound) else 422 if isinstance(exc, InputError) else 500
        return JSONResponse({"error": type(exc).__name__, "message": str(exc), "where": getattr(exc, "where", None)}, status_code=status)

    for router in routers:
        app.include_router(router)
    return app


def api_key(database, tenant: str = "FR", *, operator: bool = False) -> dict[str, str]:
    """Authorization headers for a new client of ``tenant``."""
    with database.transaction() as session:
        _, key = create_client(session, name=f"client-{uuid.uuid4().hex[:8]}", tenant=tenant, operator=operator)
    return {"Authorization": f"Bearer {key}"}


def add_document(session, *, tenant: str = "FR", country: str = "DE", products: list[str] | tuple[str, ...] = ("0808.10",), kind: str = "phyto", status: str = "original") -> Document:
    document = Document(
        id=str(uuid.uuid4()), tenant=tenant, correlation_id=str(uuid.uuid4()), kind=kind, issuing_country=tenant[:2] if tenant != "*" else "FR",
        exporting_country=tenant[:2], importing_country=country, certificate_number=f"CERT-{uuid.uuid4().hex[:10]}", status=status,
        product_codes=list(products), source_format="json", record={}, report={}, payload_digest=put_payload(session, b"<doc/>"), request_digest="0" * 64,
    )
    session.add(document)
    session.flush()
    return document


def add_events(database, specs: list[tuple[str, str | None]], **document_options) -> tuple[Document, list[int]]:
    """A new document and one committed trace event per ``(event name, destination)``; returns their ids."""
    with database.transaction() as session:
        document = add_document(session, **document_options)
        before = session.scalar(select(func.max(TraceEvent.id))) or 0
        for name, destination in specs:
            add_event(session, document=document, event=name, actor="test", destination=destination, state="queued")
        ids = session.scalars(select(TraceEvent.id).where(TraceEvent.document_id == document.id, TraceEvent.id > before).order_by(TraceEvent.id)).all()
        return document, list(ids)
