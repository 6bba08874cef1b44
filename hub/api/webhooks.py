"""``/v1/webhooks``: subscriptions that push trace events to a URL (see :mod:`hub.notify.webhooks` for what is
sent, how it is signed and retried).

A subscription belongs to the caller's tenant and only ever receives that tenant's events (an operator's receives
every tenant's). Its secret is returned once, by the ``POST`` that creates it; it cannot be read back.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any, Literal
import ipaddress
import socket
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.http import non_public_reason
from hub.api.auth import caller, Client
from hub.api.deps import get_broker, read_session
from hub.store.events import EventFilters, latest_event_id
from hub.broker import Broker
from hub.errors import InputError, NotFound
from hub.store.models import WebhookSubscription, utcnow

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookRequest(BaseModel):
    """A new subscription."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str = Field(max_length=500, description="where events are POSTed: an absolute http:// or https:// URL")
    secret: str | None = Field(None, min_length=16, max_length=200, description="HMAC key; generated when absent")
    filters: EventFilters = Field(default_factory=EventFilters)
    start: Literal["now", "beginning"] = Field("now", alias="from", description="events from now on, or the whole trace")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; the secret signs every request instead")
        return value.strip()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def subscription_view(sub: WebhookSubscription) -> dict[str, Any]:
    """A subscription as the API shows it: never its secret."""
    return {
        "id": sub.id,
        "url": sub.url,
        "filters": sub.filters or {},
        "active": sub.active,
        "created_at": _iso(sub.created_at),
        "delivery": {
            "last_event_id": sub.last_event_id,
            "failures": sub.failures,
            "last_error": sub.last_error,
            "next_attempt_at": _iso(sub.next_attempt_at),
        },
    }


def _visible(session: Session, subscription_id: str, client: Client) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or not client.scope.sees(sub.tenant):
        raise NotFound(f"no webhook subscription {subscription_id}", where="webhook_id")
    return sub


@router.post("", status_code=201)
def create(body: WebhookRequest, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """Subscribe ``url`` to the events matching ``filters``; the answer holds the secret, shown only this once. A
    target on loopback, a private or link-local network is refused unless the hub allows it
    (``HUB_WEBHOOK_PRIVATE_TARGETS=1``): events must not be a way into the hub's own network."""
    if not broker.settings.webhook_private_targets:
        reason = private_target(urlsplit(body.url).hostname or "")
        if reason:
            raise InputError(f"the target {reason}; only public addresses receive webhooks here", where="url")
    with broker.database.transaction() as session:
        sub = _new_subscription(session, body, tenant=client.scope.name)
    return {**subscription_view(sub), "secret": sub.secret}


def private_target(host: str) -> str | None:
    """Why ``host`` is no public target (loopback, private, link-local, reserved, multicast, a local name), or None."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost") or name.endswith(".local") or "." not in name and ":" not in name:
        return f"{host} is a local name"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        numeric = _inet_aton_form(name)
        if numeric is None:
            return None  # a DNS name: checked again each time a connection is made (connectors.http.public_only)
        name = numeric  # 127.1, 0x7f.0.0.1, 2130706433: what resolvers make of them
    reason = non_public_reason(name)
    return reason.replace(name, host, 1) if reason else None


def _inet_aton_form(name: str) -> str | None:
    """The dotted quad a resolver reads ``name`` as, when it is an IPv4 address in a short, octal, hexadecimal or
    integer form (``127.1``, ``0177.0.0.1``, ``0x7f000001``); None for a DNS name."""
    if not name or not all(part and (part.isdigit() or part.startswith("0x") and all(c in "0123456789abcdef" for c in part[2:])) for part in name.split(".")):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(name))
    except OSError:
        return None


def _new_subscription(session: Session, body: WebhookRequest, *, tenant: str) -> WebhookSubscription:
    now = utcnow()
    sub = WebhookSubscription(
        id=str(uuid.uuid4()),
        tenant=tenant,
        url=body.url,
        secret=body.secret or secrets.token_urlsafe(32),
        filters=body.filters.as_dict(),
        active=True,
        last_event_id=latest_event_id(session) if body.start == "now" else 0,
        failures=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(sub)
    session.flush()
    return sub


@router.get("")
def list_(client: Client = Depends(caller), session: Session = Depends(read_session)) -> dict:
    """The caller's subscriptions (every tenant's for an operator), oldest first, without secrets."""
    query = select(WebhookSubscription).order_by(WebhookSubscription.created_at, WebhookSubscription.id)
    query = client.scope.restrict(query, WebhookSubscription.tenant)
    return {"items": [subscription_view(sub) for sub in session.scalars(query).all()]}


@router.get("/{webhook_id}")
def get(webhook_id: str, client: Client = Depends(caller), session: Session = Depends(read_session)) -> dict:
    """One subscription and how far its delivery has come."""
    return subscription_view(_visible(session, webhook_id, client))


@router.delete("/{webhook_id}", status_code=204)
def delete(webhook_id: str, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> Response:
    """Stop and forget a subscription (a delivery in flight finishes its current event)."""
    with broker.database.transaction() as session:
        session.delete(_visible(session, webhook_id, client))
    return Response(status_code=204)
