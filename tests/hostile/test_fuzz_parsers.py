"""The parsers fuzzed with Hypothesis: whatever bytes, text or JSON they are given, they answer a result or an error of
the hub's own tree (:class:`~hub.errors.HubError`: InputError, HostileXMLError, MalformedXMLError, RecordError,
SignatureError…), never a third-party exception, a RecursionError or a crash. Derandomized and bounded, so a run
takes seconds and CI sees the same examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from hub import families, jsonsafe
from hub.errors import HubError
from hub.signing import Signer, Verifier
from hub.standards import PROJECT_ROOT
from hub.xmlsafe import parse_xml
from tests.hostile import payloads as p

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
SPS_EXAMPLE = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json"
CITES_EXAMPLE = PROJECT_ROOT / "mappings" / "CITESEPermit" / "2" / "examples" / "reexport-FR-python.xml"
#: Text XML can carry (no surrogates, no C0 controls but tab and newlines), from every plane.
XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)]), max_size=60)
#: Pieces of markup that make parsers misbehave when spliced anywhere.
MARKUP = st.sampled_from([b"<!--", b"-->", b"<?pi x?>", b"<![CDATA[", b"]]>", b"&amp;", b"&#0;", b"&#xD800;", b"&x;", b"<", b">", b"\x00", b"\xff\xfe",
                          b"<!DOCTYPE r>", b'<!ENTITY e "x">', b"xmlns:a='urn:x'", b"</", b"\xc3", b"\xed\xa0\x80", b"<a>" * 300])


def only_hub_errors(call, *args, **kwargs):
    """Call; the hub's own errors are a fine answer, anything else fails the test."""
    try:
        return call(*args, **kwargs)
    except HubError:
        return None


@pytest.fixture(scope="module")
def documents(pki) -> dict[str, bytes]:
    """The worked SPS certificate (unsigned and signed by FR) and the worked CITES permit."""
    sps = p.unsigned_xml()
    return {"sps": sps, "sps-signed": Signer(pki.key_provider("FR")).sign(sps), "cites": CITES_EXAMPLE.read_bytes()}


def spliced(document: bytes, data) -> bytes:
    position = data.draw(st.integers(0, len(document)))
    piece = data.draw(st.one_of(MARKUP, st.binary(max_size=40)))
    cut = data.draw(st.integers(0, 20))
    return document[:position] + piece + document[position + cut:]


def read_as_hub_does(body: bytes) -> None:
    """Safe parsing, the family, its validation and its record: what submission does with XML."""
    root = parse_xml(body, source="body")
    family = families.for_document(root)
    family.check_document(root, source="body")
    family.parse(root, source="body")


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), XML_TEXT.map(lambda text: text.encode("utf-8")), st.lists(MARKUP, max_size=12).map(b"".join)))
def test_xmlsafe_answers_a_tree_or_a_hub_error(body):
    only_hub_errors(parse_xml, body)


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", ["sps", "cites"])
def test_a_document_with_markup_or_bytes_spliced_anywhere_is_read_or_refused(documents, name, data):
    only_hub_errors(read_as_hub_does, spliced(documents[name], data))


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", ["sps", "cites"])
def test_a_document_with_any_text_in_any_leaf_is_read_or_refused(documents, name, data):
    root = etree.fromstring(documents[name])
    leaves = [element for element in root.iter() if isinstance(element.tag, str) and len(element) == 0]
    for leaf in data.draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=4)):
        leaf.text = data.draw(XML_TEXT)
    only_hub_errors(read_as_hub_does, etree.tostring(root))


@FUZZ
@given(data=st.data())
def test_a_signed_document_spliced_anywhere_is_verified_or_refused(pki, documents, data):
    verifier = Verifier(pki.trust_store())
    only_hub_errors(verifier.verify, spliced(documents["sps-signed"], data))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      st.integers(1, 20_000).map(lambda depth: b"[" * depth), st.integers(1, 20_000).map(lambda depth: b'{"a":' * depth)))
def test_jsonsafe_answers_a_value_or_an_input_error(body):
    only_hub_errors(jsonsafe.loads, body)


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("kind", ["phytosanitary", "cites_reexport"])
def test_a_record_with_any_value_anywhere_is_read_or_refused(kind, data):
    source = SPS_EXAMPLE if kind == "phytosanitary" else CITES_EXAMPLE.with_suffix("").with_suffix(".record.json")
    record = json.loads(Path(source).read_text(encoding="utf-8"))
    paths = list(_paths(record))
    for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4)):
        _set(record, path, data.draw(JSON_VALUES))
    body = json.dumps(record, allow_nan=True).encode()
    family = families.for_data(record)
    only_hub_errors(lambda: family.from_data(jsonsafe.loads(body)))


def _paths(node, prefix=()):
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _set(node, path, value) -> None:
    try:
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass  # an earlier change replaced a parent of this path
