"""Verification for third countries: is this certificate genuine, and what is its status now?

``GET /v1/verify/{certificate_number}`` tells any authenticated caller (an importing country's NPPO, a veterinary
service, customs) what the issuing authority holds: kind, status, lifecycle (issued, replaced, withdrawn), the
countries, the products, and the SHA-256 of the signed document the hub sent. ``POST /v1/verify`` takes a signed copy
and says whether its signature holds and whether it is the very document the hub holds. Consignor and consignee are
not disclosed: the verification answers authenticity, not the commercial content.

The public verification, with no account (:mod:`hub.api.verify_public`), shares the pieces: :func:`versions_of`,
:func:`replacement_of`, :func:`sent_digests`, :func:`read_signed_copy` and :func:`check_entitled`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.auth import caller, Client
from hub.api.deps import get_broker, read_session
from hub import families
from hub.broker import Broker
from hub.errors import NotFound, SignatureError
from hub.families import DocumentFamily
from hub.signing.verifier import VerifiedDocument
from hub.store.models import Document, Message
from hub.store.payloads import digest_of

router = APIRouter(prefix="/v1/verify", tags=["verification"])


def versions_of(session: Session, number: str, country: str | None, *, outbound_only: bool = False) -> list[Document]:
    """Every stored version of certificate ``number`` (of ``country`` when given), the latest first; with
    ``outbound_only``, only those issued through this hub."""
    query = select(Document).where(Document.certificate_number == number)
    if country:
        query = query.where(Document.issuing_country == country.upper())
    if outbound_only:
        query = query.where(Document.direction == "outbound")
    return list(session.scalars(query.order_by(Document.created_at.desc(), Document.version.desc())))


def replacement_of(session: Session, document: Document) -> str | None:
    """The number of the certificate that replaces ``document``, if one does."""
    return session.scalars(
        select(Document.certificate_number).where(Document.issuing_country == document.issuing_country, Document.refers_to_number == document.certificate_number)
    ).first()


def sent_digests(session: Session, document: Document) -> set[str]:
    """Every signed form of the document the hub holds: its own, and each destination's profile."""
    return {document.payload_digest, *session.scalars(select(Message.payload_digest).where(Message.document_id == document.id))}


def _statement(session: Session, documents: list[Document]) -> dict[str, Any]:
    current = documents[0]
    replaced_by = replacement_of(session, current)
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
        "signed_document_sha256": sorted(sent_digests(session, current)),
        "history": [{"status": d.status, "version": d.version, "lifecycle": d.lifecycle, "recorded_at": d.created_at.isoformat()} for d in documents],
    }


@router.get("/{certificate_number}")
def verify_number(
    certificate_number: str,
    _client: Client = Depends(caller),
    session: Session = Depends(read_session),
    country: str | None = Query(None, description="issuing country, when numbers may clash between authorities"),
) -> dict:
    """What the issuing authority holds for this certificate number; 404 if it issued no such certificate."""
    documents = versions_of(session, certificate_number, country)
    if not documents:
        raise NotFound(f"no certificate {certificate_number} was issued through this hub", where="certificate_number")
    return _statement(session, documents)


@dataclass(frozen=True)
class SignedCopy:
    """A signed document whose signature holds under the trust anchors: what was signed, its family, and who issued
    it (as the signed content says: issuing country, kind and number)."""

    verified: VerifiedDocument
    family: DocumentFamily
    issuing_country: str | None
    kind: str
    number: str | None


def read_signed_copy(broker: Broker, body: bytes) -> SignedCopy:
    """``body`` verified and read. Raises :class:`~hub.errors.SignatureError` for a signature that must not be
    trusted, :class:`~hub.errors.InputError` (hostile or malformed XML, no document the hub reads) otherwise."""
    verified = broker.verifier.verify(body)
    family = families.for_document(verified.signed_root)
    record = family.parse(verified.signed_root, source="body").record
    facts = family.routing_facts(record)
    return SignedCopy(verified, family, facts.issuing_country, facts.kind, family.describe(record).number)


def check_entitled(broker: Broker, copy: SignedCopy) -> None:
    """Trusted is not enough: raises :class:`~hub.errors.NotEntitled` (or WrongKeyUsage) unless the signer speaks
    for the authority that issued the document, for its family."""
    broker.signers.check(copy.verified.signer_certificate, country=copy.issuing_country, family=copy.family.name)


@router.post("")
async def verify_document(request: Request, _client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """A signed copy checked: its signature against the trust anchors, and its bytes against what the hub sent."""
    body = await request.body()

    def check() -> dict:
        try:
            copy = read_signed_copy(broker, body)
            check_entitled(broker, copy)
        except SignatureError as exc:
            return {"genuine": False, "reason": str(exc)}
        verified, number = copy.verified, copy.number
        with broker.database.sessions() as session:
            documents = versions_of(session, number, copy.issuing_country) if number else []
            if not documents:
                return {"genuine": False, "signature": "valid", "signer": verified.signer_subject, "reason": "the issuing authority holds no such certificate"}
            held = digest_of(body) in sent_digests(session, documents[0])
            answer = {"genuine": held, "signature": "valid", "signer": verified.signer_subject, **_statement(session, documents)}
            if not held:
                answer["reason"] = "validly signed, but not the document the issuing authority holds for this number now"
            return answer

    return await run_in_threadpool(check)
