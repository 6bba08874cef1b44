"""The ebMS3 message header (``eb:Messaging``, ebMS3 Core §5.2, AS4 profile §2.1, eDelivery AS4 1.15 §1.4.2):
its model and how it is read from a SOAP envelope.

Reading takes whatever real MSHs send: either SOAP version, any prefixes (even one literally named
``mustUnderstand``), several units in one header (bundling), the multi-hop ``ebint:RoutingInput`` in both of its
namespaces, old bare error codes (``0101``), optional elements left out. What ebMS3 requires and is missing, or a
header too large to be a real one, raises :class:`As4Error` EBMS:0009 InvalidHeader naming the element's path and,
when it was read, the message's ``eb:MessageId``.

Writing is :mod:`connectors.as4.envelope`'s.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from lxml import etree

from connectors.as4 import ns
from connectors.as4.errors import As4Error, EbmsError

if TYPE_CHECKING:
    from connectors.as4.packaging import Packet

#: Most units (UserMessage, SignalMessage) in one eb:Messaging, properties in one list, parts, errors in a signal,
#: references in a receipt.
MAX_ITEMS = 100
#: Longest identifier or value (MessageId, PartyId, Service, Action, property values …) and free text
#: (eb:Description, eb:ErrorDetail).
MAX_VALUE_LENGTH = 4096
MAX_TEXT_LENGTH = 64 * 1024

_EB_ONLY = (ns.EB,)
_ROUTED = (ns.EB, *ns.EBINT)
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_WSU_ID = f"{{{ns.WSU}}}Id"
_TIMESTAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")
_MSG_ID_RIGHT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


# --- model ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartyId:
    """``eb:PartyId`` and its ``type`` (None when the value is itself a URI)."""

    value: str
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """``eb:From`` or ``eb:To``: one or more party ids and the party's ``eb:Role``."""

    party_ids: tuple[PartyId, ...]
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Property:
    """An ``eb:Property`` of MessageProperties or PartProperties."""

    name: str
    value: str
    type: str | None = None


@dataclass(frozen=True, slots=True)
class PartInfo:
    """``eb:PartInfo``: where the payload is (``cid:`` a MIME part, ``#id`` the SOAP Body, None the Body) and its
    PartProperties (MimeType, CompressionType, CharacterSet …)."""

    href: str | None
    properties: tuple[Property, ...] = ()
    schema_location: str | None = None
    schema_version: str | None = None
    schema_namespace: str | None = None
    description: str | None = None

    def property_value(self, name: str) -> str | None:
        """The value of the PartProperty called ``name``, or None."""
        return next((p.value for p in self.properties if p.name == name), None)

    @property
    def mime_type(self) -> str | None:
        """``MimeType``: the payload's type before compression."""
        return self.property_value("MimeType")

    @property
    def compression_type(self) -> str | None:
        """``CompressionType`` (``application/gzip``), None for an uncompressed payload."""
        return self.property_value("CompressionType")

    @property
    def character_set(self) -> str | None:
        """``CharacterSet`` of an XML payload."""
        return self.property_value("CharacterSet")


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """``eb:MessageInfo``: when (UTC; None when the sender left it out), the message's id and the one it answers."""

    timestamp: datetime | None
    message_id: str
    ref_to_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserMessage:
    """``eb:UserMessage``: a business message (ebMS3 Core §5.2.2)."""

    mpc: str | None
    info: MessageInfo
    from_party: Party
    to_party: Party
    agreement_ref: str | None
    agreement_ref_type: str | None
    agreement_pmode: str | None
    service: str
    service_type: str | None
    action: str
    conversation_id: str
    properties: tuple[Property, ...] = ()
    parts: tuple[PartInfo, ...] = ()

    def property_value(self, name: str) -> str | None:
        """The value of the MessageProperty called ``name`` (``originalSender``, ``finalRecipient`` …), or None."""
        return next((p.value for p in self.properties if p.name == name), None)


@dataclass(frozen=True, slots=True)
class MessagePartNRInformation:
    """One ``ebbp:MessagePartNRInformation/ds:Reference`` of a receipt: the part, its transforms' algorithms, the
    digest method and value (base64 without whitespace)."""

    uri: str
    digest_method: str
    digest_value: str
    transforms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Receipt:
    """``eb:Receipt``. ``content`` holds its child elements as received, or those to write (an
    ``ebbp:NonRepudiationInformation``, a copy of the ``eb:UserMessage``); ``references`` are the non-repudiation
    references read from it. When writing a receipt with no ``content``, ``references`` are written as
    ``ebbp:NonRepudiationInformation``. Equality compares ``references`` only."""

    content: tuple[etree._Element, ...] = field(default=(), compare=False)
    references: tuple[MessagePartNRInformation, ...] = ()


@dataclass(frozen=True, slots=True)
class Error:
    """``eb:Error`` (ebMS3 Core §6.2). ``error_code`` is ``EBMS:0001``-style (a bare ``0101`` is read as
    ``EBMS:0101``), ``severity`` lower case (``failure``, ``warning``)."""

    error_code: str
    severity: str
    category: str | None = None
    origin: str | None = None
    short_description: str | None = None
    ref_to_message_in_error: str | None = None
    description: str | None = None
    description_lang: str | None = None
    detail: str | None = None

    @property
    def ebms_error(self) -> EbmsError | None:
        """The ebMS3 error this code names, None for a code ebMS3 does not define."""
        return EbmsError.from_code(self.error_code)

    @classmethod
    def of(cls, error: EbmsError, *, ref_to_message_in_error: str | None = None, description: str | None = None,
           detail: str | None = None, severity: str | None = None, origin: str = "ebMS") -> Error:
        """The ``eb:Error`` reporting ``error`` (its code, short description, category and default severity)."""
        return cls(error_code=error.code, severity=severity or error.severity, category=error.category, origin=origin,
                   short_description=error.short_description, ref_to_message_in_error=ref_to_message_in_error,
                   description=description, description_lang="en" if description else None, detail=detail)


@dataclass(frozen=True, slots=True)
class PullRequest:
    """``eb:PullRequest`` for the messages of one MPC (None: the default MPC)."""

    mpc: str | None = None


@dataclass(frozen=True, slots=True)
class SignalMessage:
    """``eb:SignalMessage``: MessageInfo and a Receipt, Errors or a PullRequest."""

    info: MessageInfo
    receipt: Receipt | None = None
    errors: tuple[Error, ...] = ()
    pull_request: PullRequest | None = None


@dataclass(frozen=True, slots=True)
class Messaging:
    """The ``eb:Messaging`` header: its units, its ``wsu:Id`` (or plain ``id``), its SOAP mustUnderstand and, for
    a multi-hop message, the UserMessage of ``ebint:RoutingInput``."""

    user_messages: tuple[UserMessage, ...] = ()
    signal_messages: tuple[SignalMessage, ...] = ()
    element_id: str | None = None
    must_understand: bool = False
    routing_input: UserMessage | None = None


def part_information(reference: etree._Element) -> MessagePartNRInformation:
    """What a ``ds:Reference`` says (of a signature, or quoted by a receipt): URI, transforms, digest method and value."""
    method = reference.find(f"{{{ns.DS}}}DigestMethod")
    value = reference.find(f"{{{ns.DS}}}DigestValue")
    transforms = reference.findall(f"{{{ns.DS}}}Transforms/{{{ns.DS}}}Transform")
    return MessagePartNRInformation(
        uri=reference.get("URI") or "",
        digest_method=(method.get("Algorithm") or "") if method is not None else "",
        digest_value="".join((value.text or "").split()) if value is not None else "",
        transforms=tuple(transform.get("Algorithm") or "" for transform in transforms[:MAX_ITEMS]),
    )


def kind(messaging: Messaging) -> str:
    """``user-message``, ``receipt``, ``error``, ``pull-request``, or ``bundle`` for more than one unit (or a signal
    holding more than one kind of thing)."""
    units = len(messaging.user_messages) + len(messaging.signal_messages)
    if units == 0:
        raise ValueError("an eb:Messaging without units has no kind")
    if units > 1:
        return "bundle"
    if messaging.user_messages:
        return "user-message"
    signal = messaging.signal_messages[0]
    kinds = [name for name, present in (("receipt", signal.receipt is not None), ("error", bool(signal.errors)),
                                        ("pull-request", signal.pull_request is not None)) if present]
    return kinds[0] if len(kinds) == 1 else "bundle"


def new_message_id(host: str) -> str:
    """A new ``eb:MessageId``: ``uuid@host``, an RFC 2822 msg-id without its angle brackets (eDelivery AS4 §1.4.2.2)."""
    if not _MSG_ID_RIGHT.match(host or ""):
        raise ValueError(f"{host!r} cannot be the right-hand side of an RFC 2822 msg-id")
    return f"{uuid.uuid4()}@{host}"


def utc_now() -> datetime:
    """The current time in UTC to the millisecond, as eb:Timestamp carries it."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --- reading --------------------------------------------------------------------------------------------------------


def read_messaging(packet_or_root: Packet | etree._Element) -> Messaging:
    """The ``eb:Messaging`` header of a :class:`~connectors.as4.packaging.Packet` or of a SOAP envelope element."""
    root = getattr(packet_or_root, "root", packet_or_root)
    if not isinstance(root, etree._Element):
        raise TypeError(f"read_messaging needs a Packet or an lxml element, not {type(packet_or_root).__name__}")
    soap = etree.QName(root).namespace if isinstance(root.tag, str) else None
    if soap not in ns.SOAP_PREFIX or etree.QName(root).localname != "Envelope":
        raise As4Error(EbmsError.INVALID_HEADER, f"the root element is {root.tag}, not a SOAP Envelope", where="/")
    s = ns.SOAP_PREFIX[soap]
    header_path = f"/{s}:Envelope/{s}:Header"
    headers = list(root.iterchildren(f"{{{soap}}}Header"))
    if len(headers) != 1:
        raise As4Error(EbmsError.INVALID_HEADER, "the envelope has no SOAP Header" if not headers else "the envelope has several SOAP Headers",
                       where=header_path)
    header = headers[0]
    blocks = list(header.iterchildren(f"{{{ns.EB}}}Messaging"))
    if len(blocks) != 1:
        raise As4Error(EbmsError.INVALID_HEADER, "the SOAP Header has no eb:Messaging" if not blocks else
                       f"the SOAP Header has {len(blocks)} eb:Messaging headers", where=f"{header_path}/eb:Messaging")
    element = blocks[0]
    path = f"{header_path}/eb:Messaging"
    users = list(element.iterchildren(f"{{{ns.EB}}}UserMessage"))
    signals = list(element.iterchildren(f"{{{ns.EB}}}SignalMessage"))
    if not users and not signals:
        raise As4Error(EbmsError.INVALID_HEADER, "eb:Messaging holds no UserMessage and no SignalMessage", where=path)
    if len(users) + len(signals) > MAX_ITEMS:
        raise As4Error(EbmsError.INVALID_HEADER, f"eb:Messaging holds more than {MAX_ITEMS} units", where=path)
    routing_input = None
    for block in header:
        if isinstance(block.tag, str) and etree.QName(block).namespace in ns.EBINT and etree.QName(block).localname == "RoutingInput":
            routed = [c for c in block if isinstance(c.tag, str) and etree.QName(c).localname == "UserMessage"]
            if routed:
                routing_input = _read_user_message(routed[0], f"{header_path}/ebint:RoutingInput/ebint:UserMessage", _ROUTED)
            break
    flag = next((element.get(f"{{{uri}}}mustUnderstand") for uri in (soap, *ns.SOAP_PREFIX) if element.get(f"{{{uri}}}mustUnderstand")), None)
    return Messaging(
        user_messages=tuple(_read_user_message(u, _indexed(f"{path}/eb:UserMessage", i, len(users)), _EB_ONLY)
                            for i, u in enumerate(users)),
        signal_messages=tuple(_read_signal(m, _indexed(f"{path}/eb:SignalMessage", i, len(signals)))
                              for i, m in enumerate(signals)),
        element_id=element.get(_WSU_ID) or element.get("id"),
        must_understand=(flag or "").strip().lower() in ("true", "1"),
        routing_input=routing_input,
    )


def _indexed(path: str, index: int, count: int) -> str:
    return f"{path}[{index + 1}]" if count > 1 else path


class _Reader:
    """Reads the children of one unit, knowing its path and, once read, its MessageId (for errors)."""

    def __init__(self, namespaces: tuple[str, ...]) -> None:
        self.namespaces = namespaces
        self.message_id: str | None = None

    def fail(self, message: str, where: str) -> As4Error:
        return As4Error(EbmsError.INVALID_HEADER, message, where=where, ref_to_message_id=self.message_id)

    def children(self, element: etree._Element | None, name: str, where: str) -> list[etree._Element]:
        if element is None:
            return []
        found = [c for c in element if isinstance(c.tag, str) and etree.QName(c).localname == name
                 and etree.QName(c).namespace in self.namespaces]
        if len(found) > MAX_ITEMS:
            raise self.fail(f"more than {MAX_ITEMS} eb:{name} elements", where)
        return found

    def child(self, element: etree._Element | None, name: str, where: str, *, required: bool = False) -> etree._Element | None:
        found = self.children(element, name, where)
        if not found and required:
            raise self.fail(f"eb:{name} is missing", f"{where}/eb:{name}")
        return found[0] if found else None

    def text(self, element: etree._Element | None, name: str, where: str, *, required: bool = False,
             allow_empty: bool = False, limit: int = MAX_VALUE_LENGTH) -> str | None:
        node = self.child(element, name, where, required=required)
        if node is None:
            return None
        value = self.value(node, f"{where}/eb:{name}", limit=limit)
        if required and not value and not allow_empty:
            raise self.fail(f"eb:{name} is empty", f"{where}/eb:{name}")
        return value

    def value(self, node: etree._Element, where: str, *, limit: int = MAX_VALUE_LENGTH) -> str:
        text = "".join(node.xpath("text()")).strip()
        if len(text) > limit:
            raise self.fail(f"the value is {len(text)} characters long, more than {limit}", where)
        return text

    def attribute(self, node: etree._Element | None, name: str, where: str) -> str | None:
        if node is None:
            return None
        value = node.get(name)
        if value is not None and len(value) > MAX_VALUE_LENGTH:
            raise self.fail(f"attribute {name} is {len(value)} characters long, more than {MAX_VALUE_LENGTH}", f"{where}/@{name}")
        return value

    def message_info(self, unit: etree._Element, where: str) -> MessageInfo:
        path = f"{where}/eb:MessageInfo"
        info = self.child(unit, "MessageInfo", where, required=True)
        message_id = self.text(info, "MessageId", path, required=True)
        self.message_id = message_id
        stamp = self.text(info, "Timestamp", path)
        ref = self.text(info, "RefToMessageId", path) or None
        return MessageInfo(timestamp=_timestamp(stamp, f"{path}/eb:Timestamp", self) if stamp else None,
                           message_id=message_id, ref_to_message_id=ref)

    def properties(self, holder: etree._Element | None, where: str) -> tuple[Property, ...]:
        found = []
        for index, node in enumerate(self.children(holder, "Property", where)):
            path = f"{where}/eb:Property[{index + 1}]"
            name = self.attribute(node, "name", path)
            if not name:
                raise self.fail("eb:Property has no name", path)
            found.append(Property(name=name, value=self.value(node, path), type=self.attribute(node, "type", path)))
        return tuple(found)


def _timestamp(text: str, where: str, reader: _Reader) -> datetime:
    match = _TIMESTAMP.match(text)
    if match is None:
        raise reader.fail(f"{text[:60]!r} is not an xsd:dateTime", where)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        offset = timezone.utc  # without a zone, ebMS3 means UTC (Core §5.2.2.2)
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            offset = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=offset).astimezone(timezone.utc)
    except ValueError as exc:
        raise reader.fail(f"{text!r} is not a valid time: {exc}", where) from None


def _read_party(reader: _Reader, party_info: etree._Element | None, name: str, where: str) -> Party:
    path = f"{where}/eb:PartyInfo/eb:{name}"
    node = reader.child(party_info, name, f"{where}/eb:PartyInfo", required=True)
    ids = []
    for index, party in enumerate(reader.children(node, "PartyId", path)):
        value = reader.value(party, f"{path}/eb:PartyId[{index + 1}]")
        if not value:
            raise reader.fail("eb:PartyId is empty", f"{path}/eb:PartyId[{index + 1}]")
        ids.append(PartyId(value=value, type=reader.attribute(party, "type", path) or None))
    if not ids:
        raise reader.fail(f"eb:{name} has no eb:PartyId", f"{path}/eb:PartyId")
    return Party(party_ids=tuple(ids), role=reader.text(node, "Role", path) or None)


def _read_user_message(unit: etree._Element, where: str, namespaces: tuple[str, ...]) -> UserMessage:
    reader = _Reader(namespaces)
    info = reader.message_info(unit, where)
    party_info = reader.child(unit, "PartyInfo", where, required=True)
    from_party = _read_party(reader, party_info, "From", where)
    to_party = _read_party(reader, party_info, "To", where)
    collab_path = f"{where}/eb:CollaborationInfo"
    collaboration = reader.child(unit, "CollaborationInfo", where, required=True)
    agreement = reader.child(collaboration, "AgreementRef", collab_path)
    service = reader.child(collaboration, "Service", collab_path, required=True)
    service_value = reader.value(service, f"{collab_path}/eb:Service")
    if not service_value:
        raise reader.fail("eb:Service is empty", f"{collab_path}/eb:Service")
    parts = []
    payload_path = f"{where}/eb:PayloadInfo"
    part_nodes = reader.children(reader.child(unit, "PayloadInfo", where), "PartInfo", payload_path)
    for index, node in enumerate(part_nodes):
        path = _indexed(f"{payload_path}/eb:PartInfo", index, len(part_nodes))
        schema = reader.child(node, "Schema", path)
        description = reader.text(node, "Description", path, limit=MAX_TEXT_LENGTH)
        parts.append(PartInfo(
            href=reader.attribute(node, "href", path) or None,
            properties=reader.properties(reader.child(node, "PartProperties", path), f"{path}/eb:PartProperties"),
            schema_location=reader.attribute(schema, "location", f"{path}/eb:Schema"),
            schema_version=reader.attribute(schema, "version", f"{path}/eb:Schema"),
            schema_namespace=reader.attribute(schema, "namespace", f"{path}/eb:Schema"),
            description=description or None,
        ))
    return UserMessage(
        mpc=reader.attribute(unit, "mpc", where) or None,
        info=info,
        from_party=from_party,
        to_party=to_party,
        agreement_ref=reader.value(agreement, f"{collab_path}/eb:AgreementRef") if agreement is not None else None,
        agreement_ref_type=reader.attribute(agreement, "type", f"{collab_path}/eb:AgreementRef"),
        agreement_pmode=reader.attribute(agreement, "pmode", f"{collab_path}/eb:AgreementRef"),
        service=service_value,
        service_type=reader.attribute(service, "type", f"{collab_path}/eb:Service") or None,
        action=reader.text(collaboration, "Action", collab_path, required=True),
        conversation_id=reader.text(collaboration, "ConversationId", collab_path, required=True, allow_empty=True),
        properties=reader.properties(reader.child(unit, "MessageProperties", where), f"{where}/eb:MessageProperties"),
        parts=tuple(parts),
    )


def _read_signal(unit: etree._Element, where: str) -> SignalMessage:
    reader = _Reader(_EB_ONLY)
    info = reader.message_info(unit, where)
    pull = reader.child(unit, "PullRequest", where)
    receipt_node = reader.child(unit, "Receipt", where)
    error_nodes = reader.children(unit, "Error", where)
    if pull is None and receipt_node is None and not error_nodes:
        raise reader.fail("eb:SignalMessage holds no PullRequest, Receipt or Error", where)
    errors = tuple(_read_error(reader, node, _indexed(f"{where}/eb:Error", i, len(error_nodes)))
                   for i, node in enumerate(error_nodes))
    return SignalMessage(
        info=info,
        receipt=_read_receipt(reader, receipt_node, f"{where}/eb:Receipt") if receipt_node is not None else None,
        errors=errors,
        pull_request=PullRequest(mpc=reader.attribute(pull, "mpc", f"{where}/eb:PullRequest") or None) if pull is not None else None,
    )


def _read_error(reader: _Reader, node: etree._Element, where: str) -> Error:
    code = (reader.attribute(node, "errorCode", where) or "").strip()
    if not code:
        raise reader.fail("eb:Error has no errorCode", f"{where}/@errorCode")
    if re.fullmatch(r"\d{4}", code):
        code = "EBMS:" + code
    description = reader.child(node, "Description", where)
    return Error(
        error_code=code,
        severity=(reader.attribute(node, "severity", where) or "").strip().lower(),
        category=reader.attribute(node, "category", where),
        origin=reader.attribute(node, "origin", where),
        short_description=reader.attribute(node, "shortDescription", where),
        ref_to_message_in_error=reader.attribute(node, "refToMessageInError", where) or None,
        description=reader.value(description, f"{where}/eb:Description", limit=MAX_TEXT_LENGTH) if description is not None else None,
        description_lang=description.get(_XML_LANG) if description is not None else None,
        detail=reader.text(node, "ErrorDetail", where, limit=MAX_TEXT_LENGTH),
    )


def _read_receipt(reader: _Reader, node: etree._Element, where: str) -> Receipt:
    content = tuple(child for child in node if isinstance(child.tag, str))
    references = []
    nri_path = f"{where}/ebbp:NonRepudiationInformation"
    for nri in node.iterchildren(f"{{{ns.EBBP}}}NonRepudiationInformation"):
        for part in nri.iterchildren(f"{{{ns.EBBP}}}MessagePartNRInformation"):
            for ref in part.iterchildren(f"{{{ns.DS}}}Reference"):
                if len(references) >= MAX_ITEMS:
                    raise As4Error(EbmsError.INVALID_RECEIPT, f"the receipt quotes more than {MAX_ITEMS} references",
                                   where=nri_path, ref_to_message_id=reader.message_id)
                references.append(part_information(ref))
    return Receipt(content=content, references=tuple(references))
