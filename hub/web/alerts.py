"""``/console/alerts``: the alerts an operator must act on, in the person's scope, refreshed every 30 seconds by htmx
(which asks for the list alone: ``HX-Request``). What raises and clears them: :mod:`hub.notify.alerts`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from hub.api.auth import Client
from hub.api.deps import read_session
from hub.errors import InputError
from hub.notify.alerts import AlertKind
from hub.notify.alerts_store import STATES, alert_view, list_alerts
from hub.web.session import console_client
from hub.web.templating import render

router = APIRouter(include_in_schema=False)
#: Alerts shown at most (the oldest beyond are in ``GET /v1/alerts`` pages).
PAGE = 200


@router.get("/console/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, state: str = "open", kind: str = "", client: Client = Depends(console_client), session: Session = Depends(read_session)) -> HTMLResponse:
    """The alerts of the person's scope, newest raised first; ``state`` open, cleared or all; ``kind`` one kind."""
    if state not in STATES:
        raise InputError(f"state must be one of {', '.join(STATES)}, not {state!r}", where="state")
    kinds = [k.value for k in AlertKind]
    if kind and kind not in kinds:
        raise InputError(f"kind must be one of {', '.join(kinds)}, not {kind!r}", where="kind")
    total, rows = list_alerts(session, client.scope, state=state, kind=kind or None, limit=PAGE)
    template = "alerts/table.html" if request.headers.get("HX-Request") == "true" else "alerts/index.html"
    return render(request, template, alerts=[_shown(row) for row in rows], total=total, state=state, kind=kind or None, states=STATES, kinds=kinds)


def _shown(row) -> dict:
    view = alert_view(row)
    view.update(since=row.since, raised_at=row.raised_at, cleared_at=row.cleared_at)
    return view
