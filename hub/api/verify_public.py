"""Public verification, with no account: a border officer or a foreign authority holding a certificate or permit
checks that it is authentic and learns its current status.

::

    GET  /v1/public/verify?number=…&code=…   the document of that number, if ``code`` is its verification code
    POST /v1/public/verify                    a signed XML (the body): signature, signer's entitlement, status

The verification code (:mod:`hub.signing.verification`) is printed on the facsimile and carried by its QR code
(``/verify?number=…&code=…``, the page of :mod:`hub.web.verify`). A wrong code and an unknown number get the same
answer (404, :data:`NOT_FOUND`), and every attempt spends one token of its client address's bucket
(:mod:`hub.api.ratelimit`: 10 a minute; past it 429 with ``Retry-After``), so numbers cannot be enumerated.

What is shown (:func:`public_statement`) is what a border officer compares with the paper and the goods: kind,
issuing, exporting and importing countries, issue date, status (issued, completed, used, expired, cancellation
requested, cancelled, replaced, withdrawn) and what replaced it, validity, and the product lines (names, HS code,
quantity). Never the operator's commercial details: no consignor or consignee, no address, no price, no internal id.
Only documents issued through this hub are answered for; one received from abroad is its issuing authority's to tell.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import families
from hub.api.deps import get_broker
from hub.api.ratelimit import attempt
from hub.api.verify import check_entitled, read_signed_copy, replacement_of, sent_digests, versions_of
from hub.broker import Broker
from hub.errors import InputError, NotFound, SignatureError
from hub.signing.verification import code_matches, normalized
from hub.store.lifecycle import valid_until
from hub.store.models import Document
from hub.store.payloads import digest_of

router = APIRouter(prefix="/v1/public/verify", tags=["public verification"])

#: The one answer for an unknown number and for a wrong code: which of the two it was is not told.
NOT_FOUND = "not found or code incorrect: check the number and the code as printed on the document"
#: Longest certificate or permit number (the store's column).
MAX_NUMBER = 100
#: Attempts per minute per client address, and how many may come at once.
ATTEMPTS_PER_MINUTE = 10
_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


def wait_for(request: Request, broker: Broker) -> int:
    """Spend one verification attempt of the request's client, the page and the API together (see
    :mod:`hub.api.ratelimit`); behind a reverse proxy the address is the proxy's unless the server trusts its
    forwarding headers (docs/verification.md)."""
    return attempt(request, broker, "verification", per_minute=ATTEMPTS_PER_MINUTE)


def too_many(wait: int) -> JSONResponse:
    """The 429 answer of an address past its attempts."""
    return JSONResponse(
        {"error": "TooManyAttempts", "message": f"too many verification attempts from this address: try again in {wait} s", "where": "client"},
        status_code=429, headers={"Retry-After": str(wait), "Cache-Control": "no-store"},
    )


# --- by number and code --------------------------------------------------------------------------------------------


def checked_query(number: str, code: str) -> tuple[str, str]:
    """The number (trimmed) and code (in its written form) as typed; :class:`InputError` naming the field when one
    cannot be a number or a code at all (which says nothing about what the hub holds)."""
    number = (number or "").strip()
    if not number:
        raise InputError("enter the certificate or permit number", where="number")
    if len(number) > MAX_NUMBER:
        raise InputError(f"a certificate or permit number has at most {MAX_NUMBER} characters", where="number")
    written = normalized(code or "")
    if not _CODE.match(written):
        raise InputError("a verification code is 12 letters and digits, as printed (K7QM-2XPA-9D4R)", where="code")
    return number, written


def find_by_code(session: Session, secret: bytes, number: str, code: str) -> list[Document] | None:
    """The versions (latest first) of the document issued through this hub whose number is ``number`` (as typed,
    or in capitals) and whose verification code is ``code``; None when there is none, whichever the reason."""
    documents = list(session.scalars(
        select(Document)
        .where(Document.certificate_number.in_(sorted({number, number.upper()})), Document.direction == "outbound")
        .order_by(Document.created_at.desc(), Document.version.desc())
    ))
    if not documents:
        code_matches(secret, code, issuing_country="ZZ", number=number)  # the same work as a wrong code
        return None
    for key in dict.fromkeys((d.issuing_country, d.certificate_number) for d in documents):
        if code_matches(secret, code, issuing_country=key[0], number=key[1]):
            return [d for d in documents if (d.issuing_country, d.certificate_number) == key]
    return None


def public_statement(session: Session, documents: list[Document]) -> dict[str, Any]:
    """What a border officer may learn of a document (its versions, latest first); nothing commercial."""
    current = documents[0]
    family = families.for_kind(current.kind)
    ends = valid_until(current)
    return {
        "authentic": True,
        "number": current.certificate_number,
        "family": family.name if family else None,
        "kind": current.kind,
        "issuing_country": current.issuing_country,
        "exporting_country": current.exporting_country,
        "importing_country": current.importing_country,
        "issued_at": current.issued_at.date().isoformat() if current.issued_at else None,
        "valid_until": ends.date().isoformat() if ends else None,
        "status": current.lifecycle,
        "replaced_by": replacement_of(session, current),
        "replaces": current.refers_to_number,
        "products": [
            {"common_name": p.common_name, "scientific_name": p.scientific_name, "hs_code": p.hs_code,
             "quantity": _quantity(p.quantity), "unit": p.unit}
            for p in sorted(current.products, key=lambda p: p.line)
        ],
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _quantity(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def statement_by_code(broker: Broker, number: str, code: str) -> dict[str, Any]:
    """The public statement of the document ``number`` whose code is ``code``; :class:`InputError` for what cannot
    be a number or a code, :class:`NotFound` (:data:`NOT_FOUND`) for an unknown number and a wrong code alike."""
    number, code = checked_query(number, code)
    secret = broker.verification_secret
    with broker.database.sessions() as session:
        documents = find_by_code(session, secret, number, code)
        if documents is None:
            raise NotFound(NOT_FOUND, where="number")
        return public_statement(session, documents)


# --- a signed copy uploaded ----------------------------------------------------------------------------------------


def check_signed_copy(broker: Broker, body: bytes) -> dict[str, Any]:
    """A signed XML checked: its signature under the trust anchors, its signer's entitlement to sign for the
    issuing authority, and (when both hold) the current status of that document as this hub issued it.

    ``authentic`` is true when signature and entitlement hold; ``issued_copy`` tells whether these very bytes are a
    copy the hub sent (false for an earlier version or another signed rendering: rely on the status). Raises
    :class:`InputError` (HostileXMLError, MalformedXMLError, UnknownDocumentError) for what is no document at all.
    """
    if not body.strip():
        raise InputError("send the signed XML document to check", where="body")
    try:
        copy = read_signed_copy(broker, body)
    except SignatureError as exc:
        return {"authentic": False, "signature": "invalid", "reason": str(exc)}
    answer: dict[str, Any] = {
        "signature": "valid", "signer": copy.verified.signer_subject, "family": copy.family.name, "kind": copy.kind,
        "issuing_country": copy.issuing_country, "number": copy.number,
    }
    try:
        check_entitled(broker, copy)
    except SignatureError as exc:
        return {**answer, "authentic": False, "entitled": False, "reason": str(exc)}
    answer.update(authentic=True, entitled=True)
    with broker.database.sessions() as session:
        documents = versions_of(session, copy.number, copy.issuing_country, outbound_only=True) if copy.number else []
        if not documents:
            return {**answer, "held": False, "status": None,
                    "reason": "this hub issued no document of that number for its issuing authority: its current status cannot be told here"}
        digest = digest_of(body)
        return {**answer, "held": True, "issued_copy": any(digest in sent_digests(session, d) for d in documents),
                "status": documents[0].lifecycle, "document": public_statement(session, documents)}


# --- routes ----------------------------------------------------------------------------------------------------------


@router.get("")
def verify_by_code(
    request: Request,
    number: str = Query("", description="the certificate or permit number, as printed"),
    code: str = Query("", description="its verification code, as printed (any case; spaces and hyphens ignored)"),
    broker: Broker = Depends(get_broker),
):
    """Whether a certificate or permit of that number and code was issued through this hub, and its status now.
    404 for an unknown number and a wrong code alike; 429 (``Retry-After``) past 10 attempts a minute per address."""
    wait = wait_for(request, broker)
    if wait:
        return too_many(wait)
    return JSONResponse(statement_by_code(broker, number, code), headers={"Cache-Control": "no-store"})


@router.post("")
async def verify_signed_copy(request: Request, broker: Broker = Depends(get_broker)):
    """A signed XML document (the body, at most the API's body limit) checked: signature, signer's entitlement,
    current status. Hostile or malformed XML: 400; no document the hub reads: 422; 429 as for the GET."""
    wait = wait_for(request, broker)
    if wait:
        return too_many(wait)
    body = await request.body()
    answer = await run_in_threadpool(check_signed_copy, broker, body)
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})
