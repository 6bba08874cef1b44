"""``/v1/messages``: the outbound messages (one per document and destination), their attempts, acknowledgements and
trace, the resend of a dead letter under the same message identity, and giving a message up (abandon, with a
reason)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.api.auth import caller, Client
from hub.api.deps import MAX_OFFSET, get_broker, read_session
from hub.api.views import acknowledgement_view, attempt_view, event_view, message_view
from hub.broker import Broker
from hub.store.states import MAX_REASON, MessageState, abandon
from hub.errors import NotFound
from hub.store.models import Acknowledgement, DeliveryAttempt, Document, Message, TraceEvent
from hub.store.payloads import get_payload
from hub.store.trace import message_timeline

router = APIRouter(prefix="/v1/messages", tags=["messages"])


def visible_message(session: Session, message_id: str, client: Client) -> Message:
    message = session.get(Message, message_id)
    if message is None or not client.scope.sees(message.document.tenant):
        raise NotFound(f"no message {message_id}", where="id")
    return message


@router.get("")
def list_messages(
    client: Client = Depends(caller),
    session: Session = Depends(read_session),
    destination: str | None = None,
    status: Annotated[MessageState | None, Query(description="message state, e.g. dead_letter")] = None,
    document_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """Messages by destination and state (``status=dead_letter`` lists the dead letters), newest first."""
    query = select(Message).join(Document, Message.document_id == Document.id)
    query = client.scope.restrict(query, Document.tenant)
    if destination:
        query = query.where(Message.destination == destination)
    if status:
        query = query.where(Message.state == status.value)
    if document_id:
        query = query.where(Message.document_id == document_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Message.created_at.desc(), Message.id).limit(limit).offset(offset)).all()
    return {"total": total, "limit": limit, "offset": offset, "items": [message_view(m) for m in rows]}


@router.get("/{message_id}")
def read_message(message_id: str, client: Client = Depends(caller), session: Session = Depends(read_session)) -> dict:
    """One message with every delivery attempt and every answer of the counterpart."""
    message = visible_message(session, message_id, client)
    attempts = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == message_id).order_by(DeliveryAttempt.id)).all()
    acks = session.scalars(select(Acknowledgement).where(Acknowledgement.message_id == message_id).order_by(Acknowledgement.received_at, Acknowledgement.id)).all()  # as they arrived
    return {**message_view(message), "attempts": [attempt_view(a) for a in attempts], "acknowledgements": [acknowledgement_view(a) for a in acks]}


@router.get("/{message_id}/trace")
def message_trace(message_id: str, client: Client = Depends(caller), session: Session = Depends(read_session)) -> dict:
    """Every hop of this message, with the document's own events (submission, validation, signing, routing)."""
    message = visible_message(session, message_id, client)
    events = message_timeline(session, message)
    return {"message_id": message_id, "correlation_id": message.document.correlation_id, "state": message.state, "events": [event_view(e) for e in events]}


@router.post("/{message_id}/resend", status_code=202)
async def resend(message_id: str, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """Queue a dead-lettered or rejected message again; it keeps its id, so the counterpart sees the same message."""
    message = await run_in_threadpool(broker.resend, message_id, tenant=client.scope.name, actor=client.actor)
    return {"id": message.id, "destination": message.destination, "state": message.state}


class AbandonRequest(BaseModel):
    """Why the message is given up: kept on its trace with who did it."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(..., min_length=1, max_length=MAX_REASON, description="why the message is given up, e.g. 'sent by post instead'")


@router.post("/{message_id}/abandon")
async def abandon_message(message_id: str, body: AbandonRequest, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """Give up a dead letter or a message whose answer never came: it becomes ``abandoned`` for good (409 from
    another state); the trace records who did it and why."""
    return await run_in_threadpool(abandon_visible, broker, message_id, client, body.reason)


def abandon_visible(broker: Broker, message_id: str, client: Client, reason: str, *, actor: str | None = None) -> dict:
    """Abandon one of ``client``'s messages (404 for another tenant's), in one transaction, traced as done by
    ``actor`` (default: the client)."""
    with broker.database.transaction() as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or not client.scope.sees(message.document.tenant):
            raise NotFound(f"no message {message_id}", where="id")
        abandon(session, message, actor=actor or client.actor, reason=reason)
        return {"id": message.id, "destination": message.destination, "state": message.state}


payloads_router = APIRouter(prefix="/v1/payloads", tags=["messages"])


@payloads_router.get("/{digest}", response_class=Response, responses={200: {"content": {"application/xml": {}, "application/octet-stream": {}}}})
def read_payload(digest: str, client: Client = Depends(caller), session: Session = Depends(read_session)) -> Response:
    """A raw payload named by a trace event or a delivery attempt (request, response, acknowledgement, evidence),
    if it belongs to one of the caller's documents."""
    if not client.scope.everything:
        mine = client.scope.restrict(select(Document.id), Document.tenant)
        owned = (
            session.scalar(client.scope.restrict(select(func.count()).select_from(TraceEvent).where(TraceEvent.payload_digest == digest), TraceEvent.tenant))
            or session.scalar(
                select(func.count())
                .select_from(DeliveryAttempt)
                .join(Message, DeliveryAttempt.message_id == Message.id)
                .where(or_(DeliveryAttempt.request_digest == digest, DeliveryAttempt.response_digest == digest), Message.document_id.in_(mine))
            )
        )
        if not owned:
            raise NotFound(f"no payload {digest}", where="digest")
    payload = get_payload(session, digest)
    if payload is None:
        raise NotFound(f"no payload {digest}", where="digest")
    return Response(payload.content, media_type=payload.media_type)
