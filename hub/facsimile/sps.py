"""The sheets of SPS certificates: the IPPC model phytosanitary certificate (and its re-export form), the model
health certificate (veterinary, sanitary and other SPS certificates: Part I, the consignment; Part II, the
certification) and the CHED (Part I, the consignment as declared; Part II, the border control post's controls and
decision, as far as the record carries them).

The phytosanitary model (ISPM 12) numbers no boxes: the numbers printed are the order of its boxes, for reference.
The health certificate and the CHED carry the numbers of the EU models (I.1 …) where a box holds what the record has.
"""

from __future__ import annotations

from hub.facsimile.sheet import Box, Section, Sheet
from hub.facsimile.values import code, country, date, identifier, joined, lines, location, measure, text, texts
from hub.records.sps import ChedCertificate, DocumentKind, Note, Party, TradeLineItem

#: IPPC treatment characteristic codes (the first description of a characteristic) and the box they fill.
_TREATMENT_BOXES = {"TTFT": "treatment", "TTCH": "chemical", "TTCO": "concentration", "TTTM": "temperature", "TTAI": "additional_information"}
_TITLES = {
    DocumentKind.PHYTOSANITARY: "title_phytosanitary", DocumentKind.PHYTOSANITARY_REEXPORT: "title_phytosanitary_reexport",
    DocumentKind.VETERINARY: "title_veterinary", DocumentKind.SANITARY: "title_sanitary", DocumentKind.INSPECTION: "title_inspection",
}
PHYTOSANITARY_CODE = "851"


def sheet_for(record) -> Sheet:
    """The sheet of an SPS certificate record, after the model of its kind."""
    if isinstance(record, ChedCertificate):
        return ched_sheet(record)
    if record.kind in (DocumentKind.PHYTOSANITARY, DocumentKind.PHYTOSANITARY_REEXPORT):
        return phytosanitary_sheet(record)
    return health_sheet(record)


# --- parts every model shares ------------------------------------------------------------------------------------------


def party(value: Party | None) -> str:
    """A party as the boxes print it: name, identifier, address lines, person."""
    if value is None:
        return ""
    address = value.address
    place = [] if address is None else [
        address.line_one, address.line_two, address.line_three, address.line_four, address.line_five,
        joined(text(address.postcode), text(address.city_name), separator=" "),
        joined(text(address.country_subdivision_name), text(address.country_name) or text(address.country_id)),
    ]
    return lines(value.name, identifier(value.id), *place, value.person.name if value.person else None)


def _notes(notes: list[Note], *subjects: str) -> list[str]:
    return [texts(note.content) for note in notes if note.subject in subjects and texts(note.content)]


def _line_notes(record, *subjects: str) -> list[str]:
    return [f"{_line_number(line)}: {shown}" for line in record.line_items() for shown in _notes(line.notes, *subjects)]


def _line_number(line: TradeLineItem) -> str:
    return f"#{line.sequence_number}" if line.sequence_number is not None else "#"


def _goods(line: TradeLineItem) -> str:
    classes = [joined(text(c.system_name) or text(c.system_id), text(c.class_code), texts(c.class_names), separator=" ") for c in line.classifications]
    quantity = measure(line.net_weight) or measure(line.gross_weight) or measure(line.net_volume) or measure(line.gross_volume)
    return joined(_line_number(line), texts(line.descriptions), texts(line.common_names), quantity, separator=" — ") + (
        f"\n   {'; '.join(c for c in classes if c.strip())}" if any(c.strip() for c in classes) else "")


def _packages(record) -> str:
    return lines(*(joined(_line_number(line), *(joined(measure(p.item_quantity), code(p.type_code), separator=" ") for p in line.packages), separator=" ")
                   for line in record.line_items() if line.packages))


def _transport(record) -> str:
    return lines(*(joined(code(m.mode_code), texts([m.means_name]), identifier(m.id)) for m in record.consignment.transport_movements))


def _equipment(record) -> str:
    return lines(*(joined(text(e.id), *(text(s.id) for s in e.seals), separator=" / ") for e in record.consignment.transport_equipment))


def _documents(record) -> str:
    return lines(*(joined(code(d.type_code), identifier(d.id), date(d.issue_date_time), texts(d.information)) for d in record.referenced_documents
                   if d.attachment is None or text(d.id)))


def _signing(signatory, fallback_date, officer_label: str = "officer") -> list[Box]:
    provider = signatory.provider if signatory else None
    officer = lines(provider.person.name if provider and provider.person else None, provider.name if provider else None)
    return [
        Box("place_of_issue", location(signatory.issue_location) if signatory else ""),
        Box(officer_label, officer),
        Box("date", date(signatory.actual_date_time) if signatory and text(signatory.actual_date_time) else date(fallback_date), width=0.7),
    ]


def _clauses(signatory) -> str:
    return lines(*(texts(c.content) for c in signatory.clauses)) if signatory else ""


# --- the phytosanitary certificate (ISPM 12) ---------------------------------------------------------------------------


def phytosanitary_sheet(record) -> Sheet:
    """The IPPC model phytosanitary certificate (or its re-export form) of ``record``."""
    consignment, reexport = record.consignment, record.kind is DocumentKind.PHYTOSANITARY_REEXPORT
    issuer = text(record.issuer.name) if record.issuer else ""
    preamble = [[Box("nppo_from", joined(country(consignment.export_country), issuer, separator="\n")), Box("nppo_to", country(consignment.import_country))]]
    replaced = _notes(record.notes, "ADRPN")
    if replaced:
        preamble.append([Box("replaces", joined(", ".join(replaced), *_notes(record.notes, "ADRPR"), *(date(d) for d in _notes(record.notes, "ADRD")), separator=" — "))])
    origin = lines(*(joined(_line_number(line), *(joined(country(o), text(o.subdivision.name) if o.subdivision else "") for o in line.origin_countries), separator=" ")
                     for line in record.line_items() if line.origin_countries))
    marks = lines(*_notes(record.notes, "DMCL"), *_line_notes(record, "DMTLIL"), _equipment(record))
    description = [
        [Box("exporter", party(consignment.consignor), "1"), Box("consignee_declared", party(consignment.consignee), "2")],
        [Box("packages", _packages(record), "3"), Box("marks", marks, "4")],
        [Box("place_of_origin", origin, "5"), Box("conveyance", _transport(record), "6"), Box("point_of_entry", location(consignment.unloading_port), "7")],
        [Box("produce", lines(*(_goods(line) for line in record.line_items())), "8", width=2),
         Box("botanical", lines(*(joined(_line_number(line), texts(line.scientific_names), separator=" ") for line in record.line_items())), "9")],
    ]
    if reexport:
        originals = [d for d in record.referenced_documents if d.type_code and text(d.type_code) == PHYTOSANITARY_CODE]
        description.append([Box("original_certificate", lines(*(joined(identifier(d.id), date(d.issue_date_time), texts(d.information)) for d in originals)))])
    statement = "statement_phytosanitary_reexport" if reexport else "statement_phytosanitary"
    description.append([Box(statement, _clauses(record.signatory))])
    additional = [[Box("additional_declaration", lines(*_notes(record.notes, "ADEDL"), *_line_notes(record, "ADTLIL")), "10")]]
    extras = [Box(key, lines(*_notes(record.notes, subject), *_line_notes(record, line_subject))) for key, subject, line_subject in (
        ("import_permit", "ADIPEDL", "ADIPTLIL"), ("inspection_date", "ADDIEDL", "ADDITLIL"), ("official_information", "ADAOEDL", "ADAOTLIL"))]
    additional.extend([box] for box in extras if box.value)
    return Sheet(
        titles=[_TITLES[record.kind]], number=text(record.certificate_number), subtitle=issuer, preamble=preamble,
        sections=[Section(description, "section_description"), Section(additional, "section_additional"), Section(_treatments(record), "section_treatment")],
        signing=_signing(record.signatory, record.issue_date_time),
    )


def _treatments(record) -> list[list[Box]]:
    rows: list[list[Box]] = []
    for line in record.line_items():
        for process in line.applied_processes:
            found: dict[str, list[str]] = {}
            for characteristic in process.characteristics:
                codes = [text(d) for d in characteristic.descriptions]
                box = _TREATMENT_BOXES.get(codes[0] if codes else "", "additional_information")
                shown = joined(texts(characteristic.descriptions[1:] if codes and codes[0] in _TREATMENT_BOXES else characteristic.descriptions), measure(characteristic.value))
                found.setdefault(box, []).append(shown)
            period = process.period
            when = joined(date(period.start), date(period.end), separator=" – ") if period else ""
            duration = joined(measure(period.duration) if period else "", *found.get("temperature", []))
            prefix = f"{_line_number(line)} " if len(record.line_items()) > 1 else ""
            rows.append([Box("treatment_date", prefix + when, "11", width=0.8), Box("treatment", lines(*found.get("treatment", [])), "12"),
                         Box("chemical", lines(*found.get("chemical", [])), "13"), Box("duration_temperature", duration, "14"),
                         Box("concentration", lines(*found.get("concentration", [])), "15", width=0.8)])
            notes = [texts(n.content) for n in process.notes]
            rows.append([Box("additional_information", lines(*found.get("additional_information", []), *notes), "16")])
    return rows or [[Box("treatment_date", "", "11", width=0.8), Box("treatment", "", "12"), Box("chemical", "", "13"),
                     Box("duration_temperature", "", "14"), Box("concentration", "", "15", width=0.8)],
                    [Box("additional_information", "", "16")]]


# --- health certificates (veterinary, sanitary, other) -----------------------------------------------------------------


def _origin_countries(record) -> str:
    found = [country(o) for line in record.line_items() for o in line.origin_countries]
    return texts(found, ", ") or country(record.consignment.export_country)


def _description(record) -> str:
    return lines(*(joined(_goods(line), texts(line.scientific_names), separator="\n   ") for line in record.line_items()))


def _totals(record) -> tuple[str, str]:
    packages = sum(float(text(p.item_quantity) or 0) for line in record.line_items() for p in line.packages if p.item_quantity)
    net = [measure(line.net_weight) for line in record.line_items() if line.net_weight]
    gross = [measure(line.gross_weight) for line in record.line_items() if line.gross_weight]
    return (f"{packages:g}" if packages else ""), joined(" + ".join(net), " + ".join(gross), separator=" / ")


def health_sheet(record) -> Sheet:
    """The model health certificate of a veterinary, sanitary or other SPS certificate record."""
    consignment = record.consignment
    local = [party(p) for country_ in [consignment.export_country] if country_ for s in country_.subdivisions for p in s.authorised_parties]
    packages, weight = _totals(record)
    part_one = [
        [Box("consignor_exporter", party(consignment.consignor), "I.1"), Box("certificate_reference", text(record.certificate_number), "I.2")],
        [Box("central_authority", party(record.issuer), "I.3"), Box("local_authority", lines(*local) or party(record.signatory.provider if record.signatory else None), "I.4")],
        [Box("consignee_importer", party(consignment.consignee), "I.5"), Box("operator_responsible", party(consignment.delivery_party or consignment.despatch_party), "I.6")],
        [Box("country_of_origin", _origin_countries(record), "I.7"), Box("country_of_destination", country(consignment.import_country), "I.9")],
        [Box("place_of_dispatch", location(consignment.examination_location), "I.11"), Box("place_of_destination", party(consignment.delivery_party), "I.12")],
        [Box("place_of_loading", location(consignment.loading_port), "I.13"), Box("departure", date(consignment.export_exit_date_time), "I.14")],
        [Box("means_of_transport", _transport(record), "I.15"), Box("entry_bcp", location(consignment.unloading_port), "I.16")],
        [Box("accompanying_documents", _documents(record), "I.17"), Box("containers_seals", _equipment(record), "I.19")],
        [Box("certified_for", texts([u for line in record.line_items() for u in line.intended_uses], ", "), "I.20"),
         Box("total_packages", packages, "I.24", width=0.6), Box("total_weight", weight, "I.26")],
        [Box("description_consignment", _description(record), "I.27")],
    ]
    part_two = [[Box("clauses", lines(*(_clauses(s) for s in record.signatories)), "II")]]
    return Sheet(
        titles=[_TITLES.get(record.kind, "title_sps")], number=text(record.certificate_number), subtitle=texts([record.name]),
        sections=[Section(part_one, "part1_health"), Section(part_two, "part2_health")],
        signing=_signing(record.signatory, record.issue_date_time, "certifying_officer"),
    )


# --- the CHED (Regulation (EU) 2019/1715) -----------------------------------------------------------------------------


def _clause_values(signatory, *ids: str) -> str:
    return texts([content for clause in signatory.clauses if text(clause.id) in ids for content in clause.content], ", ") if signatory else ""


def _signatory(signatory) -> str:
    provider = signatory.provider
    return lines(code(signatory.type_code), party(provider) if provider else None, date(signatory.actual_date_time),
                 *(joined(text(c.id), texts(c.content), separator=": ") for c in signatory.clauses))


def ched_sheet(record: ChedCertificate) -> Sheet:
    """The CHED of ``record``: Part I as declared, Part II the controls and decision its further signatories carry."""
    consignment, applicant = record.consignment, record.signatory
    packages, weight = _totals(record)
    part_one = [
        [Box("consignor_exporter", party(consignment.consignor), "I.1"), Box("imsoc_reference", text(record.certificate_number), "I.2")],
        [Box("bcp", location(consignment.unloading_port), "I.3"), Box("consignee_importer", party(consignment.consignee), "I.5")],
        [Box("place_of_destination", party(consignment.delivery_party), "I.6"), Box("customs_agent", party(consignment.customs_transit_agent))],
        [Box("accompanying_documents", _documents(record))],
        [Box("country_of_origin", _origin_countries(record)), Box("country_of_dispatch", country(consignment.export_country)),
         Box("transit_countries", texts([country(c) for c in consignment.transit_countries], ", "))],
        [Box("means_of_transport", _transport(record)), Box("departure", date(consignment.export_exit_date_time)),
         Box("arrival", date(consignment.availability_due_date_time))],
        [Box("containers_seals", _equipment(record)), Box("certified_for", _clause_values(applicant, "GOODS_CERTIFIED_AS")),
         Box("purpose", _clause_values(applicant, "PURPOSE"))],
        [Box("description_consignment", _description(record), width=2), Box("total_packages", packages, width=0.6), Box("total_weight", weight)],
        [Box("declaration", _signatory(applicant) if applicant else "")],
    ]
    sections = [Section(part_one, "part1_ched")]
    controls = record.signatories[1:]
    if controls:
        sections.append(Section([[Box("signatory", _signatory(s))] for s in controls], "part2_ched"))
    last = record.signatories[-1] if record.signatories else None
    return Sheet(
        titles=["title_ched", f"ched_{record.ched_type}"], number=text(record.certificate_number), subtitle=texts([record.name]),
        sections=sections, signing=_signing(last, record.issue_date_time, "signatory"),
    )
