"""Hostile messages at the hub's AS4 endpoint (``POST /v1/inbound/as4_authority``), built with the project's own AS4
functions and keys of the test PKI: each must get an ebMS error signal with the right EBMS code and a description
naming the place (or, past the API's body limit, a 413), never a 500, and leave the store as it was: no document, no
answer applied, every message in its state. Business responses are bound to the message they answer, on the
counterpart it went to; a replay is answered with the first receipt and recorded once (SQLite and PostgreSQL).

The hub here is the test broker with the real AS4 connector (P-Mode fr-nppo-ap → jp-nppo-ap, as the default
deployment) whose pushes go in-process to the sandbox access point (JP) that receipts them, plus a scripted second
destination: no TLS server to start and stop per test (tests/broker/test_as4.py's ``hub`` fixture runs one, about 2 s
per test), so every case gets a database of its own from ``database_url``.
"""

from __future__ import annotations

import base64
import functools
import time
import tracemalloc
import zlib
from dataclasses import replace

import pytest
from lxml import etree
from sqlalchemy import select, text

from connectors.as4 import ns
from connectors.as4.compression import compress
from connectors.as4.config import As4Config
from connectors.as4.connector import As4Connector
from connectors.as4.dsig import canonical
from connectors.as4.ebms import (
    Error,
    MessageInfo,
    MessagePartNRInformation,
    PartInfo,
    Party,
    PartyId,
    Property,
    Receipt,
    SignalMessage,
    UserMessage,
    new_message_id,
    read_messaging,
    utc_now,
)
from connectors.as4.encryption import encrypt
from connectors.as4.envelope import build_envelope
from connectors.as4.errors import EbmsError
from connectors.as4.keys import KeyPair, load_key_pair
from connectors.as4.msh import Counterpart, Payload, Security, compose_signal, compose_user_message
from connectors.as4.packaging import Part, read_packet, write_packet
from connectors.as4.sandbox import create_as4_sandbox_from_pki
from connectors.as4.signature import verify
from connectors.as4.signing import sign
from connectors.serving import InProcessTransport
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from hub.connector import ConnectorContext
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.store.models import Acknowledgement, Document, Message
from tests.hostile.kit import STORED
from tests.support.api import api_client
from tests.support.broker import ScriptedConnector, example_record, make_broker

NAME = "as4_authority"
OTHER = "us_authority"
HOST = "hub"  # the host of the hub's public_url: its eb:MessageIds end in @hub
SERVICE = "urn:trade-document-hub:services:sps-certificates"
JP_AP_HOST = "jp-ap.test"
#: The hub's AS4 endpoint.
ENDPOINT = f"/v1/inbound/{NAME}"
#: The API's limit on a body posted to /v1/inbound/ (hub/api/limits.py, Settings.max_body_bytes default).
API_LIMIT = 21 * 1024 * 1024


# --- the hub -----------------------------------------------------------------------------------------------------------


class Hub:
    """The attacked hub: its API, broker and worker, the keys of the access points, and what is stored."""

    def __init__(self, broker, worker, api, pki) -> None:
        self.broker, self.worker, self.api, self.pki = broker, worker, api, pki
        self.keys = {country: load_key_pair(pki.access_point_keys[country], certificate_path=pki.access_point_certs[country])
                     for country in ("FR", "US", "JP")}
        self.jp = Security(key_pair=self.keys["JP"])

    def push(self, body: bytes, content_type: str):
        """POST an AS4 message to the hub's endpoint as the counterpart would (no API key)."""
        return self.api.post(ENDPOINT, content=body, headers={"Content-Type": content_type, "Authorization": ""})

    def stored(self) -> dict:
        """Row counts of every table a refusal must leave as it was, and every message's state."""
        with self.broker.database.sessions() as session:
            counts: dict = {table: session.scalar(text(f"SELECT count(*) FROM {table}")) for table in STORED}
            counts["message states"] = dict(session.execute(select(Message.id, Message.state)).all())
            return counts

    def state(self, message_id: str) -> str:
        with self.broker.database.sessions() as session:
            return session.get(Message, message_id).state

    def acknowledgements(self) -> list[Acknowledgement]:
        with self.broker.database.sessions() as session:
            return list(session.scalars(select(Acknowledgement).order_by(Acknowledgement.id)))

    def sent(self, importing_country: str = "JP", number: str = "FR-2026-AS4-H001") -> str:
        """A French certificate submitted and delivered: to the AS4 counterpart for JP (receipted by the sandbox, so
        ``awaiting_ack``), to the scripted US authority for US. Returns the hub's message id."""
        record = example_record(certificate_number=number)
        record["consignment"]["import_country"] = {"id": importing_country}
        answer = self.api.post("/v1/documents", json=record)
        assert answer.status_code == 202, answer.text
        [message] = answer.json()["messages"]
        assert message["destination"] == (NAME if importing_country == "JP" else OTHER)
        assert self.worker.drain() == 1
        assert self.state(message["id"]) == "awaiting_ack"
        return message["id"]

    def jp_certificate(self, number: str = "JP-2026-AS4-H001") -> bytes:
        """A phytosanitary certificate Japan's NPPO issued for France, signed with its key: what reception takes
        (signed once per PKI: most cases refuse the message around it)."""
        key = (str(self.pki.directory), number)
        if key not in _SIGNED:
            record = example_record(certificate_number=number)
            record["consignment"].update({"export_country": {"id": "JP"}, "import_country": {"id": "FR"}})
            _SIGNED[key] = self.broker.signer_for("JP").sign(to_xml(render_certificate(record_from_data(record), "full").root))
        return _SIGNED[key]


_SIGNED: dict[tuple[str, str], bytes] = {}


@pytest.fixture
def hub(database_url, pki):
    """The hub with one AS4 counterpart (JP's access point, the sandbox, reached in-process; it pushes nothing back
    by itself) and a scripted destination for US: certificates for JP go over AS4, for US to the scripted one."""
    context = ConnectorContext(certs_dir=str(pki.directory), public_url=f"http://{HOST}", trust_store=pki.trust_store())
    config = As4Config(
        endpoint="https://jp-ap.test/as4", max_attempts=3,
        initiator={"party_id": "fr-nppo-ap", "role": ns.ROLE_INITIATOR, "country": "FR"},
        responder={"party_id": "jp-nppo-ap", "role": ns.ROLE_RESPONDER, "country": "JP"},
        service={"value": SERVICE}, action="Certificate")
    sandbox = create_as4_sandbox_from_pki(pki.directory)
    as4 = As4Connector(NAME, config, transport=InProcessTransport(sandbox), context=context)
    routes = {"rules": [{"name": "to-japan", "when": {"importing_country": ["JP"]}, "to": [NAME]},
                        {"name": "to-us", "when": {"importing_country": ["US"]}, "to": [OTHER]}]}
    broker = make_broker(database_url, pki, connectors={NAME: as4, OTHER: ScriptedConnector(OTHER)}, routes=routes)
    try:
        with api_client(broker) as api:
            yield Hub(broker, broker.make_worker(webhooks=False), api, pki)
    finally:
        broker.close()


# --- messages built with the project's AS4 functions ---------------------------------------------------------------


def user_message(action: str = "BusinessResponse", *, refers_to: str | None = None, outcome: str | None = "acknowledged",
                 from_id: str = "jp-nppo-ap", to_id: str = "fr-nppo-ap", service: str = SERVICE,
                 message_id: str | None = None, properties: tuple[Property, ...] | None = None) -> UserMessage:
    """A user message from JP's access point to the hub's, as the P-Mode has it (a business response by default)."""
    if properties is None:
        properties = (Property("outcome", outcome), Property("certificateNumber", "FR-2026-AS4-H001")) if outcome else ()
    return UserMessage(
        mpc=None, info=MessageInfo(utc_now(), message_id or new_message_id(JP_AP_HOST), refers_to),
        from_party=Party((PartyId(from_id, ns.PARTY_TYPE_UNREGISTERED),), ns.ROLE_RESPONDER),
        to_party=Party((PartyId(to_id, ns.PARTY_TYPE_UNREGISTERED),), ns.ROLE_INITIATOR),
        agreement_ref=None, agreement_ref_type=None, agreement_pmode=None, service=service, service_type=None,
        action=action, conversation_id="conversation-h1", properties=properties)


def document_message(**changes) -> UserMessage:
    """A user message carrying a certificate for the hub's reception (Action ``Certificate``)."""
    return user_message("Certificate", outcome=None, properties=(Property("originalSender", "JP"), Property("finalRecipient", "FR")), **changes)


def composed(hub: Hub, message: UserMessage, payloads=(), *, signer: str = "JP", encrypt_for: str = "FR",
             compressed: bool = True) -> tuple[bytes, str]:
    """``compose_user_message`` as JP's access point would, signed by ``signer``'s access point key and encrypted for
    ``encrypt_for``'s: the body and Content-Type to push."""
    security = Security(key_pair=hub.keys[signer])
    outgoing = compose_user_message(message, list(payloads), security=security,
                                    counterpart=Counterpart((hub.keys[encrypt_for].certificate,)), compressed=compressed)
    return outgoing.body, outgoing.content_type


def packaged(message: UserMessage, parts: list[Part], infos: list[PartInfo], *, key_pair: KeyPair | None, signed_parts=None,
             recipient=None, edit=None) -> tuple[bytes, str]:
    """compose_user_message's steps one by one, for what it will not write: the header with ``infos``, signed with
    ``key_pair`` over ``signed_parts`` (default: every part; no ``key_pair``: not signed), ``edit`` applied to the
    signed envelope, then the parts encrypted for ``recipient``."""
    root = build_envelope(replace(message, parts=tuple(infos)))
    if key_pair is not None:
        root = sign(root, parts if signed_parts is None else signed_parts, key=key_pair.private_key,
                    certificate=key_pair.certificate).root
    if edit is not None:
        root = edit(root)
    sent = tuple(parts)
    if recipient is not None and sent:
        root, sent = encrypt(root, sent, recipient_certificate=recipient)
    return write_packet(etree.tostring(root), sent)


def gzip_part(content_id: str, data: bytes, *, compression_type: str = ns.GZIP) -> tuple[Part, PartInfo]:
    """A payload part as compose_user_message writes it (gzip, MimeType the type before compression)."""
    info = PartInfo(f"cid:{content_id}", (Property("MimeType", "application/xml"), Property("CharacterSet", "utf-8"),
                                          Property("CompressionType", compression_type)))
    return Part(content_id, ns.GZIP, (), compress(data)), info


def resign(root: etree._Element, key_pair: KeyPair) -> etree._Element:
    """``root`` (a signed envelope whose SignedInfo was changed) with a SignatureValue made again with ``key_pair``:
    a valid signature over whatever the SignedInfo now says."""
    root = etree.fromstring(etree.tostring(root))
    signature = root.find(f".//{{{ns.DS}}}Signature")
    signed_info = signature.find(f"{{{ns.DS}}}SignedInfo")
    value = key_pair.private_key.sign(canonical(signed_info, ns.EXC_C14N, [root.prefix or "#default"]), padding.PKCS1v15(), hashes.SHA256())
    signature.find(f"{{{ns.DS}}}SignatureValue").text = base64.b64encode(value).decode("ascii")
    return root


def errors_of(hub: Hub, answer) -> list[Error]:
    """The eb:Errors of the hub's answer, which must be an ebMS signal (HTTP 200, never a 500 or JSON) signed by the
    hub's access point (attributable)."""
    assert answer.status_code == 200, f"{answer.status_code}: {answer.text[:500]}"
    packet = read_packet(answer.content, answer.headers.get("content-type"))
    messaging = read_messaging(packet)
    assert not messaging.user_messages
    fr = hub.keys["FR"].certificate
    check = verify(packet, trusted=(fr,), candidates=(fr,))
    assert check.valid and check.trusted_signer and check.covers_messaging, check.reason or check.trust_reason
    return [error for signal in messaging.signal_messages for error in signal.errors]


def refused(hub: Hub, body: bytes, content_type: str, code: str, *where: str, ref: str | None = None) -> Error:
    """Push ``body``: the answer is one error ``code`` whose description names every fragment of ``where``, referring
    to ``ref`` when given, and the store is as it was."""
    before = hub.stored()
    errors = errors_of(hub, hub.push(body, content_type))
    assert [error.error_code for error in errors] == [code], errors
    [error] = errors
    assert error.severity == "failure"
    for fragment in where:
        assert fragment in (error.description or ""), error.description
    if ref is not None:
        assert error.ref_to_message_in_error == ref, error
    assert hub.stored() == before, "a refused message changed the store"
    return error


def answers_to(hub: Hub, message_id: str) -> list[tuple[str, str | None]]:
    """(outcome, reason code) of every answer recorded for ``message_id`` besides the receipt of its delivery."""
    return [(ack.outcome, ack.reason_code) for ack in hub.acknowledgements() if ack.message_id == message_id and ack.kind != "receipt"]


def receipt_of(answer) -> SignalMessage:
    """The receipt the hub answered with."""
    assert answer.status_code == 200, answer.text[:500]
    messaging = read_messaging(read_packet(answer.content, answer.headers.get("content-type")))
    [signal] = messaging.signal_messages
    assert signal.receipt is not None and not signal.errors, signal
    return signal


# --- the genuine article: what every case below spoils in one respect --------------------------------------------------


def test_a_genuine_business_response_and_certificate_are_receipted(hub):
    """Controls: the messages the cases spoil are taken when unspoilt (so each refusal below is for its one defect)."""
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}")
    signal = receipt_of(hub.push(*composed(hub, message)))
    assert signal.info.ref_to_message_id == message.info.message_id
    assert hub.state(sent) == "acknowledged"
    document = document_message()
    signal = receipt_of(hub.push(*composed(hub, document, [Payload(f"certificate@{JP_AP_HOST}", hub.jp_certificate())])))
    assert signal.info.ref_to_message_id == document.info.message_id
    with hub.broker.database.sessions() as session:
        [stored] = session.scalars(select(Document).where(Document.certificate_number == "JP-2026-AS4-H001")).all()
    assert (stored.direction, stored.tenant) == ("inbound", "FR")


# --- who signed, what is signed, for whom it is encrypted ------------------------------------------------------------


def test_signed_by_another_access_point_of_the_same_ca_is_ebms_0101(hub):
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}")
    error = refused(hub, *composed(hub, message, signer="US"), "EBMS:0101", "wsse:Security/ds:Signature", "not trusted",
                    ref=message.info.message_id)
    assert "CN=US AS4 access point" in error.description, error.description
    assert hub.state(sent) == "awaiting_ack"


def test_a_certificate_signed_by_another_access_point_is_ebms_0101_and_not_received(hub):
    document = document_message()
    refused(hub, *composed(hub, document, [Payload(f"certificate@{JP_AP_HOST}", hub.jp_certificate())], signer="US"),
            "EBMS:0101", "wsse:Security/ds:Signature", ref=document.info.message_id)


def test_not_signed_at_all_is_ebms_0103(hub):
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}")
    refused(hub, *packaged(message, [], [], key_pair=None), "EBMS:0103", "wsse:Security/ds:Signature", "not signed",
            ref=message.info.message_id)
    assert hub.state(sent) == "awaiting_ack"


def test_a_valid_signature_not_covering_eb_messaging_is_ebms_0103(hub):
    """JP signs a SignedInfo from which the eb:Messaging reference was taken out: the signature verifies, and covers
    the Body only."""
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}")

    def without_messaging_reference(root):
        messaging_id = root.find(f".//{{{ns.EB}}}Messaging").get(f"{{{ns.WSU}}}Id")
        [reference] = [r for r in root.iter(f"{{{ns.DS}}}Reference") if r.get("URI") == "#" + messaging_id]
        reference.getparent().remove(reference)
        return resign(root, hub.keys["JP"])

    refused(hub, *packaged(message, [], [], key_pair=hub.keys["JP"], edit=without_messaging_reference),
            "EBMS:0103", "wsse:Security/ds:Signature", "eb:Messaging", ref=message.info.message_id)
    assert hub.state(sent) == "awaiting_ack"


def test_a_valid_signature_not_covering_a_payload_part_is_ebms_0103(hub):
    part, info = gzip_part(f"certificate@{JP_AP_HOST}", hub.jp_certificate())
    document = document_message()
    refused(hub, *packaged(document, [part], [info], key_pair=hub.keys["JP"], signed_parts=(), recipient=hub.keys["FR"].certificate),
            "EBMS:0103", "wsse:Security/ds:Signature", f"cid:certificate@{JP_AP_HOST}", ref=document.info.message_id)


def test_encrypted_for_another_access_point_is_ebms_0102(hub):
    document = document_message()
    error = refused(hub, *composed(hub, document, [Payload(f"certificate@{JP_AP_HOST}", hub.jp_certificate())], encrypt_for="US"),
                    "EBMS:0102", "xenc:EncryptedKey", "not for us", ref=document.info.message_id)
    assert "encrypted for CN=US AS4 access point" in error.description


def test_a_flipped_ciphertext_byte_is_ebms_0102(hub):
    document = document_message()
    body, content_type = composed(hub, document, [Payload(f"certificate@{JP_AP_HOST}", hub.jp_certificate())])
    packet = read_packet(body, content_type)
    [part] = packet.attachments
    middle = len(part.data) // 2
    flipped = replace(part, data=part.data[:middle] + bytes([part.data[middle] ^ 0x01]) + part.data[middle + 1:])
    refused(hub, *write_packet(packet.envelope, [flipped]), "EBMS:0102", f"cid:{part.content_id}", ref=document.info.message_id)


def test_a_certificate_sent_in_clear_when_the_p_mode_encrypts_is_ebms_0103(hub):
    part, info = gzip_part(f"certificate@{JP_AP_HOST}", hub.jp_certificate())
    document = document_message()
    refused(hub, *packaged(document, [part], [info], key_pair=hub.keys["JP"], recipient=None), "EBMS:0103",
            ref=document.info.message_id)


# --- the P-Mode: parties, service, action ------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "where"), [
    ({"from_id": "us-nppo-ap"}, "eb:UserMessage/eb:PartyInfo/eb:From/eb:PartyId"),
    ({"to_id": "de-nppo-ap"}, "eb:UserMessage/eb:PartyInfo/eb:To/eb:PartyId"),
    ({"action": "DeleteEverything"}, "eb:UserMessage/eb:CollaborationInfo/eb:Action"),
], ids=["from-not-the-responder", "to-not-us", "unknown-action"])
def test_a_message_outside_the_p_mode_is_ebms_0010(hub, changes, where):
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}", **changes)
    refused(hub, *composed(hub, message), "EBMS:0010", where, ref=message.info.message_id)
    assert hub.state(sent) == "awaiting_ack"


def test_a_business_response_under_another_service_is_ebms_0010(hub):
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}", service="urn:somebody-else:services:anything")
    refused(hub, *composed(hub, message), "EBMS:0010", "eb:Service", ref=message.info.message_id)
    assert hub.state(sent) == "awaiting_ack"


# --- payloads: compression, MIME consistency ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def gzip_bomb(size: int = 200 * 1024 * 1024) -> bytes:
    """``size`` zero bytes gzipped (about 200 KB), compressed a megabyte at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    chunks = [packer.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join(chunks) + packer.flush()


def test_a_gzip_bomb_is_ebms_0303_quickly_and_without_inflating_it(hub):
    bomb = gzip_bomb()
    assert len(bomb) < 300 * 1024
    content_id = f"payload@{JP_AP_HOST}"
    info = PartInfo(f"cid:{content_id}", (Property("MimeType", "application/xml"), Property("CompressionType", ns.GZIP)))
    document = document_message()
    body, content_type = packaged(document, [Part(content_id, ns.GZIP, (), bomb)], [info], key_pair=hub.keys["JP"],
                                  recipient=hub.keys["FR"].certificate)
    before = hub.stored()
    tracemalloc.start()
    started = time.monotonic()
    try:
        answer = hub.push(body, content_type)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    [error] = errors_of(hub, answer)
    assert error.error_code == "EBMS:0303" and f"cid:{content_id}" in error.description, error
    assert elapsed < 5, f"the bomb took {elapsed:.1f} s to refuse"
    # Bounded by the P-Mode's limit (32 MB of output, zlib's buffer doubling it), never by the 200 MB the bomb holds;
    # that a small bomb costs little is the next test's.
    assert peak < 100 * 1024 * 1024, f"{peak / 2**20:.0f} MB allocated to refuse a {len(body) // 1024} KB message"
    assert hub.stored() == before


def test_a_gzip_bomb_is_stopped_by_its_ratio_before_megabytes_are_inflated(hub):
    bomb = gzip_bomb()
    content_id = f"payload@{JP_AP_HOST}"
    info = PartInfo(f"cid:{content_id}", (Property("MimeType", "application/xml"), Property("CompressionType", ns.GZIP)))
    body, content_type = packaged(document_message(), [Part(content_id, ns.GZIP, (), bomb)], [info], key_pair=hub.keys["JP"],
                                  recipient=hub.keys["FR"].certificate)
    tracemalloc.start()
    try:
        answer = hub.push(body, content_type)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [error] = errors_of(hub, answer)
    assert error.error_code == "EBMS:0303" and "inflates more than" in error.description, error.description
    assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.0f} MB allocated to refuse a {len(body) // 1024} KB message"


def test_compression_type_rar_is_ebms_0303(hub):
    part, info = gzip_part(f"certificate@{JP_AP_HOST}", hub.jp_certificate(), compression_type="application/rar")
    document = document_message()
    refused(hub, *packaged(document, [part], [info], key_pair=hub.keys["JP"], recipient=hub.keys["FR"].certificate),
            "EBMS:0303", "application/rar", f"cid:certificate@{JP_AP_HOST}")


def test_a_decompression_failure_refers_to_the_message_in_error(hub):
    part, info = gzip_part(f"certificate@{JP_AP_HOST}", hub.jp_certificate(), compression_type="application/rar")
    document = document_message()
    answer = hub.push(*packaged(document, [part], [info], key_pair=hub.keys["JP"], recipient=hub.keys["FR"].certificate))
    [error] = errors_of(hub, answer)
    assert error.error_code == "EBMS:0303"
    [signal] = read_messaging(read_packet(answer.content, answer.headers.get("content-type"))).signal_messages
    assert (signal.info.ref_to_message_id, error.ref_to_message_in_error) == (document.info.message_id, document.info.message_id)


def test_a_part_info_naming_no_mime_part_is_ebms_0007(hub):
    part, info = gzip_part(f"certificate@{JP_AP_HOST}", hub.jp_certificate())
    ghost = PartInfo(f"cid:ghost@{JP_AP_HOST}", (Property("MimeType", "application/xml"),))
    document = document_message()
    refused(hub, *packaged(document, [part], [info, ghost], key_pair=hub.keys["JP"], recipient=hub.keys["FR"].certificate),
            "EBMS:0007", f"ghost@{JP_AP_HOST}", ref=document.info.message_id)


def test_a_part_info_naming_no_mime_part_is_refused_naming_it(hub):
    """What the hub does today with a PartInfo naming no part: refused (EBMS:0103), naming the href, nothing stored."""
    part, info = gzip_part(f"certificate@{JP_AP_HOST}", hub.jp_certificate())
    ghost = PartInfo(f"cid:ghost@{JP_AP_HOST}", (Property("MimeType", "application/xml"),))
    document = document_message()
    before = hub.stored()
    [error] = errors_of(hub, hub.push(*packaged(document, [part], [info, ghost], key_pair=hub.keys["JP"],
                                           recipient=hub.keys["FR"].certificate)))
    assert error.error_code in ("EBMS:0007", "EBMS:0103") and f"cid:ghost@{JP_AP_HOST}" in error.description, error
    assert hub.stored() == before


def with_stray_part(body: bytes, content_type: str) -> tuple[bytes, str]:
    """The message with one more MIME part, named by no PartInfo and covered by no signature."""
    packet = read_packet(body, content_type)
    stray = Part(f"stray@{JP_AP_HOST}", "application/xml", (), b"<injected>not signed, not announced</injected>")
    return write_packet(packet.envelope, [*packet.attachments, stray])


def test_a_certificate_with_a_mime_part_named_by_no_part_info_is_ebms_0007(hub):
    document = document_message()
    body, content_type = composed(hub, document, [Payload(f"certificate@{JP_AP_HOST}", hub.jp_certificate())])
    refused(hub, *with_stray_part(body, content_type), "EBMS:0007", f"stray@{JP_AP_HOST}", ref=document.info.message_id)


def test_a_business_response_with_a_mime_part_named_by_no_part_info_is_ebms_0007(hub):
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}")
    refused(hub, *with_stray_part(*composed(hub, message)), "EBMS:0007", f"stray@{JP_AP_HOST}", ref=message.info.message_id)
    assert hub.state(sent) == "awaiting_ack"


def test_two_user_messages_in_one_message_are_refused(hub):
    sent = hub.sent()
    first = user_message(refers_to=f"{sent}@{HOST}")
    second = user_message(refers_to=f"{sent}@{HOST}", outcome="rejected")
    root = sign(build_envelope(first, second), (), key=hub.keys["JP"].private_key, certificate=hub.keys["JP"].certificate).root
    refused(hub, *write_packet(etree.tostring(root), ()), "EBMS:0008", "eb:Messaging", "exactly one UserMessage",
            ref=first.info.message_id)
    assert hub.state(sent) == "awaiting_ack"


# --- size, DTDs, entities --------------------------------------------------------------------------------------------


def test_a_body_over_the_api_limit_is_413_unread(hub):
    before = hub.stored()
    answer = hub.push(b"\0" * (API_LIMIT + 1), "multipart/related; boundary=x")
    assert answer.status_code == 413 and answer.json()["error"] == "BodyTooLarge", answer.text[:300]

    def trickled():  # no Content-Length: the limit is counted as the body streams
        chunk = bytes(1024 * 1024)
        for _ in range(API_LIMIT // len(chunk) + 2):
            yield chunk

    answer = hub.api.post(ENDPOINT, content=trickled(), headers={"Content-Type": "application/soap+xml", "Authorization": ""})
    assert answer.status_code == 413, answer.text[:300]
    assert hub.stored() == before


DOCTYPES = {
    "internal-entity": b'<!DOCTYPE S12:Envelope [<!ENTITY who "jp-nppo-ap">]>',
    "billion-laughs": b'<!DOCTYPE S12:Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                      b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
                      b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>',
    "external-entity": b'<!DOCTYPE S12:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
}


@pytest.mark.parametrize("doctype", sorted(DOCTYPES))
def test_a_dtd_in_the_envelope_is_ebms_0009_and_nothing_is_expanded(hub, doctype):
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}")
    packet = read_packet(*composed(hub, message))
    envelope = packet.envelope
    declaration_end = envelope.index(b"?>") + 2 if envelope.startswith(b"<?xml") else 0
    entity = {"internal-entity": b"&who;", "billion-laughs": b"&f;", "external-entity": b"&xxe;"}[doctype]
    spoilt = (envelope[:declaration_end] + DOCTYPES[doctype] + envelope[declaration_end:]).replace(
        b">jp-nppo-ap<", b">" + entity + b"<", 1)
    answer = hub.push(*write_packet(spoilt, packet.attachments))
    assert b"root:" not in answer.content and b"aaaaaaaaaaaaaaaaaaaa" not in answer.content
    [error] = errors_of(hub, answer)
    assert error.error_code == "EBMS:0009", error
    assert "envelope" in error.description and "DTD" in error.description, error.description
    assert hub.state(sent) == "awaiting_ack"


# --- business responses bound to their message --------------------------------------------------------------------------


def test_a_business_response_to_a_message_never_sent_is_refused_and_applies_to_nothing(hub):
    sent = hub.sent()
    never = "0b5c1d1e-0000-4000-8000-000000000000"
    message = user_message(refers_to=f"{never}@{HOST}")
    body, content_type = composed(hub, message)
    before = hub.stored()
    first = hub.push(body, content_type)
    [error] = errors_of(hub, first)
    assert error.error_code == "EBMS:0004" and error.ref_to_message_in_error == message.info.message_id, error
    assert never in error.description
    after = hub.stored()
    assert after["message states"] == before["message states"] and hub.state(sent) == "awaiting_ack"
    # Kept once, as unmatched, for the operators; nothing else written.
    [kept] = [ack for ack in hub.acknowledgements() if ack.unmatched]
    assert kept.message_id is None and kept.counterpart == NAME
    assert {table: after[table] - before[table] for table in ("acknowledgements", "trace_events", "documents", "messages", "non_conformities")} == \
        {"acknowledgements": 1, "trace_events": 0, "documents": 0, "messages": 0, "non_conformities": 0}
    # Sent again: the same answer, and not kept twice.
    assert hub.push(body, content_type).content == first.content
    assert hub.stored() == after


def test_a_business_response_naming_another_host_is_ebms_0003(hub):
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@somebody-else.example")
    refused(hub, *composed(hub, message), "EBMS:0003", "eb:RefToMessageId", f"{sent}@somebody-else.example",
            ref=message.info.message_id)
    assert hub.state(sent) == "awaiting_ack"


def test_a_business_response_naming_a_message_sent_to_another_destination_changes_it_not(hub):
    """JP's access point answers (rejects) a real message that went to the US authority: refused, kept unmatched,
    the US message untouched, no non-conformity opened."""
    ours = hub.sent()
    theirs = hub.sent("US", number="FR-2026-US-H001")
    message = user_message(refers_to=f"{theirs}@{HOST}", outcome="rejected",
                           properties=(Property("outcome", "rejected"), Property("reasonCode", "CONSIGNMENT_REFUSED")))
    before = hub.stored()
    [error] = errors_of(hub, hub.push(*composed(hub, message)))
    assert error.error_code == "EBMS:0004" and error.ref_to_message_in_error == message.info.message_id, error
    after = hub.stored()
    assert after["message states"] == before["message states"]
    assert (hub.state(theirs), hub.state(ours)) == ("awaiting_ack", "awaiting_ack")
    assert after["non_conformities"] == before["non_conformities"] and after["trace_events"] == before["trace_events"]
    assert [ack.message_id for ack in hub.acknowledgements() if ack.unmatched] == [None]


def test_a_business_response_with_an_unknown_outcome_is_ebms_0001(hub):
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}", outcome="accepted_by_magic")
    refused(hub, *composed(hub, message), "EBMS:0001", "eb:MessageProperties", "accepted_by_magic", ref=message.info.message_id)
    assert hub.state(sent) == "awaiting_ack"


def test_a_replayed_business_response_gets_the_same_receipt_and_is_recorded_once(hub):
    sent = hub.sent()
    body, content_type = composed(hub, user_message(refers_to=f"{sent}@{HOST}", outcome="rejected",
                                                    properties=(Property("outcome", "rejected"), Property("reasonCode", "PEST"))))
    first = hub.push(body, content_type)
    receipt = receipt_of(first)
    assert hub.state(sent) == "rejected"
    recorded = hub.stored()
    again = hub.push(body, content_type)
    assert again.content == first.content and receipt_of(again).info.message_id == receipt.info.message_id
    assert hub.stored() == recorded, "the replay was recorded again"
    assert answers_to(hub, sent) == [("rejected", "PEST")]


def test_a_replay_after_a_restart_is_receipted_and_still_recorded_once(hub):
    """The connector's memory of answers is lost with the process: the store is the backstop."""
    sent = hub.sent()
    message = user_message(refers_to=f"{sent}@{HOST}")
    body, content_type = composed(hub, message)
    receipt_of(hub.push(body, content_type))
    recorded = hub.stored()
    hub.broker.connectors[NAME]._answered.clear()  # what a restart forgets
    assert receipt_of(hub.push(body, content_type)).info.ref_to_message_id == message.info.message_id
    assert hub.stored()["acknowledgements"] == recorded["acknowledgements"]
    assert hub.stored()["message states"] == recorded["message states"]
    assert answers_to(hub, sent) == [("acknowledged", None)]


# --- signals pushed on their own --------------------------------------------------------------------------------------


def _pushed_alone_changes_nothing(hub, sent: str, **content) -> None:
    """A signal signed by JP about ``sent``, pushed on its own: answered 200 with no body, nothing stored or moved."""
    signal = SignalMessage(MessageInfo(utc_now(), new_message_id(JP_AP_HOST), f"{sent}@{HOST}"), **content)
    before = hub.stored()
    answer = hub.push(*compose_signal(signal, security=hub.jp))
    assert answer.status_code == 200 and answer.content == b"", answer.text[:300]
    assert hub.stored() == before and hub.state(sent) == "awaiting_ack"


def test_a_receipt_pushed_on_its_own_gets_200_and_records_nothing(hub):
    reference = MessagePartNRInformation(uri="#anything", digest_method=ns.SHA256, digest_value="AAAA")
    _pushed_alone_changes_nothing(hub, hub.sent(), receipt=Receipt(references=(reference,)))


def test_an_error_signal_pushed_on_its_own_about_a_sent_message_changes_nothing(hub):
    sent = hub.sent()
    error = Error.of(EbmsError.OTHER, ref_to_message_in_error=f"{sent}@{HOST}", description="[REJECTED] by a forger")
    _pushed_alone_changes_nothing(hub, sent, errors=(error,))


def test_an_unsigned_receipt_pushed_on_its_own_is_refused(hub):
    sent = hub.sent()
    signal = SignalMessage(MessageInfo(utc_now(), new_message_id(JP_AP_HOST), f"{sent}@{HOST}"), receipt=Receipt(references=()))
    refused(hub, *compose_signal(signal, security=None), "EBMS:0103", "wsse:Security/ds:Signature")
    assert hub.state(sent) == "awaiting_ack"


# --- tampered and mangled security headers: an error signal, never a 500 ----------------------------------------------


def _signing_token(root: etree._Element) -> etree._Element:
    """The wsse:BinarySecurityToken the signature's KeyInfo refers to (the encryption carries a token of its own)."""
    uri = root.find(f".//{{{ns.DS}}}Signature/{{{ns.DS}}}KeyInfo//{{{ns.WSSE}}}Reference").get("URI")
    return next(token for token in root.iter(f"{{{ns.WSSE}}}BinarySecurityToken") if token.get(f"{{{ns.WSU}}}Id") == uri[1:])


def _set(path: str, attribute: str | None, value: str):
    """An edit of the first element at ``path``: its text (``attribute`` None) or an attribute set to ``value``."""
    def edit(root, hub):
        element = root.find(path)
        assert element is not None, path
        if attribute is None:
            element.text = value
        else:
            element.set(attribute, value)
    return edit


def _token(value):
    def edit(root, hub):
        _signing_token(root).text = value(hub) if callable(value) else value
    return edit


def _reference_digest(root, hub):
    root.find(f".//{{{ns.DS}}}SignedInfo/{{{ns.DS}}}Reference/{{{ns.DS}}}DigestMethod").set("Algorithm", "urn:unknown:digest")


def _original_sender_altered(root, hub):
    # After signing: the sender's words changed on the way (what the eb:Messaging digest protects).
    node = next(p for p in root.iter(f"{{{ns.EB}}}Property") if p.get("name") == "originalSender")
    node.text = "US"


def _wrapped(root, hub):
    """Signature wrapping: the signed eb:Messaging moved into wsse:Security, a forged one (same wsu:Id, another
    originalSender) put in its place."""
    messaging = root.find(f".//{{{ns.EB}}}Messaging")
    forged = etree.fromstring(etree.tostring(messaging))
    next(p for p in forged.iter(f"{{{ns.EB}}}Property") if p.get("name") == "originalSender").text = "US"
    messaging.addprevious(forged)
    root.find(f".//{{{ns.WSSE}}}Security").append(messaging)


def _us_certificate(hub) -> str:
    return base64.b64encode(hub.keys["US"].certificate.public_bytes(Encoding.DER)).decode("ascii")


#: Each: how the envelope of a genuine certificate message (signed, encrypted) is spoilt, and the code it gets.
MANGLED = {
    "signing-token-not-base64": (_token("!!!not base64!!!"), "EBMS:0101"),
    "signing-token-not-a-certificate": (_token("AAAAAAAA"), "EBMS:0101"),
    "signing-token-another-certificate": (_token(_us_certificate), "EBMS:0101"),
    "signature-value-not-base64": (_set(f".//{{{ns.DS}}}SignatureValue", None, "%%%"), "EBMS:0101"),
    "reference-to-nothing": (_set(f".//{{{ns.DS}}}SignedInfo/{{{ns.DS}}}Reference", "URI", "#no-such-id"), "EBMS:0101"),
    "reference-digest-unknown": (_reference_digest, "EBMS:0101"),
    "signature-method-md5": (_set(f".//{{{ns.DS}}}SignatureMethod", "Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"), "EBMS:0101"),
    "c14n-unknown": (_set(f".//{{{ns.DS}}}CanonicalizationMethod", "Algorithm", "urn:unknown:c14n"), "EBMS:0101"),
    "header-altered-after-signing": (_original_sender_altered, "EBMS:0101"),
    "signature-wrapping": (_wrapped, "EBMS:0101"),
    "encryption-token-not-base64": (_set(f".//{{{ns.WSSE}}}BinarySecurityToken", None, "!!!not base64!!!"), "EBMS:0102"),
    "encrypted-key-garbage": (_set(f".//{{{ns.XENC}}}EncryptedKey/{{{ns.XENC}}}CipherData/{{{ns.XENC}}}CipherValue", None, "AAAA"), "EBMS:0102"),
    "oaep-digest-unknown": (_set(f".//{{{ns.XENC}}}EncryptedKey//{{{ns.DS}}}DigestMethod", "Algorithm", "urn:unknown:digest"), "EBMS:0102"),
    "cipher-reference-to-nothing": (_set(f".//{{{ns.XENC}}}CipherReference", "URI", "cid:nothing@nowhere"), "EBMS:0102"),
    "key-transport-rsa-1_5": (_set(f".//{{{ns.XENC}}}EncryptedKey/{{{ns.XENC}}}EncryptionMethod", "Algorithm",
                                   "http://www.w3.org/2001/04/xmlenc#rsa-1_5"), "EBMS:0102"),
}


@pytest.mark.parametrize("mangling", sorted(MANGLED))
def test_a_tampered_or_mangled_security_header_gets_its_error_signal_not_a_500(hub, mangling):
    edit, code = MANGLED[mangling]
    document = document_message()
    body, content_type = composed(hub, document, [Payload(f"certificate@{JP_AP_HOST}", hub.jp_certificate())])
    packet = read_packet(body, content_type)
    root = etree.fromstring(packet.envelope)
    edit(root, hub)
    where = "wsse:Security/ds:Signature" if code == "EBMS:0101" else "xenc:Encrypted"
    refused(hub, *write_packet(etree.tostring(root), packet.attachments), code, where, ref=document.info.message_id)
