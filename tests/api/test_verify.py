"""Verification for third countries and the health of each destination, through the API, on both engines."""

from __future__ import annotations

import json

from hub.store.payloads import digest_of
from tests.support.broker import example_record, permanent, replacement_of, transient


def submit(api, record):
    answer = api.post("/v1/documents", content=json.dumps(record), headers={"Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_a_third_country_learns_status_and_replacement(api, broker):
    original = example_record()
    submit(api, original)
    stated = api.get("/v1/verify/FR-2026-PC-000123", headers=api.headers_of("EC")).json()
    assert (stated["issuing_country"], stated["kind"], stated["lifecycle"], stated["replaced_by"]) == ("FR", "phytosanitary", "issued", None)
    assert stated["products"] == [{"hs_code": "080810", "scientific_name": "Malus domestica"}]
    assert "consignor" not in json.dumps(stated)
    submit(api, replacement_of(original, "FR-2026-PC-000124"))
    stated = api.get("/v1/verify/FR-2026-PC-000123", headers=api.headers_of("EC")).json()
    assert (stated["lifecycle"], stated["replaced_by"]) == ("replaced", "FR-2026-PC-000124")
    assert api.get("/v1/verify/FR-2026-PC-999999", headers=api.headers_of("EC")).status_code == 404
    assert api.get("/v1/verify/FR-2026-PC-000123", headers={"Authorization": ""}).status_code == 401


def test_a_signed_copy_is_genuine_and_a_forgery_is_not(api, broker):
    document = submit(api, example_record())
    signed = api.get(f"/v1/documents/{document['id']}/xml").content
    assert digest_of(signed) in api.get("/v1/verify/FR-2026-PC-000123", headers=api.headers_of("EC")).json()["signed_document_sha256"]
    genuine = api.post("/v1/verify", content=signed, headers={**api.headers_of("EC"), "Content-Type": "application/xml"}).json()
    assert genuine["genuine"] is True and genuine["signer"].endswith("C=FR")
    forged = api.post("/v1/verify", content=signed.replace(b"18500", b"28500"), headers={**api.headers_of("EC"), "Content-Type": "application/xml"}).json()
    assert forged["genuine"] is False and "reason" in forged
    # validly signed by the authority, but not what it holds for that number now (an older or altered issue)
    from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml

    other = broker.signer_for("FR").sign(to_xml(render_certificate(record_from_data(example_record(description="another")), "full").root))
    answer = api.post("/v1/verify", content=other, headers={**api.headers_of("EC"), "Content-Type": "application/xml"}).json()
    assert answer["genuine"] is False and answer["signature"] == "valid"


def test_connector_health_counts_backlog_dead_letters_and_errors(api, broker):
    assert api.get("/v1/connectors").status_code == 403  # every tenant's traffic: administrators and auditors only
    broker.connectors["authority"].fail_next(transient(retry_after=60))
    broker.connectors["customs"].fail_next(permanent())
    submit(api, example_record())
    broker.make_worker(webhooks=False).drain()
    health = {row["destination"]: row for row in api.get("/v1/connectors", headers=api.headers_of("ops")).json()["items"]}
    assert (health["authority"]["backlog"], health["authority"]["dead_letters"], health["authority"]["error_rate"]) == (1, 0, 1.0)
    assert (health["customs"]["backlog"], health["customs"]["dead_letters"], health["customs"]["last_success"]) == (0, 1, None)
    submit(api, example_record(certificate_number="FR-2026-PC-000200"))
    broker.make_worker(webhooks=False).drain()
    health = {row["destination"]: row for row in api.get("/v1/connectors", headers=api.headers_of("ops")).json()["items"]}
    assert health["customs"]["last_success"] is not None and health["customs"]["error_rate"] == 0.5


def test_hub_connectors_lists_the_configured_destinations(sqlite_database_url):
    from typer.testing import CliRunner

    from hub.cli import app

    result = CliRunner().invoke(app, ["connectors", "--database-url", sqlite_database_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["destination", "type"]
    assert {line.split()[0]: line.split()[1] for line in lines[1:]} == {"customs": "p2p", "ephyto_hub": "ephyto_hub", "foreign_authority": "p2p", "single_window": "single_window", "traces_nt": "traces_nt", "as4_authority": "as4"}
    assert all("never" in line for line in lines[1:])
