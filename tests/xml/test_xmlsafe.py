import pytest

from hub.errors import HostileXMLError, MalformedXMLError
from hub.xmlsafe import parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"""


def test_parses_plain_xml():
    assert parse_xml(b"<a><b>x</b></a>").findtext("b") == "x"


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_refuses_dtds_and_entities(payload):
    with pytest.raises(HostileXMLError, match="DTD"):
        parse_xml(payload)


def test_refuses_utf16_encoded_dtd():
    # The byte scan cannot see a DTD in UTF-16; the parsed doctype is checked as well.
    payload = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>'.encode("utf-16")
    with pytest.raises((HostileXMLError, MalformedXMLError)):
        parse_xml(payload)


def test_malformed_names_line_and_column():
    with pytest.raises(MalformedXMLError, match=r"line 1"):
        parse_xml(b"<a><b></a>", source="upload.xml")
