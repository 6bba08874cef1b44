"""Verification for third countries: is this certificate genuine, and what is its status now?

``GET /v1/verify/{certificate_number}`` tells any authenticated caller (an importing country's NPPO, a veterinary
service, customs) what the issuing authority holds: kind, status, lifecycle (issued, replaced, withdrawn), the
countries, the products, and the SHA-256 of the signed document the hub sent. ``POST /v1/verify`` takes a signed copy
and says whether its signature holds and whether it is the very document the hub holds. Consignor and consignee are
not disclosed: the verification answers authenticity, not the commercial content.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.auth import Client, current_client
from hub.api.deps import get_broker, read_session
from hub import families
from hub.broker import Broker
from hub.errors import NotFound, SignatureError
from hub.store.models import Document, Message
from hub.store.payloads import digest_of

router = APIRouter(prefix="/v1/verify", tags=["verification"])


def _versions(session: Session, number: str, country: str | None) -> list[Document]:
    query = select(Document).where(Document.certificate_number == number)
    if country:
        query = query.where(Document.issuing_country == country.upper())
    return list(session.scalars(query.order_by(Document.created_at.desc(), Document.version.desc())))


def _sent_digests(session: Session, document: Document) -> set[str]:
    """Every signed form of the document the hub holds: its own, and each destination's profile."""
    return {document.payload_digest, *session.scalars(select(Message.payload_digest).where(Message.document_id == document.id))}


def _statement(session: Session, documents: list[Document]) -> dict[str, Any]:
    current = documents[0]
    replaced_by = session.scalars(
        select(Document.certificate_number).where(Document.issuing_country == current.issuing_country, Document.refers_to_number == current.certificate_number)
    ).first()
    return {
        "certificate_number": current.certificate_number,
        "issuing_country": current.issuing_country,
        "kind": current.kind,
        "status": current.status,
        "lifecycle": current.lifecycle,
        "replaced_by": replaced_by,
        "issued_at": current.issued_at.isoformat() if current.issued_at else None,
        "exporting_country": current.exporting_country,
        "importing_country": current.importing_country,
        "products": [{"hs_code": p.hs_code, "scientific_name": p.scientific_name} for p in current.products],
        "signed_document_sha256": sorted(_sent_digests(session, current)),
        "history": [{"status": d.status, "version": d.version, "lifecycle": d.lifecycle, "recorded_at": d.created_at.isoformat()} for d in documents],
    }


@router.get("/{certificate_number}")
def verify_number(
    certificate_number: str,
    _client: Client = Depends(current_client),
    session: Session = Depends(read_session),
    country: str | None = Query(None, description="issuing country, when numbers may clash between authorities"),
) -> dict:
    """What the issuing authority holds for this certificate number; 404 if it issued no such certificate."""
    documents = _versions(session, certificate_number, country)
    if not documents:
        raise NotFound(f"no certificate {certificate_number} was issued through this hub", where="certificate_number")
    return _statement(session, documents)


@router.post("")
async def verify_document(request: Request, _client: Client = Depends(current_client), broker: Broker = Depends(get_broker)) -> dict:
    """A signed copy checked: its signature against the trust anchors, and its bytes against what the hub sent."""
    body = await request.body()

    def check() -> dict:
        try:
            verified = broker.verifier.verify(body)
            family = families.for_document(verified.signed_root)
            record = family.parse(verified.signed_root, source="body").record
            # Trusted is not enough: the signer must speak for the authority that issued the document.
            broker.signers.check(verified.signer_certificate, country=family.routing_facts(record).issuing_country, family=family.name)
        except SignatureError as exc:
            return {"genuine": False, "reason": str(exc)}
        number = family.describe(record).number
        with broker.database.sessions() as session:
            documents = _versions(session, number, None) if number else []
            if not documents:
                return {"genuine": False, "signature": "valid", "signer": verified.signer_subject, "reason": "the issuing authority holds no such certificate"}
            held = digest_of(body) in _sent_digests(session, documents[0])
            answer = {"genuine": held, "signature": "valid", "signer": verified.signer_subject, **_statement(session, documents)}
            if not held:
                answer["reason"] = "validly signed, but not the document the issuing authority holds for this number now"
            return answer

    return await run_in_threadpool(check)
