"""``/v1/audit``: the audit log (:mod:`hub.store.audit`), read page by page, and the proof that it is whole.

Both routes read every tenant's actions, so only a caller that sees every tenant reads them (the access policy,
:mod:`hub.api.access`, says which roles may call them at all); each read is itself recorded (:mod:`hub.api.audit`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from hub.api.auth import caller, Client
from hub.api.deps import MAX_EVENT_ID, read_session
from hub.errors import InputError, PermissionDenied
from hub.store import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def _reader(client: Client = Depends(caller)) -> Client:
    if not client.sees_every_tenant:
        raise PermissionDenied("the audit log spans every tenant: only a client that sees every tenant reads it", where="role")
    return client


@router.get("")
def list_entries(
    _client: Client = Depends(_reader),
    session: Session = Depends(read_session),
    since: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="entries after this sequence number")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """The entries after ``since``, oldest first; ``next`` is the ``since`` of the following page (null at the end)."""
    rows = audit.entries(session, since=since, limit=limit)
    return {"entries": [audit.as_dict(e) for e in rows], "next": rows[-1].seq if len(rows) == limit else None}


@router.get("/verify")
def verify_chain(
    _client: Client = Depends(_reader),
    session: Session = Depends(read_session),
    anchor: Annotated[str | None, Query(max_length=100, description="a head kept elsewhere, <seq>:<sha256 hex>")] = None,
) -> dict:
    """Walk the whole chain: ``intact``, the number of entries, the head (keep ``anchor`` elsewhere and give it back
    later to show that nothing was cut or rewritten), and where it breaks when it does."""
    try:
        verdict = audit.verify(session, anchor=anchor)
    except ValueError as exc:
        raise InputError(str(exc), where="anchor") from None
    return {
        "intact": verdict.intact, "count": verdict.count, "head": {"seq": verdict.head_seq, "hash": verdict.head_hash},
        "anchor": verdict.anchor, "broken_at": verdict.broken_at, "reason": verdict.reason,
    }
