"""The sheet of a CITES permit or certificate: the boxes 1 to 15 of the CITES standard form (Res. Conf. 12.3,
annex 2), filled as EPIX maps them to the CITESEPermit (see :mod:`hub.records.cites`). Boxes 7 to 12b repeat for
each specimen line (A, B, C …)."""

from __future__ import annotations

from hub.facsimile.labels import label
from hub.facsimile.sheet import Box, Section, Sheet
from hub.facsimile.values import code, country, date, joined, lines, location, measure, text, texts
from hub.records.cites import Address, CITESPermit, Party, PermitItem, PermitKind
from hub.records.common import Country

_KINDS = (PermitKind.CITES_EXPORT, PermitKind.CITES_REEXPORT, PermitKind.CITES_IMPORT, PermitKind.CITES_OTHER)


def party(value: Party | None) -> str:
    """A party as the boxes print it: name, address lines, country."""
    if value is None:
        return ""
    address = value.address
    place = [] if address is None else [
        text(address.post_office_box), *(text(s) for s in address.street_names),
        joined(text(address.postcode), text(address.city_name), separator=" "),
        joined(text(address.country_subdivision_name), country(_country(address))),
    ]
    persons = [p.name for p in [value.representative_person, *value.authoritative_signatory_persons] if p is not None]
    return lines(value.name, *place, *persons)


def _country(address: Address | None) -> Country | None:
    return Country(id=address.country_id, name=address.country_name) if address else None


def _document_type(permit: CITESPermit, languages: tuple[str, ...]) -> str:
    """Box 1's check boxes: the kind of the document ticked, the others left empty."""
    shown = "   ".join(f"{'☒' if permit.kind is kind else '☐'} {' / '.join(label(kind.value, languages))}" for kind in _KINDS)
    if permit.copy_indicator is not None:
        shown += "\n" + " / ".join(label("copy" if permit.copy_indicator else "original", languages))
    return shown


def _reference(country_, document) -> str:
    return joined(country(country_), text(document.id) if document else "", date(document.issue_date_time) if document else "", separator=" — ")


def _item_rows(item: PermitItem, letter: str) -> list[list[Box]]:
    endorsement = item.customs_endorsement
    return [
        [Box("species", joined(text(item.scientific_name), texts(item.common_names), separator="\n"), f"{letter} 7/8", width=1.4),
         Box("specimens", lines(texts(item.descriptions), code(item.term_code), texts(item.markings, ", ")), f"{letter} 9", width=1.4),
         Box("appendix_source", joined(text(item.appendix), text(item.source), text(item.eu_annex), separator=" — "), f"{letter} 10", width=0.6),
         Box("quantity", measure(item.quantity), f"{letter} 11", width=0.6)],
        [Box("quota", joined(measure(item.used_to_date_quota), measure(item.annual_quota), separator=" / "), f"{letter} 11a", width=0.6),
         Box("origin_permit", _reference(item.origin_country, item.origin_permit), f"{letter} 12"),
         Box("last_reexport", _reference(item.last_reexport_country, item.last_reexport_certificate), f"{letter} 12a"),
         Box("operation", joined(text(item.category_code), date(item.acquisition_date_time), separator=" — "), f"{letter} 12b", width=0.8)],
        *([[Box("export_endorsement", joined(measure(endorsement.actual_quantity), location(endorsement.location), date(endorsement.actual_date_time), separator=" — "),
                f"{letter} 14")]] if endorsement else []),
    ]


def permit_sheet(permit: CITESPermit, languages: tuple[str, ...]) -> Sheet:
    """The CITES standard form of ``permit``, labelled in ``languages``."""
    consignment, authority = permit.consignment, permit.issuing_authority
    validity = permit.validity
    head = [
        [Box("cites_document", _document_type(permit, languages), "1", width=2.2), Box("valid_until", date(validity.end) if validity else "", "2")],
        [Box("importer", party(consignment.consignee), "3", width=1.6), Box("country_of_import", country(_importing(permit)), "3a")],
        [Box("exporter_cites", party(consignment.consignor), "4", width=1.6), Box("management_authority", party(authority), "6", width=1.6)],
        [Box("special_conditions", texts(permit.information, "\n"), "5", width=1.6),
         Box("purpose_transaction", joined(text(permit.purpose_code), texts([permit.purpose]), separator=" — "), "5a", width=0.8),
         Box("security_stamp", text(permit.security_stamp), "5b", width=0.8)],
    ]
    items = [row for index, item in enumerate(consignment.items) for row in _item_rows(item, text(item.id) or chr(ord("A") + index))]
    signatory = permit.third_signatory or permit.first_signatory
    signed_by = lines(*(p.name for p in signatory.provider.authoritative_signatory_persons), text(signatory.provider.name), text(signatory.statement)) if signatory and signatory.provider else ""
    endorsement = consignment.customs_endorsement
    tail = [[Box("export_endorsement", joined(measure(endorsement.actual_quantity), location(endorsement.location), date(endorsement.actual_date_time),
                                               *(text(p.name) for p in endorsement.certifying_parties), separator=" — ") if endorsement else "", "14", width=2),
             Box("transport_document", text(consignment.transport_document.id) if consignment.transport_document else "", "15")]]
    return Sheet(
        titles=["title_cites", permit.kind.value], number=text(permit.permit_number), subtitle=text(authority.name) if authority else "",
        sections=[Section(head), Section(items), Section(tail)],
        signing=[Box("issued_by", lines(joined(location(permit.issue_location), date(permit.issue_date_time), separator=", "), signed_by), "13", width=2)],
    )


def _importing(permit: CITESPermit) -> Country | None:
    """Box 3a: the country in the importer's address."""
    return _country(permit.consignment.consignee.address if permit.consignment.consignee else None)
