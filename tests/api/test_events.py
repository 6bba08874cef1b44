"""The event filter and ``GET /v1/events`` (Server-Sent Events), on SQLite and PostgreSQL.

The minimal app and the documents and trace events written straight to the store come from tests/support/api.py.
"""

from __future__ import annotations

import json
import threading
import time

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sqlalchemy import select

from hub.api import events
from hub.api.events import StreamTiming
from hub.store.events import EventFilters, read_events
from hub.store.models import TraceEvent
from hub.store.appends import flush_appends
from hub.store.trace import add_event
from tests.support.api import add_document, add_events, api_key, make_app


def sse_events(text: str) -> list[dict]:
    """The events of a ``text/event-stream`` body: ``{"id", "event", "data"}`` each; comments dropped."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if fields:
            found.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return found


# --- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture
def events_app(database) -> FastAPI:
    """A minimal app over the events router."""
    return make_app(database, events.router)


@pytest.fixture
def events_http(events_app) -> TestClient:
    with TestClient(events_app) as client:
        yield client


# --- the filter -----------------------------------------------------------------------------------------------------


def test_read_events_pages_through_other_tenants_and_products_in_order(database):
    expected = []
    for index in range(7):
        add_events(database, [("document.received", None)], tenant="DE")  # another tenant: never seen
        add_events(database, [("document.received", None)], products=["0603.11"])  # other product
        _, ids = add_events(database, [("document.received", None), ("message.queued", "traces_nt")], products=["0603.11", "0808.10"])
        expected += ids
    with database.sessions() as session:
        page = read_events(session, EventFilters(product="0808"), tenant="FR", after=0, limit=5, page=2)
        assert [e.id for e in page.events] == expected[:5]
        assert page.cursor == expected[4]
        rest = read_events(session, EventFilters(product="0808"), tenant="FR", after=page.cursor, limit=100, page=2)
        assert [e.id for e in rest.events] == expected[5:]
        newest = session.query(TraceEvent).order_by(TraceEvent.id.desc()).first().id
        assert rest.cursor == newest  # moved past the events that did not match
        assert read_events(session, EventFilters(), tenant="FR", after=rest.cursor).events == []


def test_product_prefix_matches_only_the_start_of_a_code(database):
    _, apple = add_events(database, [("document.received", None)], products=["0808.10"])
    _, rose = add_events(database, [("document.received", None)], products=["0603.11", "1010.80"])
    with database.sessions() as session:
        def ids(product):
            return [e.id for e in read_events(session, EventFilters(product=product), tenant="FR", after=0).events]
        assert ids("0808") == apple
        assert ids("08") == apple
        assert ids("10") == rose  # the second code of the list
        assert ids("80") == []  # inside a code, not at its start
        assert ids("0808.10") == apple


def test_filters_refuse_unknown_names_and_bad_values():
    with pytest.raises(ValueError, match="extra"):
        EventFilters.model_validate({"colour": "red"})
    with pytest.raises(ValueError, match="country"):
        EventFilters(country="FRA")
    assert EventFilters(country="de").country == "DE"
    assert EventFilters(product="0808", event="message.").as_dict() == {"product": "0808", "event": "message."}


# --- GET /v1/events -------------------------------------------------------------------------------------------------


def test_once_streams_the_tenants_events_in_order_and_closes(database, events_http):
    document, ids = add_events(database, [("document.received", None), ("message.queued", "ephyto_hub"), ("message.acknowledged", "ephyto_hub")])
    add_events(database, [("document.received", None)], tenant="DE")
    response = events_http.get("/v1/events", params={"once": "true"}, headers=api_key(database))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = sse_events(response.text)
    assert [e["id"] for e in got] == ids
    assert [e["event"] for e in got] == ["document.received", "message.queued", "message.acknowledged"]
    data = got[1]["data"]
    assert set(data) == {"id", "at", "correlation_id", "document_id", "message_id", "event", "actor", "state", "counterpart", "country", "products", "detail"}
    assert data["id"] == ids[1] and data["counterpart"] == "ephyto_hub" and data["country"] == "DE"
    assert data["document_id"] == document.id and data["correlation_id"] == document.correlation_id and data["products"] == ["0808.10"]
    assert "T" in data["at"]


def test_operator_sees_every_tenant(database, events_http):
    _, fr = add_events(database, [("document.received", None)])
    _, de = add_events(database, [("document.received", None)], tenant="DE")
    got = sse_events(events_http.get("/v1/events?once=true", headers=api_key(database, "*", operator=True)).text)
    assert [e["id"] for e in got] == fr + de


@pytest.mark.parametrize(
    ("params", "wanted"),
    [
        ({"counterpart": "traces_nt"}, lambda ev: ev["counterpart"] == "traces_nt"),
        ({"country": "us"}, lambda ev: ev["country"] == "US"),
        ({"product": "0603"}, lambda ev: any(p.startswith("0603") for p in ev["products"])),
        ({"event": "message."}, lambda ev: ev["event"].startswith("message.")),
        ({"event": "message.", "counterpart": "ephyto_hub", "country": "DE"}, lambda ev: ev["event"].startswith("message.") and ev["counterpart"] == "ephyto_hub" and ev["country"] == "DE"),
    ],
)
def test_filters_select_matching_events(database, events_http, params, wanted):
    add_events(database, [("document.received", None), ("message.queued", "ephyto_hub"), ("message.queued", "traces_nt")], country="DE", products=["0808.10"])
    add_events(database, [("message.rejected", "traces_nt"), ("non_conformity.opened", "traces_nt")], country="US", products=["0603.11"])
    every = sse_events(events_http.get("/v1/events?once=true", headers=api_key(database)).text)
    assert len(every) == 5
    got = sse_events(events_http.get("/v1/events", params={**params, "once": "true"}, headers=api_key(database)).text)
    assert [e["id"] for e in got] == [e["id"] for e in every if wanted(e["data"])]
    assert got  # each case selects something


def test_document_and_correlation_filters(database, events_http):
    first, first_ids = add_events(database, [("document.received", None), ("message.queued", "ephyto_hub")])
    add_events(database, [("document.received", None)])
    headers = api_key(database)
    assert [e["id"] for e in sse_events(events_http.get("/v1/events", params={"document": first.id, "once": "true"}, headers=headers).text)] == first_ids
    assert [e["id"] for e in sse_events(events_http.get("/v1/events", params={"correlation": first.correlation_id, "once": "true"}, headers=headers).text)] == first_ids


def test_resume_after_last_event_id_header_or_after_parameter(database, events_http):
    _, ids = add_events(database, [("document.received", None)] * 4)
    headers = api_key(database)
    assert [e["id"] for e in sse_events(events_http.get("/v1/events?once=true", headers={**headers, "Last-Event-ID": str(ids[1])}).text)] == ids[2:]
    assert [e["id"] for e in sse_events(events_http.get(f"/v1/events?once=true&after={ids[2]}", headers=headers).text)] == ids[3:]
    # A reconnecting EventSource keeps its first URL: the header is where it really stopped.
    assert [e["id"] for e in sse_events(events_http.get(f"/v1/events?once=true&after={ids[0]}", headers={**headers, "Last-Event-ID": str(ids[2])}).text)] == ids[3:]


def test_limit_closes_the_stream_after_that_many_events(database, events_http):
    _, ids = add_events(database, [("document.received", None)] * 5)
    got = sse_events(events_http.get("/v1/events?limit=2", headers=api_key(database)).text)
    assert [e["id"] for e in got] == ids[:2]


def test_bad_parameters_are_422_naming_the_field(database, events_http):
    headers = api_key(database)
    response = events_http.get("/v1/events?once=true", headers={**headers, "Last-Event-ID": "abc"})
    assert response.status_code == 422 and response.json()["where"] == "Last-Event-ID"
    response = events_http.get("/v1/events?once=true&country=France", headers=headers)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "country"]
    assert events_http.get("/v1/events?after=-1&once=true", headers=headers).status_code == 422


def test_an_api_key_is_required(events_http):
    assert events_http.get("/v1/events?once=true").status_code == 401
    assert events_http.get("/v1/events?once=true", headers={"Authorization": "Bearer hub_nope"}).status_code == 401


def test_the_stream_stops_when_the_client_disconnects(database):
    _, ids = add_events(database, [("document.received", None)])
    disconnected = {"now": False}

    class Gone:
        async def is_disconnected(self):
            return disconnected["now"]

    async def consume():
        got = []
        stream = events._events(Gone(), database, EventFilters(), tenant="FR", after=0, once=False, limit=None, timing=StreamTiming(poll_seconds=0.01))
        with anyio.fail_after(5):
            async for chunk in stream:
                got.append(chunk)
                disconnected["now"] = True
        return got

    chunks = anyio.run(consume)
    assert [e["id"] for e in sse_events("".join(chunks))] == ids


# --- live, through a real server on loopback ------------------------------------------------------------------------


@pytest.fixture
def live_server(events_app):
    events_app.state.event_stream = StreamTiming(poll_seconds=0.02, keepalive_seconds=0.3)
    server = uvicorn.Server(uvicorn.Config(events_app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server.started and server.servers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_live_stream_delivers_new_events_and_keeps_alive(database, live_server):
    _, before = add_events(database, [("document.received", None)])
    headers = api_key(database)
    lines: list[str] = []
    with httpx.Client(timeout=10) as client, client.stream("GET", f"{live_server}/v1/events", headers=headers) as response:
        assert response.status_code == 200
        lines_iter = response.iter_lines()

        def until(predicate):
            for line in lines_iter:
                lines.append(line)
                if predicate(line):
                    return line
            raise AssertionError("stream ended")

        until(lambda line: line == f"id: {before[0]}")
        _, later = add_events(database, [("message.acknowledged", "ephyto_hub")])  # written while the stream is open
        until(lambda line: line == f"id: {later[0]}")
        assert until(lambda line: line.startswith("data: ")).startswith('data: {"id":%d' % later[0])
        until(lambda line: line == ": keep-alive")
    assert "event: message.acknowledged" in lines


# --- PostgreSQL: ids become visible at commit, not in id order ------------------------------------------------------


def test_reader_waits_at_a_gap_left_by_a_transaction_still_open(postgres_database_url):
    from hub.store.db import Database

    database = Database(postgres_database_url)
    try:
        _, first = add_events(database, [("document.received", None)])
        slow = database.sessions()
        slow.begin()
        document = add_document(slow)
        add_event(slow, document=document, event="document.received", actor="slow")
        slow.flush()
        early = slow.scalars(select(TraceEvent).where(TraceEvent.actor == "slow")).one()  # the read writes it: its id is taken, but nobody sees it until commit
        _, late = add_events(database, [("document.received", None)])
        assert early.id < late[0]
        with database.sessions() as session:
            page = read_events(session, EventFilters(), tenant="FR", after=0)
            assert [e.id for e in page.events] == first and page.cursor == first[0]  # not past the gap
        slow.commit()
        slow.close()
        with database.sessions() as session:
            page = read_events(session, EventFilters(), tenant="FR", after=first[0])
            assert [e.id for e in page.events] == [early.id, late[0]]
        # A gap that stays (a rolled-back transaction) is passed once the row after it is old enough.
        doomed = database.sessions()
        doomed.begin()
        add_event(doomed, document=add_document(doomed), event="document.received", actor="doomed")
        doomed.flush()
        flush_appends(doomed)
        _, after_rollback = add_events(database, [("document.received", None)])
        doomed.rollback()
        doomed.close()
        with database.sessions() as session:
            assert read_events(session, EventFilters(), tenant="FR", after=late[0]).events == []
            assert [e.id for e in read_events(session, EventFilters(), tenant="FR", after=late[0], grace_seconds=0).events] == after_rollback
    finally:
        database.dispose()
