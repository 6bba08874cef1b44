"""CITES permits through the broker: a permit record submitted is rendered, validated, signed, routed and stored
with its specimens; customs writes its quantity off through DELTA-G's GUN code C401, which makes it used."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from lxml import etree

from hub.errors import ValidationFailed
from hub.namespaces import CITES_EPERMIT
from hub.customs.ledger import Clearance, DeclaredItem
from hub.store.models import Payload
from tests.support.broker import PERMIT_NUMBER, permit_record

NUMBER = PERMIT_NUMBER
permit = permit_record


def submit(broker, data: dict):
    return broker.submit(json.dumps(data).encode(), "application/json", tenant="FR", actor="test")


def test_a_permit_record_is_signed_routed_and_stored_with_its_specimens(permit_broker):
    document = submit(permit_broker, permit()).document
    assert (document.kind, document.issuing_country, document.exporting_country, document.importing_country) == ("cites_reexport", "FR", "FR", "JP")
    assert [m.destination for m in document.messages] == ["authority"]
    with permit_broker.database.sessions() as session:
        signed = session.get(Payload, document.payload_digest).content
        products = [(p.line, p.scientific_name, p.quantity, p.unit) for p in session.merge(document).products]
    assert etree.fromstring(signed).tag == f"{{{CITES_EPERMIT}}}CITESEPermit"
    assert "FR" in permit_broker.verifier.verify(signed).signer_subject
    assert products == [(1, "Malayopython reticulatus", Decimal("12"), "PCS")]
    permit_broker.make_worker().drain()
    assert permit_broker.connectors["authority"].received[0].certificate_number == NUMBER


def test_a_permit_breaking_a_rule_is_refused_and_not_stored(permit_broker):
    start = datetime.now(timezone.utc) - timedelta(days=1)
    bad = permit(validity={"start": start.isoformat(timespec="seconds"), "end": (start + timedelta(days=200)).isoformat(timespec="seconds")})
    with pytest.raises(ValidationFailed) as refused:
        submit(permit_broker, bad)
    assert [f.rule for f in refused.value.report.severe] == ["CITES-VALIDITY-6M"]


def test_a_permit_submitted_as_xml_is_signed_by_its_authority(permit_broker):
    from hub.mapping.cites_permit import permit_from_data, render_permit, to_xml

    xml = to_xml(render_permit(permit_from_data(permit())).root)
    document = permit_broker.submit(xml, "application/xml", tenant="FR", actor="test").document
    assert document.kind == "cites_reexport" and document.source_format == "xml"


def test_customs_writes_off_a_reexport_certificate_under_gun_c401_and_it_becomes_used(permit_broker):
    submit(permit_broker, permit())
    assert permit_broker.customs.check("C401", NUMBER, tenant="FR").valid
    permit_broker.customs.reserve("C401", NUMBER, tenant="FR", declaration="26FR00069000000042", items=[DeclaredItem(1, 1, Decimal("12"), unit="PCS")], office="FR000690")
    permit_broker.customs.clear("C401", NUMBER, tenant="FR", declaration="26FR00069000000042", clearance=Clearance.RELEASED, office="FR000690")
    standing = permit_broker.customs.check("C401", NUMBER, tenant="FR")
    assert standing.lifecycle == "used" and not standing.valid


def test_an_expired_permit_is_not_valid_for_clearance(permit_broker):
    submit(permit_broker, permit(validity={"start": "2026-03-12T10:15:00+01:00", "end": "2026-09-11T23:59:59+02:00"}))
    standing = permit_broker.customs.check("C401", NUMBER, tenant="FR")
    assert not standing.valid and standing.reasons == ("its validity ended on 2026-09-11T23:59:59+02:00",)
