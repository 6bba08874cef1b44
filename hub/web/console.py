"""The ops console's pages (``/console/…``), each read through the caller's scope (:mod:`hub.web.queries`):

- ``/console/traces``: search documents by number, counterpart, state, country, product, period;
- ``/console/documents/{id}``: a document, its XML (escaped) with its signature status, its validation report, its
  messages and non-conformities; ``/console/messages/{id}``: one message's timeline, hop by hop, and what may be
  done about it (resend, abandon with a reason);
- ``/console/live``: the trace as it happens (the API's event stream, read by a few lines of script);
- ``/console/counterparts``: the board of every connector; ``/console/dead-letters``: dead letters and answers
  overdue;
- ``/console/non-conformities``: the list, one in detail, and the chart by country × product × cause over time.

Who may open which page is the access policy's (:mod:`hub.api.access`); every action goes through the same service
as the API's and is traced with who did it (``console:<name>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.acks.nonconformities import NonConformityFilter, list_non_conformities
from hub.api.access import rule_for
from hub.api.auth import Client
from hub.api.deps import get_broker, read_session
from hub.api.messages import abandon_visible
from hub.broker import Broker
from hub.errors import HubError, InputError, NotFound
from hub.report import ValidationReport
from hub.store.models import Document, NonConformity, TraceEvent
from hub.store.payloads import get_payload
from hub.store.states import ABANDONABLE_STATES, MAX_REASON, MessageState
from hub.web.chart import problems_svg
from hub.web.queries import TraceSearch, board, document_events, message_hops, problems_over_time, search_documents, stuck_messages, visible_document, visible_message
from hub.web.session import console_client
from hub.web.templating import choose_lang, render, translate
from hub.xmlsafe import parse_xml

router = APIRouter(include_in_schema=False)

PAGE = 50
#: The most of a document's XML a page shows (the whole is downloadable).
MAX_XML_SHOWN = 400_000
RESENDABLE = frozenset({MessageState.DEAD_LETTER.value, MessageState.REJECTED.value})


def actor_of(client: Client) -> str:
    """How the trace names a person acting in the console."""
    return f"console:{client.name}"


def may(client: Client, method: str, path: str) -> bool:
    """Whether ``client``'s role may call a route (to show only the actions it may take)."""
    rule = rule_for(method, path)
    return rule is not None and client.role in rule.roles


@router.get("/console")
def home() -> RedirectResponse:
    return RedirectResponse("/console/traces", status_code=303)


# --- traces -----------------------------------------------------------------------------------------------------------


def _day(value: str | None, where: str) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{value[:30]!r} is not a date (YYYY-MM-DD)", where=where) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@router.get("/console/traces")
def traces(
    request: Request,
    client: Client = Depends(console_client),
    session: Session = Depends(read_session),
    broker: Broker = Depends(get_broker),
    number: Annotated[str | None, Query(max_length=100)] = None,
    counterpart: Annotated[str | None, Query(max_length=60)] = None,
    state: Annotated[str | None, Query(max_length=30)] = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
    product: Annotated[str | None, Query(max_length=200)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=30)] = None,
    to: Annotated[str | None, Query(max_length=30)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The trace search: documents matching every filter, newest first, each with its messages' states."""
    until = _day(to, "to")
    if until is not None and len(to.strip()) <= 10:
        until = until.replace(hour=23, minute=59, second=59)
    search = TraceSearch(number=number or None, counterpart=counterpart or None, state=state or None, country=country or None, product=product or None, since=_day(from_, "from"), until=until)
    total, documents = search_documents(session, client.scope, search, limit=PAGE, offset=(page - 1) * PAGE)
    states = [s.value for s in MessageState]
    return render(request, "console/traces.html", documents=documents, total=total, page=page, pages=max(1, -(-total // PAGE)),
                  filters={"number": number or "", "counterpart": counterpart or "", "state": state or "", "country": country or "", "product": product or "", "from": from_ or "", "to": to or ""},
                  destinations=sorted(broker.connectors), states=states)


@router.get("/console/documents/{document_id}")
def document_page(document_id: str, request: Request, client: Client = Depends(console_client), session: Session = Depends(read_session), broker: Broker = Depends(get_broker)) -> Response:
    """One document: facts, messages, events of its own, XML with its signature status, validation report,
    non-conformities."""
    document = visible_document(session, client.scope, document_id)
    if document is None:
        raise NotFound(f"no document {document_id}", where="id")
    payload = get_payload(session, document.payload_digest)
    content = payload.content if payload is not None else b""
    non_conformities = session.scalars(select(NonConformity).where(NonConformity.document_id == document.id).order_by(NonConformity.opened_at)).all()
    return render(request, "console/document.html", document=document, events=document_events(session, document), xml=pretty_xml(content),
                  signature=signature_status(broker, content), report=_report(document.report), non_conformities=non_conformities)


def pretty_xml(content: bytes) -> str:
    """The XML indented for reading (the page escapes it: shown as text, never markup); the raw bytes as text when
    they are no XML the hub reads."""
    try:
        root = parse_xml(content, source="document")
        etree.indent(root, space="  ")
        text = etree.tostring(root, encoding="unicode")
    except (HubError, etree.LxmlError, ValueError):
        text = content.decode("utf-8", errors="replace")
    return text if len(text) <= MAX_XML_SHOWN else text[:MAX_XML_SHOWN] + "\n…"


def signature_status(broker: Broker, content: bytes) -> dict:
    """Whether the document's signature holds under the hub's trust anchors, and who signed it, or why not."""
    try:
        verified = broker.verifier.verify(content)
    except HubError as exc:
        return {"valid": False, "reason": getattr(exc, "message", None) or str(exc)}
    return {"valid": True, "signer": verified.signer_subject, "algorithm": verified.signature_algorithm.rsplit("#", 1)[-1]}


def _report(stored: dict | None) -> ValidationReport | None:
    try:
        return ValidationReport.model_validate(stored) if stored else None
    except ValueError:
        return None


@router.get("/console/messages/{message_id}")
def message_page(message_id: str, request: Request, client: Client = Depends(console_client), session: Session = Depends(read_session), done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    """One message, every hop, and the actions its state allows the caller."""
    message = visible_message(session, client.scope, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}", where="id")
    may_resend = message.state in RESENDABLE and may(client, "POST", "/console/messages/{message_id}/resend")
    may_abandon = MessageState(message.state) in ABANDONABLE_STATES and may(client, "POST", "/console/messages/{message_id}/abandon")
    return render(request, "console/message.html", message=message, document=message.document, hops=message_hops(session, message),
                  may_resend=may_resend, may_abandon=may_abandon, max_reason=MAX_REASON, done=done if done in ("resent", "abandoned") else None)


@router.post("/console/messages/{message_id}/resend")
async def resend(message_id: str, client: Client = Depends(console_client), broker: Broker = Depends(get_broker)) -> Response:
    """Queue a dead letter (or a rejected message) again under the same identity, as ``POST /v1/messages/{id}/resend``."""
    await run_in_threadpool(broker.resend, message_id, tenant=client.scope.name, actor=actor_of(client))
    return RedirectResponse(f"/console/messages/{message_id}?done=resent", status_code=303)


@router.post("/console/messages/{message_id}/abandon")
async def abandon(message_id: str, client: Client = Depends(console_client), broker: Broker = Depends(get_broker), reason: str = Form("", max_length=MAX_REASON)) -> Response:
    """Give the message up for good, with a reason, as ``POST /v1/messages/{id}/abandon``."""
    await run_in_threadpool(abandon_visible, broker, message_id, client, reason, actor=actor_of(client))
    return RedirectResponse(f"/console/messages/{message_id}?done=abandoned", status_code=303)


# --- live, counterparts, stuck ---------------------------------------------------------------------------------------


@router.get("/console/live")
def live(request: Request, client: Client = Depends(console_client), session: Session = Depends(read_session)) -> Response:
    """The latest events, then (with script) the new ones as they happen, from ``/v1/events``."""
    query = client.scope.restrict(select(TraceEvent), TraceEvent.tenant).order_by(TraceEvent.id.desc()).limit(PAGE)
    events = session.scalars(query).all()
    return render(request, "console/live.html", events=events, after=events[0].id if events else 0)


@router.get("/console/counterparts")
def counterparts(request: Request, client: Client = Depends(console_client), session: Session = Depends(read_session), broker: Broker = Depends(get_broker)) -> Response:
    """Every connector: backlog, answers awaited, overdue, unmatched, dead letters, retries, success, latency, last error."""
    kinds = {name: connector.config.type for name, connector in broker.connectors.items()}
    return render(request, "console/counterparts.html", rows=board(session, client.scope, kinds), every_tenant=client.scope.everything)


@router.get("/console/dead-letters")
def dead_letters(request: Request, client: Client = Depends(console_client), session: Session = Depends(read_session), destination: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    """Dead letters and messages whose answer is overdue, with what may be done about each."""
    messages = stuck_messages(session, client.scope, destination=destination or None)
    return render(request, "console/dead_letters.html", messages=messages, destination=destination or "",
                  may_act=may(client, "POST", "/console/messages/{message_id}/abandon"))


# --- non-conformities -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problems:
    """The non-conformity filters a page or its chart was asked for, and its period in months."""

    filter: NonConformityFilter
    months: int
    shown: dict


def _problems(
    client: Client = Depends(console_client),
    country: Annotated[str | None, Query(max_length=2)] = None,
    cause: Annotated[str | None, Query(max_length=60)] = None,
    product: Annotated[str | None, Query(max_length=20)] = None,
    counterpart: Annotated[str | None, Query(max_length=60)] = None,
    months: Annotated[int, Query(ge=1, le=36)] = 12,
) -> _Problems:
    f = NonConformityFilter(tenant=client.scope.name, country=(country or "").upper() or None, cause=cause or None, product=product or None, counterpart=counterpart or None)
    shown = {"country": country or "", "cause": cause or "", "product": product or "", "counterpart": counterpart or "", "months": months}
    return _Problems(f, months, shown)


def _chart(request: Request, session: Session, asked: _Problems, *, top: int = 10) -> tuple[str, list]:
    periods, problems = problems_over_time(session, asked.filter, months=asked.months, top=top)
    lang = choose_lang(request)
    return problems_svg(periods, problems, title=translate(lang, "nc.chart_title", months=asked.months), empty=translate(lang, "nc.none")), problems


@router.get("/console/non-conformities")
def non_conformities(
    request: Request,
    asked: _Problems = Depends(_problems),
    session: Session = Depends(read_session),
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The non-conformities, newest first, under the chart of the most frequent problems over time."""
    total, rows = list_non_conformities(session, asked.filter, limit=PAGE, offset=(page - 1) * PAGE)
    chart, problems = _chart(request, session, asked)
    return render(request, "console/non_conformities.html", rows=rows, total=total, page=page, pages=max(1, -(-total // PAGE)), chart=chart, problems=problems,
                  filters=asked.shown)


@router.get("/console/non-conformities/chart.svg")
def non_conformities_chart(
    request: Request,
    asked: _Problems = Depends(_problems),
    session: Session = Depends(read_session),
    top: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    """The chart alone, as an SVG file (to save or embed)."""
    svg, _ = _chart(request, session, asked, top=top)
    return Response(svg, media_type="image/svg+xml", headers={"Content-Disposition": 'inline; filename="non-conformities.svg"'})


@router.get("/console/non-conformities/{non_conformity_id}")
def non_conformity_page(non_conformity_id: str, request: Request, client: Client = Depends(console_client), session: Session = Depends(read_session)) -> Response:
    """One non-conformity: cause, evidence, the certificate it concerns and the one that replaced it."""
    nc = session.get(NonConformity, non_conformity_id)
    if nc is None or not client.scope.sees(nc.tenant):
        raise NotFound(f"no non-conformity {non_conformity_id}", where="id")
    document = session.get(Document, nc.document_id)
    replacement = session.get(Document, nc.replacement_document_id) if nc.replacement_document_id else None
    evidence = get_payload(session, nc.evidence_digest) if nc.evidence_digest else None
    shown = evidence.content.decode("utf-8", errors="replace")[:MAX_XML_SHOWN] if evidence is not None and evidence.media_type.endswith(("xml", "json", "text/plain")) else None
    return render(request, "console/non_conformity.html", nc=nc, document=document, replacement=replacement, evidence=evidence,
                  evidence_text=pretty_xml(evidence.content) if shown is not None and evidence.media_type.endswith("xml") else shown)
