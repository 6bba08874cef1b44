"""GUN C638: a French import permit is valid for clearance only against the exporting country's permit it names,
received from abroad (verified, validated, stored for France)."""

from __future__ import annotations

import json

from hub.connector import InboundDocument, InboundOutcome
from hub.mapping.cites_permit import permit_from_data, render_permit, to_xml
from tests.support.broker import permit_record

US_PERMIT = "US-2026-CITES-0007"
FR_IMPORT = "FR2607599001-I"


def us_export_permit(quantity: str = "12") -> dict:
    """The United States' export permit for France: 12 pieces of python-skin goods."""
    data = permit_record(permit_number=US_PERMIT, kind="cites_export")
    data["first_signatory"]["provider"]["address"]["country_id"] = "US"
    data["consignment"]["consignor"]["address"]["country_id"] = "US"
    data["consignment"]["consignee"]["address"]["country_id"] = "FR"
    data["consignment"]["items"][0]["quantity"] = {"value": quantity, "unit": "PCS"}
    return data


def fr_import_permit(quantity: str = "12", names: str = US_PERMIT) -> dict:
    """France's import permit for the same goods, naming the US export permit as the origin permit (Box 12)."""
    data = permit_record(permit_number=FR_IMPORT, kind="cites_import")
    consignment = data["consignment"]
    consignment["consignor"]["address"]["country_id"] = "US"
    consignment["consignee"]["address"]["country_id"] = "FR"
    line = consignment["items"][0]
    line.pop("last_reexport_country", None), line.pop("last_reexport_certificate", None)
    line["origin_country"] = {"id": "US"}
    line["origin_permit"] = {"id": names}
    line["quantity"] = {"value": quantity, "unit": "PCS"}
    return data


def receive(broker, data: dict) -> None:
    body = broker.signer_for("US").sign(to_xml(render_permit(permit_from_data(data)).root))
    verdict = broker.receive_document("cites_us", InboundDocument(body, "EPIX-7", sender_country="US"))
    assert verdict.outcome is InboundOutcome.ACCEPTED, verdict.reason


def issue(broker, data: dict) -> None:
    broker.submit(json.dumps(data).encode(), "application/json", tenant="FR", actor="test")


def test_an_import_permit_waits_for_the_exporting_countrys_permit(permit_broker):
    issue(permit_broker, fr_import_permit())
    standing = permit_broker.customs.check("C638", FR_IMPORT, tenant="FR")
    assert not standing.valid and standing.reasons == (f"the exporting country's permit {US_PERMIT} (US) has not been received",)
    receive(permit_broker, us_export_permit())
    assert permit_broker.customs.check("C638", FR_IMPORT, tenant="FR").valid


def test_an_import_beyond_what_the_export_permit_allows_is_not_valid(permit_broker):
    receive(permit_broker, us_export_permit(quantity="10"))
    issue(permit_broker, fr_import_permit(quantity="12"))
    [reason] = permit_broker.customs.check("C638", FR_IMPORT, tenant="FR").reasons
    assert "more than the 10" in reason and US_PERMIT in reason


def test_a_permit_of_another_country_with_that_number_does_not_count(permit_broker):
    issue(permit_broker, fr_import_permit(names="FR2607512345-R"))
    issue(permit_broker, permit_record())  # France's own re-export certificate FR2607512345-R, not a US permit
    [reason] = permit_broker.customs.check("C638", FR_IMPORT, tenant="FR").reasons
    assert "has not been received" in reason
