"""A local IPPC ePhyto Hub: the SOAP 1.1 ``DeliveryService`` with switches for misbehaving.

::

    POST   /hub/DeliveryService   SOAP: DeliverEnvelope, GetEnvelopeTrackingInfo, GetImportEnvelopeHeaders,
                                  PULLSingleImportEnvelope, Acknowledge*/AdvancedAcknowledge*/AcknowledgeFailed*
                                  EnvelopeReceipt, DeliverCountryResponseEnvelope, ValidatePhytoXML, GetActiveNppos
    POST   /control               JSON: faults for the next calls, how deliveries end, the delivery delay
    POST   /control/envelopes     JSON: queue an envelope for an NPPO as if a foreign NPPO had delivered it
    GET    /received              every envelope the Hub holds, in arrival order
    DELETE /state                 forget everything

An envelope is listed by ``GetImportEnvelopeHeaders`` for the NPPO it is addressed to (``To``) while it is
``PendingDelivery``; that NPPO pulls it (``PULLSingleImportEnvelope``) and acknowledges it, which ends the sender's
tracking: ``AcknowledgeEnvelopeReceipt`` → ``Delivered``, ``AdvancedAcknowledgeEnvelopeReceipt`` →
``DeliveredWithWarnings`` with the warning as ``hubDeliveryErrorMessage``, ``AcknowledgeFailedEnvelopeReceipt`` →
``DeliveredNotReadable`` with the message (inferred: the Norwegian production client pairs that call with that value).
``DeliverCountryResponseEnvelope`` queues the importing NPPO's ``rsm:SPSAcknowledgement`` for the exporting NPPO the
same way, serialised as the envelope's ``Content``.

Envelopes delivered with ``DeliverEnvelope`` to an NPPO nobody plays end, when ``delivery_delay`` is set, once that
many seconds have passed, as ``tracking`` says (``Delivered`` by default); country responses and envelopes queued
with ``/control/envelopes`` wait for their NPPO. Sandbox assumptions, not documented Hub behaviour: an envelope
delivered again with the same header and Content gets the same hubDeliveryNumber; ``countryCode`` names the
importing NPPO when no client certificate does (in-process), and is ignored when one does.

The caller is the country (``C=``) of its TLS client certificate: from the ASGI TLS extension when the server gives
it, else from the connection uvicorn serves; in-process there is none, and the checks that need it are skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Literal

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.config_checks import COUNTRY_PATTERN
from connectors.ephyto_hub.connector import ENTITIES_NS, HUB_NS
from connectors.ephyto_hub.responses import SPS_ACKNOWLEDGEMENT, content_bytes
from connectors.sandbox_faults import DroppedResponse, FaultControl, queue_fault, retry_after_headers, take_fault
from hub.tls_peer import client_country
from hub.errors import InputError
from hub.xmlsafe import parse_xml

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_HEADER_FIELDS = ("From", "To", "CertificateType", "CertificateStatus", "NPPOCertificateNumber")
_TARGETS = Literal[
    "DeliverEnvelope", "GetEnvelopeTrackingInfo", "GetImportEnvelopeHeaders", "PULLSingleImportEnvelope",
    "AcknowledgeEnvelopeReceipt", "AdvancedAcknowledgeEnvelopeReceipt", "AcknowledgeFailedEnvelopeReceipt",
    "DeliverCountryResponseEnvelope",
]


class Control(FaultControl):
    """What ``POST /control`` accepts. A fault is queued for the next ``count`` calls of ``target``; ``"none"``
    clears the queue. ``tracking`` (with ``message``) and ``delivery_delay`` stay in force until changed or reset."""

    fault: Literal["unavailable", "server_error", "slow", "malformed", "drop", "refuse", "none"] | None = None
    retry_after: float | None = None
    target: _TARGETS = "DeliverEnvelope"
    tracking: Literal["Delivered", "DeliveredWithWarnings", "FailedDelivery", "DeliveredNotReadable"] | None = None
    message: str | None = None
    delivery_delay: float | None = Field(default=None, ge=0)


class QueuedEnvelope(BaseModel):
    """What ``POST /control/envelopes`` accepts: an envelope ``From`` a (foreign) NPPO ``To`` an active one, with its
    ``Content`` as the Hub carries it (a certificate or an ``rsm:SPSAcknowledgement``, as XML or base64). The other
    header fields default to what the Content says (``SPSExchangedDocument`` TypeCode, StatusCode and ID, or the
    certificate an acknowledgement references), else 851, 70 and ""."""

    model_config = ConfigDict(extra="forbid")

    From: str = Field(pattern=COUNTRY_PATTERN)
    To: str = Field(pattern=COUNTRY_PATTERN)
    Content: str
    CertificateType: int | None = None
    CertificateStatus: int | None = None
    NPPOCertificateNumber: str | None = None


@dataclass
class StoredEnvelope:
    """One envelope the sandbox holds for the NPPO it is addressed to. ``settles``: it may end after
    ``delivery_delay`` without that NPPO acting (envelopes from ``DeliverEnvelope``)."""

    number: str
    header: dict[str, str]
    content: str | None
    key: tuple
    delivered_at: float
    outcome: tuple[str, str | None]
    tracking: str = "PendingDelivery"
    error_message: str | None = None
    deliveries: int = 1
    settles: bool = True

    def as_json(self) -> dict:
        return {"hubDeliveryNumber": self.number, **self.header, "HUBTrackingInfo": self.tracking,
                "hubDeliveryErrorMessage": self.error_message, "deliveries": self.deliveries}


@dataclass
class _State:
    envelopes: dict[str, StoredEnvelope] = field(default_factory=dict)
    faults: list[Control] = field(default_factory=list)
    tracking: tuple[str, str | None] = ("Delivered", None)
    delivery_delay: float | None = None

    def take_fault(self, operation: str) -> Control | None:
        return take_fault(self.faults, operation)

    def settle(self, envelope: StoredEnvelope) -> None:
        delay = self.delivery_delay
        if not envelope.settles or envelope.tracking != "PendingDelivery" or delay is None:
            return
        if time.monotonic() - envelope.delivered_at >= delay:
            envelope.tracking, envelope.error_message = envelope.outcome


class SoapFault(Exception):
    """Answered as a SOAP fault carrying ``HubWebException``."""


class _Sandbox:
    def __init__(self, *, nppos: tuple[str, ...], delivery_delay: float | None = None) -> None:
        self.nppos = nppos
        self.delivery_delay = delivery_delay
        self.state = _State(delivery_delay=delivery_delay)
        self._numbers = itertools.count(1)

    async def service(self, request: Request) -> Response:
        caller = client_country(request)  # now: a client that stops waiting takes its connection away
        body = await request.body()
        try:
            operation = parse_xml(body, source="SOAP request").find(f"{{{SOAP_NS}}}Body/*")
            if operation is None or etree.QName(operation).namespace != HUB_NS:
                raise SoapFault("the SOAP Body holds no DeliveryService operation")
            name = etree.QName(operation).localname
            handler = getattr(self, f"op_{name}", None)
            if handler is None:
                raise SoapFault(f"the sandbox does not serve {name}")
            fault = self.state.take_fault(name)
            if fault is not None and fault.fault == "slow":
                await asyncio.sleep(fault.seconds)
            elif fault is not None:
                return _fault_response(fault)
            answer = handler(operation, caller)
        except InputError as exc:
            return _soap_fault(f"unreadable request: {exc}", client=True)
        except SoapFault as exc:
            return _soap_fault(str(exc))
        return _soap(_element(f"{name}Response", *answer))

    def op_DeliverEnvelope(self, request: etree._Element, caller: str | None) -> list:
        env = _child(request, "env")
        header = {name: _text(env, name, ENTITIES_NS, required=True) for name in _HEADER_FIELDS}
        self._check_route(header, caller)
        content = _text(env, "Content", ENTITIES_NS)
        key = tuple(header.values()) + (hashlib.sha256((content or "").encode()).hexdigest(),)
        envelope = next((e for e in self.state.envelopes.values() if e.key == key), None)
        if envelope is not None:
            envelope.deliveries += 1
        else:
            envelope = self._store(header, content, key=key)
        return [_header("DeliverEnvelopeResult", envelope, tracking=False)]

    def op_DeliverCountryResponseEnvelope(self, request: etree._Element, caller: str | None) -> list:
        env = _child(request, "CountryResponseEnvelope")
        header = {name: _text(env, name, ENTITIES_NS, required=True) for name in _HEADER_FIELDS}
        self._check_route(header, caller)
        answer = env.find(SPS_ACKNOWLEDGEMENT)
        content = etree.tostring(answer, encoding="unicode") if answer is not None else None
        envelope = self._store(header, content, settles=False)
        return [_header("DeliverCountryResponseEnvelopeResult", envelope, tracking=False)]

    def op_GetEnvelopeTrackingInfo(self, request: etree._Element, caller: str | None) -> list:
        number = _text(request, "hubTrackingNumber", HUB_NS, required=True)
        envelope = self.state.envelopes.get(number)
        if envelope is None:
            return [_element("GetEnvelopeTrackingInfoResult", *(_entity(name, "") for name in _HEADER_FIELDS[:2]),
                             _entity("CertificateType", "0"), _entity("CertificateStatus", "0"),
                             _entity("NPPOCertificateNumber", ""), _entity("hubDeliveryNumber", number),
                             _entity("HUBTrackingInfo", "EnvelopeNotExists"))]
        self.state.settle(envelope)
        return [_header("GetEnvelopeTrackingInfoResult", envelope)]

    def op_GetImportEnvelopeHeaders(self, request: etree._Element, caller: str | None) -> list:
        country = caller or _text(request, "countryCode", HUB_NS) or None
        headers = []
        for envelope in self.state.envelopes.values():
            self.state.settle(envelope)
            if envelope.tracking == "PendingDelivery" and (country is None or envelope.header["To"] == country):
                headers.append(_header("EnvelopeHeader", envelope, namespace=ENTITIES_NS))
        return [_element("GetImportEnvelopeHeadersResult", *headers)]

    def op_PULLSingleImportEnvelope(self, request: etree._Element, caller: str | None) -> list:
        envelope = self._envelope(request, caller)
        result = _header("PULLSingleImportEnvelopeResult", envelope)
        if envelope.content is not None:
            result.append(_entity("Content", envelope.content))
        return [result]

    def op_AcknowledgeEnvelopeReceipt(self, request: etree._Element, caller: str | None) -> list:
        self._finish(self._envelope(request, caller), "Delivered", None)
        return []

    def op_AdvancedAcknowledgeEnvelopeReceipt(self, request: etree._Element, caller: str | None) -> list:
        self._finish(self._envelope(request, caller), "DeliveredWithWarnings", _text(request, "warningMessage", HUB_NS))
        return [_element("return", "OK")]

    def op_AcknowledgeFailedEnvelopeReceipt(self, request: etree._Element, caller: str | None) -> list:
        self._finish(self._envelope(request, caller), "DeliveredNotReadable", _text(request, "message", HUB_NS))
        return [_element("return", "OK")]

    def op_ValidatePhytoXML(self, request: etree._Element, caller: str | None) -> list:
        text = _text(request, "ePhytoXML", HUB_NS) or ""
        try:
            root = parse_xml(text.encode("utf-8"), source="ePhytoXML")
        except InputError as exc:
            return [_validation("Schema", "SEVERE", str(exc))]
        if etree.QName(root).localname != "SPSCertificate":
            return [_validation("MandatoryElements", "SEVERE", f"the root element is {etree.QName(root).localname}, not SPSCertificate")]
        return []

    def op_GetActiveNppos(self, request: etree._Element, caller: str | None) -> list:
        nppos = [_entity("Nppo", None, _entity("Country", c), _entity("Receive", "true"), _entity("Send", "true")) for c in self.nppos]
        return [_element("GetActiveNpposResult", *nppos)]

    def _envelope(self, request: etree._Element, caller: str | None) -> StoredEnvelope:
        number = _text(request, "hubTrackingNumber", HUB_NS, required=True)
        envelope = self.state.envelopes.get(number)
        if envelope is None or (caller and envelope.header["To"] != caller):
            raise SoapFault(f"no envelope {number} for this NPPO")
        return envelope

    def _check_route(self, header: dict[str, str], caller: str | None) -> None:
        if caller and caller != header["From"]:
            raise SoapFault(f"NPPO {caller} cannot send envelopes From {header['From']}")
        if header["To"] not in self.nppos:
            raise SoapFault(f"{header['To']} is not an active NPPO on this Hub")

    def _store(self, header: dict[str, str], content: str | None, *, key: tuple | None = None, settles: bool = True) -> StoredEnvelope:
        number = f"HUB-{time.strftime('%Y%m%d')}-{next(self._numbers):06d}"
        envelope = StoredEnvelope(number, header, content, key or (number,), time.monotonic(), self.state.tracking, settles=settles)
        self.state.envelopes[number] = envelope
        return envelope

    def _finish(self, envelope: StoredEnvelope, tracking: str, message: str | None) -> None:
        if envelope.tracking != "PendingDelivery":
            raise SoapFault(f"envelope {envelope.number} is already {envelope.tracking}")
        envelope.tracking, envelope.error_message = tracking, message

    async def control(self, request: Request) -> Response:
        try:
            control = Control.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"detail": str(exc)}, 400)
        queue_fault(self.state.faults, control)
        if control.tracking is not None:
            self.state.tracking = (control.tracking, control.message)
        if "delivery_delay" in control.model_fields_set:
            self.state.delivery_delay = control.delivery_delay
        return JSONResponse({"faults": len(self.state.faults), "tracking": self.state.tracking[0]})

    async def queue_envelope(self, request: Request) -> Response:
        try:
            queued = QueuedEnvelope.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"detail": str(exc)}, 400)
        if queued.To not in self.nppos:
            return JSONResponse({"detail": f"{queued.To} is not an active NPPO on this Hub"}, 400)
        envelope = self._store(_queued_header(queued), queued.Content, settles=False)
        return JSONResponse({"hubDeliveryNumber": envelope.number, **envelope.header}, 201)

    async def received(self, request: Request) -> Response:
        return JSONResponse({"received": [e.as_json() for e in self.state.envelopes.values()]})

    async def reset(self, request: Request) -> Response:
        self.state = _State(delivery_delay=self.delivery_delay)
        return Response(status_code=204)


def create_ephyto_hub_sandbox(*, nppos: tuple[str, ...] = ("FR", "US", "EC", "NO"), delivery_delay: float | None = None) -> Starlette:
    """The sandbox Hub as an ASGI app; ``nppos`` are the active NPPOs (``GetActiveNppos``, valid ``To`` values).
    With ``delivery_delay``, an envelope delivered with ``DeliverEnvelope`` that its NPPO does not acknowledge is
    taken as delivered after that many seconds (what ``hub serve`` uses: nobody plays the importing NPPOs there)."""
    sandbox = _Sandbox(nppos=tuple(nppos), delivery_delay=delivery_delay)
    app = Starlette(routes=[
        Route("/hub/DeliveryService", sandbox.service, methods=["POST"]),
        Route("/control", sandbox.control, methods=["POST"]),
        Route("/control/envelopes", sandbox.queue_envelope, methods=["POST"]),
        Route("/received", sandbox.received, methods=["GET"]),
        Route("/state", sandbox.reset, methods=["DELETE"]),
    ])
    app.state.sandbox = sandbox
    return app


def _queued_header(queued: QueuedEnvelope) -> dict[str, str]:
    described_type, described_status, described_number = _described(queued.Content)
    return {
        "From": queued.From,
        "To": queued.To,
        "CertificateType": str(queued.CertificateType or described_type or 851),
        "CertificateStatus": str(queued.CertificateStatus or described_status or 70),
        "NPPOCertificateNumber": queued.NPPOCertificateNumber if queued.NPPOCertificateNumber is not None else (described_number or ""),
    }


def _described(content: str) -> tuple[str | None, str | None, str | None]:
    """(TypeCode, StatusCode, ID) of the certificate ``content`` is, or references; None where it says nothing."""
    try:
        root = parse_xml(content_bytes(content), source="Content")
    except InputError:
        return None, None, None
    if root.tag == SPS_ACKNOWLEDGEMENT:
        document = root.find("{*}SPSAcknowledgementDocument")
        references = [] if document is None else document.findall("{*}ReferenceSPSReferencedDocument")
        found = next((r for r in references if not (r.findtext("{*}RelationshipTypeCode") or "").strip()), None)
    else:
        found = root.find("{*}SPSExchangedDocument")
    if found is None:
        return None, None, None
    codes = [(found.findtext(f"{{*}}{tag}") or "").strip() for tag in ("TypeCode", "StatusCode")]
    number = (found.findtext("{*}ID") or "").strip() or None
    return (*(code if code.isdigit() else None for code in codes), number)


def _child(parent: etree._Element, name: str) -> etree._Element:
    found = parent.find(f"{{{HUB_NS}}}{name}")
    if found is None:
        raise SoapFault(f"{etree.QName(parent).localname} has no {name}")
    return found


def _text(parent: etree._Element, name: str, namespace: str, *, required: bool = False) -> str | None:
    found = parent.find(f"{{{namespace}}}{name}")
    if found is None and required:
        raise SoapFault(f"{etree.QName(parent).localname} has no {name}")
    return None if found is None else (found.text or "")


def _element(name: str, *children, namespace: str = HUB_NS) -> etree._Element:
    element = etree.Element(f"{{{namespace}}}{name}", nsmap={"ns": HUB_NS, "hub": ENTITIES_NS})
    for child in children:
        if isinstance(child, str):
            element.text = child
        else:
            element.append(child)
    return element


def _entity(name: str, text: str | None, *children) -> etree._Element:
    element = _element(name, *children, namespace=ENTITIES_NS)
    if text is not None:
        element.text = text
    return element


def _header(name: str, envelope: StoredEnvelope, *, tracking: bool = True, namespace: str = HUB_NS) -> etree._Element:
    element = _element(name, *(_entity(field, envelope.header[field]) for field in _HEADER_FIELDS), namespace=namespace)
    element.append(_entity("hubDeliveryNumber", envelope.number))
    if tracking:
        element.append(_entity("HUBTrackingInfo", envelope.tracking))
        if envelope.error_message:
            element.append(_entity("hubDeliveryErrorMessage", envelope.error_message))
    return element


def _validation(area: str, level: str, message: str) -> etree._Element:
    result = _element("ValidationResult")
    for name, value in (("area", area), ("level", level), ("msg", message)):
        etree.SubElement(result, name).text = value
    return result


def _soap(payload: etree._Element, status: int = 200) -> Response:
    envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS})
    etree.SubElement(envelope, f"{{{SOAP_NS}}}Body").append(payload)
    return Response(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"), status, media_type="text/xml")


def _soap_fault(message: str, *, client: bool = False, hub_exception: bool = True) -> Response:
    fault = etree.Element(f"{{{SOAP_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = "soap:Client" if client else "soap:Server"
    etree.SubElement(fault, "faultstring").text = message
    if hub_exception:
        detail = etree.SubElement(fault, "detail")
        detail.append(_element("HubWebException", _element("message", message)))
    return _soap(fault, 500)


def _fault_response(fault: Control) -> Response:
    if fault.fault == "unavailable":
        headers = retry_after_headers(fault.retry_after, seconds=round)
        return Response(b"<html><body>503 Service Unavailable</body></html>", 503, headers=headers, media_type="text/html")
    if fault.fault == "server_error":
        return _soap_fault("java.lang.NullPointerException", hub_exception=False)
    if fault.fault == "malformed":
        return Response(b"<<<\x00 this is not SOAP", 200, media_type="text/xml")
    if fault.fault == "drop":
        return DroppedResponse(b"<soap:Envelope")
    return _soap_fault("the envelope is refused: the importing NPPO does not accept this certificate type")
