"""The CITES permit family: CITESEPermit 2 (export, re-export, import permits and certificates)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from lxml import etree

from hub.families.base import Checked, Described, DocumentFamily, ProductLine, RoutingFacts, text_of
from hub.mapping.cites_permit import PROFILES, content_tags, parse_permit, permit_from_data, permit_root_tags
from hub.records.cites import CITESPermit, PermitKind
from hub.records.status import DocumentStatus
from hub.records.values import DateTime
from hub.validation.validator import validate_permit, validate_permit_record


def describe(permit: CITESPermit) -> Described:
    """The broker's view of a permit: its number, issue date and specimens."""
    products = []
    for index, item in enumerate(permit.consignment.items, start=1):
        quantity = item.quantity.value.strip() if item.quantity is not None else ""
        products.append(ProductLine(
            line=index,
            scientific_name=text_of(item.scientific_name),
            common_name=item.common_names[0].value if item.common_names else None,
            quantity=Decimal(quantity) if quantity else None,
            unit=item.quantity.unit if item.quantity is not None and quantity else None,
        ))
    return Described(
        number=text_of(permit.permit_number),
        refers_to=None,
        withdrawn=False,
        issued_at=permit.issue_date_time.as_datetime() if permit.issue_date_time and permit.issue_date_time.value.strip() else None,
        products=tuple(products),
    )


def routing_facts(permit: CITESPermit, *, direction: str = "outbound") -> RoutingFacts:
    """What routing reads of a permit.

    A CITES permit is issued by the management authority of Box 6 (its address country); without one, by the
    exporting country, except an import permit, which the importing country issues.
    """
    exporting, importing = permit.exporting_country(), permit.importing_country()
    authority = permit.issuing_authority
    address = authority.address if authority else None
    issued_where = importing if permit.kind is PermitKind.CITES_IMPORT else exporting
    return RoutingFacts(
        kind=permit.kind.value,
        status=DocumentStatus.ISSUED.value,
        issuing_country=text_of(address.country_id if address else None) or issued_where,
        exporting_country=exporting,
        importing_country=importing,
        direction=direction,
    )


def check_document(document: bytes | etree._Element, *, source: str = "document", now: datetime | None = None) -> Checked:
    """Validate a CITESEPermit (either root form, bare or in its EPIX response)."""
    validated = validate_permit(document, source=source, now=now)
    return Checked.of(validated.report, validated.permit, validated.element)



def awaiting_sale(permit: CITESPermit) -> bool:
    """A simplified-procedure certificate issued before its sale names no importing country yet: kept, not sent."""
    return permit.simplified_procedure is not None and permit.importing_country() is None


def record_schema(kind: str) -> dict:
    """The JSON Schema of permit records (one model for every permit kind)."""
    return CITESPermit.model_json_schema()


def valid_until(record: dict) -> datetime | None:
    """The last moment a permit may be used (Box 2, ``validity.end`` of the stored record), in UTC when naive."""
    text = ((record or {}).get("validity") or {}).get("end")
    end = DateTime(value=text).as_datetime() if isinstance(text, str) and text.strip() else None
    return end if end is None or end.tzinfo else end.replace(tzinfo=timezone.utc)


CITES = DocumentFamily(
    name="cites",
    title="CITES permit (CITESEPermit 2)",
    record_model=CITESPermit,
    number_field="permit_number",
    kinds=tuple(kind.value for kind in PermitKind),
    root_tags=permit_root_tags(),
    content_tags=content_tags(),
    from_data=permit_from_data,
    parse=parse_permit,
    render=validate_permit_record,
    check_document=check_document,
    describe=describe,
    routing_facts=routing_facts,
    record_schema=record_schema,
    default_profile="standard",
    profiles=PROFILES,
    awaiting_sale=awaiting_sale,
    valid_until=valid_until,
)
