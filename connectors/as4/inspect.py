"""``hub as4 inspect``: what a raw AS4 message is, whether its signature verifies, and whether it decrypts.

Reads a message as found in the wild (bare XML, a MIME body with or without its outer headers, an HTTP dump) and
summarises it as JSON: kind, ids, parties, service and action, payload parts (MIME type, size, compression), the
signature (method, key reference, signer, each reference, the reason it fails) and, with a key, decryption. Nothing is
trusted because it is shown: the signature is checked cryptographically against the certificate the message carries
or the candidates given, and ``trusted`` says whether the signer chains to a ``--trust`` certificate.

Exit codes: 0 the signature verifies (and the parts decrypt, when a key is given; and the signer is trusted, when
trust anchors are given); 1 any of those does not hold; 2 unreadable (:class:`As4Error` from :func:`inspect_message`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from connectors.as4 import ns
from connectors.as4.compression import decompress
from connectors.as4.ebms import Messaging, UserMessage, kind, read_messaging
from connectors.as4.encryption import decrypt
from connectors.as4.errors import As4Error
from connectors.as4.keys import KeyPair
from connectors.as4.packaging import Packet, read_packet
from connectors.as4.signature import SignatureCheck, verify

#: Exit codes: verified (signature, decryption where a key was given, trust where anchors were given); not; unreadable.
VERIFIED, NOT_VERIFIED, UNREADABLE = 0, 1, 2


@dataclass(frozen=True)
class Inspection:
    """The summary and the exit code it implies."""

    summary: dict
    exit_code: int


def inspect_message(raw: bytes, *, key_pair: KeyPair | None = None, trusted: Sequence[x509.Certificate] = (),
                    candidates: Sequence[x509.Certificate] = ()) -> Inspection:
    """Summarise ``raw``. Raises :class:`As4Error` (exit code 2) only when it cannot be read as an AS4 message."""
    packet = read_packet(raw)
    messaging = read_messaging(packet)
    summary: dict = {"kind": kind(messaging), "soap_version": packet.soap_version, **_units(messaging)}
    encrypted = _encrypted_parts(packet)
    decrypted: set[str] = set()
    decrypted_ok = True
    if key_pair is not None:
        try:
            packet, decryption = decrypt(packet, key_pair)
            summary["decryption"] = {"status": "decrypted" if decryption.encrypted else "not encrypted",
                                     "key_transport": decryption.key_transport, "parts": len(decryption.parts)}
            decrypted = {part.content_id for part in decryption.parts}
        except As4Error as exc:
            decrypted_ok = False
            summary["decryption"] = {"status": "failed", "reason": f"{exc.code} {exc}"}
    summary["parts"], missing = _parts(packet, messaging, encrypted=encrypted - decrypted, decrypted=decrypted)
    if missing:
        summary["missing_parts"] = missing
    # --signer certificates only resolve key references: were they trust anchors too, naming the sender's
    # certificate with --signer would make any message "trusted".
    check = verify(packet, trusted=tuple(trusted), candidates=(*candidates, *trusted))
    summary["signature"] = _signature(check, trusted=bool(trusted))
    # Asked "is this from one of these?" (--trust), an untrusted signer is a no even when the signature holds.
    verified = check.valid and decrypted_ok and (not trusted or check.trusted_signer is True)
    return Inspection(summary, VERIFIED if verified else NOT_VERIFIED)


def _units(messaging: Messaging) -> dict:
    units = [*messaging.signal_messages, *messaging.user_messages]
    first = units[0]
    found = {"message_id": first.info.message_id, "ref_to_message_id": first.info.ref_to_message_id,
             "timestamp": first.info.timestamp.isoformat() if first.info.timestamp else None}
    if messaging.user_messages:
        found.update(_user_message(messaging.user_messages[0]))
    errors = [error for signal in messaging.signal_messages for error in signal.errors]
    if errors:
        found["errors"] = [{"code": e.error_code, "severity": e.severity, "short_description": e.short_description,
                            "description": e.description, "ref_to_message_in_error": e.ref_to_message_in_error} for e in errors]
    pulls = [signal.pull_request.mpc for signal in messaging.signal_messages if signal.pull_request is not None]
    if pulls:
        found["pull_request_mpc"] = pulls[0]
    receipts = [signal.receipt for signal in messaging.signal_messages if signal.receipt is not None]
    if receipts:
        found["receipt"] = {"non_repudiation_references": [r.uri for r in receipts[0].references]}
    if len(units) > 1:
        found["units"] = [{"message_id": unit.info.message_id, "kind": _unit_kind(unit)} for unit in units]
    return found


def _unit_kind(unit) -> str:
    if isinstance(unit, UserMessage):
        return "user-message"
    return "receipt" if unit.receipt is not None else "pull-request" if unit.pull_request is not None else "error"


def _user_message(message: UserMessage) -> dict:
    def party(side):
        return {"party_ids": [{"value": p.value, "type": p.type} for p in side.party_ids], "role": side.role}

    return {"from": party(message.from_party), "to": party(message.to_party), "service": message.service,
            "service_type": message.service_type, "action": message.action, "conversation_id": message.conversation_id,
            "agreement_ref": message.agreement_ref, "mpc": message.mpc,
            "properties": {p.name: p.value for p in message.properties}}


def _encrypted_parts(packet: Packet) -> set[str]:
    """Content-IDs of the parts an ``xenc:EncryptedData`` (CipherReference ``cid:``) says are encrypted."""
    found = set()
    for data in packet.root.iter(f"{{{ns.XENC}}}EncryptedData"):
        reference = data.find(f"{{{ns.XENC}}}CipherData/{{{ns.XENC}}}CipherReference")
        uri = (reference.get("URI") or "").strip() if reference is not None else ""
        try:
            found.add(packet.attachment(uri).content_id)
        except As4Error:  # not a cid: URI, or no such part: the signature check names it
            continue
    return found


def _parts(packet: Packet, messaging: Messaging, *, encrypted: set[str], decrypted: set[str]) -> tuple[list[dict], list[dict]]:
    """Every MIME part after the envelope, with what its PartInfo says; and the PartInfos that name no part."""
    infos, missing = {}, []
    for unit in messaging.user_messages:
        for info in unit.parts:
            if info.href is None or info.href[:4].lower() != "cid:":
                continue  # the SOAP Body or an element in it: no MIME part to describe
            try:
                infos.setdefault(packet.attachment(info.href).content_id, info)
            except As4Error as exc:
                missing.append({"href": info.href, "mime_type": info.mime_type, "problem": f"{exc.code} {exc}"})
    described = []
    for part in packet.attachments:
        info = infos.get(part.content_id)
        entry = {"content_id": part.content_id, "content_type": part.content_type, "size": len(part.data)}
        if part.content_id in encrypted:
            entry["encrypted"] = True
        elif part.content_id in decrypted:
            entry["decrypted"] = True
        if info is not None:
            entry.update(mime_type=info.mime_type, compression_type=info.compression_type)
            if info.compression_type and part.content_id in encrypted:
                entry["uncompressed_size"] = None  # the ciphertext cannot be gunzipped: decrypt first (--key)
            elif info.compression_type:
                try:
                    entry["uncompressed_size"] = len(decompress(part.data, compression_type=info.compression_type))
                except As4Error as exc:
                    entry["uncompressed_size"] = None
                    entry["problem"] = f"{exc.code} {exc}"
        else:
            entry["problem"] = "no PartInfo names this part"
        described.append(entry)
    return described, missing


def _signature(check: SignatureCheck, *, trusted: bool) -> dict:
    found = {"present": check.present, "valid": check.valid, "reason": check.reason, "method": check.signature_method,
             "key_reference": check.key_reference,
             "references": [{"uri": r.uri, "what": r.what, "ok": r.ok, "reason": r.reason} for r in check.references]}
    if check.certificate is not None:
        found["signer"] = {"subject": check.certificate.subject.rfc4514_string(), "issuer": check.certificate.issuer.rfc4514_string(),
                           "serial": format(check.certificate.serial_number, "x"),
                           "sha256": base64.b16encode(check.certificate.fingerprint(hashes.SHA256())).decode().lower()}
    if trusted:
        found["trusted"] = check.trusted_signer
        found["trust_reason"] = check.trust_reason
    return found
