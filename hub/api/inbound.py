"""``POST /v1/inbound/{connector}``: acknowledgements and business responses pushed by counterparts.

Counterparts do not hold API keys: the connector authenticates what they push (a signature from a trusted
authority, for the point-to-point connector) before anything is correlated.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from hub.api.deps import get_broker
from hub.api.views import acknowledgement_view
from hub.broker import Broker
from hub.errors import PermissionDenied, SignatureError

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])


@router.post("/{connector}", status_code=200)
async def inbound(connector: str, request: Request, broker: Broker = Depends(get_broker)) -> dict:
    """Correlate a pushed answer to its message: ``404`` if it answers nothing the hub sent, ``403`` if unsigned or
    signed by an authority the hub does not trust, ``422`` if unreadable."""
    body = await request.body()
    try:
        acks = await run_in_threadpool(broker.receive_inbound, connector, body, dict(request.headers))
    except SignatureError as exc:
        raise PermissionDenied(f"acknowledgement refused: {exc}", where="ds:Signature") from exc
    return {"acknowledgements": [acknowledgement_view(a) for a in acks]}
