"""``GET /v1/events``: the trace as a stream of Server-Sent Events, live, for dashboards and integrations.

Each event is sent as::

    id: <trace event id>
    event: <event name, e.g. message.acknowledged>
    data: {"id": …, "at": …, "correlation_id": …, "document_id": …, "message_id": …, "event": …, "actor": …,
           "state": …, "counterpart": …, "country": …, "products": [...], "detail": {...}}   (on one line)

The stream reads the database (so it sees what workers in other processes write) every ``poll_seconds``, in a
thread, and sends a ``: keep-alive`` comment when it has been quiet for ``keepalive_seconds``. A client resumes
where it stopped with the ``Last-Event-ID`` header (browsers' EventSource send it when they reconnect) or the
``after`` query parameter; the header wins, since a reconnecting EventSource keeps its first URL. ``once=true``
closes the stream when the events available now have been sent; ``limit=N`` closes it after N events:
``curl -N -H 'Authorization: Bearer …' 'http://127.0.0.1:8000/v1/events?event=message.&once=true'``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated, AsyncIterator

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import MAX_EVENT_ID
from hub.api.auth import caller, Client
from hub.store.events import EventFilters, EventPage, event_data, read_events
from hub.errors import InputError
from hub.store.db import Database
from hub.store.models import TraceEvent

router = APIRouter(tags=["events"])


@dataclass(frozen=True)
class StreamTiming:
    """How often a stream reads the database, when it sends a keep-alive, how many events it reads at once.
    Set ``app.state.event_stream`` to another one to change them (tests do)."""

    poll_seconds: float = 0.25
    keepalive_seconds: float = 15.0
    batch: int = 100


def format_event(event: TraceEvent) -> str:
    """One event in the ``text/event-stream`` format."""
    data = json.dumps(event_data(event), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.event}\ndata: {data}\n\n"


@router.get("/v1/events", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def stream_events(
    request: Request,
    client: Client = Depends(caller),
    document: str | None = Query(None, description="document id"),
    correlation: str | None = Query(None, description="correlation id"),
    counterpart: str | None = Query(None, description="destination, e.g. ephyto_hub"),
    country: str | None = Query(None, description="importing country (ISO alpha-2)"),
    product: str | None = Query(None, description="HS code prefix"),
    event: str | None = Query(None, description="event name prefix, e.g. message. or non_conformity."),
    after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID, description="resume after this event id (Last-Event-ID wins)")] = None,
    once: Annotated[bool, Query(description="close when the events available now have been sent")] = False,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="close after this many events")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Trace events of the caller's tenant matching every filter, oldest first, then live as they happen."""
    filters = _filters(document=document, correlation=correlation, counterpart=counterpart, country=country, product=product, event=event)
    start = _resume_point(last_event_id, after)
    timing: StreamTiming = getattr(request.app.state, "event_stream", StreamTiming())
    body = _events(request, request.app.state.broker.database, filters, tenant=client.scope.name, after=start, once=once, limit=limit, timing=timing)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _filters(**values: str | None) -> EventFilters:
    try:
        return EventFilters(**values)
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]) from exc


def _resume_point(last_event_id: str | None, after: int | None) -> int:
    if last_event_id is not None and last_event_id.strip():
        try:
            value = int(last_event_id.strip())
        except ValueError:
            raise InputError(f"must be the id of an event (an integer), not {last_event_id!r}", where="Last-Event-ID") from None
        if not 0 <= value <= MAX_EVENT_ID:
            raise InputError(f"must be an event id from 0 to {MAX_EVENT_ID}", where="Last-Event-ID")
        return value
    return after or 0


async def _events(request: Request, database: Database, filters: EventFilters, *, tenant: str, after: int, once: bool, limit: int | None, timing: StreamTiming) -> AsyncIterator[str]:
    cursor, sent = after, 0
    quiet_since = time.monotonic()
    while True:
        wanted = timing.batch if limit is None else min(timing.batch, limit - sent)
        page = await run_in_threadpool(_read, database, filters, tenant, cursor, wanted)
        for row in page.events:
            yield format_event(row)
            sent += 1
        if page.events:
            quiet_since = time.monotonic()
        moved, cursor = page.cursor > cursor, page.cursor
        if limit is not None and sent >= limit:
            return
        if moved:
            continue  # more may be waiting right behind: read again before sleeping
        if once or await request.is_disconnected():
            return
        if time.monotonic() - quiet_since >= timing.keepalive_seconds:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await anyio.sleep(timing.poll_seconds)


def _read(database: Database, filters: EventFilters, tenant: str, after: int, limit: int) -> EventPage:
    with database.sessions() as session:
        return read_events(session, filters, tenant=tenant, after=after, limit=limit)
