"""GUN C638: a CITES import permit is valid for clearance only against the exporting country's permit it names.

Each line of an import permit names the permit of the country the specimens come from: the certificate of the country
of last re-export (Box 12a, 811) when there is one, else the origin permit (Box 12, 861). That document must have
reached the hub (received from abroad: verified and validated), be issued by the exporting country, still be usable,
and cover the species and at least the quantity imported.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.lifecycle import valid_until
from hub.records.lifecycle import CLOSED, Lifecycle
from hub.store.models import Document, utcnow

_EXPORT_KINDS = ("cites_export", "cites_reexport")


def export_permit_reasons(session: Session, permit: Document) -> list[str]:
    """Why the import permit ``permit`` cannot be used against its exporting country's permits (empty: it can)."""
    if permit.kind != "cites_import":
        return []
    reasons = []
    for index, item in enumerate(((permit.record or {}).get("consignment") or {}).get("items") or [], start=1):
        named = item.get("last_reexport_certificate") or item.get("origin_permit") or {}
        number = _text(named.get("id"))
        if not number:
            reasons.append(f"line {index} names no permit of the exporting country (Box 12 or 12a)")
            continue
        found = session.scalars(
            select(Document)
            .where(Document.certificate_number == number, Document.kind.in_(_EXPORT_KINDS), Document.issuing_country == permit.exporting_country)
            .order_by(Document.version.desc(), Document.created_at.desc())
        ).first()
        reasons += _against(found, number, permit.exporting_country, item)
    return reasons


def _against(found: Document | None, number: str, country: str | None, item: dict[str, Any]) -> list[str]:
    if found is None:
        return [f"the exporting country's permit {number} ({country}) has not been received"]
    if Lifecycle(found.lifecycle) in CLOSED:
        return [f"the exporting country's permit {number} is {found.lifecycle}"]
    ends = valid_until(found)
    if ends is not None and ends < utcnow():
        return [f"the exporting country's permit {number} expired on {ends.isoformat()}"]
    species = _text(item.get("scientific_name"))
    covered = [p for p in found.products if not species or p.scientific_name == species]
    if not covered:
        return [f"the exporting country's permit {number} does not cover {species}"]
    wanted = _text((item.get("quantity") or {}).get("value"))
    allowed = sum((p.quantity for p in covered if p.quantity is not None), Decimal(0))
    if wanted and Decimal(wanted) > allowed:
        return [f"{wanted} {species or 'specimens'} imported, more than the {allowed} the exporting country's permit {number} allows"]
    return []


def _text(value: Any) -> str | None:
    text = str(value.get("value") if isinstance(value, dict) else value or "").strip()
    return text or None
