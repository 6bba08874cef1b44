"""``POST /v1/inbound/{connector}``: acknowledgements, business responses and documents pushed by counterparts.

Counterparts do not hold API keys: the connector authenticates what they push (a signature from a trusted
authority, for the point-to-point connector; the WS-Security signature of the P-Mode's access point, for AS4) before
anything is correlated. A connector that answers in its own protocol (AS4) gets the exchange whole: what it replies
(a receipt, an ebMS error signal) is the HTTP answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from hub.api.deps import get_broker
from hub.api.views import acknowledgement_view
from hub.broker import Broker
from hub.errors import PermissionDenied, SignatureError

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])


@router.post("/{connector}", status_code=200, response_model=None)
async def inbound(connector: str, request: Request, broker: Broker = Depends(get_broker)) -> dict | Response:
    """Correlate a pushed answer to its message: ``404`` if it answers nothing the hub sent, ``403`` if unsigned or
    signed by an authority the hub does not trust, ``422`` if unreadable. For an AS4 counterpart this is its access
    point's endpoint: the answer is the AS4 receipt or error signal."""
    body = await request.body()
    if broker.takes_exchanges(connector):
        reply = await run_in_threadpool(broker.exchange, connector, body, dict(request.headers))
        return Response(reply.body, status_code=reply.status, media_type=reply.media_type)
    try:
        acks = await run_in_threadpool(broker.receive_inbound, connector, body, dict(request.headers))
    except SignatureError as exc:
        raise PermissionDenied(f"acknowledgement refused: {exc}", where="ds:Signature") from exc
    return {"acknowledgements": [acknowledgement_view(a) for a in acks]}
