"""The AS4 message service handler: a document into a signed, encrypted, compressed user message, a received message
back into what it carries, and the signals (receipts, errors) that answer one. No I/O: bytes in, bytes out.

Sending follows the AS4 profile's order (§3.1, §5.1): compress each payload, write the ebMS3 header, sign
(``eb:Messaging``, the Body and every part), then encrypt the parts. Receiving undoes it: read the MIME packaging and
the header, decrypt with our key, check the signature against the counterpart's certificate (and that it covers
everything), decompress. Every failure is an :class:`~connectors.as4.errors.As4Error` carrying its EBMS code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from cryptography import x509
from lxml import etree

from connectors.as4 import ns
from connectors.as4.compression import compress, decompress, is_gzip_type
from connectors.as4.ebms import (
    Error,
    MessageInfo,
    MessagePartNRInformation,
    Messaging,
    PartInfo,
    Property,
    Receipt,
    SignalMessage,
    UserMessage,
    new_message_id,
    read_messaging,
    utc_now,
)
from connectors.as4.encryption import DecryptionCheck, decrypt, encrypt
from connectors.as4.envelope import build_envelope
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.keys import KeyPair
from connectors.as4.packaging import Packet, Part, read_packet, write_packet
from connectors.as4.receipts import check_receipt, receipt_content, references_of
from connectors.as4.signature import SignatureCheck, require_valid, verify
from connectors.as4.signing import sign

_DS_REFERENCE = f"{{{ns.DS}}}Reference"


@dataclass(frozen=True)
class Security:
    """One access point's side of PMode[1].Security: our key, the algorithms we sign with, how the counterpart's
    certificate is named, and how we encrypt for it (``encrypt`` False: parts go signed only)."""

    key_pair: KeyPair
    signature_method: str = ns.RSA_SHA256
    digest_method: str = ns.SHA256
    key_reference: str = "BST"
    encrypt: bool = True
    data_encryption: str = ns.AES128_GCM
    key_transport: str = ns.RSA_OAEP
    mgf: str = ns.MGF1_SHA256


@dataclass(frozen=True)
class Counterpart:
    """Who the other access point is: the certificates its messages may be signed with (``certificates``, which are
    also what we encrypt for: the first), and CA certificates that may stand in for them (``anchors``)."""

    certificates: tuple[x509.Certificate, ...]
    anchors: tuple[x509.Certificate, ...] = ()

    @property
    def encryption_certificate(self) -> x509.Certificate | None:
        return self.certificates[0] if self.certificates else None


@dataclass(frozen=True)
class Payload:
    """A payload to send as a MIME part: its bytes and type (before compression) and its part properties."""

    content_id: str
    data: bytes
    mime_type: str = "application/xml"
    character_set: str | None = "utf-8"
    properties: tuple[Property, ...] = ()


@dataclass(frozen=True)
class Outgoing:
    """A message ready to POST, with what a receipt must prove: the references we signed."""

    message_id: str
    body: bytes
    content_type: str
    signed: tuple[MessagePartNRInformation, ...]


@dataclass(frozen=True)
class Received:
    """A message opened: the packet (attachments decrypted), its header, and what its security said."""

    packet: Packet
    messaging: Messaging
    signature: SignatureCheck
    decryption: DecryptionCheck

    @property
    def message_id(self) -> str | None:
        units = [*self.messaging.user_messages, *self.messaging.signal_messages]
        return units[0].info.message_id if units else None


def compose_user_message(message: UserMessage, payloads: Sequence[Payload], *, security: Security,
                         counterpart: Counterpart, compressed: bool = True, ids: tuple[str, str] | None = None) -> Outgoing:
    """``message`` (its PayloadInfo is written here) with ``payloads`` as MIME parts: compressed (gzip, the type
    before compression in ``MimeType``), signed with our key, then encrypted for the counterpart.

    With the same ``message`` (timestamp included), payloads and ``ids`` (the ``wsu:Id`` of ``eb:Messaging`` and of
    the Body) the signed references are the same: a retry is the same message, and the receipt a counterpart keeps
    for it (duplicate elimination) still proves it. Gzip and RSA PKCS#1 v1.5 are deterministic; only the encryption
    (a fresh key and IV) differs, and it is not what a receipt quotes."""
    parts, infos = [], []
    for payload in payloads:
        properties = [Property("MimeType", payload.mime_type)]
        if payload.character_set:
            properties.append(Property("CharacterSet", payload.character_set))
        if compressed:
            properties.append(Property("CompressionType", ns.GZIP))
        data = compress(payload.data) if compressed else payload.data
        parts.append(Part(payload.content_id, ns.GZIP if compressed else payload.mime_type, (), data))
        infos.append(PartInfo(f"cid:{payload.content_id}", (*properties, *payload.properties)))
    message = replace(message, parts=tuple(infos))
    messaging_id, body_id = ids or (None, None)
    signed = sign(build_envelope(message, messaging_id=messaging_id, body_id=body_id), parts, key=security.key_pair.private_key, certificate=security.key_pair.certificate,
                  signature_method=security.signature_method, digest_method=security.digest_method,
                  key_reference=security.key_reference)
    root, sent_parts = signed.root, tuple(parts)
    if security.encrypt and sent_parts:
        recipient = counterpart.encryption_certificate
        if recipient is None:
            raise As4Error(EbmsError.POLICY_NONCOMPLIANCE, "the P-Mode encrypts, and no counterpart certificate is configured")
        root, sent_parts = encrypt(root, sent_parts, recipient_certificate=recipient, data_method=security.data_encryption,
                                   key_transport=security.key_transport, mgf=security.mgf, key_reference=security.key_reference)
    body, content_type = write_packet(etree.tostring(root), sent_parts)
    return Outgoing(message.info.message_id, body, content_type, references_of(signed.references))


def compose_signal(signal: SignalMessage, *, security: Security | None) -> tuple[bytes, str]:
    """A signal as a bare SOAP 1.2 envelope, signed with our key when ``security`` is given."""
    root = build_envelope(signal)
    if security is not None:
        root = sign(root, (), key=security.key_pair.private_key, certificate=security.key_pair.certificate,
                    signature_method=security.signature_method, digest_method=security.digest_method,
                    key_reference=security.key_reference).root
    return write_packet(etree.tostring(root), ())


def receipt_for(received: Received, user_message: UserMessage, *, security: Security, host: str) -> tuple[str, bytes, str]:
    """The signed receipt of ``user_message``: non-repudiation information quoting every reference of its signature
    (a copy of the user message when it came unsigned). Returns the receipt's MessageId, body and Content-Type."""
    signed = [check.element for check in received.signature.references if check.element is not None]
    content = receipt_content(signed_references=signed, user_message=_user_message_element(received, user_message))
    receipt_id = new_message_id(host)
    signal = SignalMessage(MessageInfo(utc_now(), receipt_id, user_message.info.message_id), receipt=Receipt(content=(content,)))
    body, content_type = compose_signal(signal, security=security)
    return receipt_id, body, content_type


def error_signal(errors: Sequence[As4Error | Error], *, ref_to_message_id: str | None, security: Security | None,
                 host: str) -> tuple[bytes, str]:
    """An error signal reporting ``errors`` about the message ``ref_to_message_id`` (None: it could not be read)."""
    written = tuple(error if isinstance(error, Error) else
                    Error.of(error.error, ref_to_message_in_error=ref_to_message_id, description=_described(error))
                    for error in errors)
    signal = SignalMessage(MessageInfo(utc_now(), new_message_id(host), ref_to_message_id), errors=written)
    return compose_signal(signal, security=security)


def open_message(raw: bytes, content_type: str | None, *, security: Security | None, counterpart: Counterpart,
                 max_size: int, require_signature: bool = True) -> Received:
    """Read, decrypt and authenticate a message from ``counterpart``: signed by one of its certificates (or one its
    anchors issued) over ``eb:Messaging``, the Body and every part. Raises :class:`As4Error`."""
    packet = read_packet(raw, content_type, max_size=max_size)
    messaging = read_messaging(packet)
    message_id = _first_id(messaging)
    decryption = DecryptionCheck()
    if security is not None:
        try:
            packet, decryption = decrypt(packet, security.key_pair, max_size=max_size)
        except As4Error as exc:
            exc.ref_to_message_id = exc.ref_to_message_id or message_id
            raise
    hrefs = [info.href for unit in messaging.user_messages for info in unit.parts if (info.href or "").startswith("cid:")]
    for href in hrefs:
        _part(packet, href, message_id)  # a PartInfo naming no part is a MIME inconsistency, said before the signature
    check = verify(packet, trusted=(*counterpart.certificates, *counterpart.anchors), candidates=counterpart.certificates)
    if require_signature:
        require_valid(check, attachments=hrefs, message_id=message_id)
    if security is not None and security.encrypt:
        decrypted = {part.content_id for part in decryption.parts}
        clear = [href for href in hrefs if _part(packet, href, message_id).content_id not in decrypted]
        if clear:
            raise As4Error(EbmsError.POLICY_NONCOMPLIANCE, f"payload part(s) {', '.join(clear)} are not encrypted, and the P-Mode "
                           "encrypts every payload", where="wsse:Security/xenc:EncryptedData", ref_to_message_id=message_id)
    return Received(packet, messaging, check, decryption)


def payloads_of(received: Received, user_message: UserMessage, *, limit: int) -> list[tuple[PartInfo, bytes]]:
    """Each payload of ``user_message`` with its bytes as the sender had them before compression. Every PartInfo
    must name a MIME part, and every part must be named (EBMS:0007 MimeInconsistency)."""
    message_id = user_message.info.message_id
    found, named = [], set()
    for info in user_message.parts:
        href = info.href or ""
        if not href.startswith("cid:"):
            raise As4Error(EbmsError.FEATURE_NOT_SUPPORTED_INCONSISTENCY, f"payload {href or '(no href)'!r} is not a MIME part: "
                           "the eDelivery AS4 profile carries payloads as attachments only", where="eb:PayloadInfo/eb:PartInfo/@href",
                           ref_to_message_id=message_id)
        part = _part(received.packet, href, message_id)
        named.add(part.content_id)
        data = part.data
        if info.compression_type is not None:
            try:
                data = decompress(data, compression_type=info.compression_type, limit=limit, where=href)
            except As4Error as exc:
                exc.ref_to_message_id = message_id
                raise
        elif is_gzip_type(part.content_type.split(";")[0].strip()) and info.mime_type and not is_gzip_type(info.mime_type):
            raise As4Error(EbmsError.DECOMPRESSION_FAILURE, f"part {href} is gzip but its PartInfo names no CompressionType",
                           where=href, ref_to_message_id=message_id)
        found.append((info, data))
    stray = [part.content_id for part in received.packet.attachments if part.content_id not in named]
    if stray:
        raise As4Error(EbmsError.MIME_INCONSISTENCY, f"MIME part(s) {', '.join(stray)} are named by no PartInfo",
                       where="eb:PayloadInfo", ref_to_message_id=message_id)
    return found


@dataclass(frozen=True)
class Answer:
    """What the counterpart answered a user message we pushed: a receipt (its MessageId) or errors."""

    receipt_id: str | None
    errors: tuple[Error, ...]
    received: Received


def read_answer(raw: bytes, content_type: str | None, *, sent: Outgoing, counterpart: Counterpart, max_size: int,
                require_non_repudiation: bool = True) -> Answer:
    """The synchronous answer to ``sent``: a receipt signed by the counterpart whose non-repudiation information
    quotes exactly what we signed (EBMS:0302 otherwise), or error signals referring to our message. Signed error
    signals are checked; unsigned ones are taken as they are (an access point that cannot read our message may not
    be able to sign either), which only ever makes the hub retry or give up, never count a message delivered."""
    packet = read_packet(raw, content_type, max_size=max_size)
    messaging = read_messaging(packet)
    signals = [signal for signal in messaging.signal_messages if signal.info.ref_to_message_id in (sent.message_id, None)
               or any(error.ref_to_message_in_error == sent.message_id for error in signal.errors)]
    errors = tuple(error for signal in signals for error in signal.errors)
    receipts = [signal for signal in signals if signal.receipt is not None and signal.info.ref_to_message_id == sent.message_id]
    check = verify(packet, trusted=(*counterpart.certificates, *counterpart.anchors), candidates=counterpart.certificates)
    received = Received(packet, messaging, check, DecryptionCheck())
    if receipts:
        require_valid(check, message_id=sent.message_id)
        if require_non_repudiation:
            check_receipt(receipts[0].receipt, sent=sent.signed, message_id=sent.message_id)
        return Answer(receipts[0].info.message_id, errors, received)
    if errors:
        if check.present:
            require_valid(check, message_id=sent.message_id)
        return Answer(None, errors, received)
    raise As4Error(EbmsError.MISSING_RECEIPT, f"the answer holds neither a receipt nor an error for {sent.message_id}",
                   where="eb:Messaging/eb:SignalMessage", ref_to_message_id=sent.message_id)


def _part(packet: Packet, href: str, message_id: str | None) -> Part:
    """The MIME part ``href`` names; EBMS:0007 about ``message_id`` when there is none."""
    try:
        return packet.attachment(href)
    except As4Error as exc:
        exc.ref_to_message_id = exc.ref_to_message_id or message_id
        raise


def _user_message_element(received: Received, user_message: UserMessage) -> etree._Element | None:
    for element in received.packet.root.iter(f"{{{ns.EB}}}UserMessage"):
        identifier = element.findtext(f"{{{ns.EB}}}MessageInfo/{{{ns.EB}}}MessageId")
        if (identifier or "").strip() == user_message.info.message_id:
            return element
    return None


def _first_id(messaging: Messaging) -> str | None:
    units = [*messaging.user_messages, *messaging.signal_messages]
    return units[0].info.message_id if units else None


def _described(error: As4Error) -> str:
    return f"{error.where}: {error.message}" if error.where else error.message
