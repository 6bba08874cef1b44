"""TRACES-NT's EU-Intra certificate service: the sandbox holds intra-EU health certificates, the connector finds
and reads them (findEuIntraCertificate, getEuIntraCertificate), and the hub receives those destined to its
countries like any document from abroad, vouched for by the authenticated TRACES-NT channel."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from connectors.traces_nt import euintra
from hub.connector import InboundOutcome
from hub.errors import PermanentDeliveryError
from hub.families import round_trip
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.standards import PROJECT_ROOT
from hub.store.models import Document
from tests.support.broker import ROUTES, make_broker

EXAMPLE = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json"


def eu_intra_certificate(number: str = "INTRA.EU.DE.2026.0000007", *, destination: str = "FR") -> bytes:
    """An intra-EU health certificate (UNCL 1001 856) a German authority issued for ``destination``."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data.update(kind="inspection", certificate_number=number, name="Model animal health certificate EQUI-INTRA-IND")
    data["consignment"]["export_country"] = {"id": "DE"}
    data["consignment"]["import_country"] = {"id": destination}
    data.pop("issuer", None)
    return to_xml(render_certificate(record_from_data(data)).root)


def hold(traces, document: bytes) -> dict:
    answer = traces.client.post("/euintra", content=document)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_the_connector_finds_and_reads_what_the_sandbox_holds_in_traces_own_container(traces):
    held = hold(traces, eu_intra_certificate())
    assert held["destination"] == "FR"
    connector = traces.connector()
    now = datetime.now(timezone.utc)
    [summary] = connector.find_eu_intra_certificates(updated_from=now - timedelta(hours=1), updated_to=now + timedelta(minutes=1))
    assert (summary.id, summary.destined_to) == ("INTRA.EU.DE.2026.0000007", "FR")
    certificate = connector.get_eu_intra_certificate(summary.id)
    root = etree.fromstring(certificate)
    assert root.tag == euintra.CONTAINER
    result = round_trip(root)
    assert (result.family, result.kind, result.fidelity.share) == ("sps", "inspection", 1.0)
    with pytest.raises(PermanentDeliveryError, match="EuIntraCertificateNotFoundException"):
        connector.get_eu_intra_certificate("INTRA.EU.XX.0000.0000000")


def test_the_codec_reads_the_find_request_it_writes():
    since, until = datetime(2026, 4, 8, 12, tzinfo=timezone.utc), datetime(2026, 4, 22, 12, tzinfo=timezone.utc)
    request = euintra.find_request(updated_from=since, updated_to=until, offset=3, page_size=50)
    assert euintra.read_find_request(request) == (since, until, 3, 50)


def test_the_hub_receives_the_certificates_destined_to_its_countries_vouched_for_by_traces(traces, database_url, pki):
    hold(traces, eu_intra_certificate("INTRA.EU.DE.2026.0000011", destination="FR"))
    hold(traces, eu_intra_certificate("INTRA.EU.DE.2026.0000012", destination="NL"))
    connector = traces.connector(eu_intra_import=["FR"])
    routes = {"rules": ROUTES["rules"] + [{"name": "intra-to-customs", "when": {"direction": "inbound", "kind": ["inspection"]}, "to": ["customs"]}]}
    broker = make_broker(database_url, pki, connectors={"authority": traces_stand_in("authority"), "customs": traces_stand_in("customs"), "traces_nt": connector}, routes=routes)
    try:
        assert broker.pull_documents() == 1
        with broker.database.sessions() as session:
            [document] = session.query(Document).all()
            assert (document.certificate_number, document.kind, document.direction, document.tenant) == ("INTRA.EU.DE.2026.0000011", "inspection", "inbound", "FR")
            assert [m.destination for m in document.messages] == ["customs"]
        assert broker.pull_documents() == 0  # nothing new since
    finally:
        broker.close()


def test_an_unsigned_document_is_refused_unless_a_connector_vouches_for_it(traces, database_url, pki):
    from hub.connector import InboundDocument

    broker = make_broker(database_url, pki)
    try:
        unsigned = eu_intra_certificate("INTRA.EU.DE.2026.0000013")
        refused = broker.receive_document("authority", InboundDocument(unsigned, "X-1"))
        assert refused.outcome is InboundOutcome.FAILED and "signature" in refused.reason
        vouched = broker.receive_document("traces_nt", InboundDocument(unsigned, "X-2", vouched_by="traces_nt"))
        assert vouched.outcome is not InboundOutcome.FAILED, vouched.reason
    finally:
        broker.close()


def traces_stand_in(name: str):
    from tests.support.broker import ScriptedConnector

    return ScriptedConnector(name)
