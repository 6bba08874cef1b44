"""Border tracking on the single window (our ``consultaEventosSeguimiento``, not part of the IOP): the sandbox's
timelines and decisions, the connector's ``poll_acks`` and its cursor, faults, who sees what, our XSD and WSDL, and
what the hub's core makes of the reports."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest
import requests
import xmlschema
import zeep
from lxml import etree
from pydantic import ValidationError
from sqlalchemy import select

from hub.connector import AwaitingAck, ConnectorContext, Outcome
from connectors.serving import InProcessTransport, running_sandbox
from connectors.single_window import SingleWindowConfig, SingleWindowConnector
from connectors.single_window.protocol import WSDL_DIR, timestamp
from connectors.single_window.sandbox import TRACKING_PATH, create_sandbox_app
from connectors.single_window.tracking import (
    IOP_TRACKING,
    TRACKING_WSDL,
    TRACKING_XSD,
    EventCode,
    RefusalMeasure,
    TrackingAnswer,
    TrackingEvent,
    TrackingHeader,
    TrackingQuery,
    ack_for_event,
    build_answer,
    build_fault,
    build_query,
    event_xml,
    parse_answer,
    read_query,
)
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.store.models import Message, NonConformity, TraceEvent
from tests.support.broker import ScriptedConnector, example_record, make_broker
from tests.contract.suite import client_tls
from tests.connectors.single_window.harness import SETTINGS, HttpControls, SingleWindowHarness, polled

TRACKING_WS = "{urn:trade-document-hub:iop:EventosSeguimientoWS}ConsultaEventosSeguimientoBinding"


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(WSDL_DIR / TRACKING_XSD)))


def harness_for(app, pki, certificates, *, outcome="acknowledged"):
    client = httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox")
    harness = SingleWindowHarness(pki=pki, certificates=certificates, base="http://sandbox",
                                  controls=HttpControls(client), app=app, outcome=outcome)
    return harness, client


@pytest.fixture
def window(pki, certificates):
    """The sandbox in-process, deciding nothing by itself; connectors poll at every call."""
    harness, client = harness_for(create_sandbox_app(trust_store=pki.trust_store()), pki, certificates)
    yield harness
    harness.close()
    client.close()


def body_of(envelope: bytes) -> etree._ElementTree:
    body = etree.fromstring(envelope).find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    return etree.ElementTree(etree.fromstring(etree.tostring(body[0])))


def steps(reports) -> list[str]:
    """Each report as ``outcome/kind/reason_code``."""
    return [f"{r.outcome.value}/{r.kind}/{r.reason_code}" for r in reports]


# --- the first steps, the decisions ----------------------------------------------------------------------------------


def test_received_certificates_report_their_first_steps_in_order(window, schema):
    connector = window.connector()
    messages = [window.message(), window.message()]
    receipts = [connector.deliver(message).receipt_id for message in messages]
    reports = polled(connector)
    assert steps(reports) == ["accepted/tracking/received", "accepted/tracking/documentary_check"] * 2
    assert [r.message_id for r in reports] == [messages[0].id] * 2 + [messages[1].id] * 2
    assert [r.receipt_id for r in reports] == [receipts[0]] * 2 + [receipts[1]] * 2
    assert [r.certificate_number for r in reports] == [m.certificate_number for m in messages for _ in (1, 2)]
    assert {r.country for r in reports} == {"EC"}
    assert reports[1].reason_text.startswith("documentary check at ") and reports[1].reason_text.endswith("event 2")
    for report in reports:
        schema.assertValid(etree.ElementTree(etree.fromstring(report.payload)))
    assert polled(connector) == [], "the cursor never gives an event twice"
    assert connector.cursors == {"FR": 4}
    assert [entry["events"] for entry in window.controls.client.get("/received").json()["received"]] == [
        ["received", "documentary_check"]] * 2


def test_a_release_after_checks_is_an_acknowledgement(window):
    connector, message = window.connector(), window.message()
    connector.deliver(message)
    assert len(polled(connector)) == 2
    for event in ("identity_check", "physical_check", "released"):
        window.controls.decide(certificate_number=message.certificate_number, event=event)
    reports = polled(connector)
    assert steps(reports) == ["accepted/tracking/identity_check", "accepted/tracking/physical_check",
                              "acknowledged/business_response/None"]
    assert reports[-1].message_id == message.id and reports[-1].reason_text is None


def test_a_release_with_a_remark_is_acknowledged_with_warnings(window):
    connector, message = window.connector(), window.message()
    connector.deliver(message)
    window.controls.decide(certificate_number=message.certificate_number, event="released",
                           reason_text="botanical name abbreviated")
    *_, released = polled(connector)
    assert (released.outcome, released.kind, released.reason_text) == (
        Outcome.ACKNOWLEDGED_WITH_WARNINGS, "business_response", "botanical name abbreviated")


def test_a_refusal_is_a_border_refusal_with_its_reason_and_country(window):
    connector, message = window.connector(), window.message()
    receipt = connector.deliver(message).receipt_id
    window.controls.decide(certificate_number=message.certificate_number, event="under_measures",
                           reason_code="SAMPLING", reason_text="muestra tomada para análisis de laboratorio")
    event = window.controls.decide(transaction_id=message.id, event="refused", reason_code="PEST_FOUND",
                                   reason_text="Cydia pomonella viva en la inspección", measure="destruction")
    assert (event["sequence"], event["event"], event["measure"]) == (4, "refused", "destruction")
    *_, measures, refused = polled(connector)
    assert (measures.outcome, measures.kind, measures.reason_code) == (Outcome.ACCEPTED, "tracking", "under_measures")
    assert "[SAMPLING] muestra tomada" in measures.reason_text
    assert (refused.outcome, refused.kind, refused.reason_code, refused.country) == (
        Outcome.REJECTED, "border_refusal", "PEST_FOUND", "EC")
    assert refused.reason_text == "Cydia pomonella viva en la inspección (measure: destruction)"
    assert (refused.message_id, refused.receipt_id, refused.certificate_number) == (message.id, receipt, message.certificate_number)


def test_the_control_endpoint_refuses_what_the_border_cannot_decide(window):
    client, message = window.controls.client, window.message()
    window.connector().deliver(message)
    number = message.certificate_number
    cases = [
        ({"certificate_number": number, "event": "refused"}, 400),  # a refusal without its reason
        ({"certificate_number": number, "event": "released", "measure": "destruction"}, 400),
        ({"certificate_number": number, "event": "received"}, 400),  # automatic, not decided
        ({"certificate_number": number, "event": "released", "reason_code": "not a code!"}, 400),
        ({"event": "released"}, 400),
        ({"certificate_number": "FR-2026-PC-0", "event": "released"}, 404),
        ({"transaction_id": "no-such-transaction", "event": "released"}, 404),
    ]
    for body, status in cases:
        assert client.post("/decision", json=body).status_code == status, body
    assert client.post("/decision", json={"certificate_number": number, "event": "released"}).status_code == 201
    again = client.post("/decision", json={"certificate_number": number, "event": "under_measures"})
    assert (again.status_code, again.json()["detail"]) == (409, f"certificate {number} was already released")
    assert client.post("/control", json={"decide": "refused"}).status_code == 400


def test_a_rejected_certificate_has_no_timeline(window):
    connector = window.connector()
    assert connector.deliver(window.message(tampered=True)).outcome is Outcome.REJECTED
    assert polled(connector) == []
    assert window.controls.client.get("/events").json() == {"events": []}


def test_an_automatic_decision_applies_to_what_is_received_afterwards(window):
    connector = window.connector()
    connector.deliver(window.message())
    window.controls.control(decide="refused", reason_code="NO_IMPORT_PERMIT", reason_text="sin permiso de importación",
                            measure="re_export")
    connector.deliver(window.message())
    window.controls.control(decide="none")
    connector.deliver(window.message())
    assert steps(polled(connector)) == ["accepted/tracking/received", "accepted/tracking/documentary_check"] * 2 + [
        "rejected/border_refusal/NO_IMPORT_PERMIT"] + ["accepted/tracking/received", "accepted/tracking/documentary_check"]


def test_a_duplicate_delivery_adds_no_events(window):
    connector, message = window.connector(), window.message()
    connector.deliver(message)
    connector.deliver(message)
    assert len(polled(connector)) == 2


# --- the cursor -----------------------------------------------------------------------------------------------------


def test_the_cursor_pages_through_everything_once(window):
    connector = window.connector(tracking_batch=3)
    for _ in range(4):
        connector.deliver(window.message())
    reports = polled(connector)
    assert len(reports) == 8 and connector.cursors == {"FR": 8}
    sequences = [r.reason_text.rsplit(" ", 1)[1] for r in reports]
    assert sequences == [str(n) for n in range(1, 9)]
    assert polled(connector) == []
    connector.deliver(window.message())
    assert len(polled(connector)) == 2 and connector.cursors == {"FR": 10}


def test_a_new_connector_reads_from_the_start_and_the_poll_interval_holds(window):
    first = window.connector()
    first.deliver(window.message())
    assert len(polled(first)) == 2
    patient = window.connector(tracking_countries=["FR"], tracking_poll_interval=3600)
    assert len(polled(patient)) == 2, "a connector that delivered nothing polls for tracking_countries"
    window.connector().deliver(window.message())
    assert polled(patient) == [], "not yet: once per tracking_poll_interval"


def test_without_a_tracking_endpoint_nothing_is_asked(pki, certificates):
    def refuse(request):
        raise AssertionError(f"no request expected, got {request.url}")

    config = SingleWindowConfig(endpoint="https://127.0.0.1:9/iop", sender_country="FR", **SETTINGS)
    connector = SingleWindowConnector("sw", config, transport=httpx.MockTransport(refuse),
                                      context=ConnectorContext(str(pki.directory), "http://hub"))
    assert polled(connector) == []


# --- who sees what ----------------------------------------------------------------------------------------------------


def presenting(app, certificate_pem: bytes):
    """``app`` seeing every caller present ``certificate_pem`` (the ASGI ``tls`` extension a server may give)."""

    async def with_certificate(scope, receive, send):
        extensions = {**scope.get("extensions", {}), "tls": {"client_cert_chain": [certificate_pem.decode()]}}
        await app({**scope, "extensions": extensions}, receive, send)

    return with_certificate


def test_another_country_does_not_see_the_events(window):
    window.connector().deliver(window.message())
    assert polled(window.connector(sender_country="US")) == []
    assert len(polled(window.connector(sender_country="FR"))) == 2
    callers = {event["caller"] for event in window.controls.client.get("/events").json()["events"]}
    assert callers == {"FR"}


def test_the_caller_is_its_client_certificate(pki, certificates):
    app = create_sandbox_app(trust_store=pki.trust_store())
    french, client = harness_for(presenting(app, pki.client_certs["FR"].read_bytes()), pki, certificates)
    american, other = harness_for(presenting(app, pki.client_certs["US"].read_bytes()), pki, certificates)
    try:
        french.connector().deliver(french.message())
        assert polled(american.connector(sender_country="US")) == []
        with pytest.raises(PermanentDeliveryError, match=r"SOAP fault Client .*\[E0403\] the client certificate is US's"):
            polled(american.connector(tracking_countries=["FR"]))
        assert len(polled(french.connector(tracking_countries=["FR"]))) == 2
    finally:
        for harness, http in ((french, client), (american, other)):
            harness.close()
            http.close()


# --- faults -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("control", "error", "retry_after"), [
    ({"fault": "unavailable", "retry_after": 7}, TransientDeliveryError, 7.0),
    ({"fault": "server_error"}, TransientDeliveryError, None),
    ({"fault": "malformed"}, TransientDeliveryError, None),
    ({"fault": "drop"}, TransientDeliveryError, None),
    ({"fault": "refuse"}, PermanentDeliveryError, None),
    ({"fault": "fault", "fault_code": "Server", "reason_code": "E0501", "reason_text": "base de datos caída"}, TransientDeliveryError, None),
    ({"fault": "fault", "fault_code": "Client", "reason_code": "E0401", "reason_text": "servicio no contratado"}, PermanentDeliveryError, None),
])
def test_a_fault_on_the_tracking_call_is_typed_and_loses_nothing(window, control, error, retry_after):
    connector = window.connector()
    connector.deliver(window.message())
    window.controls.control(target="tracking", **control)
    with pytest.raises(error) as raised:
        polled(connector)
    assert type(raised.value) is error and getattr(raised.value, "retry_after", None) == retry_after
    assert connector.cursors == {}
    assert steps(polled(connector)) == ["accepted/tracking/received", "accepted/tracking/documentary_check"]


def test_faults_keep_to_their_target(window):
    connector = window.connector()
    connector.deliver(window.message())
    window.controls.control(fault="unavailable")  # aimed at deliveries, as before tracking existed
    assert len(polled(connector)) == 2
    with pytest.raises(TransientDeliveryError):
        connector.deliver(window.message())
    window.controls.control(fault="unavailable", target="tracking")
    assert connector.deliver(window.message()).outcome is Outcome.ACKNOWLEDGED


class FailingAfter(httpx.BaseTransport):
    """Passes ``passes`` tracking queries to ``inner``, then fails the rest with a 503."""

    def __init__(self, inner: httpx.BaseTransport, passes: int) -> None:
        self.inner, self.passes = inner, passes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == TRACKING_PATH:
            if self.passes <= 0:
                return httpx.Response(503, content=b"busy", request=request)
            self.passes -= 1
        return self.inner.handle_request(request)


def test_a_failure_between_pages_keeps_what_was_read(window, pki):
    sender = window.connector()
    sender.deliver(window.message())
    sender.deliver(window.message())
    transport = FailingAfter(InProcessTransport(window.app), passes=1)
    config = replace_config(sender.config, tracking_batch=3, tracking_countries=["FR"])
    connector = SingleWindowConnector("sw", config, transport=transport, context=ConnectorContext(str(pki.directory), "http://hub"))
    try:
        first = polled(connector)
        assert len(first) == 3 and connector.cursors == {"FR": 3}
        with pytest.raises(TransientDeliveryError, match="503"):
            polled(connector)
        transport.passes = 5
        assert [r.reason_code for r in polled(connector)] == ["documentary_check"]
    finally:
        connector.close()


def replace_config(config: SingleWindowConfig, **changes) -> SingleWindowConfig:
    return SingleWindowConfig(**{**config.model_dump(), **changes})


def scripted_answer(pki, answer_for):
    """A connector whose tracking answers are ``answer_for(query)`` (bytes, HTTP 200)."""
    def handler(request):
        query, _ = read_query(request.content)
        return httpx.Response(200, content=answer_for(query))

    config = SingleWindowConfig(endpoint="https://127.0.0.1:9/iop", tracking_endpoint="https://127.0.0.1:9/track",
                                recipient_country="EC", sender_country="FR", tracking_poll_interval=0, **SETTINGS)
    return SingleWindowConnector("sw", config, transport=httpx.MockTransport(handler),
                                 context=ConnectorContext(str(pki.directory), "http://hub"))


def sample_event(sequence: int, code: EventCode = EventCode.RECEIVED, **changes) -> TrackingEvent:
    return TrackingEvent(sequence=sequence, transaction_id="2f1c7e0a-0000-4000-8000-000000000001",
                         receipt_id="9a1c7e0a-0000-4000-8000-000000000009", document_type="851",
                         certificate_number="FR-2026-PC-1", control_country="EC", code=code, occurred_at=timestamp(),
                         **changes)


def test_events_the_window_repeats_are_not_reported_again(pki):
    connector = scripted_answer(pki, lambda query: build_answer(TrackingAnswer(
        query.header.answer(transaction_id="answer-000000000001"), last_sequence=2, more=False,
        events=(sample_event(1), sample_event(2, EventCode.DOCUMENTARY_CHECK)))))
    assert len(polled(connector)) == 2
    assert polled(connector) == [] and connector.cursors == {"FR": 2}


@pytest.mark.parametrize(("answer", "problem"), [
    (lambda q: build_answer(TrackingAnswer(replace(q.header, transaction_id="another-query-0001").answer(
        transaction_id="answer-000000000001"), 0, False)), "answers query 'another-query-0001'"),
    (lambda q: build_answer(TrackingAnswer(q.header.answer(transaction_id="answer-000000000001"), 1, False,
                                           (sample_event(2), sample_event(1)))), "out of sequence order"),
    (lambda q: b"<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body><x/></soap:Body></soap:Envelope>",
     "unreadable tracking answer"),
])
def test_an_answer_that_cannot_move_the_cursor_is_transient(pki, answer, problem):
    connector = scripted_answer(pki, answer)
    with pytest.raises(TransientDeliveryError, match=problem):
        polled(connector)
    assert connector.cursors == {}


# --- our XSD, our WSDL -------------------------------------------------------------------------------------------------


def test_our_tracking_xml_validates_against_our_xsd(schema):
    header = TrackingHeader("CFS.ENVIO01", "IOPCFS0001", "HUBFR", "FR", "VUCEEC", "EC", "query-000000000001", timestamp())
    refused = sample_event(7, EventCode.REFUSED, reason_code="PEST_FOUND", reason_text="x" * 300,
                           measure=RefusalMeasure.RE_EXPORT)
    answer = TrackingAnswer(header.answer(transaction_id="answer-000000000001"), 7, True, (sample_event(6), refused))
    documents = [build_query(TrackingQuery(header, after=5, limit=2)), build_query(TrackingQuery(header)),
                 build_answer(answer), build_answer(replace(answer, events=(), more=False))]
    faults = [build_fault("Client", "mal", header, (("E0002", "línea 1"),)), build_fault("Server", "caído", None, (("E1", "a"),))]
    xsd = xmlschema.XMLSchema(str(WSDL_DIR / TRACKING_XSD))
    for document in documents:
        schema.assertValid(body_of(document))
        xsd.validate(etree.tostring(body_of(document)).decode())
    for fault in faults:
        detail = etree.fromstring(fault).find(".//detail")[0]
        schema.assertValid(etree.ElementTree(etree.fromstring(etree.tostring(detail))))
    schema.assertValid(etree.ElementTree(etree.fromstring(event_xml(refused))))
    assert read_query(documents[0])[0] == TrackingQuery(header, after=5, limit=2)
    assert parse_answer(documents[2]) == answer
    falla = parse_answer(faults[0])
    assert (falla.faultcode, falla.DetallesError) == ("Client", (("E0002", "línea 1"),))


def test_the_sandbox_answers_validate_against_our_xsd(window, schema):
    connector = window.connector()
    connector.deliver(window.message())
    query = build_query(TrackingQuery(connector.tracking_header("FR"), after=0, limit=1))
    answer = window.controls.client.post(TRACKING_PATH, content=query)
    assert answer.status_code == 200
    schema.assertValid(body_of(answer.content))
    assert parse_answer(answer.content).more is True
    bad = window.controls.client.post(TRACKING_PATH, content=query.replace(b"<iopES:MaximoEventos>1<", b"<iopES:MaximoEventos>5000<"))
    assert bad.status_code == 500 and b"E0002" in bad.content and b"IDdeTransaccionOriginal" in bad.content
    detail = etree.fromstring(bad.content).find(".//detail")[0]
    assert detail.tag == f"{{{IOP_TRACKING}}}FallaConsulta"
    schema.assertValid(etree.ElementTree(etree.fromstring(etree.tostring(detail))))


def test_event_mapping():
    assert ack_for_event(sample_event(1)).message_id == "2f1c7e0a-0000-4000-8000-000000000001"
    assert ack_for_event(sample_event(1), message_id="msg:42").message_id == "msg:42"
    plain = ack_for_event(sample_event(3, EventCode.REFUSED))
    assert (plain.reason_code, plain.reason_text) == ("REFUSED", "refused at the border")
    assert [code.label for code in EventCode] == ["received", "documentary_check", "identity_check", "physical_check",
                                                  "under_measures", "released", "refused"]


def test_a_zeep_client_from_our_wsdl_reads_the_events(pki, certificates):
    with running_sandbox(create_sandbox_app(trust_store=pki.trust_store()), certs_dir=pki.directory) as server:
        http = httpx.Client(verify=client_tls(pki), base_url=server.url)
        harness = SingleWindowHarness(pki=pki, certificates=certificates, base=server.url, controls=HttpControls(http))
        try:
            connector, message = harness.connector(), harness.message()  # over mutual TLS with FR's certificate
            connector.deliver(message)
            harness.controls.decide(certificate_number=message.certificate_number, event="released")
            assert steps(polled(connector))[-1] == "acknowledged/business_response/None"
            session = requests.Session()
            session.cert = (str(pki.client_certs["FR"]), str(pki.client_keys["FR"]))
            session.verify, session.trust_env = str(pki.ca_cert), False
            client = zeep.Client(str(WSDL_DIR / TRACKING_WSDL), transport=zeep.Transport(session=session))
            service = client.create_service(TRACKING_WS, f"{server.url}{TRACKING_PATH}")
            header = {"CodigoInteraccion": "CFS.ENVIO01", "IDdeServicio": "IOPCFS0001", "IDdeRemitente": "HUBFR",
                      "PaisdeRemitente": "FR", "IDdeDestinatario": "VUCEEC", "PaisdeDestinatario": "EC",
                      "IDdeTransaccion": "zeep-query-00000001", "FechaHora": timestamp(), "VersionEsquema": Decimal("0.1")}
            answer = service.consultaEventosSeguimientoOperation(CabeceraConsulta=header, UltimaSecuencia=1,
                                                                 VersionEsquema=Decimal("0.1"))
            assert [e.CodigoEvento for e in answer.EventoSeguimiento] == ["CDO", "LIB"]
            assert answer.UltimaSecuencia == 3 and answer.HayMasEventos is False
            assert answer.EventoSeguimiento[0].IDdeTransaccion == message.id
            session.close()
        finally:
            harness.close()
            http.close()


# --- what the core makes of it -----------------------------------------------------------------------------------------


@pytest.fixture
def broker_with_window(sqlite_database_url, pki, certificates):
    """A broker whose ``authority`` destination is a single-window connector to the sandbox (receipts final)."""
    app = create_sandbox_app(trust_store=pki.trust_store())
    harness, client = harness_for(app, pki, certificates)
    broker = make_broker(sqlite_database_url, pki, connectors={
        "authority": harness.connector(), "customs": ScriptedConnector("customs")})
    yield broker, harness.controls
    broker.close()
    harness.close()
    client.close()


def test_the_core_traces_steps_without_moving_the_message_and_a_refusal_opens_a_non_conformity(broker_with_window):
    broker, controls = broker_with_window
    stored = broker.submit(json.dumps(example_record()).encode(), "application/json", tenant="FR", actor="api:test")
    worker = broker.make_worker()
    worker.drain()

    def message_state():
        with broker.database.sessions() as session:
            message = session.scalars(select(Message).where(Message.document_id == stored.document.id,
                                                            Message.destination == "authority")).one()
            events = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.message_id == message.id)
                                                       .order_by(TraceEvent.id))]
            return message.state, events

    assert message_state()[0] == "acknowledged"
    assert worker.poll_acks() == 2
    state, events = message_state()
    assert state == "acknowledged" and events[-2:] == ["tracking.received", "tracking.documentary_check"]
    controls.decide(certificate_number=stored.document.certificate_number, event="refused", reason_code="PEST_FOUND",
                    reason_text="Cydia pomonella viva")
    assert worker.poll_acks() == 1
    state, events = message_state()
    assert (state, events[-2:]) == ("rejected", ["border_refusal.rejected", "non_conformity.opened"])
    with broker.database.sessions() as session:
        found = session.scalars(select(NonConformity)).one()
        assert (found.source, found.cause_code, found.cause_text, found.country) == (
            "border_refusal", "PEST_FOUND", "Cydia pomonella viva", "EC")


def test_tracking_configuration():
    base = {"endpoint": "https://x/iop", **SETTINGS}
    for bad in ({"tracking_endpoint": "https://x/track"},  # the window's country is needed
                {"tracking_endpoint": "ftp://x", "recipient_country": "EC"},
                {"tracking_countries": ["fr"]}, {"tracking_batch": 1001}, {"tracking_poll_interval": -1}):
        with pytest.raises(ValidationError):
            SingleWindowConfig(**base, **bad)
    config = SingleWindowConfig(**base, tracking_endpoint="https://x/track/", recipient_country="EC")
    assert (config.tracking_endpoint, config.tracking_poll_interval, config.tracking_batch) == ("https://x/track", 30.0, 100)


def test_events_read_but_not_recorded_are_read_again(window):
    """Issue 12 #9: a release read by polling while the store is down must not be dropped."""
    connector = window.connector()
    connector.deliver(window.message())
    first = connector.poll_acks()  # the worker could not record them: it says nothing
    assert len(first) == 2 and connector.cursors == {}
    connector._last_poll = None  # due again at once
    assert steps(connector.poll_acks()) == steps(first)
    connector.answers_recorded(first)
    connector._last_poll = None
    assert connector.poll_acks() == [] and connector.cursors == {"FR": 2}


def test_a_restarted_connector_follows_the_senders_of_what_still_awaits(window):
    delivering = window.connector(sender_country=None)
    message = window.message()
    receipt = delivering.deliver(message).receipt_id
    restarted = window.connector(sender_country=None)
    assert polled(restarted) == []  # it delivered nothing: it knows no sender to ask for
    restarted.resume([AwaitingAck(message_id=message.id, receipt_id=receipt, certificate_number=message.certificate_number,
                                  issuing_country="FR", importing_country="EC")])
    restarted._last_poll = None
    assert {r.receipt_id for r in polled(restarted)} == {receipt}
