"""The HTTP API: ``create_app(broker)`` assembles the routers and turns the hub's error tree into status codes.

Errors answer ``{"error": <kind>, "message": ..., "where": <field or XPath>, "report": <validation report>}``:
400 unreadable input, 401 no or unknown credentials, 403 a role or authority the caller may not act as
(hub.api.access), 404 not found or another tenant's object, 409 a key reused for
other content or a state that forbids the action, 422 invalid (with the full report) or untrusted signature, 503
a configuration fault.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hub.api import cites, connectors, customs, documents, events, inbound, messages, metrics, nonconformities, oauth, verify, webhooks
from hub.api.alerts import router as alerts_router
from hub.api.access import authorize
from hub.api.audit import install_audit
from hub.api.limits import RequestLimits
from hub.api.verify_public import router as public_verification
from hub.broker import Broker
from hub.errors import HubError, Unauthenticated, ValidationFailed


def status_of(exc: HubError) -> int:
    """The HTTP status the error declares (see the tree in :mod:`hub.errors`)."""
    return exc.status


def error_body(exc: HubError) -> dict:
    body: dict = {"error": type(exc).__name__, "message": getattr(exc, "message", None) or str(exc)}
    if getattr(exc, "where", None):
        body["where"] = exc.where
    if isinstance(exc, ValidationFailed):
        body["report"] = exc.report.model_dump(mode="json")
    problems = getattr(exc, "problems", None)
    if problems:
        body["problems"] = [{"field": p.path, "message": p.message} for p in problems]
    return body


def create_app(broker: Broker, *, title: str = "Trade-document hub") -> FastAPI:
    """The API over ``broker``. Routers that need the worker's side (events, webhooks, metrics) are included here
    too; the worker itself is started by ``hub serve`` beside the app."""
    app = FastAPI(
        title=title,
        version="0.1.0",
        description="Submit SPS certificates; follow their delivery, acknowledgements, traces and non-conformities. "
        "Authenticate with `Authorization: Bearer <API key or access token>` (`hub clients add`; `POST /v1/oauth/token` "
        "for a signed JWT assertion) or a registered TLS client certificate. What each role may call: hub/api/access.py.",
        # every route, present and future, goes through the one access policy (hub.api.access.POLICY)
        dependencies=[Depends(authorize)],
    )
    app.state.broker = broker
    app.state.client_cache = {}

    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, exc: HubError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        return JSONResponse(error_body(exc), status_code=status_of(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"error": "RequestInvalid", "message": "; ".join(f"{p['field']}: {p['message']}" for p in problems), "problems": problems}, status_code=422)

    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        """Liveness and readiness: the database answers."""
        try:
            with broker.database.sessions() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # any failure of the store means not ready
            return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "database": broker.database.dialect, "connectors": sorted(broker.connectors)})

    for module in (documents, messages, nonconformities, inbound, events, webhooks, metrics, verify, connectors, customs, cites, oauth):
        app.include_router(module.router)
    app.include_router(messages.payloads_router)
    app.include_router(alerts_router)  # /v1/alerts
    app.include_router(public_verification)  # no account: /v1/public/verify
    metrics.install_metrics(app)
    app.add_middleware(RequestLimits, max_body_bytes=broker.settings.max_body_bytes, limits=broker.settings.body_limits)
    install_audit(app)  # outermost: every request, even one the limits refuse, is audited; /v1/audit; secrets masked in logs
    return app
