"""Moving stored documents through their lifecycle (:mod:`hub.records.lifecycle`), with a trace event each time.

The issuing authority moves a permit by hand (cancellation requested when the holder asks, cancelled once the
original sheets are back; expired early); the hub expires permits whose validity has ended on its own
(:func:`expire_permits`, run by the worker); customs' write-off makes a document used (:mod:`hub.customs.registry`).
An expired permit can be duplicated into a new request that references it (:func:`duplicate_request`).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import families
from hub.errors import ConflictError
from hub.records.lifecycle import Lifecycle, move
from hub.store.models import Document, utcnow
from hub.store.trace import add_event

#: Lifecycles the authority may set by hand; the others follow from what happens (issue, write-off, replacement).
MANUAL = frozenset({Lifecycle.EXPIRED, Lifecycle.CANCELLATION_REQUESTED, Lifecycle.CANCELLED})
#: How a duplicate refers to the expired permit it repeats: UNCL 1001 ZZZ, "mutually defined" (no code says it).
DUPLICATED_DOCUMENT_CODE = "ZZZ"


def change_lifecycle(session: Session, document: Document, target: Lifecycle | str, *, actor: str, reason: str | None = None) -> Document:
    """Move ``document`` to ``target`` (checked against the allowed moves) and trace it; a move to where it already
    is changes nothing. Raises :class:`~hub.errors.ConflictError` for a move the model does not allow."""
    target = move(document.lifecycle, target)
    if target.value != document.lifecycle:
        document.lifecycle = target.value
        add_event(session, document=document, event=f"document.{target.value}", actor=actor, state=target.value, detail={"reason": reason} if reason else {})
    return document


def valid_until(document: Document) -> datetime | None:
    """The last moment a document may be used (a CITES permit's Box 2), as its family reads it; None for documents
    without a validity."""
    family = families.for_kind(document.kind)
    return family.valid_until(document.record) if family is not None and family.valid_until else None


_EXPIRING_KINDS = [kind for family in families.FAMILIES if family.expires for kind in family.kinds]


def expire_permits(session: Session, *, now: datetime | None = None) -> list[Document]:
    """Every permit still issued or completed whose validity has ended becomes expired (traced as the hub's doing)."""
    now = now or utcnow()
    open_permits = session.scalars(
        select(Document).where(Document.kind.in_(_EXPIRING_KINDS), Document.lifecycle.in_([Lifecycle.ISSUED.value, Lifecycle.COMPLETED.value]))
    )
    expired = []
    for document in open_permits:
        ends = valid_until(document)
        if ends is not None and ends < now:
            expired.append(change_lifecycle(session, document, Lifecycle.EXPIRED, actor="hub", reason=f"validity ended on {ends.isoformat()}"))
    return expired


def duplicate_request(document: Document) -> dict[str, Any]:
    """A new permit request made from an expired permit: its record without number, dates or signatures, referring
    to the expired permit (``referenced_documents``), for the authority to complete and submit."""
    if document.lifecycle != Lifecycle.EXPIRED.value:
        raise ConflictError(f"only an expired permit can be duplicated; {document.certificate_number} is {document.lifecycle}", where="lifecycle")
    record = copy.deepcopy(document.record)
    for field in ("permit_number", "issue_date_time", "validity", "first_signatory", "second_signatory", "third_signatory", "fourth_signatory"):
        record.pop(field, None)
    for item in record.get("consignment", {}).get("items", []):
        item.pop("customs_endorsement", None)
    record.get("consignment", {}).pop("customs_endorsement", None)
    reference = {"id": document.certificate_number, "type_code": DUPLICATED_DOCUMENT_CODE}
    if document.issued_at:
        reference["issue_date_time"] = document.issued_at.isoformat()
    record["referenced_documents"] = [*record.get("referenced_documents", []), reference]
    return record
