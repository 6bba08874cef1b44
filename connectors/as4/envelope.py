"""Writing the ebMS3 header: a SOAP envelope whose ``eb:Messaging`` holds the given units and whose (empty) Body, both
carrying a ``wsu:Id`` for the signature; the ``wsse:Security`` header is the signing code's to add.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from lxml import etree

from connectors.as4 import ns
from connectors.as4.ebms import MessageInfo, MessagePartNRInformation, Property, SignalMessage, UserMessage, utc_now

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_WSU_ID = f"{{{ns.WSU}}}Id"


def build_envelope(*units: UserMessage | SignalMessage, soap_version: str = "1.2",
                   body: etree._Element | Sequence[etree._Element] | None = None,
                   messaging_id: str | None = None, body_id: str | None = None) -> etree._Element:
    """A SOAP envelope whose header is the ``eb:Messaging`` of ``units`` (signals first, as the ebMS3 schema
    orders them) with ``mustUnderstand`` and a ``wsu:Id``, and whose Body (with a ``wsu:Id``) is empty or holds
    (a copy of ``body``). Ids are made up when not given."""
    if soap_version not in ns.SOAP_NS:
        raise ValueError(f"SOAP version {soap_version!r} is not 1.1 or 1.2")
    if not units:
        raise ValueError("an eb:Messaging needs at least one UserMessage or SignalMessage")
    soap = ns.SOAP_NS[soap_version]
    prefix = ns.SOAP_PREFIX[soap]
    envelope = etree.Element(f"{{{soap}}}Envelope", nsmap={prefix: soap, "eb": ns.EB, "wsu": ns.WSU})
    header = etree.SubElement(envelope, f"{{{soap}}}Header")
    messaging = etree.SubElement(header, _eb("Messaging"))
    messaging.set(f"{{{soap}}}mustUnderstand", "true" if soap_version == "1.2" else "1")
    messaging.set(_WSU_ID, messaging_id or f"messaging-{uuid.uuid4()}")
    for unit in units:
        if not isinstance(unit, (UserMessage, SignalMessage)):
            raise TypeError(f"{type(unit).__name__} is no UserMessage or SignalMessage")
    for unit in units:
        if isinstance(unit, SignalMessage):
            _write_signal(messaging, unit)
    for unit in units:
        if isinstance(unit, UserMessage):
            _write_user_message(messaging, unit)
    soap_body = etree.SubElement(envelope, f"{{{soap}}}Body")
    soap_body.set(_WSU_ID, body_id or f"body-{uuid.uuid4()}")
    if body is not None:
        for child in ([body] if isinstance(body, etree._Element) else body):
            soap_body.append(copy.deepcopy(child))
    return envelope


def non_repudiation_information(references: Iterable[MessagePartNRInformation]) -> etree._Element:
    """An ``ebbp:NonRepudiationInformation`` quoting ``references`` (for receipts built from a parsed model; to
    quote a received signature, copy its ``ds:Reference`` elements instead: they keep InclusiveNamespaces)."""
    nri = etree.Element(f"{{{ns.EBBP}}}NonRepudiationInformation", nsmap={"ebbp": ns.EBBP, "ds": ns.DS})
    for reference in references:
        part = etree.SubElement(nri, f"{{{ns.EBBP}}}MessagePartNRInformation")
        ref = etree.SubElement(part, f"{{{ns.DS}}}Reference", URI=reference.uri)
        if reference.transforms:
            transforms = etree.SubElement(ref, f"{{{ns.DS}}}Transforms")
            for algorithm in reference.transforms:
                etree.SubElement(transforms, f"{{{ns.DS}}}Transform", Algorithm=algorithm)
        etree.SubElement(ref, f"{{{ns.DS}}}DigestMethod", Algorithm=reference.digest_method)
        etree.SubElement(ref, f"{{{ns.DS}}}DigestValue").text = reference.digest_value
    return nri


def format_timestamp(moment: datetime) -> str:
    """``moment`` as eb:Timestamp writes it: UTC, ``Z``, milliseconds (microseconds when it has them)."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs a time zone")
    moment = moment.astimezone(timezone.utc)
    micro = moment.microsecond
    fraction = "" if not micro else f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _eb(name: str) -> str:
    return f"{{{ns.EB}}}{name}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, /, **attributes: str | None) -> etree._Element:
    element = etree.SubElement(parent, _eb(tag), {k: v for k, v in attributes.items() if v is not None})
    if text is not None:
        element.text = text
    return element


def _write_info(parent: etree._Element, info: MessageInfo) -> None:
    node = _sub(parent, "MessageInfo")
    _sub(node, "Timestamp", format_timestamp(info.timestamp or utc_now()))
    _sub(node, "MessageId", info.message_id)
    if info.ref_to_message_id:
        _sub(node, "RefToMessageId", info.ref_to_message_id)


def _write_properties(parent: etree._Element, name: str, properties: tuple[Property, ...]) -> None:
    if properties:
        holder = _sub(parent, name)
        for prop in properties:
            _sub(holder, "Property", prop.value, name=prop.name, type=prop.type)


def _write_user_message(messaging: etree._Element, message: UserMessage) -> None:
    unit = _sub(messaging, "UserMessage", mpc=message.mpc)
    _write_info(unit, message.info)
    party_info = _sub(unit, "PartyInfo")
    for name, party in (("From", message.from_party), ("To", message.to_party)):
        node = _sub(party_info, name)
        for party_id in party.party_ids:
            _sub(node, "PartyId", party_id.value, type=party_id.type)
        if party.role is not None:
            _sub(node, "Role", party.role)
    collaboration = _sub(unit, "CollaborationInfo")
    if message.agreement_ref is not None:
        _sub(collaboration, "AgreementRef", message.agreement_ref, type=message.agreement_ref_type, pmode=message.agreement_pmode)
    _sub(collaboration, "Service", message.service, type=message.service_type)
    _sub(collaboration, "Action", message.action)
    _sub(collaboration, "ConversationId", message.conversation_id)
    _write_properties(unit, "MessageProperties", message.properties)
    if message.parts:
        payload = _sub(unit, "PayloadInfo")
        for part in message.parts:
            node = _sub(payload, "PartInfo", href=part.href)
            if part.schema_location is not None:
                _sub(node, "Schema", location=part.schema_location, version=part.schema_version, namespace=part.schema_namespace)
            if part.description is not None:
                _sub(node, "Description", part.description).set(_XML_LANG, "en")
            _write_properties(node, "PartProperties", part.properties)


def _write_signal(messaging: etree._Element, signal: SignalMessage) -> None:
    unit = _sub(messaging, "SignalMessage")
    _write_info(unit, signal.info)
    if signal.pull_request is not None:
        _sub(unit, "PullRequest", mpc=signal.pull_request.mpc)
    if signal.receipt is not None:
        receipt = _sub(unit, "Receipt")
        if signal.receipt.content:
            for child in signal.receipt.content:
                receipt.append(copy.deepcopy(child))
        elif signal.receipt.references:
            receipt.append(non_repudiation_information(signal.receipt.references))
    for error in signal.errors:
        node = _sub(unit, "Error", category=error.category, errorCode=error.error_code, origin=error.origin,
                    refToMessageInError=error.ref_to_message_in_error, severity=error.severity,
                    shortDescription=error.short_description)
        if error.description is not None:
            description = _sub(node, "Description", error.description)
            if error.description_lang is not None:
                description.set(_XML_LANG, error.description_lang)
        if error.detail is not None:
            _sub(node, "ErrorDetail", error.detail)
