"""The TRACES-NT connector against its sandbox: the shared contract suite in-process, then what is particular to
TRACES: authentication refused with the real fault, submission of the real CHED samples, decision mapping, faults."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from lxml import etree

from hub.connector import AwaitingAck, ConnectorContext, OutboundMessage, Outcome, PollsAcks
from connectors.traces_nt import TracesNtConfig, TracesNtConnector
from connectors.traces_nt import protocol
from connectors.traces_nt.wssecurity import traces_headers
from hub.errors import ConfigurationError, PermanentDeliveryError, TransientDeliveryError
from hub.namespaces import RAM, RSM_SPS_CERTIFICATE, SOAP11_ENV, TRACES_CHED_SUBMISSION
from tests.connectors.traces_nt.harness import CLIENT_ID, KEY, USERNAME, canonical, code_list, codes_of, sample_message
from tests.contract.suite import ConnectorContract
from tests.support.standards import standard_file

SAMPLES = ["samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml",
           "samples/traces/CreateAndSubmitChedForDecision-01061900-Rats.xml"]


class TestContractInProcess(ConnectorContract):
    @pytest.fixture
    def harness(self, traces):
        return traces

    def test_business_rejection_is_a_result_not_an_error(self, harness):
        # Not applicable: TRACES authenticates the caller (WS-Security), not the document's XML signature, and its
        # synchronous answer to a submission is a CHED reference or a fault; a refusal is the later border decision,
        # which test_acknowledgement_mapping and the decision tests below cover.
        pytest.skip("TRACES-NT has no synchronous business rejection of a submission")


# --- authentication -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"authentication_key": "not-the-key"}, {"username": "stranger"},
                                      {"client_id": "ANOTHER-CLIENT"}])
def test_refused_credentials_are_permanent_with_the_real_fault(traces, settings):
    with pytest.raises(PermanentDeliveryError, match="UnauthenticatedException") as raised:
        traces.connector(**settings).deliver(traces.message())
    assert not isinstance(raised.value, TransientDeliveryError)
    saved = standard_file("samples/traces-ws/UnauthenticatedException.xml").read_bytes()
    assert canonical(raised.value.response) == canonical(saved)
    assert traces.controls.received() == []


def raw_call(traces, envelope: bytes) -> httpx.Response:
    return traces.client.post("/tracesnt/ws/ChedSubmissionService", content=envelope,
                              headers={"Content-Type": protocol.SOAP_MEDIA_TYPE})


def submission(traces, *, now=None, nonce=None) -> bytes:
    headers = traces_headers(username=USERNAME, authentication_key=KEY, client_id=CLIENT_ID, now=now, nonce=nonce)
    return protocol.envelope(headers, protocol.submission_body(traces.message().payload))


def test_a_replayed_request_is_refused(traces):
    envelope = submission(traces)
    assert raw_call(traces, envelope).status_code == 200
    again = raw_call(traces, envelope)
    assert again.status_code == 500 and b"<faultstring>UnauthenticatedException</faultstring>" in again.content
    assert len(traces.controls.received()) == 1


def test_a_stale_timestamp_is_refused(traces):
    stale = submission(traces, now=datetime.now(timezone.utc) - timedelta(minutes=10))
    answer = raw_call(traces, stale)
    assert answer.status_code == 500 and b"UnauthenticatedException" in answer.content
    assert raw_call(traces, submission(traces)).status_code == 200


# --- submission -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", SAMPLES)
def test_the_real_ched_samples_are_submitted_as_traces_expects(traces, relative):
    connector = traces.connector(authority_activity_access_identifier="XXX")
    result = connector.deliver(sample_message(relative))
    assert result.outcome is Outcome.ACCEPTED and result.receipt_id.startswith("CHEDA.")
    sample = etree.parse(str(standard_file(relative))).getroot()
    sent = etree.fromstring(result.request)
    # Same headers (plus wsse:Security), same body element, and the certificate carried unchanged.
    sample_headers = [element.tag for element in sample.find(f"{{{SOAP11_ENV}}}Header")]
    sent_headers = [element.tag for element in sent.find(f"{{{SOAP11_ENV}}}Header")]
    assert sent_headers[:3] == sample_headers and sent_headers[3].endswith("}Security")
    request = sent.find(f"{{{SOAP11_ENV}}}Body/{{{TRACES_CHED_SUBMISSION}}}CreateAndSubmitChedForDecisionRequest")
    certificate = f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate"
    expected = sample.find(f".//{certificate}")
    assert etree.tostring(request.find(certificate), method="c14n", exclusive=True) == etree.tostring(expected, method="c14n", exclusive=True)
    [stored] = traces.app.state.sandbox.cheds.values()
    assert etree.tostring(etree.fromstring(stored.certificate), method="c14n", exclusive=True) == etree.tostring(
        expected, method="c14n", exclusive=True)


def test_a_rendered_ched_gets_a_traces_reference(traces):
    message = traces.message()
    result = traces.connector().deliver(message)
    assert re.match(r"^CHEDP\.FR\.\d{4}\.\d{7}$", result.receipt_id)
    assert b"CreateAndSubmitChedForDecisionResponse" in result.response
    assert traces.connector().awaiting == {} and len(traces.opened[0].awaiting) == 1


def test_a_payload_without_certificate_is_permanent(traces):
    message = traces.message()
    bad = OutboundMessage(**{**message.__dict__, "payload": b"<a/>"})
    with pytest.raises(PermanentDeliveryError, match="not a CHED"):
        traces.connector().deliver(bad)


# --- decisions ------------------------------------------------------------------------------------------------------


def decide(traces, **control):
    traces.controls.control(**control)
    connector, message = traces.connector(), traces.message()
    result = connector.deliver(message)
    return connector, message, result


def test_acceptance_is_acknowledged(traces):
    connector, message, result = decide(traces, decision="accept")
    [ack] = connector.poll_acks()
    assert (ack.outcome, ack.kind, ack.receipt_id, ack.message_id) == (
        Outcome.ACKNOWLEDGED, "business_response", result.receipt_id, message.id)
    # The evidence is TRACES's signed CHED (test_ched_certificate.py verifies it).
    signed = etree.fromstring(ack.payload)
    assert signed.findtext(f"{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument/{{{RAM}}}StatusCode") == "70"
    assert connector.poll_acks() == [] and connector.awaiting == {}


@pytest.mark.parametrize("reason", codes_of("samples/traces-ws/refusal_reason.json"))
def test_rejection_carries_the_refusal_reason(traces, reason):
    connector, message, _ = decide(traces, decision="reject", reason_code=reason, measure="DESTRUCTION",
                                   reason_text="consignment refused at the border control post")
    [ack] = connector.poll_acks()
    assert (ack.outcome, ack.kind, ack.reason_code) == (Outcome.REJECTED, "border_refusal", reason)
    assert ack.reason_text == "consignment refused at the border control post; measure: DESTRUCTION"
    assert ack.certificate_number == message.certificate_number


@pytest.mark.parametrize("measure", codes_of("samples/traces-ws/ched_not_acceptable_measure.json"))
def test_a_not_acceptable_measure_is_a_rejection(traces, measure):
    connector, _, _ = decide(traces, decision="not_acceptable", measure=measure)
    [ack] = connector.poll_acks()
    assert (ack.outcome, ack.reason_code) == (Outcome.REJECTED, measure)
    assert b"<ram:Content>NOT_ACCEPTABLE</ram:Content>" in ack.payload
    assert "NOT_ACCEPTABLE" in code_list("samples/traces-ws/ched_decision_clause.json")


def test_a_pending_ched_is_asked_again_until_decided(traces):
    connector, _, result = decide(traces, decision="pending")
    assert connector.poll_acks() == [] and list(connector.awaiting) == [result.receipt_id]
    ched = traces.app.state.sandbox.cheds[result.receipt_id]
    ched.status = protocol.ChedStatus(result.receipt_id, "41", "NOT_ACCEPTABLE", refusal_reasons=("MISSING_CERTIFICATE",))
    [ack] = connector.poll_acks()
    assert (ack.outcome, ack.reason_code) == (Outcome.REJECTED, "MISSING_CERTIFICATE")


@pytest.mark.parametrize(("status", "outcome", "code"), [
    ("70", Outcome.ACKNOWLEDGED, None), ("99", Outcome.ACKNOWLEDGED, None), ("122", Outcome.ACKNOWLEDGED_WITH_WARNINGS, None),
    ("41", Outcome.REJECTED, None), ("64", Outcome.REJECTED, "CANCELLED"), ("55", Outcome.REJECTED, "DELETED"),
    ("42", None, None), ("1", None, None), ("47", None, None)])
def test_status_codes_map_onto_outcomes(status, outcome, code):
    assert set(protocol.STATUS_ALIASES) == set(code_list("samples/traces-ws/status_code.json"))
    read = protocol.read_status_response(protocol.status_response(protocol.ChedStatus("CHEDP.FR.2026.0000001", status)))
    assert (read.outcome, read.reason_code) == (outcome, code)


# --- faults ---------------------------------------------------------------------------------------------------------


def test_a_server_soap_fault_is_transient(traces):
    traces.controls.fault("soap_fault")
    connector, message = traces.connector(), traces.message()
    with pytest.raises(TransientDeliveryError, match="Server"):
        connector.deliver(message)
    assert connector.deliver(message).outcome is Outcome.ACCEPTED


def test_polling_failures_keep_the_ched_awaiting(traces):
    connector, _, result = decide(traces, decision="accept")
    traces.controls.control(fault="unavailable", target="status", retry_after=4)
    with pytest.raises(TransientDeliveryError) as raised:
        connector.poll_acks()
    assert raised.value.retry_after == 4 and list(connector.awaiting) == [result.receipt_id]
    assert [ack.outcome for ack in connector.poll_acks()] == [Outcome.ACKNOWLEDGED]


def test_a_restarted_connector_follows_the_cheds_it_is_handed(traces):
    _, message, result = decide(traces, decision="accept")
    restarted = traces.connector()
    assert restarted.poll_acks() == []  # it knows of nothing…
    restarted.resume([AwaitingAck(message_id=message.id, receipt_id=result.receipt_id, certificate_number=message.certificate_number, issuing_country="FR", importing_country="FR")])
    [ack] = restarted.poll_acks()  # …until the worker hands it what still awaits a decision
    assert (ack.message_id, ack.outcome) == (message.id, Outcome.ACKNOWLEDGED)


def test_an_unknown_ched_is_a_permanent_fault(traces):
    connector = traces.connector()
    connector.await_decision("CHEDP.FR.2026.9999999", message_id="m", certificate_number="n")
    with pytest.raises(PermanentDeliveryError, match="ChedCertificateNotFoundException"):
        connector.poll_acks()


# --- configuration --------------------------------------------------------------------------------------------------


def test_config_reads_the_key_from_the_environment(tmp_path, monkeypatch):
    from connectors import registry
    from hub.connector import ConnectorType

    monkeypatch.setitem(registry.CONNECTOR_TYPES, "traces_nt", ConnectorType("traces_nt", TracesNtConfig, TracesNtConnector))
    path = tmp_path / "connectors.yaml"
    path.write_text("connectors:\n  traces_nt:\n    type: traces_nt\n    submission_service: Svc\n    username: u\n"
                    "    client_id: c\n    authentication_key: ${TRACES_KEY}\n")
    config = registry.load_connector_configs(path, environ={"TRACES_KEY": "from-env"})["traces_nt"]
    assert config.authentication_key.get_secret_value() == "from-env" and "from-env" not in repr(config)
    assert config.url(config.certificate_service) == "https://webgate.acceptance.ec.europa.eu/tracesnt/ws/ChedCertificateServiceV2"
    connector = registry.build_connector("traces_nt", config, context=ConnectorContext("unused", "http://hub"))
    assert isinstance(connector, PollsAcks)
    with pytest.raises(ConfigurationError, match="TRACES_KEY is not set"):
        registry.load_connector_configs(path, environ={})
    path.write_text(path.read_text() + "    profile: ephyto\n")
    with pytest.raises(ConfigurationError, match="field 'profile'"):
        registry.load_connector_configs(path, environ={"TRACES_KEY": "k"})
