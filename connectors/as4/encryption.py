"""WS-Security 1.1 encryption of AS4 payload parts (SOAP Messages with Attachments profile 1.1), both directions.

AS4 signs, then encrypts: one random AES key encrypts every payload part; an ``xenc:EncryptedKey`` in ``wsse:Security``
carries it wrapped with the recipient's RSA key (RSA-OAEP) and lists, in its ``xenc:ReferenceList``, one
``xenc:EncryptedData`` per part (``Type=…#Attachment-Content-Only``, ``MimeType`` = the part's type before encryption,
``xenc:CipherReference URI="cid:…"`` with the ``#Attachment-Ciphertext-Transform``). The part's body becomes the
ciphertext (AES-GCM: 12-byte IV ‖ ciphertext ‖ 16-byte tag), typed ``application/octet-stream``.

Built on lxml and ``cryptography`` (AESGCM, RSA-OAEP), not python-xmlsec: the encrypted data lives in MIME parts
referenced by ``xenc:CipherReference URI="cid:…"`` with the SwA Attachment-Ciphertext-Transform, which no Python
XML-Encryption library handles.

:func:`decrypt` hands back a new :class:`~connectors.as4.packaging.Packet` whose encrypted parts hold their plaintext
(the compressed payload, over which the sender's signature was computed) and a :class:`DecryptionCheck` saying what
was decrypted and how. The envelope is left exactly as received — ``xenc:EncryptedKey`` and ``xenc:EncryptedData``
stay in ``wsse:Security`` — so the signature is verified over the same bytes the sender signed. :func:`encrypt` does
the reverse on an envelope we have just signed, placing the encryption elements first in ``wsse:Security``
(``BinarySecurityToken``, ``EncryptedKey``, ``EncryptedData``…, then the signature's token and ``ds:Signature``), as
phase4/WSS4J do (``phase4-dump-raw.as4out.eml``) and as Holodeck, RSSBus, Flame and Domibus messages show.

Every failure is :class:`~connectors.as4.errors.As4Error` ``EBMS:0102`` FailedDecryption. A key that cannot be
unwrapped always gets the same reason, whatever OpenSSL said, and RSA PKCS#1 v1.5 key transport is refused outright
(Bleichenbacher's padding oracle).
"""

from __future__ import annotations

import base64
import binascii
import copy
import os
import quopri
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import quote, unquote

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from connectors.as4 import ns
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.dsig import DIGESTS, index_ids, read_base64, security_header
from connectors.as4.keyinfo import (binary_security_token, describe_certificate, resolve_key_info, same_public_key,
                                    write_token_reference)
from connectors.as4.keys import KeyPair
from connectors.as4.packaging import Packet, Part
from hub.errors import ConfigurationError

RSA_1_5 = ns.XENC + "rsa-1_5"
AES128_CBC = ns.XENC + "aes128-cbc"
AES192_CBC = ns.XENC + "aes192-cbc"
AES256_CBC = ns.XENC + "aes256-cbc"
AES192_GCM = ns.XENC11 + "aes192-gcm"
MGF1_SHA224 = ns.XENC11 + "mgf1sha224"
TOKEN_TYPE_ENCRYPTED_KEY = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey"
XENC_ELEMENT = ns.XENC + "Element"
XENC_CONTENT = ns.XENC + "Content"

#: Data encryption algorithms: (mode, key length in bytes). AES-CBC is read (older senders), never written.
DATA_METHODS = {ns.AES128_GCM: ("gcm", 16), AES192_GCM: ("gcm", 24), ns.AES256_GCM: ("gcm", 32),
                AES128_CBC: ("cbc", 16), AES192_CBC: ("cbc", 24), AES256_CBC: ("cbc", 32)}
_MGFS = {ns.MGF1_SHA1: hashes.SHA1, MGF1_SHA224: hashes.SHA224, ns.MGF1_SHA256: hashes.SHA256,
         ns.MGF1_SHA384: hashes.SHA384, ns.MGF1_SHA512: hashes.SHA512}

#: Bounds on what a message may ask of us.
MAX_ENCRYPTED_KEYS = 4
MAX_ENCRYPTED_DATA = 100
MAX_ENCRYPTED_BYTES = 64 * 1024 * 1024
MAX_COMPLETE_HEADER_BYTES = 16 * 1024
_GCM_IV, _GCM_TAG = 12, 16

_NS = {"S12": ns.S12, "S11": ns.S11, "wsse": ns.WSSE, "wsu": ns.WSU, "ds": ns.DS, "xenc": ns.XENC, "xenc11": ns.XENC11}
_WSU_ID = f"{{{ns.WSU}}}Id"

KeyReference = Literal["BST", "IssuerSerial", "SKI"]


def _fail(message: str, where: str | None = None) -> As4Error:
    return As4Error(EbmsError.FAILED_DECRYPTION, message, where=where)


# --- results ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DecryptedPart:
    """One payload part that was decrypted: its Content-ID, the ``xenc:EncryptedData`` that described it, the data
    algorithm, the SwA type (Content-Only or Complete), the plaintext's content type and both sizes."""

    content_id: str
    encrypted_data_id: str
    algorithm: str
    type: str
    content_type: str
    ciphertext_bytes: int
    plaintext_bytes: int


@dataclass(frozen=True, slots=True)
class DecryptionCheck:
    """What :func:`decrypt` did: the ``xenc:EncryptedKey`` used (Id, key transport, OAEP digest and MGF, how it named
    our certificate) and the parts decrypted, in message order. ``encrypted`` is False for a message without
    encryption (then every other field is empty)."""

    encrypted_key_id: str | None = None
    key_transport: str | None = None
    digest_method: str | None = None
    mgf: str | None = None
    key_reference: str | None = None
    parts: tuple[DecryptedPart, ...] = ()

    @property
    def encrypted(self) -> bool:
        return bool(self.parts)


# --- decrypt ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Target:
    element: etree._Element
    id: str
    algorithm: str
    type: str
    mime_type: str | None
    part_index: int


def decrypt(packet: Packet, key_pair: KeyPair, *, max_size: int = MAX_ENCRYPTED_BYTES,
            max_encrypted_data: int = MAX_ENCRYPTED_DATA) -> tuple[Packet, DecryptionCheck]:
    """Decrypt the payload parts of ``packet`` that an ``xenc:EncryptedKey`` addressed to ``key_pair`` covers.

    Returns the packet with those parts replaced by their plaintext (Content-Type restored from
    ``EncryptedData@MimeType``; with ``#Attachment-Complete`` every MIME header from the decrypted bytes) and the
    envelope untouched, plus the :class:`DecryptionCheck`. ``max_size`` bounds the encrypted bytes in total,
    ``max_encrypted_data`` the number of ``xenc:EncryptedData``. Raises ``As4Error`` EBMS:0102 naming the part or
    algorithm for every failure: key not ours, unknown or refused algorithm, tag mismatch, missing part.
    """
    root = packet.root
    keys = root.xpath("./*[local-name()='Header']/wsse:Security/xenc:EncryptedKey", namespaces=_NS)
    every_data = root.xpath("//xenc:EncryptedData", namespaces=_NS)
    if not keys:
        if every_data:
            raise _fail(f"{len(every_data)} xenc:EncryptedData but no xenc:EncryptedKey in wsse:Security",
                        where=_where(every_data[0]))
        return packet, DecryptionCheck()
    if len(keys) > MAX_ENCRYPTED_KEYS:
        raise _fail(f"{len(keys)} xenc:EncryptedKey elements, more than the {MAX_ENCRYPTED_KEYS} accepted")
    if len(every_data) > max_encrypted_data:
        raise _fail(f"{len(every_data)} xenc:EncryptedData elements, more than the {max_encrypted_data} accepted")
    ids = index_ids(root)
    ours, named = [], []
    for key in keys:
        recipient = _recipient(key, key_pair.certificate, ids)
        if recipient.ours:
            ours.append((key, recipient))
        named.append(recipient.named)
    if not ours:
        raise _fail(f"the message was encrypted for {'; '.join(named)}, not for us "
                    f"({describe_certificate(key_pair.certificate)})", where=_where(keys[0]))
    if len(ours) > 1:
        raise _fail(f"{len(ours)} xenc:EncryptedKey elements are addressed to us; one is expected",
                    where=_where(ours[1][0]))
    encrypted_key, recipient = ours[0]
    targets = _targets(encrypted_key, packet, ids, max_size)
    uncovered = [data for data in every_data if all(data is not target.element for target in targets)]
    if uncovered:
        raise _fail("this xenc:EncryptedData is not in the ReferenceList of the EncryptedKey addressed to us",
                    where=_where(uncovered[0]))
    lengths = {DATA_METHODS[target.algorithm][1] for target in targets}
    if len(lengths) > 1:
        raise _fail("the EncryptedData of one EncryptedKey use AES keys of different lengths", where=_where(encrypted_key))
    method = _transport(encrypted_key)
    content_key = _unwrap(encrypted_key, key_pair, method, lengths)
    attachments = list(packet.attachments)
    decrypted = []
    for target in sorted(targets, key=lambda item: item.part_index):
        part = attachments[target.part_index]
        plaintext = _decrypt_bytes(target.algorithm, content_key, part.data, f"cid:{part.content_id}")
        attachments[target.part_index] = new_part = _plaintext_part(part, target, plaintext)
        decrypted.append(DecryptedPart(content_id=part.content_id, encrypted_data_id=target.id,
                                       algorithm=target.algorithm, type=target.type,
                                       content_type=new_part.content_type, ciphertext_bytes=len(part.data),
                                       plaintext_bytes=len(new_part.data)))
    check = DecryptionCheck(encrypted_key_id=encrypted_key.get("Id") or encrypted_key.get(_WSU_ID),
                            key_transport=method.algorithm, digest_method=method.digest, mgf=method.mgf,
                            key_reference=recipient.kind, parts=tuple(decrypted))
    return replace(packet, attachments=tuple(attachments)), check


def decrypt_key(encrypted_key: etree._Element, key_pair: KeyPair) -> bytes:
    """The content-encryption key that ``encrypted_key`` (an ``xenc:EncryptedKey`` in its parsed envelope) carries,
    after checking that it names ``key_pair``'s certificate. Raises ``As4Error`` EBMS:0102."""
    recipient = _recipient(encrypted_key, key_pair.certificate, index_ids(encrypted_key.getroottree().getroot()))
    if recipient.problem is not None:
        raise _fail(recipient.problem, where=_where(encrypted_key))
    if not recipient.ours:
        raise _fail(f"encrypted for {recipient.named}, not for us ({describe_certificate(key_pair.certificate)})",
                    where=_where(encrypted_key))
    return _unwrap(encrypted_key, key_pair, _transport(encrypted_key), {16, 24, 32})


def _targets(encrypted_key: etree._Element, packet: Packet, ids: Mapping[str, Sequence[etree._Element]],
             max_size: int) -> list[_Target]:
    references = encrypted_key.xpath("./xenc:ReferenceList/xenc:DataReference/@URI", namespaces=_NS)
    if not references:
        raise _fail("the EncryptedKey has no xenc:ReferenceList/xenc:DataReference", where=_where(encrypted_key))
    targets: list[_Target] = []
    total = 0
    for uri in references:
        if not uri.startswith("#") or len(uri) < 2:
            raise _fail(f"DataReference URI {uri[:100]!r} is not a same-document reference", where=_where(encrypted_key))
        element = _by_id(ids, uri[1:])
        if element is None or element.tag != f"{{{ns.XENC}}}EncryptedData":
            raise _fail(f"DataReference {uri[:100]!r} names no xenc:EncryptedData", where=_where(encrypted_key))
        target = _target(element, uri[1:], encrypted_key, packet)
        if any(other.element is element or other.part_index == target.part_index for other in targets):
            raise _fail(f"DataReference {uri[:100]!r}: the same EncryptedData or part is referenced twice", where=_where(element))
        total += len(packet.attachments[target.part_index].data)
        if total > max_size:
            raise _fail(f"the encrypted parts are more than {max_size} bytes", where=_where(element))
        targets.append(target)
    return targets


def _target(element: etree._Element, data_id: str, encrypted_key: etree._Element, packet: Packet) -> _Target:
    where = _where(element)
    kind = element.get("Type")
    if kind in (XENC_ELEMENT, XENC_CONTENT):
        raise _fail(f"EncryptedData Type {kind}: XML encryption of envelope content is not supported, AS4 encrypts "
                    "payload parts only", where=where)
    if kind not in (ns.SWA_CONTENT_ONLY, ns.SWA_COMPLETE):
        raise _fail(f"EncryptedData Type {str(kind)[:200]!r} is not an SwA attachment type", where=where)
    algorithm = element.xpath("string(./xenc:EncryptionMethod/@Algorithm)", namespaces=_NS)
    if algorithm not in DATA_METHODS:
        raise _fail(f"data encryption algorithm {algorithm[:200]!r} is not supported (aes128-gcm, aes256-gcm, aes-cbc)",
                    where=where)
    _check_key_info(element, encrypted_key)
    cipher_data = element.find(f"{{{ns.XENC}}}CipherData")
    reference = cipher_data.find(f"{{{ns.XENC}}}CipherReference") if cipher_data is not None else None
    if reference is None:
        raise _fail("EncryptedData without xenc:CipherData/xenc:CipherReference to a MIME part", where=where)
    transforms = reference.xpath("./xenc:Transforms/ds:Transform/@Algorithm", namespaces=_NS)
    if any(transform != ns.SWA_CIPHERTEXT for transform in transforms):
        raise _fail(f"CipherReference transform {next(t for t in transforms if t != ns.SWA_CIPHERTEXT)[:200]!r} is not "
                    "the SwA Attachment-Ciphertext-Transform", where=where)
    mime_type = (element.get("MimeType") or "").strip()
    return _Target(element=element, id=data_id, algorithm=algorithm, type=kind,
                   mime_type=_media_type(mime_type, "EncryptedData@MimeType", where) if mime_type else None,
                   part_index=_part_index(packet, reference.get("URI") or "", where))


def _media_type(value: str, what: str, where: str) -> str:
    """A content type taken from the message, checked before it becomes a MIME header of the decrypted part."""
    if len(value) > 1000 or any(ord(char) < 32 or ord(char) == 127 for char in value) or "/" not in value:
        raise _fail(f"{what} {value[:100]!r} is not a media type", where=where)
    return value


def _check_key_info(element: etree._Element, encrypted_key: etree._Element) -> None:
    key_info = element.find(f"{{{ns.DS}}}KeyInfo")
    if key_info is None:
        return  # the EncryptedKey's ReferenceList is what ties them (Holodeck omits KeyInfo)
    if key_info.find(f".//{{{ns.XENC}}}EncryptedKey") is not None:
        raise _fail("an EncryptedKey inside EncryptedData/ds:KeyInfo is not supported", where=_where(element))
    uris = key_info.xpath("./wsse:SecurityTokenReference/wsse:Reference/@URI", namespaces=_NS)
    ids = {encrypted_key.get("Id"), encrypted_key.get(_WSU_ID)} - {None}
    if uris and uris[0].lstrip("#") not in ids:
        raise _fail(f"EncryptedData names key {uris[0][:100]!r}, not the EncryptedKey addressed to us", where=_where(element))


def _part_index(packet: Packet, uri: str, where: str) -> int:
    if not uri.lower().startswith("cid:"):
        raise _fail(f"CipherReference URI {uri[:200]!r} is not a cid: reference to a MIME part", where=where)
    wanted = unquote(uri[4:]).strip("<>")
    if not wanted:
        raise _fail("CipherReference URI 'cid:' names no Content-ID", where=where)
    found = [index for index, part in enumerate(packet.attachments) if part.content_id.strip("<>") in (wanted, uri[4:])]
    if len(found) != 1:
        raise _fail(f"CipherReference {uri[:200]!r} names {'no' if not found else 'more than one'} MIME part", where=where)
    return found[0]


# --- key transport ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Method:
    algorithm: str
    digest: str
    mgf: str
    label: bytes | None


def _transport(encrypted_key: etree._Element) -> _Method:
    where = _where(encrypted_key)
    method = encrypted_key.find(f"{{{ns.XENC}}}EncryptionMethod")
    algorithm = method.get("Algorithm", "") if method is not None else ""
    if algorithm == RSA_1_5:
        raise _fail("key transport rsa-1_5 (RSA PKCS#1 v1.5) is refused: it is open to Bleichenbacher's padding "
                    "oracle attack; use rsa-oaep", where=where)
    if algorithm not in (ns.RSA_OAEP, ns.RSA_OAEP_MGF1P):
        raise _fail(f"key transport {algorithm[:200]!r} is not supported (xmlenc11#rsa-oaep, xmlenc#rsa-oaep-mgf1p)",
                    where=where)
    digest = method.xpath("string(./ds:DigestMethod/@Algorithm)", namespaces=_NS) or ns.SHA1
    mgf = method.xpath("string(./xenc11:MGF/@Algorithm)", namespaces=_NS) or ns.MGF1_SHA1
    if digest not in DIGESTS:
        raise _fail(f"RSA-OAEP digest {digest[:200]!r} is not supported", where=where)
    if mgf not in _MGFS or (algorithm == ns.RSA_OAEP_MGF1P and mgf != ns.MGF1_SHA1):
        raise _fail(f"RSA-OAEP mask generation function {mgf[:200]!r} is not supported with {algorithm}", where=where)
    label = None
    params = method.find(f"{{{ns.XENC}}}OAEPparams")
    if params is not None and (params.text or "").strip():
        label = _base64(params.text, "OAEPparams", where, max_chars=2048)
    return _Method(algorithm=algorithm, digest=digest, mgf=mgf, label=label)


def _unwrap(encrypted_key: etree._Element, key_pair: KeyPair, method: _Method, lengths: set[int]) -> bytes:
    where = _where(encrypted_key)
    values = encrypted_key.xpath("./xenc:CipherData/xenc:CipherValue", namespaces=_NS)
    if len(values) != 1:
        raise _fail("the EncryptedKey has no xenc:CipherData/xenc:CipherValue", where=where)
    wrapped = _base64(values[0].text, "CipherValue", where, max_chars=4096)
    private_key = key_pair.private_key
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise _fail(f"RSA key transport, but our key is {type(private_key).__name__}", where=where)
    oaep = padding.OAEP(mgf=padding.MGF1(_MGFS[method.mgf]()), algorithm=DIGESTS[method.digest](), label=method.label)
    try:
        key = private_key.decrypt(wrapped, oaep)
    except Exception:  # noqa: BLE001 — one answer for every way the key fails, or the answer becomes an oracle
        key = b""
    if len(key) not in lengths:
        raise _fail("the EncryptedKey cannot be decrypted with our private key", where=where)
    return key


# --- data ------------------------------------------------------------------------------------------------------------

def _decrypt_bytes(algorithm: str, key: bytes, data: bytes, where: str) -> bytes:
    mode, _ = DATA_METHODS[algorithm]
    if mode == "gcm":
        if len(data) < _GCM_IV + _GCM_TAG:
            raise _fail(f"{len(data)} bytes cannot be AES-GCM output (IV and tag alone are 28)", where=where)
        try:
            return AESGCM(key).decrypt(data[:_GCM_IV], data[_GCM_IV:], None)
        except InvalidTag:
            raise _fail(f"{algorithm}: the authentication tag does not match, the part was altered", where=where) from None
    if len(data) < 32 or len(data) % 16:
        raise _fail(f"{len(data)} bytes cannot be AES-CBC output (IV + whole 16-byte blocks)", where=where)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(data[:16])).decryptor()
    plain = decryptor.update(data[16:]) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 16:
        raise _fail(f"{algorithm}: the part cannot be decrypted", where=where)
    return plain[:-pad]


def _plaintext_part(part: Part, target: _Target, plaintext: bytes) -> Part:
    if target.type == ns.SWA_CONTENT_ONLY:
        content_type = target.mime_type or "application/octet-stream"
        headers = _set_header(_without(part.headers, "content-length"), "Content-Type", content_type)
        return replace(part, content_type=content_type, headers=headers, data=plaintext)
    inner, content = _split_mime(plaintext, f"cid:{part.content_id}")
    encoding = next((value.strip().lower() for name, value in inner if name.lower() == "content-transfer-encoding"), "")
    content = _undo_transfer_encoding(content, encoding, f"cid:{part.content_id}")
    kept = [(name, value) for name, value in part.headers
            if not name.lower().startswith("content-") or name.lower() == "content-id"]
    kept += [(name, value) for name, value in inner
             if name.lower() not in ("content-id", "content-length", "content-transfer-encoding")]
    content_type = next((value for name, value in inner if name.lower() == "content-type"), None)
    if content_type is not None:
        content_type = _media_type(content_type, "the decrypted Content-Type", f"cid:{part.content_id}")
    content_type = content_type or target.mime_type or "application/octet-stream"
    return replace(part, content_type=content_type, headers=_set_header(tuple(kept), "Content-Type", content_type),
                   data=content)


def _split_mime(data: bytes, where: str) -> tuple[list[tuple[str, str]], bytes]:
    """The MIME headers and content of an ``#Attachment-Complete`` plaintext."""
    head = data[:MAX_COMPLETE_HEADER_BYTES + 4]
    match = re.search(rb"\r?\n\r?\n", head)
    if match is None:
        raise _fail("the decrypted Attachment-Complete part has no MIME header block", where=where)
    headers: list[tuple[str, str]] = []
    for line in re.split(rb"\r?\n", head[:match.start()]):
        text = line.decode("latin-1")
        if text[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + text.strip())
        elif ":" in text:
            name, _, value = text.partition(":")
            headers.append((name.strip(), value.strip()))
        elif text.strip():
            raise _fail(f"the decrypted Attachment-Complete part has a malformed header line {text[:80]!r}", where=where)
    return headers, data[match.end():]


def _undo_transfer_encoding(content: bytes, encoding: str, where: str) -> bytes:
    if encoding == "base64":
        try:
            return base64.b64decode(b"".join(content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _fail("the decrypted part's base64 content cannot be decoded", where=where) from None
    if encoding == "quoted-printable":
        return quopri.decodestring(content)
    return content


def _without(headers: tuple[tuple[str, str], ...], name: str) -> tuple[tuple[str, str], ...]:
    return tuple(header for header in headers if header[0].lower() != name)


def _set_header(headers: tuple[tuple[str, str], ...], name: str, value: str) -> tuple[tuple[str, str], ...]:
    if any(header.lower() == name.lower() for header, _ in headers):
        return tuple((header, value if header.lower() == name.lower() else old) for header, old in headers)
    return headers + ((name, value),)


# --- who a key was encrypted for -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Recipient:
    """Whether an EncryptedKey is for our certificate, how its ds:KeyInfo names the recipient (``kind``; "none" when
    it has no KeyInfo), the recipient in words, and why the reference cannot be read (then ``named`` says the same)."""

    ours: bool
    kind: str
    named: str
    problem: str | None = None


def _recipient(encrypted_key: etree._Element, certificate: x509.Certificate,
               ids: Mapping[str, Sequence[etree._Element]]) -> _Recipient:
    key_info = encrypted_key.find(f"{{{ns.DS}}}KeyInfo")
    if key_info is None:
        return _Recipient(True, "none", "anyone")  # nothing names a recipient: try our key, the tag tells
    resolved = resolve_key_info(key_info, ids=ids, candidates=(certificate,))
    if resolved.certificate is not None:
        return _Recipient(same_public_key(resolved.certificate, certificate), resolved.key_reference,
                          describe_certificate(resolved.certificate))
    if resolved.named is not None:  # an IssuerSerial, SKI or thumbprint that is not our certificate's
        return _Recipient(False, resolved.key_reference, resolved.named)
    reason = resolved.reason or "the EncryptedKey's ds:KeyInfo names no certificate"
    return _Recipient(False, resolved.key_reference, reason, problem=reason)


# --- encrypt ---------------------------------------------------------------------------------------------------------

def encrypt(envelope_root: etree._Element, attachments: Sequence[Part], *, recipient_certificate: x509.Certificate,
            data_method: str = ns.AES128_GCM, key_transport: str = ns.RSA_OAEP, mgf: str = ns.MGF1_SHA256,
            digest: str = ns.SHA256, key_reference: KeyReference = "BST") -> tuple[etree._Element, tuple[Part, ...]]:
    """Encrypt every part of ``attachments`` for ``recipient_certificate``, after the envelope was signed.

    Returns a copy of ``envelope_root`` whose ``wsse:Security`` (created when absent) starts with the token (for a
    ``BST`` reference), the ``xenc:EncryptedKey`` and one ``xenc:EncryptedData`` per part, and the parts with their
    bodies replaced by IV ‖ ciphertext ‖ tag, typed ``application/octet-stream``. ``mgf`` applies to xmlenc11
    rsa-oaep only (rsa-oaep-mgf1p always uses MGF1 with SHA-1). Raises ``ConfigurationError`` for an algorithm or
    certificate that cannot be used.
    """
    if data_method not in DATA_METHODS or DATA_METHODS[data_method][0] != "gcm":
        raise ConfigurationError(f"data encryption {data_method!r}: only AES-GCM is written (aes128-gcm, aes256-gcm)")
    if key_transport not in (ns.RSA_OAEP, ns.RSA_OAEP_MGF1P):
        raise ConfigurationError(f"key transport {key_transport!r}: only RSA-OAEP is written")
    if digest not in DIGESTS or (key_transport == ns.RSA_OAEP and mgf not in _MGFS):
        raise ConfigurationError(f"RSA-OAEP digest {digest!r} or MGF {mgf!r} is not supported")
    if key_reference not in ("BST", "IssuerSerial", "SKI"):
        raise ConfigurationError(f"key reference {key_reference!r}: BST, IssuerSerial or SKI")
    if any(not part.content_id.strip("<>") for part in attachments):
        raise ValueError("every attachment to encrypt needs a Content-ID: its EncryptedData names it by cid:")
    public_key = recipient_certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ConfigurationError(f"the recipient certificate {describe_certificate(recipient_certificate)} has no RSA key")
    if not attachments:
        return copy.deepcopy(envelope_root), ()
    mgf_hash = _MGFS[mgf] if key_transport == ns.RSA_OAEP else hashes.SHA1
    content_key = os.urandom(DATA_METHODS[data_method][1])
    wrapped = public_key.encrypt(content_key, padding.OAEP(mgf=padding.MGF1(mgf_hash()), algorithm=DIGESTS[digest](),
                                                          label=None))
    root = copy.deepcopy(envelope_root)
    security = security_header(root)
    key_id = f"EK-{uuid.uuid4()}"
    elements = []
    token_id = None
    if key_reference == "BST":
        token_id = f"X509-{uuid.uuid4()}"
        elements.append(binary_security_token(recipient_certificate, token_id))
    encrypted_key = _element(ns.XENC, "EncryptedKey", {"xenc": ns.XENC}, Id=key_id)
    method = etree.SubElement(encrypted_key, f"{{{ns.XENC}}}EncryptionMethod", Algorithm=key_transport)
    _element(ns.DS, "DigestMethod", {"ds": ns.DS}, parent=method, Algorithm=digest)
    if key_transport == ns.RSA_OAEP:
        _element(ns.XENC11, "MGF", {"xenc11": ns.XENC11}, parent=method, Algorithm=mgf)
    key_info = _element(ns.DS, "KeyInfo", {"ds": ns.DS}, parent=encrypted_key)
    write_token_reference(key_info, key_reference, recipient_certificate, token_id=token_id)
    cipher_data = etree.SubElement(encrypted_key, f"{{{ns.XENC}}}CipherData")
    etree.SubElement(cipher_data, f"{{{ns.XENC}}}CipherValue").text = base64.b64encode(wrapped).decode("ascii")
    reference_list = etree.SubElement(encrypted_key, f"{{{ns.XENC}}}ReferenceList")
    elements.append(encrypted_key)
    encrypted_parts = []
    for part in attachments:
        data_id = f"ED-{uuid.uuid4()}"
        etree.SubElement(reference_list, f"{{{ns.XENC}}}DataReference", URI=f"#{data_id}")
        elements.append(_encrypted_data(data_id, data_method, part, key_id))
        iv = os.urandom(_GCM_IV)
        encrypted_parts.append(_ciphertext_part(part, iv + AESGCM(content_key).encrypt(iv, part.data, None)))
    for index, element in enumerate(elements):
        security.insert(index, element)
    return root, tuple(encrypted_parts)


def _encrypted_data(data_id: str, data_method: str, part: Part, key_id: str) -> etree._Element:
    element = _element(ns.XENC, "EncryptedData", {"xenc": ns.XENC}, Id=data_id, MimeType=part.content_type,
                       Type=ns.SWA_CONTENT_ONLY)
    etree.SubElement(element, f"{{{ns.XENC}}}EncryptionMethod", Algorithm=data_method)
    key_info = _element(ns.DS, "KeyInfo", {"ds": ns.DS}, parent=element)
    token = _element(ns.WSSE, "SecurityTokenReference", {"wsse11": ns.WSSE11}, parent=key_info)
    token.set(f"{{{ns.WSSE11}}}TokenType", TOKEN_TYPE_ENCRYPTED_KEY)
    etree.SubElement(token, f"{{{ns.WSSE}}}Reference", URI=f"#{key_id}")
    cipher_data = etree.SubElement(element, f"{{{ns.XENC}}}CipherData")
    reference = etree.SubElement(cipher_data, f"{{{ns.XENC}}}CipherReference",
                                 URI="cid:" + quote(part.content_id.strip("<>"), safe="@!$&'()*+,;=:/?~-._"))
    transforms = etree.SubElement(reference, f"{{{ns.XENC}}}Transforms")
    _element(ns.DS, "Transform", {"ds": ns.DS}, parent=transforms, Algorithm=ns.SWA_CIPHERTEXT)
    return element


def _ciphertext_part(part: Part, data: bytes) -> Part:
    headers = _set_header(_without(part.headers, "content-length"), "Content-Type", "application/octet-stream")
    encoding = next((value.strip().lower() for name, value in headers if name.lower() == "content-transfer-encoding"), None)
    if encoding not in (None, "binary", "base64"):
        headers = _set_header(headers, "Content-Transfer-Encoding", "binary")
    return replace(part, content_type="application/octet-stream", headers=headers, data=data)


def _element(namespace: str, name: str, nsmap: dict[str, str], *, parent: etree._Element | None = None,
             **attributes: str) -> etree._Element:
    tag = f"{{{namespace}}}{name}"
    if parent is None:
        return etree.Element(tag, attributes, nsmap=nsmap)
    return etree.SubElement(parent, tag, attributes, nsmap=nsmap)


# --- shared ----------------------------------------------------------------------------------------------------------

def _by_id(ids: Mapping[str, Sequence[etree._Element]], wanted: str) -> etree._Element | None:
    """The one element whose id is ``wanted``; several is an attack (wrapping), not a choice."""
    found = ids.get(wanted, ())
    if len(found) > 1:
        raise _fail(f"{len(found)} elements carry the Id {wanted[:100]!r}")
    return found[0] if found else None


def _base64(text: str | None, what: str, where: str | None, *, max_chars: int) -> bytes:
    value, problem = read_base64(text, what, max_chars=max_chars)
    if value is None:
        raise _fail(problem, where=where)
    return value


def _where(element: etree._Element) -> str:
    name = etree.QName(element).localname
    identifier = element.get("Id") or element.get(_WSU_ID)
    return f"xenc:{name}[@Id='{identifier}']" if identifier else f"xenc:{name}"
