"""The facsimile of a record: laid out like the official model with its boxes labelled in English and French (and
Spanish when the document speaks it), the document's values in the boxes, a QR code to the verification page with
the code in clear beside it, and the issuing authority's PDF signature, valid, and broken by any change."""

from __future__ import annotations

import copy
import re

import pytest
import segno

from hub.facsimile import render
from hub.facsimile.labels import LABELS, languages_for
from hub.facsimile.page import QR_ERROR
from hub.mapping.cites_permit import permit_from_data
from hub.mapping.sps_certificate import parse_certificate, record_from_data
from hub.signing.verification import SECRET_FILE, load_secret, verification_code, verification_url
from tests.facsimile.pdf import qr_modules, signature_status, text_of
from tests.support.broker import example_record, permit_record
from tests.support.standards import standard_file

PUBLIC_URL = "https://hub.example.org"
NORWAY_SAMPLE = "samples/ephyto/NO-ephyto-SPSCertificate.xml"  # issued by Argentina's NPPO (SENASA)
HORSE_CHED = "samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml"  # a CHED-A from Serbia


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A development PKI holding the issuing authorities of the samples (Argentina, Serbia) and France."""
    from hub.signing.pki import init_dev_pki

    return init_dev_pki(tmp_path_factory.mktemp("facsimile-pki"), authorities=("FR", "AR", "RS"), rsa_key_bits=2048)


def made(record, certs, country: str, **options):
    return render(record, issuing_country=country, certs_dir=certs.directory, public_url=PUBLIC_URL, **options)


def labels(*keys: str, languages=("en", "fr")) -> list[str]:
    return [LABELS[key][("en", "fr", "es").index(language)] for key in keys for language in languages]


def assert_shows(text: str, *expected: str) -> None:
    missing = [e for e in expected if " ".join(e.split()) not in text]
    assert not missing, f"not on the facsimile: {missing}"


@pytest.mark.interop
def test_a_real_ephyto_prints_the_ippc_model_in_english_and_french(certs, tmp_path):
    record = parse_certificate(standard_file(NORWAY_SAMPLE).read_bytes()).record
    facsimile = made(record, certs, "AR")
    text = text_of(facsimile.pdf, tmp_path)
    assert facsimile.languages == ("en", "fr")
    assert_shows(text, *labels("title_phytosanitary", "nppo_from", "exporter", "consignee_declared", "packages", "marks", "place_of_origin",
                               "conveyance", "point_of_entry", "produce", "botanical", "additional_declaration", "section_treatment",
                               "place_of_issue", "officer", "replaces"))
    assert_shows(text, "123ABC", "Juan Perez", "Importer SA", "Servicio Nacional de Sanidad", "Ribes", "Lot number :8888", "G2382564",
                 "Phyllocnistiscitrella is absent in Argentina", "DFGG 1111", "Miguel Perrerra", "La Plata, Buenos Aires", "3214356")
    code = verification_code(load_secret(certs.directory / SECRET_FILE), issuing_country="AR", number="123ABC")
    assert facsimile.code == code and facsimile.url == verification_url(PUBLIC_URL, number="123ABC", code=code)
    assert_shows(text, code, facsimile.url)


def test_the_qr_code_carries_the_verification_address(certs, tmp_path):
    facsimile = made(record_from_data(example_record()), certs, "FR")
    printed = qr_modules(facsimile.pdf, tmp_path)
    expected = [[bool(module) for module in row] for row in segno.make(facsimile.url, error=QR_ERROR).matrix]
    assert printed == expected
    assert printed != [[bool(m) for m in row] for row in segno.make(facsimile.url.replace("code=", "code=X"), error=QR_ERROR).matrix]


def test_the_signature_is_the_issuing_authoritys_and_valid(certs):
    facsimile = made(record_from_data(example_record()), certs, "FR")
    status = signature_status(facsimile.pdf, certs.ca_cert)
    assert status.intact and status.valid and status.trusted and status.bottom_line
    assert "FR" in status.signing_cert.subject.human_friendly


def test_a_changed_byte_breaks_the_signature(certs):
    facsimile = made(record_from_data(example_record()), certs, "FR")
    position = facsimile.pdf.index(b"/Producer")
    altered = facsimile.pdf[:position] + b"/Producex" + facsimile.pdf[position + len(b"/Producer"):]
    status = signature_status(altered, certs.ca_cert)
    assert not status.intact and not status.bottom_line


def test_a_page_added_after_signing_is_seen(certs):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    import io

    facsimile = made(record_from_data(example_record()), certs, "FR")
    writer = IncrementalPdfFileWriter(io.BytesIO(facsimile.pdf), strict=False)
    # an attacker rewrites the first page's content (a new number, say) in an update after the signature
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 700 Td (FR-FAKE) Tj ET"))
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    status = signature_status(out.getvalue(), certs.ca_cert)
    assert status.intact and not status.docmdp_ok and not status.bottom_line


def test_a_stranger_ca_does_not_make_it_trusted(certs, stranger_pki):
    facsimile = made(record_from_data(example_record()), certs, "FR")
    status = signature_status(facsimile.pdf, stranger_pki.ca_cert)
    assert status.intact and not status.trusted and not status.bottom_line


@pytest.mark.interop
def test_a_real_ched_prints_its_part_one(certs, tmp_path):
    record = parse_certificate(standard_file(HORSE_CHED).read_bytes()).record
    text = text_of(made(record, certs, "RS", number="CHEDA.RS.2019.0000001").pdf, tmp_path)
    assert_shows(text, *labels("title_ched", "ched_A", "part1_ched", "consignor_exporter", "consignee_importer", "bcp", "means_of_transport",
                               "description_consignment", "purpose", "accompanying_documents"))
    assert_shows(text, "I.1", "I.2", "I.3", "I.5", "RS000111", "ES222222", "ESMAD4", "Equus caballus", "LH1198", "TEMPORARY_ADMISSION",
                 "REGISTERED_EQUIDAE", "SPS-Certificate-007", "Serbia (RS)", "CHEDA.RS.2019.0000001")


def test_a_ched_with_a_border_decision_prints_part_two(certs, tmp_path):
    data = example_record("ched-P-FR-cheese")
    data["signatories"] = [data.pop("signatory"), {"type_code": {"value": "5", "name": "Decision"}, "provider": {"name": "BCP Lyon"},
                                                   "clauses": [{"id": "DECISION", "content": ["ACCEPTABLE_FOR_INTERNAL_MARKET"]}]}]
    text = text_of(made(record_from_data(data), certs, "FR").pdf, tmp_path)
    assert_shows(text, *labels("part1_ched", "part2_ched", "ched_P"), "CHEDP.FR.2026.0001234", "Gruyère AOP", "2400 KGM", "BCP Lyon",
                 "ACCEPTABLE_FOR_INTERNAL_MARKET")


def test_a_veterinary_certificate_prints_the_health_certificate_model(certs, tmp_path):
    data = example_record(kind="veterinary", certificate_number="FR-2026-VET-0042")
    data["consignment"]["items"][0]["line_items"][0].update(descriptions=["Frozen bovine meat"], scientific_names=["Bos taurus"])
    text = text_of(made(record_from_data(data), certs, "FR").pdf, tmp_path)
    assert_shows(text, *labels("title_veterinary", "part1_health", "part2_health", "consignor_exporter", "consignee_importer",
                               "country_of_destination", "description_consignment", "certifying_officer"))
    assert_shows(text, "I.1", "I.5", "I.27", "FR-2026-VET-0042", "Frozen bovine meat", "Bos taurus", "Vergers du Languedoc SARL",
                 "Ecuador (EC)", "Claire Martin", "This is to certify")


def test_a_cites_permit_prints_the_fifteen_boxes_in_three_languages(certs, tmp_path):
    facsimile = made(permit_from_data(permit_record()), certs, "FR", languages=("en", "fr", "es"))
    text = text_of(facsimile.pdf, tmp_path)
    boxes = ("cites_document", "valid_until", "importer", "country_of_import", "exporter_cites", "special_conditions", "purpose_transaction",
             "security_stamp", "management_authority", "species", "specimens", "appendix_source", "quantity", "quota", "origin_permit",
             "last_reexport", "operation", "issued_by", "export_endorsement", "transport_document")
    assert_shows(text, *labels("title_cites", *boxes, languages=("en", "fr", "es")))
    for number in ("1", "2", "3", "3a", "4", "5", "5a", "5b", "6", "A 7/8", "A 9", "A 10", "A 11", "A 11a", "A 12", "A 12a", "A 12b", "13", "14", "15"):
        assert f" {number} " in f" {text} ", f"box {number} is not numbered"
    assert_shows(text, "FR2607512345-R", "☒ Re-export", "☐ Export", "Malayopython reticulatus", "Python réticulé", "II — W", "12 PCS",
                 "Hakone Leather Co., Ltd.", "Japan (JP)", "Maroquinerie du Marais SAS", "FR0412345", "03117/IV/SATS-LN/2025", "25SG004821R",
                 "057-12345675", "Claire Moreau", "Vincennes")


def test_a_document_in_spanish_is_labelled_in_spanish_too(certs, tmp_path):
    data = example_record()
    data["notes"].append({"subject": "ADEDL", "content": [{"value": "La fruta está libre de Cydia pomonella.", "language": "es"}]})
    facsimile = made(record_from_data(data), certs, "FR")
    assert facsimile.languages == ("en", "fr", "es")
    assert_shows(text_of(facsimile.pdf, tmp_path), *labels("exporter", "botanical", "statement_phytosanitary", languages=("es",)))


def test_a_replaced_document_says_so_under_its_number(certs, tmp_path):
    text = text_of(made(record_from_data(example_record()), certs, "FR", lifecycle="replaced").pdf, tmp_path)
    assert_shows(text, f"{LABELS['status'][0]} / {LABELS['status'][1]}: REPLACED")


def test_many_lines_run_onto_more_pages_and_every_page_says_how_to_verify(certs, tmp_path):
    data = example_record()
    line = data["consignment"]["items"][0]["line_items"][0]
    data["consignment"]["items"][0]["line_items"] = [dict(copy.deepcopy(line), sequence_number=n, descriptions=[f"Apples lot {n}"]) for n in range(1, 61)]
    facsimile = made(record_from_data(data), certs, "FR")
    text = text_of(facsimile.pdf, tmp_path)
    pages = int(re.search(r"Page 1/(\d+)", text).group(1))
    assert pages >= 2 and text.count(facsimile.url) == pages
    assert all(f"Apples lot {n} " in text for n in range(1, 61)), "every line printed, none cut"
    assert signature_status(facsimile.pdf, certs.ca_cert).bottom_line


def test_languages_are_english_and_french_and_the_documents_own():
    assert languages_for([]) == ("en", "fr")
    assert languages_for(["EN", "fr"]) == ("en", "fr")
    assert languages_for(["es", "nn", "la"]) == ("en", "fr", "es")
