"""Non-conformities: a negative acknowledgement, an importing country's rejection or a border refusal (refoulement),
linked to the certificate, with its counterpart, country, products, cause and evidence — and, once issued, the
replacement certificate. Operators count them by country × product × cause × counterpart to see what goes wrong most.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.scope import Scope
from hub.store.models import Document, NonConformity, NonConformityProduct, utcnow
from hub.store.trace import add_event

SOURCES = ("acknowledgement", "business_response", "border_refusal", "exporter", "fraud_suspected")
GROUPS = {
    "country": NonConformity.country,
    "counterpart": NonConformity.counterpart,
    "cause": NonConformity.cause_code,
    "product": NonConformityProduct.hs_code,
}


def open_non_conformity(
    session: Session,
    *,
    document: Document,
    source: str,
    counterpart: str,
    cause_code: str,
    actor: str,
    cause_text: str | None = None,
    country: str | None = None,
    products: Iterable[str] | None = None,
    message_id: str | None = None,
    acknowledgement_id: int | None = None,
    evidence_digest: str | None = None,
) -> NonConformity:
    """Open a non-conformity on ``document`` (in the caller's transaction) and trace it. ``products`` are HS codes;
    by default the document's own. The country defaults to the importing country."""
    if source not in SOURCES:
        raise ValueError(f"unknown non-conformity source {source!r}")
    codes = list(dict.fromkeys(products if products is not None else (document.product_codes or [])))
    names = {p.hs_code: p.scientific_name for p in document.products}
    nc = NonConformity(
        id=str(uuid.uuid4()),
        document_id=document.id,
        message_id=message_id,
        acknowledgement_id=acknowledgement_id,
        tenant=document.tenant,
        source=source,
        counterpart=counterpart,
        country=country or document.importing_country,
        cause_code=cause_code,
        cause_text=cause_text,
        evidence_digest=evidence_digest,
        state="open",
        opened_at=utcnow(),
        products=[NonConformityProduct(hs_code=code, scientific_name=names.get(code)) for code in codes],
    )
    session.add(nc)
    session.flush()
    add_event(
        session,
        document=document,
        message_id=message_id,
        destination=counterpart,
        event="non_conformity.opened",
        actor=actor,
        detail={"non_conformity": nc.id, "source": source, "cause_code": cause_code, "cause_text": cause_text},
        payload_digest=evidence_digest,
    )
    return nc


@dataclass(frozen=True)
class NonConformityFilter:
    tenant: str | None = None
    country: str | None = None
    counterpart: str | None = None
    cause: str | None = None
    product: str | None = None  # an HS code prefix
    since: datetime | None = None
    until: datetime | None = None
    state: str | None = None


def _filtered(query, f: NonConformityFilter, *, joined_products: bool):
    query = Scope.of(f.tenant).restrict(query, NonConformity.tenant)
    if f.country:
        query = query.where(NonConformity.country == f.country)
    if f.counterpart:
        query = query.where(NonConformity.counterpart == f.counterpart)
    if f.cause:
        query = query.where(NonConformity.cause_code == f.cause)
    if f.state:
        query = query.where(NonConformity.state == f.state)
    if f.since:
        query = query.where(NonConformity.opened_at >= f.since)
    if f.until:
        query = query.where(NonConformity.opened_at < f.until)
    if f.product:
        if joined_products:
            query = query.where(NonConformityProduct.hs_code.startswith(f.product, autoescape=True))
        else:
            query = query.where(NonConformity.products.any(NonConformityProduct.hs_code.startswith(f.product, autoescape=True)))
    return query


def list_non_conformities(session: Session, f: NonConformityFilter, *, limit: int = 50, offset: int = 0) -> tuple[int, Sequence[NonConformity]]:
    """The total and one page of matching non-conformities, newest first."""
    total = session.scalar(_filtered(select(func.count(NonConformity.id)), f, joined_products=False)) or 0
    rows = session.scalars(_filtered(select(NonConformity), f, joined_products=False).order_by(NonConformity.opened_at.desc()).limit(limit).offset(offset)).all()
    return total, rows


def statistics(session: Session, f: NonConformityFilter, *, by: Sequence[str]) -> list[dict]:
    """Counts of non-conformities grouped by any of ``country``, ``product``, ``cause``, ``counterpart``, most frequent
    first. Grouping by product counts a non-conformity once per product it names."""
    unknown = [g for g in by if g not in GROUPS]
    if unknown or not by:
        raise ValueError(f"group by one or more of {sorted(GROUPS)}, not {unknown or 'nothing'}")
    columns = [GROUPS[g].label(g) for g in by]
    joined = "product" in by or f.product is not None
    count = func.count(func.distinct(NonConformity.id)).label("count")
    query = select(*columns, count).select_from(NonConformity)
    if joined:
        query = query.outerjoin(NonConformityProduct, NonConformityProduct.non_conformity_id == NonConformity.id)
    query = _filtered(query, f, joined_products=joined).group_by(*columns).order_by(count.desc(), *columns)
    return [dict(row._mapping) for row in session.execute(query)]
