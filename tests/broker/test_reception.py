"""The import side: a certificate from abroad verified, validated, stored for its importing country, handed on, and
confirmed to the counterpart only once stored (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from lxml import etree
from sqlalchemy import select

from hub.connector import InboundDocument, InboundOutcome, InboundVerdict
from hub.intake.submission import prepare
from hub.namespaces import XMLDSIG
from hub.store.models import Document, Message, TraceEvent
from tests.support.broker import ROUTES, ScriptedConnector, example_record, make_broker
from tests.support.standards import standard_file

INBOUND_ROUTES = {"rules": ROUTES["rules"] + [{"name": "imports-to-customs", "when": {"direction": "inbound", "importing_country": ["FR"]}, "to": ["customs"]}]}


class PullingConnector(ScriptedConnector):
    """A counterpart holding documents for the hub; it records each confirmation and whether the document was
    already stored when it came."""

    def __init__(self, name: str, broker_ref: list) -> None:
        super().__init__(name)
        self.held: list[InboundDocument] = []
        self.confirmed: list[tuple[str, InboundVerdict, bool]] = []
        self._broker_ref = broker_ref

    def pull_documents(self):
        return list(self.held)

    def confirm_document(self, document: InboundDocument, verdict: InboundVerdict) -> None:
        with self._broker_ref[0].database.sessions() as session:
            stored = verdict.document_id is not None and session.get(Document, verdict.document_id) is not None
        self.confirmed.append((document.counterpart_reference, verdict, stored))
        self.held.remove(document)


@pytest.fixture
def setup(database_url, pki):
    ref: list = []
    connectors = {"authority": ScriptedConnector("authority"), "customs": ScriptedConnector("customs"), "nppo_us": PullingConnector("nppo_us", ref)}
    broker = make_broker(database_url, pki, connectors=connectors, routes=INBOUND_ROUTES)
    ref.append(broker)
    yield broker, connectors["nppo_us"]
    broker.close()


def us_certificate(broker, number: str = "US-2026-PC-0042", **consignment) -> bytes:
    """A phytosanitary certificate the US NPPO issued for France, signed with its key."""
    record = example_record(certificate_number=number)
    record["consignment"].update({"export_country": {"id": "US"}, "import_country": {"id": "FR"}, **consignment})
    prepared = prepare(json.dumps(record).encode(), "application/json", tenant="US", routing=broker.routing, profiles={}, signer_for=broker.signer_for, verifier=broker.verifier)
    return prepared.canonical


def test_a_signed_certificate_from_abroad_is_stored_for_its_importing_country_and_handed_on(setup):
    broker, _ = setup
    body = us_certificate(broker)
    verdict = broker.receive_document("nppo_us", InboundDocument(body, "HUB-1", sender_country="US"))
    assert verdict.outcome in (InboundOutcome.ACCEPTED, InboundOutcome.ACCEPTED_WITH_WARNINGS)
    with broker.database.sessions() as session:
        document = session.get(Document, verdict.document_id)
        assert (document.direction, document.tenant, document.issuing_country, document.importing_country) == ("inbound", "FR", "US", "FR")
        assert broker_payload(session, document.payload_digest) == body  # kept as received, never re-signed
        messages = session.scalars(select(Message).where(Message.document_id == document.id)).all()
        assert [m.destination for m in messages] == ["customs"] and messages[0].payload_digest == document.payload_digest
        events = {e.event: e for e in session.scalars(select(TraceEvent).where(TraceEvent.document_id == document.id))}
    assert events["document.received"].detail["counterpart_reference"] == "HUB-1" and events["document.received"].actor == "counterpart:nppo_us"
    assert "US" in events["document.verified"].detail["signer"] and "document.signed" not in events


def broker_payload(session, digest: str) -> bytes:
    from hub.store.models import Payload

    return session.get(Payload, digest).content


def test_the_same_document_offered_again_is_the_same_document(setup):
    broker, _ = setup
    body = us_certificate(broker)
    first = broker.receive_document("nppo_us", InboundDocument(body, "HUB-1"))
    again = broker.receive_document("nppo_us", InboundDocument(body, "HUB-1"))
    assert again.document_id == first.document_id
    with broker.database.sessions() as session:
        assert session.query(Document).count() == 1


def test_outbound_rules_do_not_send_a_received_document_abroad_again(setup):
    broker, _ = setup
    verdict = broker.receive_document("nppo_us", InboundDocument(us_certificate(broker, import_country={"id": "DE"}), "HUB-2"))
    with broker.database.sessions() as session:
        assert session.scalars(select(Message).where(Message.document_id == verdict.document_id)).all() == []


def unsigned(root: etree._Element) -> etree._Element:
    for signature in root.findall(f".//{{{XMLDSIG}}}Signature"):
        signature.getparent().remove(signature)
    return root


@pytest.mark.parametrize("spoil, reason", [
    (lambda body: etree.tostring(unsigned(etree.fromstring(body))), "signature refused"),
    (lambda body: body.replace(b"US-2026-PC-0042", b"US-2026-PC-0043"), "signature refused"),
])
def test_an_unsigned_or_tampered_document_is_refused_and_not_stored(setup, spoil, reason):
    broker, _ = setup
    verdict = broker.receive_document("nppo_us", InboundDocument(spoil(us_certificate(broker)), "HUB-3"))
    assert verdict.outcome is InboundOutcome.FAILED and verdict.reason.startswith(reason) and verdict.document_id is None
    with broker.database.sessions() as session:
        assert session.query(Document).count() == 0


def test_a_document_signed_by_an_authority_the_hub_does_not_trust_is_refused(setup):
    broker, _ = setup
    sample = standard_file("samples/ephyto/NO-ephyto-SPSCertificate.xml").read_bytes()
    verdict = broker.receive_document("nppo_us", InboundDocument(sample, "HUB-4", sender_country="NO"))
    assert verdict.outcome is InboundOutcome.FAILED and "signature" in verdict.reason


def test_an_invalid_document_is_refused_with_where_it_is_wrong(setup, pki):
    broker, _ = setup
    record = example_record(certificate_number="US-2026-PC-0099")
    record["consignment"].update(export_country={"id": "US"}, import_country={"id": "FR"})
    valid = prepare(json.dumps(record).encode(), "application/json", tenant="US", routing=broker.routing, profiles={}, signer_for=broker.signer_for, verifier=broker.verifier)
    root = unsigned(etree.fromstring(valid.canonical))
    etree.SubElement(root.find(".//{*}ImportSPSCountry"), "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21}Colour").text = "red"
    body = broker.signer_for("US").sign(etree.tostring(root))
    verdict = broker.receive_document("nppo_us", InboundDocument(body, "HUB-5"))
    assert verdict.outcome is InboundOutcome.FAILED and verdict.reason.startswith("invalid: ") and "ImportSPSCountry" in verdict.reason
    assert verdict.refusal == "INVALID"


def test_pulled_documents_are_confirmed_only_once_stored(setup):
    broker, counterpart = setup
    counterpart.held = [InboundDocument(us_certificate(broker), "HUB-6", sender_country="US"), InboundDocument(b"<not-signed/>", "HUB-7")]
    assert broker.pull_documents() == 2
    outcomes = {reference: (verdict.outcome, stored) for reference, verdict, stored in counterpart.confirmed}
    assert outcomes["HUB-6"][1] is True and outcomes["HUB-6"][0] is not InboundOutcome.FAILED
    assert outcomes["HUB-7"][0] is InboundOutcome.FAILED
    assert counterpart.held == []


def test_a_store_failure_confirms_nothing(setup, monkeypatch):
    broker, counterpart = setup
    counterpart.held = [InboundDocument(us_certificate(broker), "HUB-8")]

    def broken():
        raise RuntimeError("database is gone")

    monkeypatch.setattr(broker.database, "transaction", broken)
    with pytest.raises(RuntimeError):
        broker.pull_documents()
    assert counterpart.confirmed == [] and len(counterpart.held) == 1


def test_a_cites_permit_from_abroad_is_verified_validated_and_stored_for_the_importing_country(setup):
    from hub.mapping.cites_permit import permit_from_data, render_permit, to_xml
    from tests.support.broker import permit_record

    broker, _ = setup
    data = permit_record(permit_number="US-2026-CITES-0007", kind="cites_export")
    data.pop("type_code", None)
    data["first_signatory"]["provider"]["address"]["country_id"] = "US"
    data["consignment"]["consignor"]["address"]["country_id"] = "US"
    data["consignment"]["consignee"]["address"]["country_id"] = "FR"
    body = broker.signer_for("US").sign(to_xml(render_permit(permit_from_data(data)).root))
    verdict = broker.receive_document("nppo_us", InboundDocument(body, "EPIX-1", sender_country="US"))
    assert verdict.outcome is InboundOutcome.ACCEPTED, verdict.reason
    with broker.database.sessions() as session:
        document = session.get(Document, verdict.document_id)
        assert (document.kind, document.direction, document.tenant, document.issuing_country) == ("cites_export", "inbound", "FR", "US")
        assert [(p.scientific_name, p.quantity) for p in document.products] == [("Malayopython reticulatus", 12)]


@pytest.fixture
def epix_authorities(database_url, tmp_path_factory):
    """A hub trusting XA, the issuing management authority of the real EPIX permit (country codes of its test
    system), with or without a route that refuses received documents on business findings."""
    from hub.signing.pki import init_dev_pki

    pki = init_dev_pki(tmp_path_factory.mktemp("xa-pki"), authorities=("FR", "XA"), rsa_key_bits=2048)
    brokers = []

    def make(*, refuse: bool = False):
        rule = {"name": "received-reexports", "when": {"direction": "inbound", "kind": ["cites_reexport"]}, "to": ["customs"], **({"reception": "refuse"} if refuse else {})}
        broker = make_broker(database_url, pki, routes={"rules": ROUTES["rules"] + [rule]})
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.close()


def signed_epix_permit(broker) -> bytes:
    """The real EPIX v2 permit (its CITESEPermit, as XA's management authority would sign it)."""
    response = etree.fromstring(standard_file("samples/cites/epix-v2-GetNonFinalCitesCertificateResponse.xml").read_bytes())
    return broker.signer_for("XA").sign(etree.tostring(response.find(".//CITESEPermit")))


@pytest.mark.interop
def test_a_real_foreign_permit_is_received_with_the_findings_of_our_own_rules_as_warnings(epix_authorities):
    broker = epix_authorities()
    verdict = broker.receive_document("nppo_us", InboundDocument(signed_epix_permit(broker), "EPIX-REAL", sender_country="XA"))
    assert verdict.outcome is InboundOutcome.ACCEPTED_WITH_WARNINGS, verdict.reason
    assert "reported, not refused" in verdict.reason
    with broker.database.sessions() as session:
        document = session.get(Document, verdict.document_id)
        assert (document.kind, document.direction, document.tenant) == ("cites_reexport", "inbound", "XB")
        graded = [f for f in document.report["findings"] if f["rule"] == "CITES-REEXPORT-ORIGIN"]
        assert graded and graded[0]["severity"] == "WARNING" and "reported, not refused" in graded[0]["message_en"]
        assert [m.destination for m in document.messages] == ["customs"]


@pytest.mark.interop
def test_a_route_may_refuse_received_documents_on_business_findings(epix_authorities):
    broker = epix_authorities(refuse=True)
    verdict = broker.receive_document("nppo_us", InboundDocument(signed_epix_permit(broker), "EPIX-STRICT", sender_country="XA"))
    assert verdict.outcome is InboundOutcome.FAILED and verdict.refusal == "INVALID" and verdict.reason.startswith("invalid: ")
    with broker.database.sessions() as session:
        assert session.scalars(select(Document)).all() == []
