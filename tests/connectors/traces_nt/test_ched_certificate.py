"""TRACES-NT ``getChedCertificate`` and ``getChedSignedXmlCertificate`` against the sandbox: the CHED read back as
TRACES holds it, the signed CHED verified with the development trust store, the service's faults (the real
permission-denied capture included), and the signed CHED kept as the evidence of a polled decision."""

from __future__ import annotations

import base64
import logging
from dataclasses import replace

import httpx
import pytest
from lxml import etree

from hub.connector import ConnectorContext, Outcome
from connectors.traces_nt import TracesNtConfig, TracesNtConnector, protocol
from connectors.traces_nt.certificates import DECISION_CLAUSE_SCHEME, held_certificate
from hub.errors import InputError, PermanentDeliveryError, SignatureInvalid, TransientDeliveryError
from hub.namespaces import RAM, RSM_SPS_CERTIFICATE, XMLDSIG
from tests.connectors.traces_nt.harness import CLIENT_ID, CUSTOMS, CUSTOMS_KEY, KEY, OTHER, OTHER_KEY, USERNAME, canonical, make_harness, sample_message
from tests.support.standards import standard_file

UNKNOWN = "CHEDP.FR.2026.9999999"
PERMISSION_DENIED_CAPTURE = "samples/traces-ws/GetChedCertificateResponse.PERMISSION_DENIED.xml"
_SPS = f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate"
_DOCUMENT = f"{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument"


def submitted(traces, decision="accept", **control):
    """(connector, message, CHED reference) of a CHED submitted while the sandbox decides ``decision``."""
    traces.controls.control(decision=decision, **control)
    connector, message = traces.connector(), traces.message()
    return connector, message, connector.deliver(message).receipt_id


def text(certificate: etree._Element, name: str) -> str | None:
    return certificate.findtext(f"{_DOCUMENT}/{{{RAM}}}{name}")


def decision_of(certificate: etree._Element) -> str | None:
    """The ``DECISION_CONCLUSION`` clause's content, if the CHED carries one."""
    for clause in certificate.iter(f"{{{RAM}}}IncludedSPSClause"):
        identifier = clause.find(f"{{{RAM}}}ID")
        if identifier is not None and identifier.get("schemeID") == DECISION_CLAUSE_SCHEME:
            assert identifier.text == "DECISION_CONCLUSION"
            return clause.findtext(f"{{{RAM}}}Content")
    return None


def c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True)


# --- getChedCertificate ---------------------------------------------------------------------------------------------


def test_a_submitted_ched_is_read_back_with_its_decision(traces):
    connector, message, reference = submitted(traces, "accept")
    certificate = connector.get_ched_certificate(reference)
    assert certificate.tag == _SPS and certificate.getparent() is None
    assert (text(certificate, "ID"), text(certificate, "TypeCode"), text(certificate, "StatusCode")) == (
        message.certificate_number, "636", "70")
    assert decision_of(certificate) == "ACCEPTABLE_FOR_INTERNAL_MARKET"
    # The consignment is the one submitted; the hub's own signature is not part of what TRACES hands out.
    sent = etree.fromstring(message.payload)
    assert c14n(certificate.find(f"{{{RSM_SPS_CERTIFICATE}}}SPSConsignment")) == c14n(
        sent.find(f"{{{RSM_SPS_CERTIFICATE}}}SPSConsignment"))
    assert certificate.find(f"{{{XMLDSIG}}}Signature") is None


def test_an_undecided_ched_is_held_without_decision(traces):
    connector, _, reference = submitted(traces, "pending")
    certificate = connector.get_ched_certificate(reference)
    assert text(certificate, "StatusCode") == "42" and decision_of(certificate) is None


def test_a_ched_submitted_without_number_gets_the_traces_reference(traces):
    connector = traces.connector()
    reference = connector.deliver(sample_message("samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml")).receipt_id
    assert text(connector.get_ched_certificate(reference), "ID") == reference


# --- getChedSignedXmlCertificate ------------------------------------------------------------------------------------


def test_the_signed_ched_verifies_with_the_development_trust_store(traces, verifier):
    connector, message, reference = submitted(traces, "accept")
    signed = connector.get_ched_signed_xml(reference)
    verified = verifier.verify(signed)
    assert verified.signer_subject.startswith("CN=US NPPO signing")
    root = verified.signed_root
    assert root.tag == _SPS and text(root, "ID") == message.certificate_number
    assert (text(root, "StatusCode"), decision_of(root)) == ("70", "ACCEPTABLE_FOR_INTERNAL_MARKET")
    assert c14n(root) == c14n(connector.get_ched_certificate(reference))
    with pytest.raises(SignatureInvalid):
        verifier.verify(signed.replace(b"ACCEPTABLE_FOR_INTERNAL_MARKET", b"ACCEPTABLE_FOR_TRANSIT"))


def test_a_refused_ched_is_signed_with_its_refusal(traces, verifier):
    connector, _, reference = submitted(traces, "reject", reason_code="FAILED_PHYSICAL_CHECK")
    root = verifier.verify(connector.get_ched_signed_xml(reference)).signed_root
    assert (text(root, "StatusCode"), decision_of(root)) == ("41", "NOT_ACCEPTABLE")


def test_no_signed_ched_before_the_decision_is_transient(traces, verifier):
    connector, _, reference = submitted(traces, "pending")
    with pytest.raises(TransientDeliveryError, match="SignedChedNotAvailableException") as raised:
        connector.get_ched_signed_xml(reference)
    assert f"<CertificateIdentifier>{reference}</CertificateIdentifier>".encode() in raised.value.response
    ched = traces.app.state.sandbox.cheds[reference]
    ched.status = protocol.ChedStatus(reference, "70", "ACCEPTABLE_FOR_TRANSIT")
    assert decision_of(verifier.verify(connector.get_ched_signed_xml(reference)).signed_root) == "ACCEPTABLE_FOR_TRANSIT"


def test_a_sandbox_without_signing_key_answers_a_server_fault(pki):
    harness = make_harness(pki)
    try:
        connector, _, reference = submitted(harness, "accept")
        with pytest.raises(TransientDeliveryError, match="no signing key"):
            connector.get_ched_signed_xml(reference)
    finally:
        harness.close()


# --- faults ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get_ched_certificate", "get_ched_signed_xml"])
def test_an_unknown_ched_is_permanent(traces, method):
    with pytest.raises(PermanentDeliveryError, match=f"ChedCertificateNotFoundException.*{UNKNOWN}") as raised:
        getattr(traces.connector(), method)(UNKNOWN)
    assert not isinstance(raised.value, TransientDeliveryError)


def capture_for(reference: str) -> bytes:
    saved = standard_file(PERMISSION_DENIED_CAPTURE).read_bytes()
    return saved.replace(b"<CertificateIdentifier>FORBIDDEN<", f"<CertificateIdentifier>{reference}<".encode())


@pytest.mark.parametrize("method", ["get_ched_certificate", "get_ched_signed_xml"])
def test_another_accounts_ched_is_refused_with_the_captured_fault(traces, method):
    _, _, reference = submitted(traces, "accept")
    other = traces.connector(username=OTHER, authentication_key=OTHER_KEY)
    with pytest.raises(PermanentDeliveryError, match="Permission denied") as raised:
        getattr(other, method)(reference)
    assert not isinstance(raised.value, TransientDeliveryError)
    assert canonical(raised.value.response) == canonical(capture_for(reference))
    _, element = protocol.read_envelope(raised.value.response)
    assert protocol.read_fault(element) == protocol.SoapFault("Client", "Permission denied",
                                                              protocol.PERMISSION_DENIED, reference)


def test_another_accounts_ched_status_is_refused_too(traces):
    _, message, reference = submitted(traces, "accept")
    other = traces.connector(username=OTHER, authentication_key=OTHER_KEY)
    other.await_decision(reference, message_id=message.id, certificate_number=message.certificate_number)
    with pytest.raises(PermanentDeliveryError, match=protocol.PERMISSION_DENIED):
        other.poll_acks()


def test_the_real_permission_denied_capture_is_read():
    _, element = protocol.read_envelope(standard_file(PERMISSION_DENIED_CAPTURE).read_bytes())
    assert protocol.read_fault(element) == protocol.SoapFault(
        code="Client", string="Permission denied", detail="ChedCertificatePermissionDeniedException",
        certificate_identifier="FORBIDDEN")


def replaying(body: bytes, status: int = 500) -> TracesNtConnector:
    """A connector whose every call is answered with ``body``."""
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body, headers={"Content-Type": "text/xml"}))
    config = TracesNtConfig(endpoint="http://traces/tracesnt/ws", submission_service="S", username=USERNAME,
                            authentication_key=KEY, client_id=CLIENT_ID)
    return TracesNtConnector("traces_nt", config, transport=transport, context=ConnectorContext("unused", "http://hub"))


@pytest.mark.parametrize("method", ["get_ched_certificate", "get_ched_signed_xml"])
def test_the_real_permission_denied_capture_is_a_permanent_error(method):
    connector = replaying(standard_file(PERMISSION_DENIED_CAPTURE).read_bytes())
    with pytest.raises(PermanentDeliveryError, match="Permission denied.*ChedCertificatePermissionDeniedException.*FORBIDDEN") as raised:
        getattr(connector, method)("FORBIDDEN")
    assert not isinstance(raised.value, TransientDeliveryError)


def test_the_customs_account_is_refused_on_the_ched_service(traces):
    customs = traces.connector(username=CUSTOMS, authentication_key=CUSTOMS_KEY)
    with pytest.raises(PermanentDeliveryError, match="UnauthenticatedException"):
        customs.get_ched_certificate(UNKNOWN)


@pytest.mark.parametrize(("fault", "retry_after"), [("unavailable", 7), ("server_error", None), ("soap_fault", None),
                                                    ("malformed", None), ("drop", None)])
def test_network_and_server_failures_are_transient(traces, fault, retry_after):
    connector, _, reference = submitted(traces, "accept")
    traces.controls.control(fault=fault, target="certificate", count=2, retry_after=retry_after)
    with pytest.raises(TransientDeliveryError) as raised:
        connector.get_ched_certificate(reference)
    assert raised.value.retry_after == retry_after
    with pytest.raises(TransientDeliveryError):
        connector.get_ched_signed_xml(reference)
    assert connector.get_ched_certificate(reference).tag == _SPS


def test_an_unsigned_or_unreadable_signed_ched_is_transient(traces):
    unsigned = etree.tostring(held_certificate(traces.message().payload, protocol.ChedStatus("CHEDP.FR.2026.0000001", "70")))
    for content in (base64.b64encode(unsigned).decode(), "not base64 !", base64.b64encode(b"<a/>").decode()):
        response = protocol.signed_xml_response("CHEDP.FR.2026.0000001", b"")
        response.find(f"{{{protocol.CHED_V2}}}SignedXmlCertificate").text = content
        with pytest.raises(InputError):
            protocol.read_signed_xml_response(response)
        with pytest.raises(TransientDeliveryError, match="unreadable answer to getChedSignedXmlCertificate"):
            replaying(protocol.envelope([], response), 200).get_ched_signed_xml("CHEDP.FR.2026.0000001")


# --- the signed CHED as the evidence of a polled decision -----------------------------------------------------------


@pytest.mark.parametrize(("decision", "outcome", "status"), [("accept", Outcome.ACKNOWLEDGED, "70"),
                                                             ("partial", Outcome.ACKNOWLEDGED_WITH_WARNINGS, "122"),
                                                             ("reject", Outcome.REJECTED, "41")])
def test_a_polled_decision_carries_the_signed_ched(traces, verifier, decision, outcome, status):
    connector, message, reference = submitted(traces, decision, reason_code="FAILED_PHYSICAL_CHECK")
    [ack] = connector.poll_acks()
    assert (ack.outcome, ack.receipt_id, ack.message_id, ack.media_type) == (outcome, reference, message.id, "application/xml")
    root = verifier.verify(ack.payload).signed_root
    assert (text(root, "ID"), text(root, "StatusCode")) == (message.certificate_number, status)
    if outcome is Outcome.REJECTED:
        assert (ack.kind, ack.reason_code, decision_of(root)) == ("border_refusal", "FAILED_PHYSICAL_CHECK", "NOT_ACCEPTABLE")


@pytest.mark.parametrize("fault", ["unavailable", "soap_fault", "drop"])
def test_the_status_answer_is_kept_when_the_signed_ched_cannot_be_had(traces, caplog, fault):
    connector, message, reference = submitted(traces, "reject", reason_code="FAILED_PHYSICAL_CHECK")
    traces.controls.control(fault=fault, target="certificate")
    with caplog.at_level(logging.WARNING, logger="connectors.traces_nt.connector"):
        [ack] = connector.poll_acks()
    assert (ack.outcome, ack.reason_code, ack.message_id) == (Outcome.REJECTED, "FAILED_PHYSICAL_CHECK", message.id)
    _, element = protocol.read_envelope(ack.payload)
    assert protocol.read_status_response(element).status_code == "41"
    assert connector.awaiting == {} and f"signed CHED {reference} could not be fetched" in caplog.text


def test_a_sandbox_without_key_still_reports_the_decision(pki):
    harness = make_harness(pki)
    try:
        connector, _, _ = submitted(harness, "accept")
        [ack] = connector.poll_acks()
        assert ack.outcome is Outcome.ACKNOWLEDGED and b"GetChedCertificateStatusResponse" in ack.payload
    finally:
        harness.close()


def test_fetching_the_signed_ched_can_be_turned_off(traces):
    traces.controls.control(decision="accept")
    connector, message = traces.connector(fetch_signed_ched=False), traces.message()
    connector.deliver(message)
    traces.controls.control(fault="unavailable", target="certificate")
    [ack] = connector.poll_acks()
    assert b"GetChedCertificateStatusResponse" in ack.payload
    assert [f.target for f in traces.app.state.sandbox.faults] == ["certificate"]  # never asked
    assert TracesNtConfig.model_fields["fetch_signed_ched"].default is True


# --- protocol -------------------------------------------------------------------------------------------------------


def test_requests_and_answers_round_trip(traces):
    certificate = held_certificate(traces.message().payload, protocol.ChedStatus("CHEDP.FR.2026.0000001", "42"))
    assert c14n(protocol.read_certificate_response(protocol.certificate_response(certificate))) == c14n(certificate)
    for body in (protocol.status_body, protocol.certificate_body, protocol.signed_xml_body):
        assert protocol.read_reference_request(body("CHEDP.FR.2026.0000001")) == "CHEDP.FR.2026.0000001"
    with pytest.raises(InputError, match="rsm:SPSCertificate"):
        protocol.read_certificate_response(etree.Element(f"{{{protocol.CHED_V2}}}GetChedCertificateResponse"))


def test_a_ched_signed_outside_the_trust_store_is_no_evidence(pki, stranger_pki, caplog):
    """Issue 12 #10: a CHED re-signed with an untrusted key was stored as TRACES-NT's signed evidence."""
    harness = make_harness(pki, signing_key_provider=stranger_pki.key_provider("US"))
    try:
        connector, message, reference = submitted(harness, "reject", reason_code="FAILED_PHYSICAL_CHECK")
        with caplog.at_level(logging.WARNING, logger="connectors.traces_nt.connector"):
            [ack] = connector.poll_acks()
        assert (ack.outcome, ack.message_id) == (Outcome.REJECTED, message.id)
        assert b"GetChedCertificateStatusResponse" in ack.payload and b"Signature" not in ack.payload
        assert f"signed CHED {reference} is not kept as evidence" in caplog.text
    finally:
        harness.close()


def test_a_status_about_another_ched_is_never_applied(traces, monkeypatch):
    """Issue 12 #10: a TRACES-NT status about another CHED was applied to ours."""
    connector, message, reference = submitted(traces, "reject", reason_code="FAILED_PHYSICAL_CHECK")
    read = protocol.read_status_response
    monkeypatch.setattr(protocol, "read_status_response", lambda element: replace(read(element), reference="CHEDP.FR.2026.9999999"))
    with pytest.raises(TransientDeliveryError, match="names CHED 'CHEDP.FR.2026.9999999'"):
        connector.poll_acks()
    assert reference in connector.awaiting  # still awaited: asked again at the next poll
    monkeypatch.setattr(protocol, "read_status_response", read)
    [ack] = connector.poll_acks()
    assert (ack.receipt_id, ack.outcome) == (reference, Outcome.REJECTED)
