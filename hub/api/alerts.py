"""``GET /v1/alerts``: the alerts an operator must act on (dead letters, answers overdue, counterparts failing,
permits expiring or expired, late simplified-procedure completions), each caller seeing its tenants' own; alerts of
a counterpart (tenant ``*``) only a caller who sees every tenant. See :mod:`hub.notify.alerts`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from hub.api.auth import caller, Client
from hub.api.deps import MAX_OFFSET, read_session
from hub.notify.alerts import AlertKind
from hub.notify.alerts_store import alert_view, list_alerts

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get("")
def alerts(
    client: Client = Depends(caller),
    session: Session = Depends(read_session),
    state: Literal["open", "cleared", "all"] = "open",
    kind: AlertKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """The alerts in the caller's scope, newest raised first: ``state`` open (default), cleared or all."""
    total, rows = list_alerts(session, client.scope, state=state, kind=kind.value if kind else None, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": [alert_view(row) for row in rows]}
