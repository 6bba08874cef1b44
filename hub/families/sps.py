"""The SPS certificate family: UN/CEFACT SPSCertificate 17 (ePhyto, veterinary certificates, CHEDs)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from lxml import etree

from hub.families.base import Checked, Described, DocumentFamily, ProductLine, RoutingFacts, text_of
from hub.mapping.sps_certificate import parse_certificate, record_from_data, sps_spec
from hub.records.sps import RECORD_MODELS, SPS_RECORD_CLASSES, DocumentKind, SPSCertificateRecord
from hub.records.status import DocumentStatus
from hub.validation.validator import validate_certificate, validate_record


def describe(record: SPSCertificateRecord) -> Described:
    """The broker's view of a certificate: number, the number an ADRPN note says it replaces, its lines."""
    number = text_of(record.certificate_number)
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


def routing_facts(record: SPSCertificateRecord, *, direction: str = "outbound") -> RoutingFacts:
    """The facts of an SPS certificate record.

    The issuing country is the issuer's address country; without one it is the exporting country, except for a
    CHED, which the authority of the EU member state of entry issues: the importing country.
    """
    consignment = record.consignment
    exporting = text_of(consignment.export_country and consignment.export_country.id)
    importing = text_of(consignment.import_country and consignment.import_country.id)
    address = record.issuer.address if record.issuer else None
    issued_where = importing if record.kind.value == "ched" else exporting
    hs_codes = dict.fromkeys(code for line in record.line_items() for code in line.hs_codes())
    return RoutingFacts(
        kind=record.kind.value,
        status=record.status.value if record.status else "",
        issuing_country=text_of(address and address.country_id) or issued_where,
        exporting_country=exporting,
        importing_country=importing,
        hs_codes=tuple(hs_codes),
        direction=direction,
    )


def check_document(document: bytes | etree._Element, *, source: str = "document", now: datetime | None = None) -> Checked:
    """Validate an SPSCertificate (bare or wrapped)."""
    validated = validate_certificate(document, source=source, now=now)
    return Checked.of(validated.report, validated.certificate, validated.element)



def record_schema(kind: str) -> dict:
    """The JSON Schema of the records of ``kind``."""
    return RECORD_MODELS[DocumentKind(kind)].model_json_schema()


SPS = DocumentFamily(
    name="sps",
    title="SPS certificate (UN/CEFACT SPSCertificate 17)",
    record_model=SPS_RECORD_CLASSES,
    number_field="certificate_number",
    kinds=tuple(kind.value for kind in DocumentKind),
    root_tags=(sps_spec().root.clark,),
    content_tags=sps_spec().content_tags,
    from_data=record_from_data,
    parse=parse_certificate,
    render=validate_record,
    check_document=check_document,
    describe=describe,
    routing_facts=routing_facts,
    record_schema=record_schema,
    default_profile="full",
    profiles=("full", "ephyto"),
    profiled=True,
)
