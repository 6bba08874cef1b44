"""The compiled mapping (hub/mapping/compiled.py reads, hub/mapping/writer.py writes) does exactly what the
interpreted walk does: the same record data, findings and field locations on every real document and example, in
either direction, and the same XML (read back, an empty ``<a></a>`` being the writer's ``<a/>``); and so does every
variant of an example that leaves something over for the extensions."""

from __future__ import annotations

import copy
import json
import re
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import BaseModel

from hub.errors import HubError
from hub.mapping.cites_permit import NATIONAL_FIELDS, NATIONAL_ITEM_FIELDS, parse_permit, permit_from_data, permit_root_tags, render_permit, spec_for_profile, spec_of
from hub.mapping.cites_permit import content_tags as permit_content_tags
from hub.mapping.engine import parse, render, to_xml
from hub.mapping.envelopes import unwrap
from hub.mapping.sps_certificate import parse_certificate, record_from_data, render_certificate, sps_spec
from hub.mapping.writer import Written, tree, writer
from hub.records import compact
from hub.records.sps import Party
from hub.records.values import Text
from hub.validation.rules import _languages_in
from hub.standards import PROJECT_ROOT
from hub.xmlsafe import parse_xml
from tests.support.standards import standards_dir

EXAMPLES = PROJECT_ROOT / "mappings"


def _document(root: etree._Element):
    """(spec, document element) of a certificate or permit, bare or wrapped; None when the message holds neither."""
    spec = sps_spec()
    for tags, content in ((spec.root.clark, spec.content_tags), (permit_root_tags(), permit_content_tags())):
        try:
            element = unwrap(root, tags, content=content).document
        except HubError:
            continue
        return (spec if tags == spec.root.clark else spec_of(element)), element
    return None


def _documents():
    folder = standards_dir() / "samples"
    if not folder.is_dir():
        pytest.fail(f"the real samples are missing: {folder} (../shared/standards, or HUB_STANDARDS_DIR)")
    found = []
    for path in [*sorted(folder.rglob("*.xml")), *sorted(EXAMPLES.rglob("examples/*.xml"))]:
        try:
            held = _document(parse_xml(path.read_bytes(), source=path.name))
        except HubError:
            continue
        if held is not None:
            found.append((path.name, *held))
    return found


def _outcome(spec, element, *, interpreted):
    try:
        parsed = parse(spec, element, interpreted=interpreted)
    except HubError as exc:
        return ("refused", type(exc).__name__, str(exc), getattr(exc, "where", None))
    return parsed.data, [f.model_dump() for f in parsed.findings], dict(parsed.xpath_of.items())


def _assert_same_parse(spec, element):
    compiled, interpreted = _outcome(spec, element, interpreted=False), _outcome(spec, element, interpreted=True)
    assert compiled == interpreted
    return compiled


def _xml(root: etree._Element) -> bytes:
    """The document as written, read back: an element the interpreted walk left with an empty text
    (``<a></a>``) reads as the compiled writer's ``<a/>``, the same XML."""
    return to_xml(etree.fromstring(to_xml(root)))


def _assert_same_render(spec, data, profile):
    outcomes = []
    for interpreted in (False, True):
        try:
            rendered = render(spec, copy.deepcopy(data), profile, interpreted=interpreted, locate=True)
        except HubError as exc:
            outcomes.append(("refused", type(exc).__name__, str(exc)))
            continue
        tree = rendered.root.getroottree()
        fields = sorted((tree.getpath(element), name) for element, name in rendered.field_of.items())
        outcomes.append((_xml(rendered.root), [f.model_dump() for f in rendered.findings], fields))
    assert outcomes[0] == outcomes[1], profile
    return outcomes[0]


def test_every_real_document_and_example_parses_and_renders_the_same_compiled():
    documents = _documents()
    assert len(documents) >= 8, [name for name, _spec, _element in documents]
    for name, spec, element in documents:
        data, findings, located = _assert_same_parse(spec, element)
        assert data and located, name
        for profile in spec.profiles:
            xml, _findings, fields = _assert_same_render(spec, data, profile)
            assert xml.startswith(b"<?xml") and fields, (name, profile)


def test_every_example_record_renders_the_same_compiled():
    records = sorted(EXAMPLES.rglob("examples/*.record.json"))
    assert len(records) >= 3
    for path in records:
        data = json.loads(path.read_text(encoding="utf-8"))
        spec = sps_spec() if "SPSCertificate" in str(path) else spec_of(etree.Element(permit_root_tags()[0]))
        for profile in spec.profiles:
            _assert_same_render(spec, data, profile)


def _example(name: str) -> etree._Element:
    return parse_xml((EXAMPLES / "SPSCertificate" / "17" / "examples" / name).read_bytes())


R = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21}"
UDT = "{urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21}"


def _first(root, tag):
    return next(root.iter(tag))


MUTATIONS = {
    "attribute on the root": lambda root: root.set("foreign", "1"),
    "attribute on a group element": lambda root: _first(root, f"{R}ConsignorSPSParty").set("note", "x"),
    "unknown attribute on a leaf": lambda root: _first(root, f"{R}Name").set("foreign", "x"),
    "unknown element in a group": lambda root: etree.SubElement(_first(root, f"{R}ConsignorSPSParty"), "{urn:x}Extra").set("a", "1"),
    "unknown element at the root": lambda root: root.insert(1, etree.Element("{urn:x}Extra")),
    "element inside a leaf": lambda root: etree.SubElement(_first(root, f"{R}Name"), "{urn:x}Inner"),
    "comment inside a leaf": lambda root: _first(root, f"{R}Name").append(etree.Comment("x")),
    "text beside children": lambda root: setattr(_first(root, f"{R}ConsignorSPSParty"), "text", "stray"),
    "a second date element": lambda root: _first(root, f"{UDT}DateTimeString").addnext(etree.Element(f"{UDT}DateTime")),
    "attribute on a date element": lambda root: _first(root, f"{UDT}DateTimeString").set("other", "1"),
    "repeated single leaf": lambda root: _first(root, f"{R}Name").addnext(copy.deepcopy(_first(root, f"{R}Name"))),
    "a signature at the root": lambda root: root.append(etree.Element("{http://www.w3.org/2000/09/xmldsig#}Signature")),
    "processing instruction": lambda root: root.append(etree.ProcessingInstruction("pi", "x")),
    "bad integer": lambda root: setattr(_first(root, f"{R}SequenceNumeric"), "text", "x1"),
}


@pytest.mark.parametrize("example", ["phyto-FR-apples.full.xml", "ched-P-FR-cheese.full.xml", "phyto-FR-apples.ephyto.xml"])
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_what_a_document_leaves_over_is_found_the_same_compiled(example, mutation):
    root = _example(example)
    try:
        MUTATIONS[mutation](root)
    except StopIteration:
        pytest.skip(f"{example} has no element for {mutation}")
    outcome = _assert_same_parse(sps_spec(), root)
    if outcome[0] != "refused" and mutation not in ("comment inside a leaf", "processing instruction", "a signature at the root"):
        assert outcome[0].get("extensions"), "the mutation left nothing over: the test would prove nothing"
        for profile in sps_spec().profiles:
            _assert_same_render(sps_spec(), outcome[0], profile)


def test_render_reports_the_same_for_data_a_profile_cannot_carry():
    data = json.loads((EXAMPLES / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json").read_text(encoding="utf-8"))
    data["unknown_top"] = "x"
    data["consignment"]["consignor"]["unknown"] = {"value": "y"}
    data["consignment"]["consignor"]["name"] = {"value": "Name", "language": "fr", "stray": "z"}
    data["consignment"]["items"][0]["line_items"][0]["sequence_number"] = "not a number"
    data["consignment"]["transport_movements"] = [{"id": "V1"}]
    for profile in sps_spec().profiles:
        _xml, findings, _fields = _assert_same_render(sps_spec(), data, profile)
        assert {f["rule"] for f in findings} & {"MAP-PROFILE-DROPPED", "MAP-PROFILE-REQUIRED"}


def test_a_character_xml_cannot_carry_is_refused_the_same_compiled():
    data = json.loads((EXAMPLES / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json").read_text(encoding="utf-8"))
    data["consignment"]["consignor"]["name"] = "bad\x00name"
    for profile in sps_spec().profiles:
        assert _assert_same_render(sps_spec(), data, profile)[0] == "refused"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # what no XML document carries
_XML_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["a & b", "<x>", "]]>", 'say "hi"', "tab\tnew\nline\rreturn", "carriage\rreturn", "&amp;", "'", "é€😀"])


@settings(max_examples=150, deadline=None)
@given(name=_XML_TEXT, language=_XML_TEXT, note=_XML_TEXT, unit=_XML_TEXT)
def test_any_text_is_written_as_the_interpreted_walk_writes_it(name, language, note, unit):
    """The compiled writer escapes texts and attributes itself (it writes XML text): whatever a record holds comes
    out as lxml writes it, or is refused the same way, and what is written reads back as it was."""
    data = json.loads((EXAMPLES / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json").read_text(encoding="utf-8"))
    data["consignment"]["consignor"]["name"] = {"value": name, "language": language}
    data["notes"] = [{"subject": "X", "content": [note]}]
    data["consignment"]["items"][0]["line_items"][0]["net_weight"] = {"value": "1", "unit": unit}
    refused = set()
    for profile in sps_spec().profiles:
        outcome = _assert_same_render(sps_spec(), data, profile)
        if not _NOT_XML.search(name + language + note + unit):  # written as text, not left to the interpreted walk
            written = Written()
            writer(sps_spec(), profile)(data, {"ched_type", "kind", "status", "document_element", "extensions"}, written)
            tree(etree.Element(sps_spec().root.clark, nsmap=dict(sps_spec().namespaces)), written)
        if outcome[0] == "refused":
            refused.add(profile)
        elif profile == "full":  # the profile that carries the name's language (ePhyto's name is a bare string)
            consignor = etree.fromstring(outcome[0]).find(f".//{R}ConsignorSPSParty/{R}Name")
            assert (consignor.text or "", consignor.get("languageID", "")) == (name, language)
    try:
        record = record_from_data(data)
    except HubError:
        return
    for profile in set(sps_spec().profiles) - refused:  # and from the record itself, as render_certificate hands it over
        _same_as_compacted_interpreted(sps_spec(), render_certificate(record, profile), record.model_dump(mode="json", exclude_none=True), profile, ("ched_type", "kind", "status"))


def _same_as_compacted_interpreted(spec, rendered, data, profile, ignore):
    reference = render(spec, compact(data), profile, ignore=ignore, interpreted=True)
    assert _xml(rendered.root) == _xml(reference.root), profile
    assert [f.model_dump() for f in rendered.findings] == [f.model_dump() for f in reference.findings], profile


def test_a_record_renders_from_its_dump_as_it_is_as_from_its_compact_form():
    """render_certificate / render_permit hand the writer the record's dump uncompacted (empty lists and all)."""
    examples = EXAMPLES / "SPSCertificate" / "17" / "examples"
    records = [record_from_data(json.loads(path.read_text(encoding="utf-8"))) for path in sorted(examples.glob("*.record.json"))]
    for _name, spec, element in _documents():
        if spec is sps_spec():
            try:
                records.append(parse_certificate(element).record)
            except HubError:
                continue
    # A party the ePhyto profile cannot carry, holding nothing but empty lists: dropped as INFO, as its compact form is.
    records.append(records[0].model_copy(update={"consignment": records[0].consignment.model_copy(update={"carrier": Party()})}))
    assert len(records) >= 5
    for record in records:
        data = record.model_dump(mode="json", exclude_none=True)
        for profile in sps_spec().profiles:
            _same_as_compacted_interpreted(sps_spec(), render_certificate(record, profile), data, profile, ("ched_type", "kind", "status"))
    permit = permit_from_data(json.loads((EXAMPLES / "CITESEPermit" / "2" / "examples" / "reexport-FR-python.record.json").read_text(encoding="utf-8")))
    for profile in ("standard", "epix", "v1", "v1-epix"):
        data = permit.model_dump(mode="json", exclude_none=True)
        for item in data["consignment"]["items"]:
            for key in NATIONAL_ITEM_FIELDS:
                item.pop(key, None)
        _same_as_compacted_interpreted(spec_for_profile(profile), render_permit(permit, profile), data, profile, ("kind", *NATIONAL_FIELDS))


def _languages_reference(value, path):
    """The walk CL-LANGUAGE made before it looked only at the fields that may hold a text."""
    if isinstance(value, Text):
        if value.language is not None:
            yield path, value.language
    elif isinstance(value, BaseModel):
        for key, item in value.__dict__.items():
            if item is not None and not isinstance(item, (str, int, Enum)):
                yield from _languages_reference(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _languages_reference(item, f"{path}[{i}]")


def test_the_languages_rule_finds_every_language_it_found_before():
    records = []
    for _name, spec, element in _documents():
        try:
            records.append(parse_certificate(element).record if spec is sps_spec() else parse_permit(element).record)
        except HubError:
            continue
    example = json.loads((EXAMPLES / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json").read_text(encoding="utf-8"))
    example["consignment"]["consignor"]["name"] = {"value": "Fruits", "language": "xx"}
    example["consignment"]["items"][0]["line_items"][0]["descriptions"] = [{"value": "Pommes", "language": "fr"}, {"value": "Apples", "language": "zz"}]
    records.append(record_from_data(example))
    found = 0
    for record in records:
        expected = list(_languages_reference(record, ""))
        assert list(_languages_in(record, "")) == expected
        found += len(expected)
    assert found >= 3
