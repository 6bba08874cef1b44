"""AS4 receipts: what a receipt holds (AS4 profile §2.1, §3.4) and whether it proves what we sent.

A receipt for a signed user message carries ``ebbp:NonRepudiationInformation``: one
``ebbp:MessagePartNRInformation/ds:Reference`` per ``ds:Reference`` of the received message's signature (same URI,
transforms, digest method and value). The sender keeps the references it signed and checks the receipt against
them: a receipt whose digests differ receipts some other message (EBMS:0302 InvalidReceipt). For an unsigned
exchange the receipt holds a copy of the ``eb:UserMessage`` (reception awareness only).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from lxml import etree

from connectors.as4 import ns
from connectors.as4.ebms import MessagePartNRInformation, Receipt, part_information
from connectors.as4.errors import As4Error, EbmsError

_DS_REFERENCE = f"{{{ns.DS}}}Reference"
_NRI = f"{{{ns.EBBP}}}NonRepudiationInformation"
_PART = f"{{{ns.EBBP}}}MessagePartNRInformation"
#: A receipt repeats the references of one signature: more than this is not a receipt of ours.
MAX_REFERENCES = 256


def references_of(references: Sequence[etree._Element]) -> tuple[MessagePartNRInformation, ...]:
    """What ``ds:Reference`` elements (of a signature we made, or received) say: URI, digest method and value."""
    return tuple(part_information(reference) for reference in references)


def _copied_nri(references: Sequence[etree._Element]) -> etree._Element:
    """The ``ebbp:NonRepudiationInformation`` receipting a message signed with ``references``, each copied whole
    (transform parameters included, which the parsed model does not keep)."""
    nri = etree.Element(_NRI, nsmap={"ebbp": ns.EBBP, "ds": ns.DS})
    for reference in references:
        part = etree.SubElement(nri, _PART)
        part.append(copy.deepcopy(reference))
    return nri


def receipt_content(*, signed_references: Sequence[etree._Element], user_message: etree._Element | None) -> etree._Element:
    """What goes inside ``eb:Receipt``: non-repudiation information for a signed message, else a copy of its
    ``eb:UserMessage``."""
    if signed_references:
        return _copied_nri(signed_references)
    if user_message is None:
        raise ValueError("a receipt needs the signed references or the user message")
    return copy.deepcopy(user_message)


def check_receipt(receipt: Receipt, *, sent: Sequence[MessagePartNRInformation], message_id: str) -> None:
    """Check that ``receipt`` proves reception of the message we signed with the references ``sent``.

    Every reference we signed must be quoted with the same URI, algorithm and digest, and nothing else may be: a
    receipt for another message, or for a message altered on the way, raises :class:`As4Error` EBMS:0302
    InvalidReceipt.
    """
    if not receipt.references:
        raise As4Error(EbmsError.INVALID_RECEIPT, "the receipt holds no ebbp:NonRepudiationInformation, and the message was signed",
                       where="eb:Receipt", ref_to_message_id=message_id)
    if len(receipt.references) > MAX_REFERENCES:
        raise As4Error(EbmsError.INVALID_RECEIPT, f"the receipt quotes {len(receipt.references)} references",
                       where="ebbp:NonRepudiationInformation", ref_to_message_id=message_id)
    expected = {reference.uri: reference for reference in sent}
    seen: set[str] = set()
    where = "ebbp:MessagePartNRInformation/ds:Reference"
    for quoted in receipt.references:
        if quoted.uri in seen:
            raise As4Error(EbmsError.INVALID_RECEIPT, f"the receipt quotes {quoted.uri!r} twice", where=where, ref_to_message_id=message_id)
        seen.add(quoted.uri)
        mine = expected.get(quoted.uri)
        if mine is None:
            raise As4Error(EbmsError.INVALID_RECEIPT, f"the receipt quotes {quoted.uri!r}, which the message did not sign",
                           where=where, ref_to_message_id=message_id)
        if (quoted.digest_method, quoted.digest_value) != (mine.digest_method, mine.digest_value):
            raise As4Error(EbmsError.INVALID_RECEIPT, f"the receipt's digest of {quoted.uri!r} is not the digest of what was sent",
                           where=where + "/ds:DigestValue", ref_to_message_id=message_id)
    missing = [uri for uri in expected if uri not in seen]
    if missing:
        raise As4Error(EbmsError.INVALID_RECEIPT, f"the receipt does not quote {', '.join(repr(u) for u in missing)}",
                       where="ebbp:NonRepudiationInformation", ref_to_message_id=message_id)
