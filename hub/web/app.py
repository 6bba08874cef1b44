"""``create_site(broker)``: the API (:func:`hub.api.app.create_app`) plus the pages: static files at ``/static``,
every router of :data:`hub.web.pages.PAGE_ROUTERS`, and ``/`` leading to the console.

Errors on a page answer a page, not JSON: not logged in, 303 to the login page (coming back afterwards); a role the
page does not allow, a 403 page; anything else the hub refuses, a page with its status and message. The API's routes
keep their JSON answers.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from hub.api.app import create_app
from hub.broker import Broker
from hub.errors import HubError, PermissionDenied, Unauthenticated
from hub.web.pages import PAGE_ROUTERS
from hub.web.session import HOME, login_url
from hub.web.templating import STATIC, render

#: Paths answered as pages (HTML), errors included.
PAGE_PREFIXES = ("/console",)


def create_site(broker: Broker) -> FastAPI:
    """The hub's whole HTTP face over ``broker``: API, console and public pages."""
    app = create_app(broker)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for spec in PAGE_ROUTERS:
        module, _, attribute = spec.partition(":")
        app.include_router(getattr(importlib.import_module(module), attribute))

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(HOME, status_code=303)

    api_error = app.exception_handlers[HubError]
    api_invalid = app.exception_handlers[RequestValidationError]

    async def _hub_error(request: Request, exc: HubError) -> Response:
        if not is_page(request):
            return await api_error(request, exc)
        if isinstance(exc, Unauthenticated):
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(login_url(wanted if request.method == "GET" else HOME), status_code=303)
        title = "error.forbidden" if isinstance(exc, PermissionDenied) else "error.title"
        where = getattr(exc, "where", None)
        message = getattr(exc, "message", None) or str(exc)
        return render(request, "console/error.html", status_code=exc.status, title_key=title, message=f"{where}: {message}" if where and where not in ("role", "route") else message)

    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not is_page(request):
            return await api_invalid(request, exc)
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors())
        return render(request, "console/error.html", status_code=422, title_key="error.invalid", message=message)

    app.add_exception_handler(HubError, _hub_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    return app


def is_page(request: Request) -> bool:
    """Whether ``request`` asks for a page (its errors are pages too)."""
    return request.url.path.startswith(PAGE_PREFIXES)
