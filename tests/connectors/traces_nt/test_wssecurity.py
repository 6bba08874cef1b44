"""TRACES-NT WS-Security: the digest (against zeep's independent implementation), the header's shape against the saved
TRACES requests, the server-side check (wrong key, stale timestamp, replayed nonce) and the fault of the capture."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree
from zeep.wsse.username import UsernameToken

from connectors.traces_nt.wssecurity import (
    WSSE,
    WSU,
    NonceCache,
    Unauthenticated,
    answer_security,
    password_digest,
    security_header,
    traces_headers,
    unauthenticated_fault,
    verify_security,
)
from hub.namespaces import SOAP11_ENV
from tests.support.standards import standard_file

NOW = datetime(2026, 9, 29, 14, 12, 2, 966000, tzinfo=timezone.utc)
KEY = "s3cret-authentication-key"
ACCOUNTS = {"hub-user": KEY}


def soap_header(*elements: etree._Element) -> etree._Element:
    header = etree.Element(f"{{{SOAP11_ENV}}}Header")
    header.extend(elements)
    return header


def paths(element: etree._Element, prefix: str = "") -> set[str]:
    """Clark-notation element paths with their attribute names, ignoring values, prefixes and the wsu:Id value."""
    here = f"{prefix}/{element.tag}"
    found = {here} | {f"{here}@{name}" for name in element.attrib}
    for child in element.iterchildren(etree.Element):
        found |= paths(child, here)
    return found


def test_digest_is_base64_sha1_of_nonce_created_key():
    nonce, created = bytes(range(16)), "2026-09-29T14:12:02.966Z"
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + KEY.encode()).digest()).decode()
    assert password_digest(nonce, created, KEY) == expected
    assert password_digest(nonce, created, KEY + "x") != expected


def test_zeep_digest_tokens_verify_and_agree():
    # zeep's UsernameToken is an independent implementation of the same profile (nonce given as text there).
    envelope = etree.fromstring(f'<s:Envelope xmlns:s="{SOAP11_ENV}"><s:Header/><s:Body/></s:Envelope>')
    created = NOW.replace(microsecond=0)
    UsernameToken("hub-user", KEY, use_digest=True, nonce="0123456789abcdef", created=created).apply(envelope, {})
    header = envelope.find(f"{{{SOAP11_ENV}}}Header")
    security = header[0]
    # zeep writes no wsu:Timestamp; TRACES requires one, so add ours before checking.
    security.insert(0, security_header(username="x", authentication_key="y", now=NOW)[0])
    assert verify_security(header, accounts=ACCOUNTS, nonces=NonceCache(), now=NOW) == "hub-user"
    token_created = security.findtext(".//{*}UsernameToken/{*}Created")
    ours = password_digest(b"0123456789abcdef", token_created, KEY)
    assert security.findtext(".//{*}Password") == ours


@pytest.mark.parametrize("capture", ["samples/traces-ws/GetProcessedChedRequest.xml"])
def test_header_has_the_shape_of_the_saved_request(capture):
    saved = etree.parse(str(standard_file(capture))).getroot()
    saved_header = saved.find(f"{{{SOAP11_ENV}}}Header")
    saved_security = saved_header.find("{*}Security")
    ours = traces_headers(username="hub-user", authentication_key=KEY, client_id="CLIENT-1", language="en", now=NOW)
    assert paths(ours[2]) == paths(saved_security)
    by_tag = {element.tag for element in ours}
    assert {element.tag for element in saved_header if element.tag.endswith(("LanguageCode", "WebServiceClientId", "Security"))} == by_tag
    saved_password = saved_security.find(".//{*}Password")
    saved_nonce = saved_security.find(".//{*}Nonce")
    assert ours[2].find(".//{*}Password").get("Type") == saved_password.get("Type")
    assert ours[2].find(".//{*}Nonce").get("EncodingType") == saved_nonce.get("EncodingType")


@pytest.mark.parametrize("capture", ["samples/traces-ws/01-read.request.xml", "samples/traces-ws/02-reserveA.request.xml"])
def test_traces_headers_use_the_namespaces_of_the_real_captures(capture):
    saved = etree.parse(str(standard_file(capture))).getroot().find(f"{{{SOAP11_ENV}}}Header")
    ours = traces_headers(username="u", authentication_key=KEY, client_id="C", language="en", now=NOW)
    for element in ours[:2]:
        assert saved.find(element.tag) is not None, f"{element.tag} not in {capture}"
    assert saved.findtext(ours[0].tag) == ours[0].text == "en"


def test_timestamp_and_token_are_live_and_consistent():
    security = security_header(username="hub-user", authentication_key=KEY, now=NOW, ttl=timedelta(minutes=3))
    assert security.findtext("{*}Timestamp/{*}Created") == "2026-09-29T14:12:02.966Z"
    assert security.findtext("{*}Timestamp/{*}Expires") == "2026-09-29T14:15:02.966Z"
    assert security.findtext("{*}UsernameToken/{*}Created") == "2026-09-29T14:12:02.966Z"
    assert len(base64.b64decode(security.findtext("{*}UsernameToken/{*}Nonce"))) == 16
    other = security_header(username="hub-user", authentication_key=KEY, now=NOW)
    assert other.findtext(".//{*}Nonce") != security.findtext(".//{*}Nonce")


def header_for(*, key=KEY, now=NOW, username="hub-user", nonce=None, ttl=timedelta(seconds=60)) -> etree._Element:
    return soap_header(security_header(username=username, authentication_key=key, now=now, nonce=nonce, ttl=ttl))


def test_a_good_header_verifies_once():
    nonces = NonceCache()
    header = header_for(nonce=b"once-only-nonce!")
    assert verify_security(header, accounts=ACCOUNTS, nonces=nonces, now=NOW + timedelta(seconds=2)) == "hub-user"
    with pytest.raises(Unauthenticated, match="replay"):
        verify_security(header, accounts=ACCOUNTS, nonces=nonces, now=NOW + timedelta(seconds=3))
    # The same nonce in a freshly built header is still a replay.
    with pytest.raises(Unauthenticated, match="replay"):
        verify_security(header_for(nonce=b"once-only-nonce!", now=NOW + timedelta(seconds=4)), accounts=ACCOUNTS,
                        nonces=nonces, now=NOW + timedelta(seconds=5))


@pytest.mark.parametrize(
    ("header", "now", "problem"),
    [
        (lambda: header_for(key="wrong"), NOW, "wrong password digest"),
        (lambda: header_for(username="someone"), NOW, "unknown username"),
        (lambda: header_for(), NOW + timedelta(seconds=61), "timestamp expired"),
        (lambda: header_for(ttl=timedelta(hours=1)), NOW + timedelta(minutes=6), "outside the accepted window"),
        (lambda: header_for(), NOW - timedelta(minutes=2), "in the future"),
        (lambda: soap_header(), NOW, "no wsse:Security"),
        (lambda: None, NOW, "no wsse:Security"),
    ],
)
def test_bad_headers_are_refused(header, now, problem):
    with pytest.raises(Unauthenticated, match=problem):
        verify_security(header(), accounts=ACCOUNTS, nonces=NonceCache(), now=now)


def test_a_wrong_digest_does_not_burn_the_nonce():
    nonces = NonceCache()
    with pytest.raises(Unauthenticated):
        verify_security(header_for(key="wrong", nonce=b"shared-nonce-123"), accounts=ACCOUNTS, nonces=nonces, now=NOW)
    assert verify_security(header_for(nonce=b"shared-nonce-123"), accounts=ACCOUNTS, nonces=nonces, now=NOW) == "hub-user"


def test_a_password_text_token_is_refused():
    header = header_for()
    header.find(".//{*}Password").set("Type", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText")
    with pytest.raises(Unauthenticated, match="not a PasswordDigest"):
        verify_security(header, accounts=ACCOUNTS, nonces=NonceCache(), now=NOW)


def test_nonces_are_forgotten_after_their_window():
    nonces = NonceCache(keep_for=timedelta(minutes=1))
    assert nonces.first_use("u", "n1", NOW)
    assert not nonces.first_use("u", "n1", NOW + timedelta(seconds=30))
    assert nonces.first_use("u", "n2", NOW + timedelta(minutes=2))
    assert nonces.first_use("u", "n1", NOW + timedelta(minutes=2))
    assert nonces.first_use("other", "n2", NOW + timedelta(minutes=2))


def canonical(data: bytes) -> bytes:
    parser = etree.XMLParser(remove_blank_text=True)
    return etree.tostring(etree.fromstring(data, parser), method="c14n")


def test_the_fault_is_the_saved_unauthenticated_exception():
    saved = standard_file("samples/traces-ws/UnauthenticatedException.xml").read_bytes()
    assert canonical(unauthenticated_fault()) == canonical(saved)


def test_answers_carry_a_five_second_timestamp_only():
    security = answer_security(now=NOW)
    assert [child.tag for child in security] == [f"{{{WSU}}}Timestamp"] and security.tag == f"{{{WSSE}}}Security"
    assert [e.text for e in security[0]] == ["2026-09-29T14:12:02.966Z", "2026-09-29T14:12:07.966Z"]
