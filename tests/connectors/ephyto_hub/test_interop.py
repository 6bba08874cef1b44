"""The ePhyto Hub profile's output is accepted by the schema embedded in the real IPPC Hub WSDL."""

from __future__ import annotations

import json

import pytest

from hub.mapping.sps_certificate import parse_certificate, record_from_data, render_certificate
from hub.records.values import Code
from hub.report import Severity
from hub.validation.schemas import schema_findings, schema_from_wsdl
from hub.standards import PROJECT_ROOT
from tests.support.standards import standard_file

pytestmark = pytest.mark.interop

EXAMPLES = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples"


@pytest.fixture(scope="module")
def hub_schema():
    return schema_from_wsdl(standard_file("ephyto-hub/ephyto-prod.wsdl"))


def test_worked_example_in_ephyto_profile_validates_against_the_real_hub_schema(hub_schema):
    record = record_from_data(json.loads((EXAMPLES / "phyto-FR-apples.record.json").read_text()))
    rendered = render_certificate(record, "ephyto")
    assert schema_findings(hub_schema, rendered.root) == []
    # The full profile carries what the Hub cannot (here the transport mode's name): the Hub schema refuses it.
    assert schema_findings(hub_schema, render_certificate(record, "full").root) != []


def test_real_ephyto_record_in_ephyto_profile_validates_against_the_real_hub_schema(hub_schema):
    record = parse_certificate(standard_file("samples/ephyto/NO-ephyto-SPSCertificate.xml").read_bytes()).record
    rendered = render_certificate(record, "ephyto")
    # The real document omits the TypeCode the Hub requires on referenced documents: the profile says so, SEVERE …
    missing = [f for f in rendered.findings if f.severity is Severity.SEVERE]
    assert {f.rule for f in missing} == {"MAP-PROFILE-REQUIRED"}
    assert {f.field.split(".")[-1] for f in missing} == {"type_code"}
    # … and once the issuer supplies it, everything else the record holds is written the way the Hub accepts.
    for document in record.referenced_documents:
        document.type_code = Code(value="916")
    rendered = render_certificate(record, "ephyto")
    assert [f for f in rendered.findings if f.severity is Severity.SEVERE] == []
    assert schema_findings(hub_schema, rendered.root) == []
    # What the Hub profile cannot carry is listed, never dropped silently.
    dropped = {f.field for f in rendered.findings if f.rule == "MAP-PROFILE-DROPPED"}
    assert "consignment.items[0].line_items[0].applied_processes[0].notes" in dropped
    assert "consignment.transport_movements[1].means_name.language" in dropped


def test_hub_schema_from_the_uat_wsdl_accepts_the_same_output(hub_schema):
    record = record_from_data(json.loads((EXAMPLES / "phyto-FR-apples.record.json").read_text()))
    uat = schema_from_wsdl(standard_file("ephyto-hub/ephyto-uat.wsdl"))
    assert schema_findings(uat, render_certificate(record, "ephyto").root) == []
