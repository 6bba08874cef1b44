"""The document families the broker carries (SPS certificates, CITES permits), each described the same way: its
number, what it replaces, its products with their quantities, and the facts routing reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from hub.records.cites import CITESPermit, PermitKind
from hub.records.sps import SPSCertificateRecord
from hub.records.status import DocumentStatus
from hub.routing.table import RoutingFacts

Record = SPSCertificateRecord | CITESPermit


@dataclass(frozen=True)
class ProductLine:
    """One line of goods or specimens, as the store indexes it (crisis search, statistics, customs quantities)."""

    line: int
    hs_code: str | None = None
    scientific_name: str | None = None
    common_name: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Described:
    """What the broker needs of any document: number (None when absent), the number it replaces, whether it is a
    withdrawal, when it was issued, and its product lines."""

    number: str | None
    refers_to: str | None
    withdrawn: bool
    issued_at: datetime | None
    products: tuple[ProductLine, ...]

    @property
    def product_codes(self) -> list[str]:
        return list(dict.fromkeys(p.hs_code for p in self.products if p.hs_code))


def describe(record: Record) -> Described:
    """The broker's view of ``record``."""
    if isinstance(record, CITESPermit):
        return _describe_permit(record)
    return _describe_certificate(record)


def routing_facts(record: Record, *, direction: str = "outbound") -> RoutingFacts:
    """What routing reads of ``record``.

    A CITES permit is issued by the management authority of Box 6 (its address country); without one, by the
    exporting country, except an import permit, which the importing country issues.
    """
    if not isinstance(record, CITESPermit):
        return RoutingFacts.from_record(record, direction=direction)
    exporting, importing = record.exporting_country(), record.importing_country()
    authority = record.issuing_authority
    address = authority.address if authority else None
    issued_where = importing if record.kind is PermitKind.CITES_IMPORT else exporting
    return RoutingFacts(
        kind=record.kind.value,
        status=DocumentStatus.ISSUED.value,
        issuing_country=_text(address.country_id if address else None) or issued_where,
        exporting_country=exporting,
        importing_country=importing,
        direction=direction,
    )


def _describe_certificate(record: SPSCertificateRecord) -> Described:
    number = _text(record.certificate_number)
    replaced = [" ".join(c.value for c in note.content).strip() for note in record.notes_with_subject("ADRPN")]
    products = []
    for index, line in enumerate(record.line_items(), start=1):
        hs = line.hs_codes()
        products.append(ProductLine(
            line=line.sequence_number or index,
            hs_code=hs[0] if hs else None,
            scientific_name=line.scientific_names[0].value if line.scientific_names else None,
            common_name=line.common_names[0].value if line.common_names else None,
            quantity=Decimal(line.net_weight.value) if line.net_weight else None,
            unit=line.net_weight.unit if line.net_weight else None,
        ))
    return Described(
        number=number,
        refers_to=next((n for n in replaced if n and n != number), None),
        withdrawn=record.status is DocumentStatus.WITHDRAWN,
        issued_at=record.issue_date_time.as_datetime() if record.issue_date_time else None,
        products=tuple(products),
    )


def _describe_permit(permit: CITESPermit) -> Described:
    products = []
    for index, item in enumerate(permit.consignment.items, start=1):
        quantity = item.quantity.value.strip() if item.quantity is not None else ""
        products.append(ProductLine(
            line=index,
            scientific_name=_text(item.scientific_name),
            common_name=item.common_names[0].value if item.common_names else None,
            quantity=Decimal(quantity) if quantity else None,
            unit=item.quantity.unit if item.quantity is not None and quantity else None,
        ))
    return Described(
        number=_text(permit.permit_number),
        refers_to=None,
        withdrawn=False,
        issued_at=permit.issue_date_time.as_datetime() if permit.issue_date_time and permit.issue_date_time.value.strip() else None,
        products=tuple(products),
    )


def _text(value: object) -> str | None:
    text = str(getattr(value, "value", value) or "").strip()
    return text or None
