"""Which trace events a subscriber sees, and reading them in order: shared by the SSE stream and the webhooks.

Filters (all optional, all must hold): ``document`` (document id), ``correlation`` (correlation id),
``counterpart`` (the message's destination), ``country`` (importing country, ISO alpha-2), ``product`` (HS code
prefix: any of the event's products starts with it), ``event`` (prefix of the event name, e.g. ``message.`` or
``non_conformity.``). A reader always sees only its tenant's events, unless its scope is ``*`` (an operator).

Readers keep a cursor, the id of the last event they have been through, and ask for what follows it.
:func:`read_events` returns the matching events and how far it looked, so that a cursor moves past events that did
not match. On PostgreSQL an id is taken at insert and becomes visible at commit, so a transaction still open can
later reveal an id *below* one already read; the reader therefore stops before a gap in the ids until the row
after the gap is ``GAP_GRACE_SECONDS`` old (a gap that old is a rolled-back transaction). SQLite has one writer at
a time, so its ids become visible in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from hub.scope import Scope
from hub.store.models import TraceEvent, utcnow

GAP_GRACE_SECONDS = 10.0
FILTER_NAMES = ("document", "correlation", "counterpart", "country", "product", "event")


class EventFilters(BaseModel):
    """The filters of one SSE stream or webhook subscription; stored as JSON on a subscription."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    document: str | None = Field(None, max_length=36, description="document id")
    correlation: str | None = Field(None, max_length=64, description="correlation id")
    counterpart: str | None = Field(None, max_length=60, description="destination, e.g. ephyto_hub")
    country: str | None = Field(None, pattern=r"^[A-Za-z]{2}$", description="importing country (ISO 3166 alpha-2)")
    product: str | None = Field(None, pattern=r"^[0-9A-Za-z.]{1,20}$", description="HS code prefix, e.g. 0808")
    event: str | None = Field(None, max_length=60, description="event name prefix, e.g. message. or non_conformity.")

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    def as_dict(self) -> dict[str, str]:
        """The filters that are set (what a subscription stores and shows)."""
        return self.model_dump(exclude_none=True)

    def statement(self, *, tenant: str, after: int, upto: int | None, limit: int):
        """SELECT of the events after id ``after`` (up to ``upto``) matching the filters, by id. The product
        filter is a superset here (a text match on the JSON list): :meth:`matches` is exact."""
        query = select(TraceEvent).where(TraceEvent.id > after).order_by(TraceEvent.id).limit(limit)
        if upto is not None:
            query = query.where(TraceEvent.id <= upto)
        query = Scope.of(tenant).restrict(query, TraceEvent.tenant)
        if self.document:
            query = query.where(TraceEvent.document_id == self.document)
        if self.correlation:
            query = query.where(TraceEvent.correlation_id == self.correlation)
        if self.counterpart:
            query = query.where(TraceEvent.destination == self.counterpart)
        if self.country:
            query = query.where(TraceEvent.country == self.country)
        if self.event:
            query = query.where(TraceEvent.event.like(_escape_like(self.event) + "%", escape="\\"))
        if self.product:
            # JSON text of a list of strings: a code starting with the prefix shows as '"<prefix>' in it.
            query = query.where(cast(TraceEvent.products, Text).like('%"' + _escape_like(self.product) + "%", escape="\\"))
        return query

    def matches(self, event: TraceEvent) -> bool:
        """The exact test of the filters that SQL cannot do the same way on both engines (product prefix)."""
        if self.product:
            return any(str(code).startswith(self.product) for code in event.products or [])
        return True


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class EventPage:
    """Matching events in id order, and ``cursor``: the id the reader may resume after (≥ the last event's)."""

    events: list[TraceEvent] = field(default_factory=list)
    cursor: int = 0


def visible_horizon(session: Session, after: int, *, grace_seconds: float = GAP_GRACE_SECONDS, scan: int = 1000) -> int:
    """The highest id up to which every event after ``after`` is committed, so that a reader may move its cursor
    there without ever missing an event that commits later. See the module docstring for PostgreSQL's gaps."""
    if session.get_bind().dialect.name != "postgresql":
        # One writer at a time: an id not yet committed is above every committed one.
        return max(after, latest_event_id(session))
    rows = session.execute(select(TraceEvent.id, TraceEvent.at).where(TraceEvent.id > after).order_by(TraceEvent.id).limit(scan)).all()
    settled_before = utcnow() - timedelta(seconds=grace_seconds)
    horizon = after
    for row in rows:
        if row.id != horizon + 1 and row.at > settled_before:
            break
        horizon = row.id
    return horizon


def read_events(session: Session, filters: EventFilters, *, tenant: str, after: int, limit: int = 100, page: int = 200, grace_seconds: float = GAP_GRACE_SECONDS) -> EventPage:
    """Up to ``limit`` events after ``after`` that ``tenant`` (``*``: all) may see and ``filters`` match, oldest
    first. SQL pages of ``page`` rows are read until ``limit`` matches are found or the visible events run out, so
    that the exact product test after the query never shortens a page that has more to give."""
    horizon = visible_horizon(session, after, grace_seconds=grace_seconds)
    found: list[TraceEvent] = []
    cursor = after
    while cursor < horizon:
        rows: Sequence[TraceEvent] = session.scalars(filters.statement(tenant=tenant, after=cursor, upto=horizon, limit=page)).all()
        for row in rows:
            if filters.matches(row):
                found.append(row)
                if len(found) == limit:
                    return EventPage(found, row.id)
            cursor = row.id
        if len(rows) < page:
            # Nothing else up to the horizon matches: the reader may skip to it.
            cursor = horizon
    return EventPage(found, cursor)


def latest_event_id(session: Session) -> int:
    """The id of the newest event (0 when there is none): where a subscription "from now" starts."""
    return session.scalar(select(func.max(TraceEvent.id))) or 0


def event_data(event: TraceEvent) -> dict[str, Any]:
    """What a subscriber receives for one event (SSE ``data`` and webhook body)."""
    return {
        "id": event.id,
        "at": event.at.isoformat() if event.at else None,
        "correlation_id": event.correlation_id,
        "document_id": event.document_id,
        "message_id": event.message_id,
        "event": event.event,
        "actor": event.actor,
        "state": event.state,
        "counterpart": event.destination,
        "country": event.country,
        "products": list(event.products or []),
        "detail": event.detail or {},
    }
