"""The single-window (IOP) connector: interop with the published WSDL and XSDs, the contract suite against its
sandbox in-process and over mutual TLS (later acknowledgements come from our border tracking operation), then what is
particular to it: ERR receipts, SOAP faults, status mapping, the header it writes, its configuration. Tracking itself
is tested in test_tracking.py."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import httpx
import pytest
import requests
import xmlschema
import zeep
from lxml import etree
from pydantic import ValidationError

from hub.connector import ConnectorContext, Outcome
from connectors.serving import InProcessTransport, running_sandbox
from connectors.single_window import SingleWindowConfig, SingleWindowConnector
from connectors.single_window.protocol import (
    IOP_ACK,
    IOP_CFS,
    IOP_FALLA,
    WSDL_DIR,
    AcuseRecibo,
    MensajeFalla,
    build_acuse,
    build_envio,
    build_falla,
    parse_reason,
    parse_response,
    read_envio,
    timestamp,
    transaction_id,
)
from connectors.single_window.sandbox import SERVICE_PATH, create_sandbox_app
from connectors.single_window.tracking import TRACKING_WSDL, TRACKING_XSD
from hub.errors import InputError, PermanentDeliveryError, TransientDeliveryError, UnknownDocumentError
from tests.connectors.single_window.harness import HUB_URL, NAME, SETTINGS, HttpControls, SingleWindowHarness
from tests.contract.suite import ConnectorContract, client_tls
from tests.support.standards import standard_file

IOP = "single-window-iop"


@pytest.fixture
def in_process(pki, certificates):
    app = create_sandbox_app(trust_store=pki.trust_store())
    client = httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox")
    harness = SingleWindowHarness(pki=pki, certificates=certificates, base="http://sandbox", controls=HttpControls(client), app=app)
    yield harness
    harness.close()
    client.close()


@pytest.fixture(scope="module")
def sandbox_server(pki):
    with running_sandbox(create_sandbox_app(trust_store=pki.trust_store()), certs_dir=pki.directory) as running:
        yield running


@pytest.fixture
def over_tls(pki, certificates, sandbox_server):
    client = httpx.Client(verify=client_tls(pki), base_url=sandbox_server.url)
    controls = HttpControls(client)
    controls.reset()
    harness = SingleWindowHarness(pki=pki, certificates=certificates, base=sandbox_server.url, controls=controls)
    yield harness
    harness.close()
    client.close()


class _Contract(ConnectorContract):
    # The suite expects a receipt to be ACCEPTED (an acknowledgement follows). The IOP receipt is final, so the
    # connector's default is ACKNOWLEDGED; the harness runs the suite with receipt_outcome="accepted" (the border's
    # decision, read by tracking, is the acknowledgement), and test_an_rcb_receipt_is_final_by_default checks the
    # default.
    pass


class TestContractInProcess(_Contract):
    @pytest.fixture
    def harness(self, in_process):
        in_process.controls.acknowledge_with("acknowledge")  # the border releases unless a test says otherwise
        return in_process


class TestContractMutualTLS(_Contract):
    @pytest.fixture
    def harness(self, over_tls):
        over_tls.controls.acknowledge_with("acknowledge")
        return over_tls


# --- interop with the published interface -------------------------------------------------------------------------


def body_element(envelope: bytes, tag: str) -> etree._ElementTree:
    found = etree.fromstring(envelope).find(f".//{tag}")
    return etree.ElementTree(etree.fromstring(etree.tostring(found)))


def test_a_replacement_names_the_original_transaction_even_from_a_connector_that_did_not_send_it(in_process):
    original = in_process.message()
    in_process.connector().deliver(original)
    restarted = in_process.connector()  # a restart, or another worker: the link comes with the message, from the store
    assert restarted.cabecera_for(in_process.message(replaces=original)).IDdeTransaccionOriginal == original.id
    assert restarted.cabecera_for(in_process.message()).IDdeTransaccionOriginal is None


def test_our_request_validates_against_the_published_xsds(standards, in_process):
    connector = in_process.connector()
    original = in_process.message()
    connector.deliver(original)
    replacement = in_process.message(replaces=original)
    request = build_envio(connector.cabecera_for(replacement), replacement.payload)
    envio = body_element(request, f"{{{IOP_CFS}}}EnvioCertificadoFitosanitario")
    path = standard_file(f"{IOP}/EnvioCertificadoFitosanitario_V0_2.xsd")
    etree.XMLSchema(etree.parse(str(path))).assertValid(envio)
    xmlschema.XMLSchema(str(path)).validate(etree.tostring(envio).decode())
    cabecera, signed, _ = read_envio(request)
    assert cabecera.IDdeTransaccion == replacement.id and cabecera.IDdeTransaccionOriginal == original.id
    assert (cabecera.IDdeDocumento, cabecera.TipodeDocumento, cabecera.EstadoTransaccion) == (replacement.certificate_number, "851", "70")
    assert (cabecera.PaisdeRemitente, cabecera.PaisdeDestinatario) == ("FR", "EC")
    assert signed.encode("utf-8") == replacement.payload, "the signed certificate travels byte for byte"


def test_sandbox_answers_validate_against_the_published_xsds(standards, in_process):
    acuse_schema = etree.XMLSchema(etree.parse(str(standard_file(f"{IOP}/AcuseRecibo_V0_1.xsd"))))
    falla_schema = etree.XMLSchema(etree.parse(str(standard_file(f"{IOP}/MensajeFalla_V0_1.xsd"))))
    connector = in_process.connector()
    for message in (in_process.message(), in_process.message(tampered=True)):
        acuse_schema.assertValid(body_element(connector.deliver(message).response, f"{{{IOP_ACK}}}AcuseRecibo"))
    in_process.controls.control(fault="fault", fault_code="Server")
    with pytest.raises(TransientDeliveryError) as raised:
        connector.deliver(in_process.message())
    falla_schema.assertValid(body_element(raised.value.response, f"{{{IOP_FALLA}}}MensajeFalla"))


def test_a_request_our_xsds_refuse_is_a_client_fault(in_process):
    too_long = replace(in_process.message(), certificate_number="X" * 101)  # IOPIDType holds 100 at most
    with pytest.raises(PermanentDeliveryError, match=r"SOAP fault Client .*\[E0002\].*IDdeDocumento") as raised:
        in_process.connector().deliver(too_long)
    assert parse_response(raised.value.response).Cabecera is None, "the invalid header is not echoed"
    assert in_process.controls.received() == []


def test_our_xsds_define_what_the_published_ones_do(standards):
    ours = {path.name for path in WSDL_DIR.glob("*.xsd")} - {TRACKING_XSD}  # tracking is ours alone
    published = {path.name for path in (standards / IOP).glob("*.xsd")}
    assert ours == published
    assert not {TRACKING_XSD, TRACKING_WSDL} & {path.name for path in (standards / IOP).iterdir()}
    for name in sorted(ours):
        mine, theirs = xmlschema.XMLSchema(str(WSDL_DIR / name)), xmlschema.XMLSchema(str(standards / IOP / name))
        assert set(mine.maps.elements) <= set(theirs.maps.elements), name
        assert mine.target_namespace == theirs.target_namespace
    assert zeep.Client(str(WSDL_DIR / "EnvioCertificadoFitosanitario.wsdl")).service.envioCertificadoFitosanitarioOperation


@pytest.fixture
def zeep_service(pki, sandbox_server):
    """A zeep client built from the PUBLISHED WSDL, pointed at the sandbox over mutual TLS."""
    session = requests.Session()
    session.cert = (str(pki.client_certs["FR"]), str(pki.client_keys["FR"]))
    session.verify = str(pki.ca_cert)
    session.trust_env = False  # REQUESTS_CA_BUNDLE and the like would replace our CA
    client = zeep.Client(str(standard_file(f"{IOP}/EnvioCertificadoFitosanitario_V0_2.wsdl")),
                         transport=zeep.Transport(session=session))
    binding = "{http://iop.crimsonlogic.com/EnvioCertificadoFitosanitarioWS}EnvioCertificadoFitosanitarioBinding"
    yield client.create_service(binding, f"{sandbox_server.url}{SERVICE_PATH}")
    session.close()


def zeep_call(service, message, *, transaction=None):
    cabecera = {
        "CodigoInteraccion": "CFS.ENVIO01", "IDdeServicio": "IOPCFS0001", "IDdeRemitente": "VUCEPE",
        "PaisdeRemitente": "PE", "IDdeDestinatario": "VUCEEC", "PaisdeDestinatario": "EC",
        "IDdeTransaccion": transaction or message.id, "EstadoTransaccion": "70", "FechaHora": timestamp(),
        "TipodeDocumento": "851", "IDdeDocumento": message.certificate_number, "VersionEsquema": Decimal("0.2"),
    }
    return service.envioCertificadoFitosanitarioOperation(
        Cabecera=cabecera, SignedSPSCert=message.payload.decode("utf-8"), VersionEsquema=Decimal("0.4"))


def test_a_zeep_client_from_the_published_wsdl_gets_receipts(standards, over_tls, zeep_service):
    message = over_tls.message()
    acuse = zeep_call(zeep_service, message)
    assert acuse.CodigoAcuseRecibo == "RCB"
    assert acuse.Cabecera.IDdeTransaccionOriginal == message.id and acuse.Cabecera.PaisdeDestinatario == "PE"
    assert zeep_call(zeep_service, message).Cabecera.IDdeTransaccion == acuse.Cabecera.IDdeTransaccion
    rejected = zeep_call(zeep_service, over_tls.message(tampered=True))
    assert rejected.CodigoAcuseRecibo == "ERR" and rejected.GlosaAcuseRecibo.startswith("[SIGNATURE_INVALID]")
    over_tls.controls.control(fault="fault", fault_code="Client", reason_code="E0042", reason_text="servicio desconocido")
    with pytest.raises(zeep.exceptions.Fault, match="servicio desconocido"):
        zeep_call(zeep_service, over_tls.message())
    assert [(r.message_id, r.status, r.deliveries) for r in over_tls.controls.received()][:1] == [(message.id, "accepted", 2)]


# --- receipts and faults --------------------------------------------------------------------------------------------


def test_an_rcb_receipt_is_final_by_default(in_process):
    in_process.outcome = "acknowledged"
    message = in_process.message()
    result = in_process.connector().deliver(message)
    assert result.outcome is Outcome.ACKNOWLEDGED and result.receipt_id


def test_err_receipts_are_rejections_with_their_reason(in_process, pki):
    connector = in_process.connector()
    signed = in_process.message()
    root = etree.fromstring(signed.payload)
    root.remove(root.find("{http://www.w3.org/2000/09/xmldsig#}Signature"))
    unsigned = replace(signed, payload=etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    result = connector.deliver(unsigned)
    assert (result.outcome, result.reason_code) == (Outcome.REJECTED, "SIGNATURE_MISSING")
    in_process.controls.control(acuse="ERR", reason_code="E0301", reason_text="el certificado ya fue utilizado")
    forced = connector.deliver(in_process.message())
    assert (forced.outcome, forced.reason_code, forced.reason_text) == (Outcome.REJECTED, "E0301", "el certificado ya fue utilizado")
    assert [r.status for r in in_process.controls.received()] == ["rejected", "rejected"]


@pytest.mark.parametrize(("fault_code", "error"), [("Client", PermanentDeliveryError), ("Server", TransientDeliveryError)])
def test_soap_faults_map_by_faultcode(in_process, fault_code, error):
    in_process.controls.control(fault="fault", fault_code=fault_code, reason_code="E0500", reason_text="sin servicio")
    with pytest.raises(error, match=rf"SOAP fault {fault_code} .*\[E0500\] sin servicio") as raised:
        in_process.connector().deliver(in_process.message())
    assert type(raised.value) is error and raised.value.response
    assert in_process.controls.received() == []


def scripted(status, body=b"", headers=None):
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body, headers=headers or {}))


def scripted_connector(pki, transport, **settings):
    config = SingleWindowConfig(endpoint="https://127.0.0.1:9/iop/EnvioCertificadoFitosanitario", **SETTINGS, **settings)
    return SingleWindowConnector(NAME, config, transport=transport, context=ConnectorContext(str(pki.directory), HUB_URL))


@pytest.mark.parametrize(("status", "error", "retry_after"), [
    (400, PermanentDeliveryError, None), (403, PermanentDeliveryError, None), (404, PermanentDeliveryError, None),
    (301, PermanentDeliveryError, None), (500, TransientDeliveryError, None), (502, TransientDeliveryError, None),
    (503, TransientDeliveryError, 3.0), (429, TransientDeliveryError, 3.0),
])
def test_http_statuses(pki, certificates, status, error, retry_after):
    with pytest.raises(error) as raised:
        scripted_connector(pki, scripted(status, b"<html/>", {"Retry-After": "3"})).deliver(certificates.message(destination=NAME))
    assert type(raised.value) is error and getattr(raised.value, "retry_after", None) == retry_after
    assert raised.value.request.startswith(b"<?xml") and raised.value.response == b"<html/>"


def test_network_failures_are_transient(pki, certificates):
    def fail(request):
        raise httpx.ConnectError("refused")

    with pytest.raises(TransientDeliveryError):
        scripted_connector(pki, httpx.MockTransport(fail)).deliver(certificates.message(destination=NAME))


def test_a_receipt_must_be_for_this_transaction(pki, certificates):
    message = certificates.message(destination=NAME)
    connector = scripted_connector(pki, None)
    other = connector.cabecera_for(replace(message, id="0123456789ab-other"))
    acuse = build_acuse(AcuseRecibo(other.answer(transaction_id="receipt-000000001"), "RCB", "ok", timestamp()))
    with pytest.raises(TransientDeliveryError, match="acknowledges transaction '0123456789ab-other'"):
        scripted_connector(pki, scripted(200, acuse)).deliver(message)


def test_the_header_refuses_what_it_cannot_say(pki, certificates):
    connector = scripted_connector(pki, None)
    with pytest.raises(PermanentDeliveryError, match="PaisdeDestinatario None .*; status 'draftish'"):
        connector.cabecera_for(replace(certificates.message(destination=NAME, importing_country=None), status="draftish"))
    fixed = scripted_connector(pki, None, recipient_country="PE", sender_country="CL")
    header = fixed.cabecera_for(certificates.message(destination=NAME, importing_country=None))
    assert (header.PaisdeRemitente, header.PaisdeDestinatario, header.IDdeRemitente) == ("CL", "PE", "HUBFR")


# --- protocol and configuration ---------------------------------------------------------------------------------------


def test_transaction_ids_fit_the_schema_and_are_stable():
    assert transaction_id("2f1c7e0a-0000-4000-8000-000000000001") == "2f1c7e0a-0000-4000-8000-000000000001"
    derived = transaction_id("msg:42/with odd characters")
    assert derived == transaction_id("msg:42/with odd characters") and len(derived) == 36


def test_faults_and_unreadable_answers():
    falla = parse_response(build_falla(MensajeFalla("Server", "ocupado", None, (("E1", "a"), ("E2", "b")))))
    assert (falla.faultcode, falla.faultstring, falla.DetallesError) == ("Server", "ocupado", (("E1", "a"), ("E2", "b")))
    with pytest.raises(UnknownDocumentError):
        parse_response(b"<a/>")
    with pytest.raises(InputError, match="empty or missing Body"):
        parse_response(b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>')
    assert parse_reason("[E1] texto") == ("E1", "texto") and parse_reason("solo texto") == (None, "solo texto")


@pytest.mark.parametrize("bad", [{"service_id": "short"}, {"sender_id": "HUB-FR"}, {"recipient_country": "ecu"},
                                 {"endpoint": "ftp://x"}, {"client_certificate": "a.pem"}, {"receipt_outcome": "maybe"}])
def test_bad_configs_are_refused(bad):
    with pytest.raises(ValidationError):
        SingleWindowConfig(**{"endpoint": "https://x/iop", **SETTINGS, **bad})
