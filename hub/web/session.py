"""People in the console: logging in with a name and password, the session cookie, logging out.

A person is an API client with a password (``hub clients add alice --role operator --acts-for FR --password``). A
login makes a session: an opaque token (``hss_…``) kept only as its SHA-256 in the table of access tokens, valid
:data:`SESSION_HOURS`, sent back in the ``hub_session`` cookie (HttpOnly, SameSite=Strict, Secure over HTTPS). The
API's authentication (:func:`hub.api.auth.current_client`) accepts that cookie, so the one access policy of
:mod:`hub.api.access` applies to people as to machines, and a change made with it must come from the hub's own pages
(Origin check). A foreign authority verifies certificates on the public pages: it may not log into the console.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, select

from hub.api.auth import SESSION_COOKIE, SESSION_PREFIX, Client, Role, current_client, hash_key, hash_password, password_matches, same_origin
from hub.api.ratelimit import attempt
from hub.store.models import ApiClient, OAuthToken, utcnow
from hub.web.templating import render

router = APIRouter(include_in_schema=False)

SESSION_HOURS = 8
LOGIN_PATH = "/console/login"
HOME = "/console"
#: Roles that may log into the console (a foreign authority uses the public verification pages).
#: Failed logins per minute from one client address (scrypt costs ~50 ms a try; this bounds guessing far lower).
LOGINS_PER_MINUTE = 10
CONSOLE_ROLES = frozenset({Role.ISSUING_AUTHORITY, Role.OPERATOR, Role.AUDITOR, Role.ADMINISTRATOR})
# checked against an unknown name too, so that the answer takes as long whether the name exists or not
_DUMMY_HASH = hash_password("not-a-password-anyone-has")


def console_client(request: Request) -> Client:
    """FastAPI dependency of the console's pages: the person (or client) logged in. Not logged in, the site answers
    303 to the login page; a role the page does not allow, a 403 page (see :func:`hub.web.app.create_site`)."""
    return current_client(request, None, None)


def login_url(next_path: str) -> str:
    """The login page, coming back to ``next_path`` afterwards."""
    return f"{LOGIN_PATH}?next={quote(next_path, safe='')}"


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of the console only (never another site)."""
    if value and value.startswith(HOME) and not value.startswith("//") and "\\" not in value and "\n" not in value and "\r" not in value:
        return value[:2000]
    return HOME


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form."""
    return render(request, "console/login.html", next=safe_next(next), error=None, name="")


@router.post(LOGIN_PATH, response_class=HTMLResponse)
async def login(request: Request, name: str = Form("", max_length=100), password: str = Form("", max_length=200), next: str = Form(HOME, max_length=2000)) -> Response:
    """Check the name and password and start a session; 401 with the form again when they do not match."""
    target = safe_next(next)
    if (request.headers.get("origin") or request.headers.get("referer")) and not same_origin(request):
        return render(request, "console/login.html", status_code=403, next=target, name=name, error="login.cross_site")
    broker = request.app.state.broker
    wait = attempt(request, broker, "failed console logins", per_minute=LOGINS_PER_MINUTE, spend=False)
    if wait:  # guessing passwords: a few failures from one address, then one try every few seconds
        return render(request, "console/login.html", status_code=429, headers={"Retry-After": str(wait)}, next=target, name=name, error="login.too_many")
    outcome = await run_in_threadpool(start_session, broker, name.strip(), password)
    if outcome == "unknown":
        attempt(request, broker, "failed console logins", per_minute=LOGINS_PER_MINUTE)
    if outcome in ("unknown", "refused"):
        error = "login.wrong" if outcome == "unknown" else "login.not_for_role"
        return render(request, "console/login.html", status_code=401 if outcome == "unknown" else 403, next=target, name=name, error=error)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, outcome, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


def start_session(broker, name: str, password: str) -> str:
    """A new session token for the person ``name`` whose password this is; ``"unknown"`` for a wrong name or
    password (the same answer for both), ``"refused"`` for a role that may not use the console."""
    with broker.database.sessions() as session:
        row = session.scalars(select(ApiClient).where(ApiClient.name == name)).first() if name else None
        stored, client_id, role = (row.password_hash, row.id, row.role) if row is not None else (None, None, None)
    if not password_matches(stored or _DUMMY_HASH, password) or stored is None:
        return "unknown"
    if Role(role) not in CONSOLE_ROLES:
        return "refused"
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with broker.database.transaction() as session:
        session.execute(delete(OAuthToken).where(OAuthToken.expires_at < now))
        session.add(OAuthToken(token_hash=hash_key(token), client_id=client_id, expires_at=now + timedelta(hours=SESSION_HOURS), created_at=now))
    return token


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    """End the session: its token is deleted (it no longer opens anything), the cookie cleared."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and not same_origin(request):
        return render(request, "console/error.html", status_code=403, title_key="error.forbidden", message="a logout must come from the hub's own pages")
    if token:
        await run_in_threadpool(end_session, request.app, token)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def end_session(app, token: str) -> None:
    """Delete the session of ``token`` and forget it in the app's cache of callers."""
    digest = hash_key(token)
    with app.state.broker.database.transaction() as session:
        session.execute(delete(OAuthToken).where(OAuthToken.token_hash == digest))
    app.state.client_cache.pop(digest, None)
