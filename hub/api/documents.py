"""``/v1/documents``: submit a certificate (record or XML), read one, and search — including the crisis search by
countries, products (HS prefix or scientific name) and period."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.api.auth import caller, Client
from hub.api.deps import MAX_OFFSET, MAX_VERSION, get_broker, read_session
from hub.api.views import document_view, submission_view
from hub.broker import Broker
from hub.errors import NotFound
from hub.facsimile import LANGUAGES, for_document
from hub.store.models import Document, DocumentProduct
from hub.store.payloads import get_payload

router = APIRouter(prefix="/v1/documents", tags=["documents"])

SUBMIT_EXAMPLES = {
    "application/json": {"schema": {"type": "object", "description": "a certificate record (see mappings/SPSCertificate/17/examples/*.record.json)"}},
    "application/xml": {"schema": {"type": "string", "description": "an SPSCertificate 17 document, bare or signed"}},
}


@router.post("", status_code=202, openapi_extra={"requestBody": {"required": True, "content": SUBMIT_EXAMPLES}})
async def submit(
    request: Request,
    response: Response,
    client: Client = Depends(caller),
    broker: Broker = Depends(get_broker),
    version: Annotated[int, Query(ge=1, le=MAX_VERSION, description="version of this certificate number and status")] = 1,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    correlation_id: Annotated[str | None, Header(alias="X-Correlation-ID", max_length=64)] = None,
) -> dict:
    """Map, validate, sign, route and store a document and its outbound messages in one transaction.

    ``202`` with the document id, its status, the validation report and one message per destination; a repeated
    submission (same ``Idempotency-Key`` or business key) answers ``200`` with the first result. ``422`` with the full
    report when invalid, ``409`` when a key is reused for other content; nothing is stored then."""
    body = await request.body()
    media_type = request.headers.get("content-type", "")
    stored = await run_in_threadpool(
        broker.submit, body, media_type, tenant=client.scope.name, actor=client.actor, version=version, idempotency_key=idempotency_key, correlation_id=correlation_id
    )
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.submissions.labels(outcome="created" if stored.created else "repeated").inc()
    if not stored.created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/documents/{stored.document.id}"
    return submission_view(stored.document)


def _visible(session: Session, document_id: str, client: Client) -> Document:
    document = session.get(Document, document_id)
    if document is None or not client.scope.sees(document.tenant):
        raise NotFound(f"no document {document_id}", where="id")
    return document


@router.get("/{document_id}")
def read(document_id: str, client: Client = Depends(caller), session: Session = Depends(read_session)) -> dict:
    """One document with its record, validation report, lifecycle and messages."""
    return document_view(_visible(session, document_id, client), full=True)


class LifecycleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lifecycle: str = Field(description="expired, cancellation_requested (the holder asked) or cancelled (the original sheets are back)")
    reason: str | None = None


@router.post("/{document_id}/lifecycle")
async def change_lifecycle(document_id: str, body: LifecycleChange, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """The issuing authority moves its document: ``409`` for a move the lifecycle does not allow (a used permit
    cannot be cancelled), ``422`` for a lifecycle only events set (used, replaced…)."""
    document = await run_in_threadpool(broker.change_lifecycle, document_id, body.lifecycle, tenant=client.scope.name, actor=client.actor, reason=body.reason)
    return document_view(document)


@router.post("/{document_id}/duplicate")
async def duplicate(document_id: str, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """A new permit request from an expired permit: its record without number, dates and signatures, referring to
    the expired one; complete it and submit it with ``POST /v1/documents``. ``409`` unless the permit expired."""
    return {"record": await run_in_threadpool(broker.duplicate_request, document_id, tenant=client.scope.name)}


@router.get("/{document_id}/xml", response_class=Response, responses={200: {"content": {"application/xml": {}}}})
def read_xml(document_id: str, client: Client = Depends(caller), session: Session = Depends(read_session)) -> Response:
    """The signed document as the hub sent it (full profile)."""
    payload = get_payload(session, _visible(session, document_id, client).payload_digest)
    return Response(payload.content, media_type=payload.media_type)


@router.get("/{document_id}/pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def read_pdf(
    document_id: str,
    client: Client = Depends(caller),
    session: Session = Depends(read_session),
    broker: Broker = Depends(get_broker),
    lang: Annotated[list[str] | None, Query(description=f"the languages of the labels, of {', '.join(LANGUAGES)} (repeatable); default: English, French and the document's own")] = None,
) -> Response:
    """The printable facsimile (PDF, A4): the boxes of the official model, a QR code to the public verification
    page, and the issuing authority's PDF signature. ``422`` for a document this hub does not issue."""
    settings = broker.settings
    facsimile = for_document(_visible(session, document_id, client), certs_dir=settings.certs_dir, public_url=settings.public_url, languages=lang)
    return Response(facsimile.pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{facsimile.filename}"'})


@router.get("")
def search(
    client: Client = Depends(caller),
    session: Session = Depends(read_session),
    number: str | None = Query(None, description="certificate number"),
    kind: str | None = Query(None, description="phytosanitary, phytosanitary_reexport, veterinary, ched"),
    country: Annotated[list[str] | None, Query(description="exporting or importing country (repeatable)")] = None,
    exporting_country: str | None = None,
    importing_country: str | None = None,
    status: str | None = Query(None, description="status the document carries (issued, replaced, withdrawn…)"),
    lifecycle: str | None = Query(None, description="where the document is in the hub (issued, replaced, withdrawn, used)"),
    direction: str | None = Query(None, description="outbound (issued here) or inbound (received from abroad)"),
    product: Annotated[list[str] | None, Query(description="HS code prefix or scientific name (repeatable)")] = None,
    from_: Annotated[datetime | None, Query(alias="from", description="submitted at or after")] = None,
    to: Annotated[datetime | None, Query(description="submitted before")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """Documents matching every filter given, newest first, a page at a time. The crisis search: every
    certificate for these countries, products and period."""
    query = select(Document)
    query = client.scope.restrict(query, Document.tenant)
    if number:
        query = query.where(Document.certificate_number == number)
    if kind:
        query = query.where(Document.kind == kind)
    if status:
        query = query.where(Document.status == status)
    if lifecycle:
        query = query.where(Document.lifecycle == lifecycle)
    if direction:
        query = query.where(Document.direction == direction)
    if exporting_country:
        query = query.where(Document.exporting_country == exporting_country.upper())
    if importing_country:
        query = query.where(Document.importing_country == importing_country.upper())
    if country:
        codes = [c.upper() for c in country]
        query = query.where(or_(Document.exporting_country.in_(codes), Document.importing_country.in_(codes)))
    if product:
        matches = [
            # autoescape: a % or _ in what the caller typed is a character, never a wildcard
            DocumentProduct.hs_code.startswith(p, autoescape=True) if p.isdigit() else func.lower(DocumentProduct.scientific_name).startswith(p.lower(), autoescape=True)
            for p in product
        ]
        query = query.where(Document.products.any(or_(*matches)))
    if from_:
        query = query.where(Document.created_at >= from_)
    if to:
        query = query.where(Document.created_at < to)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Document.created_at.desc(), Document.id).limit(limit).offset(offset)).all()
    return {"total": total, "limit": limit, "offset": offset, "items": [document_view(d) for d in rows]}
