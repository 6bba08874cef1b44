"""CITES permits point to point, EPIX style: a foreign management authority fetches a permit by number over mutual TLS
(final and non-final), confirms the quantities it inspected, asks the service state; the codec against the real EPIX
sample; the sandbox authority that does all this when told to."""

from __future__ import annotations

import json
from contextlib import contextmanager
import ssl
from decimal import Decimal

import httpx
import pytest
from lxml import etree
from sqlalchemy import select

from connectors.cites_p2p.client import CitesExchangeClient
from connectors.cites_p2p.sandbox import AuthoritySandboxConfig, create_cites_authority_sandbox
from hub.connector import InboundOutcome
from connectors.serving import InProcessTransport, running_sandbox
from connectors.cites_p2p.epix import (
    CertificateRequest,
    CertificateResponse,
    CitesPosition,
    ConfirmQuantitiesRequest,
    EpixError,
    EpixFault,
    Operation,
    ServiceStateRequest,
    build_fault,
    build_request,
    build_response,
    read_request,
    read_response,
)
from connectors.cites_p2p.exchange import QUANTITIES_CONFIRMED, epix_form
from connectors.cites_p2p.service import SERVICE_PATH, create_exchange_app
from hub.signing.keyring import Keyring
from hub.mapping.cites_permit import parse_permit
from hub.namespaces import CITES_DATA_EXCHANGE_V2, CITES_EPERMIT, SOAP11_ENV
from hub.records import compact, dump_record
from hub.signing import Verifier
from hub.store.models import Acknowledgement, Document, Payload, TraceEvent
from tests.support.broker import PERMIT_NUMBER, permit_record
from tests.support.standards import standard_file

EPIX_SAMPLE = "samples/cites/epix-v2-GetNonFinalCitesCertificateResponse.xml"
NUMBER = PERMIT_NUMBER  # a re-export certificate of FR for JP: one line, ID A, 12 PCS


def submit(broker, **changes) -> Document:
    return broker.submit(json.dumps(permit_record(**changes)).encode(), "application/json", tenant="FR", actor="test").document


@pytest.fixture
def permit(permit_broker) -> Document:
    """The example re-export certificate FR → JP, submitted: signed and stored."""
    return submit(permit_broker)


@pytest.fixture
def exchange_url(permit_broker, pki):
    """The exchange served over real mutual TLS."""
    app = create_exchange_app(permit_broker.database, certs_dir=pki.directory)
    with running_sandbox(app, certs_dir=pki.directory) as running:
        yield running.url + SERVICE_PATH


@pytest.fixture
def client_of(exchange_url, pki):
    """``client_of("JP")``: a client presenting that country's TLS client certificate."""
    clients = []

    def make(country: str, **options) -> CitesExchangeClient:
        clients.append(CitesExchangeClient(exchange_url, country=country, certs_dir=pki.directory, **options))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def events(broker, name: str) -> list[TraceEvent]:
    with broker.database.sessions() as session:
        return list(session.scalars(select(TraceEvent).where(TraceEvent.event == name).order_by(TraceEvent.id)))


def comparable(data):
    """Record data without how a parsed date was written (a submitted record leaves that to the profile)."""
    if isinstance(data, dict):
        data = {k: comparable(v) for k, v in data.items() if k != "format"}
        return data["value"] if set(data) == {"value"} else data
    if isinstance(data, list):
        return [comparable(v) for v in data]
    return data


# ----------------------------------------------------------------------------------------------------------- codec


@pytest.mark.interop
def test_the_codec_reads_the_real_epix_response():
    answer = read_response(standard_file(EPIX_SAMPLE).read_bytes(), Operation.GET_NON_FINAL)
    assert isinstance(answer, CertificateResponse) and answer.final is False and answer.composite is False
    assert [(a.name, a.content) for a in answer.attachments] == [("", "cid:311886019166")]
    parsed = parse_permit(answer.permit)
    assert parsed.profile == "epix" and parsed.record.permit_number.value == "XA000000"
    assert [item.scientific_name.value for item in parsed.record.consignment.items][-1] == "Crocodylus siamensis"


@pytest.mark.interop
def test_our_certificate_response_has_the_real_samples_shape(pki, permit, permit_broker):
    with permit_broker.database.sessions() as session:
        stored = session.get(Payload, permit.payload_digest).content
    ours = etree.fromstring(build_response(CertificateResponse(final=False, permit=epix_form(stored, Keyring(pki.directory / "signing").signer_for("FR")))))
    real = etree.fromstring(standard_file(EPIX_SAMPLE).read_bytes())

    def shape(envelope):
        wrapper = envelope.find(f"{{{SOAP11_ENV}}}Body")[0]
        permit_root = wrapper[0]
        return {
            "envelope": envelope.tag,
            "wrapper": wrapper.tag,
            "permit root": permit_root.tag,
            "permit children": sorted({etree.QName(c).namespace for c in permit_root if isinstance(c.tag, str) and etree.QName(c).localname != "Signature"}),
            "after the permit": [c.tag for c in wrapper[1:] if isinstance(c.tag, str) and c.tag != "Attachments"],
        }

    assert shape(ours) == shape(real) == {
        "envelope": f"{{{SOAP11_ENV}}}Envelope",
        "wrapper": f"{{{CITES_DATA_EXCHANGE_V2}}}GetNonFinalCitesCertificateResponse",
        "permit root": "CITESEPermit",
        "permit children": [CITES_EPERMIT],
        "after the permit": ["Composite"],
    }


def test_requests_round_trip_through_the_codec():
    requests = [
        CertificateRequest(NUMBER, final=True, token_id="T-1", iso_country_code="FR"),
        CertificateRequest(NUMBER, final=False),
        ConfirmQuantitiesRequest(NUMBER, (CitesPosition("A", Decimal("11.5"), "PCS"), CitesPosition("2", Decimal("3"))), iso_country_code="FR"),
        ServiceStateRequest("FR"),
        ServiceStateRequest(),
    ]
    for request in requests:
        assert read_request(build_request(request)) == request
    body = etree.fromstring(build_request(requests[0])).find(f"{{{SOAP11_ENV}}}Body")[0]
    assert body.tag == f"{{{CITES_DATA_EXCHANGE_V2}}}GetFinalCitesCertificate"
    assert [c.tag for c in body] == ["CertificateNumber", "TokenId", "IsoCountryCode"]


def test_the_codec_reads_request_elements_named_as_national_adapters_do_and_qualified_children():
    body = (
        f'<s:Envelope xmlns:s="{SOAP11_ENV}" xmlns:v2="{CITES_DATA_EXCHANGE_V2}"><s:Body><v2:GetNonFinalCitesCertificateRequest>'
        f"<v2:CertificateNumber>{NUMBER}</v2:CertificateNumber><v2:IsoCountryCode>fr</v2:IsoCountryCode>"
        "</v2:GetNonFinalCitesCertificateRequest></s:Body></s:Envelope>"
    ).encode()
    assert read_request(body) == CertificateRequest(NUMBER, final=False, iso_country_code="FR")


@pytest.mark.parametrize("change, named", [
    (lambda xml: xml.replace(b"<ID>A</ID>", b"<ID>A 1</ID>"), "ID must be a token"),
    (lambda xml: xml.replace(b">12<", b">twelve<"), "InspectedUnitQuantity 'twelve' is not a quantity"),
    (lambda xml: xml.replace(b">12<", b">-1<"), "is not a quantity"),
    (lambda xml: xml.replace(f"<CertificateNumber>{NUMBER}</CertificateNumber>".encode(), b""), "CertificateNumber is missing"),
    (lambda xml: xml.replace(b"ConfirmQuantities>", b"ConfirmAll>"), "ConfirmAll"),
    (lambda xml: b"<not-soap/>", "not a SOAP 1.1 envelope"),
    (lambda xml: b"<!DOCTYPE x [<!ENTITY e 'x'>]><x>&e;</x>", "DTDs"),
])
def test_a_request_the_codec_cannot_take_is_an_invalid_request_naming_what_is_wrong(change, named):
    xml = build_request(ConfirmQuantitiesRequest(NUMBER, (CitesPosition("A", Decimal("12"), "PCS"),)))
    with pytest.raises(EpixFault) as refused:
        read_request(change(xml))
    assert refused.value.error == "Invalid Request" and named in refused.value.detail


def test_a_fault_carries_the_epix_error_name_as_its_faultstring():
    xml = build_fault(EpixFault(EpixError.CALLEE_NOT_FOUND, "DE is not served here"))
    assert etree.fromstring(xml).findtext(f"{{{SOAP11_ENV}}}Body/{{{SOAP11_ENV}}}Fault/faultstring") == "CalleeNotFound"
    with pytest.raises(EpixFault) as fault:
        read_response(xml, Operation.SERVICE_STATE)
    assert (fault.value.error, fault.value.detail, fault.value.remote) == ("CalleeNotFound", "DE is not served here", True)


# ----------------------------------------------------------------------------------------- over real mutual TLS


def test_the_importing_authority_gets_the_permit_final_and_non_final_signed_by_the_issuer(permit_broker, pki, permit, client_of):
    japan = client_of("JP", callee="FR")
    with permit_broker.database.sessions() as session:
        stored = session.get(Document, permit.id).record
    for answer in (japan.get_final(NUMBER), japan.get_non_final(NUMBER)):
        assert etree.fromstring(answer.permit).tag == "CITESEPermit"
        verified = Verifier(pki.trust_store()).verify(answer.permit)
        assert "C=FR" in verified.signer_subject
        parsed = parse_permit(verified.signed_root)
        assert comparable(dump_record(parsed.record)) == comparable(compact(stored))
    served = events(permit_broker, "permit.served")
    assert [(e.document_id, e.actor, e.detail["operation"]) for e in served] == [
        (permit.id, "cites:JP", "GetFinalCitesCertificate"), (permit.id, "cites:JP", "GetNonFinalCitesCertificate"),
    ]
    assert served[0].payload_digest is not None


def test_a_country_that_is_no_party_to_the_permit_gets_certificate_missing_as_for_a_permit_not_held(permit_broker, permit, client_of):
    usa = client_of("US")
    with pytest.raises(EpixFault) as hidden:
        usa.get_final(NUMBER)
    with pytest.raises(EpixFault) as unknown:
        usa.get_final("FR0000000000-R")
    assert (hidden.value.error, hidden.value.http_status, hidden.value.remote) == ("CertificateMissing", 500, True)
    assert unknown.value.error == hidden.value.error
    assert hidden.value.detail == f"no permit {NUMBER} for US"
    [refused] = events(permit_broker, "permit.request_refused")
    assert refused.document_id == permit.id and refused.actor == "cites:US" and "not a party" in refused.detail["reason"]
    [not_held] = events(permit_broker, "exchange.request_refused")
    assert not_held.document_id is None and not_held.detail["certificate_number"] == "FR0000000000-R"


def test_the_issuing_country_itself_may_fetch_its_permit(permit, client_of):
    assert parse_permit(client_of("FR").get_non_final(NUMBER).permit).record.permit_number.value == NUMBER


def test_a_permit_no_longer_final_is_only_given_as_non_final(permit_broker, permit, client_of):
    with permit_broker.database.transaction() as session:
        session.get(Document, permit.id).lifecycle = "withdrawn"
    japan = client_of("JP")
    with pytest.raises(EpixFault) as missing:
        japan.get_final(NUMBER)
    assert missing.value.error == "CertificateMissing"
    assert parse_permit(japan.get_non_final(NUMBER).permit).record.permit_number.value == NUMBER
    assert "withdrawn" in events(permit_broker, "permit.request_refused")[0].detail["reason"]


def test_a_caller_without_a_client_certificate_is_refused(exchange_url, pki):
    no_certificate = httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca_cert)))
    with no_certificate, pytest.raises(httpx.TransportError):  # refused in the TLS handshake
        no_certificate.post(exchange_url, content=build_request(ServiceStateRequest()), headers={"Content-Type": "text/xml"})


def test_without_tls_a_caller_is_refused_unless_a_test_names_it(permit_broker, pki, permit):
    request = build_request(CertificateRequest(NUMBER, final=True))
    plain = create_exchange_app(permit_broker.database, certs_dir=pki.directory)
    with httpx.Client(transport=InProcessTransport(plain)) as client:
        answer = client.post("http://hub" + SERVICE_PATH, content=request)
    assert answer.status_code == 403
    with pytest.raises(EpixFault) as refused:
        read_response(answer.content, Operation.GET_FINAL)
    assert refused.value.error == "CertificateMissing" and "no TLS client certificate" in refused.value.detail
    as_japan = create_exchange_app(permit_broker.database, certs_dir=pki.directory, caller_country_for_tests="JP")
    with httpx.Client(transport=InProcessTransport(as_japan)) as client:
        answer = client.post("http://hub" + SERVICE_PATH, content=request)
    assert answer.status_code == 200 and read_response(answer.content, Operation.GET_FINAL).final


def test_confirmed_quantities_are_recorded_on_the_permit(permit_broker, permit, client_of):
    japan = client_of("JP", callee="FR")
    answer = japan.confirm_quantities(NUMBER, [CitesPosition("A", Decimal("11"))])
    assert answer.certificate_number == NUMBER and answer.positions == (CitesPosition("A", Decimal("11"), "PCS"),)
    japan.confirm_quantities(NUMBER, [CitesPosition("A", Decimal("12"), "PCS")])
    with permit_broker.database.sessions() as session:
        acks = session.scalars(select(Acknowledgement).where(Acknowledgement.document_id == permit.id).order_by(Acknowledgement.id)).all()
        payloads = [session.get(Payload, a.payload_digest).content for a in acks]
    assert [(a.kind, a.counterpart, a.outcome) for a in acks] == [(QUANTITIES_CONFIRMED, "cites:JP", "confirmed")] * 2
    first = read_request(payloads[0])
    assert isinstance(first, ConfirmQuantitiesRequest) and first.positions == (CitesPosition("A", Decimal("11")),)
    confirmed = events(permit_broker, "permit.quantities_confirmed")
    assert [e.detail["positions"] for e in confirmed] == [
        {"A": {"line": 1, "quantity": "11", "unit": "PCS"}}, {"A": {"line": 1, "quantity": "12", "unit": "PCS"}},
    ]
    assert confirmed[0].document_id == permit.id and confirmed[0].payload_digest == acks[0].payload_digest


def test_a_line_without_an_id_is_named_by_its_number(permit_broker, client_of):
    data = permit_record()
    item = {k: v for k, v in data["consignment"]["items"][0].items() if k != "id"}
    submit(permit_broker, permit_number="FR2607512346-R", consignment={**data["consignment"], "items": [item]})
    answer = client_of("JP").confirm_quantities("FR2607512346-R", [CitesPosition("1", Decimal("12"))])
    assert answer.positions == (CitesPosition("1", Decimal("12"), "PCS"),)


@pytest.mark.parametrize("positions, named", [
    ([CitesPosition("B", Decimal("1"))], "the permit has no line B (its lines: A)"),
    ([CitesPosition("A", Decimal("12.5"))], "12.5 PCS inspected exceeds the 12 PCS permitted"),
    ([CitesPosition("A", Decimal("2"), "KGM")], "unit KGM is not the line's unit PCS"),
    ([CitesPosition("A", Decimal("1")), CitesPosition("A", Decimal("1"))], "line A is confirmed twice"),
])
def test_confirmed_quantities_naming_no_line_or_too_much_are_refused_and_nothing_is_recorded(permit_broker, permit, client_of, positions, named):
    with pytest.raises(EpixFault) as refused:
        client_of("JP").confirm_quantities(NUMBER, positions)
    assert refused.value.error == "Invalid Request" and named in refused.value.detail
    with permit_broker.database.sessions() as session:
        assert session.scalars(select(Acknowledgement).where(Acknowledgement.kind == QUANTITIES_CONFIRMED)).all() == []
    assert named in events(permit_broker, "permit.quantities_refused")[0].detail["reason"]


def test_only_the_importing_authority_confirms_quantities(permit, client_of):
    for country in ("US", "FR"):
        with pytest.raises(EpixFault) as refused:
            client_of(country).confirm_quantities(NUMBER, [CitesPosition("A", Decimal("1"))])
        assert refused.value.error == "CertificateMissing"


def test_the_service_state_answers_and_names_an_authority_not_served(permit_broker, client_of):
    answer = client_of("JP", callee="FR").service_state()
    assert (answer.state, answer.iso_country_code) == ("Available", "FR")
    with pytest.raises(EpixFault) as refused:
        client_of("JP", callee="DE").service_state()
    assert refused.value.error == "CalleeNotFound"
    assert [e.detail["caller"] for e in events(permit_broker, "exchange.service_state")] == ["JP"]


# ------------------------------------------------------------------------------------------------------ sandbox


def test_the_sandbox_authority_fetches_verifies_and_confirms_when_told(permit_broker, pki, permit, exchange_url):
    app = create_cites_authority_sandbox(AuthoritySandboxConfig(country="JP", exchange_url=exchange_url, callee="FR"), certs_dir=pki.directory)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://japan") as japan:
        fetched = japan.post("/control/fetch", json={"number": NUMBER}).json()
        assert (fetched["outcome"], fetched["permit_number"], fetched["signer_country"], fetched["issuing_country"]) == ("received", NUMBER, "FR", "FR")
        assert japan.post("/control/fetch", json={"number": "FR0000000000-R", "final": False}).json()["fault"]["error"] == "CertificateMissing"
        confirmed = japan.post("/control/confirm", json={"number": NUMBER, "positions": [{"id": "A", "quantity": "12"}]}).json()
        assert confirmed["outcome"] == "confirmed" and confirmed["recorded"] == [{"id": "A", "quantity": "12", "unit": "PCS"}]
        assert japan.post("/control/state", json={}).json()["state"] == "Available"
        assert japan.post("/control/fetch", json={"numbr": NUMBER}).status_code == 400
        received = japan.get("/received").json()
    app.state.authority.client.close()
    assert [(r["operation"], r["outcome"]) for r in received["received"]] == [
        ("GetFinalCitesCertificate", "received"), ("GetNonFinalCitesCertificate", "fault"), ("ConfirmQuantities", "confirmed"), ("ServiceState", "answered"),
    ]
    assert len(events(permit_broker, "permit.quantities_confirmed")) == 1


@contextmanager
def japan_exchange(pki, tmp_path, *numbers: str):
    """Japan's own hub holding its export permits ``numbers`` for France, its exchange served over mutual TLS: the
    URL of that exchange."""
    from hub.store.migrate import upgrade
    from tests.support.broker import ROUTES_WITH_PERMITS, make_broker

    japan_url = f"sqlite:///{tmp_path / 'japan.db'}"
    upgrade(japan_url)
    japan = make_broker(japan_url, pki, routes=ROUTES_WITH_PERMITS)
    try:
        for number in numbers:
            data = permit_record(permit_number=number, kind="cites_export")
            data["first_signatory"]["provider"]["address"]["country_id"] = "JP"
            data["consignment"]["consignor"]["address"]["country_id"] = "JP"
            data["consignment"]["consignee"]["address"]["country_id"] = "FR"
            japan.submit(json.dumps(data).encode(), "application/json", tenant="JP", actor="test")
        app = create_exchange_app(japan.database, certs_dir=pki.directory, signer_for=japan.signer_for)
        with running_sandbox(app, certs_dir=pki.directory) as running:
            yield running.url
    finally:
        japan.close()


def test_the_hub_fetches_a_partners_permit_and_receives_it_like_any_document_from_abroad(permit_broker, pki, tmp_path):
    with japan_exchange(pki, tmp_path, "JP-2026-CITES-0042") as japan:
        verdict = permit_broker.fetch_permit(japan + SERVICE_PATH, "JP-2026-CITES-0042", country="FR", callee="JP")
        with pytest.raises(EpixFault) as refused:
            permit_broker.fetch_permit(japan + SERVICE_PATH, "JP-2026-CITES-9999", country="FR", callee="JP")
    assert verdict.outcome is not InboundOutcome.FAILED, verdict.reason
    assert refused.value.error == "CertificateMissing"
    with permit_broker.database.sessions() as session:
        stored = session.get(Document, verdict.document_id)
        assert (stored.direction, stored.tenant, stored.issuing_country, stored.kind) == ("inbound", "FR", "JP", "cites_export")


def test_the_hub_fetches_a_toolkit_v1_partners_permit_and_receives_it(permit_broker, pki, tmp_path):
    from hub.store.models import Payload
    from hub.xmlsafe import parse_xml

    with japan_exchange(pki, tmp_path, "JP-2026-CITES-0043") as japan:
        verdict = permit_broker.fetch_permit(japan + "/cites/v1/CitesDataExchange", "JP-2026-CITES-0043", country="FR", callee="JP", version="1")
    assert verdict.outcome is not InboundOutcome.FAILED, verdict.reason
    with permit_broker.database.sessions() as session:
        stored = session.get(Document, verdict.document_id)
        assert (stored.direction, stored.tenant, stored.issuing_country, stored.kind) == ("inbound", "FR", "JP", "cites_export")
        kept = parse_xml(session.get(Payload, stored.payload_digest).content)
        assert kept.tag == "CBFShip"  # what is kept and handed on is the v1 document JP signed


def test_a_toolkit_v1_partner_is_answered_in_v1_with_a_signed_cbfship(permit_broker, pki, permit, exchange_url):
    import httpx

    from hub.signing import TrustStore, Verifier
    from tests.contract.suite import client_tls

    request = build_request(CertificateRequest(NUMBER, final=False, version="1"))
    assert b"urn:CitesDataExchange/v1/" in request
    http = httpx.Client(verify=client_tls(pki, "JP"), timeout=20)
    try:
        answer = http.post(exchange_url.replace("/v2/", "/v1/"), content=request, headers={"Content-Type": "text/xml; charset=utf-8"})
    finally:
        http.close()
    assert answer.status_code == 200, answer.text
    response = read_response(answer.content, Operation.GET_NON_FINAL, version="1")
    verified = Verifier(TrustStore.from_paths(ca_bundle=pki.ca_cert)).verify(response.permit)
    assert "FR" in verified.signer_subject
    parsed = parse_permit(response.permit)
    assert parsed.profile == "v1-epix" and parsed.element.tag == "CBFShip"
    assert comparable(dump_record(parsed.record))["permit_number"] == NUMBER
    served = events(permit_broker, "permit.served")
    assert served[-1].detail["toolkit"] == "1"
