"""A local IPPC ePhyto Hub: the SOAP 1.1 ``DeliveryService`` with switches for misbehaving.

::

    POST   /hub/DeliveryService   SOAP: DeliverEnvelope, GetEnvelopeTrackingInfo, GetImportEnvelopeHeaders,
                                  PULLSingleImportEnvelope, Acknowledge*/AdvancedAcknowledge*/AcknowledgeFailed*
                                  EnvelopeReceipt, DeliverCountryResponseEnvelope, ValidatePhytoXML, GetActiveNppos
    POST   /control               JSON: faults for the next calls, how deliveries end, the delivery delay
    GET    /received              the envelopes delivered, in arrival order
    DELETE /state                 forget everything

Envelopes stay ``PendingDelivery`` until the importing NPPO acknowledges them (``AcknowledgeEnvelopeReceipt`` and
friends) or, when ``delivery_delay`` is set, until that many seconds have passed; they then end as ``tracking``
says (``Delivered`` by default). Sandbox assumption, not documented Hub behaviour: an envelope delivered again with the
same header and Content gets the same hubDeliveryNumber. The caller is identified by the ASGI TLS extension's client
certificate when the server provides one, else by the envelope's ``From``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from pydantic import Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.ephyto_hub.connector import ENTITIES_NS, HUB_NS
from connectors.sandbox_faults import DroppedResponse, FaultControl, queue_fault, retry_after_headers, take_fault
from hub.errors import InputError
from hub.xmlsafe import parse_xml

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_HEADER_FIELDS = ("From", "To", "CertificateType", "CertificateStatus", "NPPOCertificateNumber")


class Control(FaultControl):
    """What ``POST /control`` accepts. A fault is queued for the next ``count`` calls of ``target``; ``"none"``
    clears the queue. ``tracking`` (with ``message``) and ``delivery_delay`` stay in force until changed or reset."""

    fault: Literal["unavailable", "server_error", "slow", "malformed", "drop", "refuse", "none"] | None = None
    retry_after: float | None = None
    target: Literal["DeliverEnvelope", "GetEnvelopeTrackingInfo"] = "DeliverEnvelope"
    tracking: Literal["Delivered", "DeliveredWithWarnings", "FailedDelivery", "DeliveredNotReadable"] | None = None
    message: str | None = None
    delivery_delay: float | None = Field(default=None, ge=0)


@dataclass
class StoredEnvelope:
    """One envelope the sandbox holds for its importing NPPO."""

    number: str
    header: dict[str, str]
    content: str | None
    key: tuple
    delivered_at: float
    outcome: tuple[str, str | None]
    tracking: str = "PendingDelivery"
    error_message: str | None = None
    deliveries: int = 1

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
        if envelope.tracking == "PendingDelivery" and delay is not None and time.monotonic() - envelope.delivered_at >= delay:
            envelope.tracking, envelope.error_message = envelope.outcome


class SoapFault(Exception):
    """Answered as a SOAP fault carrying ``HubWebException``."""


class _Sandbox:
    def __init__(self, *, nppos: tuple[str, ...], delivery_delay: float | None = None) -> None:
        self.nppos = nppos
        self.state = _State(delivery_delay=delivery_delay)
        self._numbers = itertools.count(1)

    async def service(self, request: Request) -> Response:
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
            answer = handler(operation, _caller(request))
        except InputError as exc:
            return _soap_fault(f"unreadable request: {exc}", client=True)
        except SoapFault as exc:
            return _soap_fault(str(exc))
        return _soap(_element(f"{name}Response", *answer))

    def op_DeliverEnvelope(self, request: etree._Element, caller: str | None) -> list:
        env = _child(request, "env")
        header = {name: _text(env, name, ENTITIES_NS, required=True) for name in _HEADER_FIELDS}
        if caller and caller != header["From"]:
            raise SoapFault(f"NPPO {caller} cannot send envelopes From {header['From']}")
        if header["To"] not in self.nppos:
            raise SoapFault(f"{header['To']} is not an active NPPO on this Hub")
        content = _text(env, "Content", ENTITIES_NS)
        key = tuple(header.values()) + (hashlib.sha256((content or "").encode()).hexdigest(),)
        envelope = next((e for e in self.state.envelopes.values() if e.key == key), None)
        if envelope is not None:
            envelope.deliveries += 1
        else:
            number = f"HUB-{time.strftime('%Y%m%d')}-{next(self._numbers):06d}"
            envelope = StoredEnvelope(number, header, content, key, time.monotonic(), self.state.tracking)
            self.state.envelopes[number] = envelope
        return [_header("DeliverEnvelopeResult", envelope, tracking=False)]

    def op_DeliverCountryResponseEnvelope(self, request: etree._Element, caller: str | None) -> list:
        env = _child(request, "CountryResponseEnvelope")
        header = {name: _text(env, name, ENTITIES_NS, required=True) for name in _HEADER_FIELDS}
        others = [c for c in env.iterchildren(etree.Element) if etree.QName(c).namespace != ENTITIES_NS]
        content = etree.tostring(others[0], encoding="unicode") if others else None
        number = f"HUB-{time.strftime('%Y%m%d')}-{next(self._numbers):06d}"
        envelope = StoredEnvelope(number, header, content, (number,), time.monotonic(), self.state.tracking)
        self.state.envelopes[number] = envelope
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
        country = _text(request, "countryCode", HUB_NS) or caller
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
        self._finish(self._envelope(request, caller), "FailedDelivery", _text(request, "message", HUB_NS))
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

    async def received(self, request: Request) -> Response:
        return JSONResponse({"received": [e.as_json() for e in self.state.envelopes.values()]})

    async def reset(self, request: Request) -> Response:
        self.state = _State()
        return Response(status_code=204)


def create_ephyto_hub_sandbox(*, nppos: tuple[str, ...] = ("FR", "US", "EC", "NO"), delivery_delay: float | None = None) -> Starlette:
    """The sandbox Hub as an ASGI app; ``nppos`` are the active NPPOs (``GetActiveNppos``, valid ``To`` values).
    With ``delivery_delay``, an envelope no importing NPPO pulls is taken as delivered after that many seconds (what
    ``hub serve`` uses, having no importing NPPO of its own)."""
    sandbox = _Sandbox(nppos=tuple(nppos), delivery_delay=delivery_delay)
    app = Starlette(routes=[
        Route("/hub/DeliveryService", sandbox.service, methods=["POST"]),
        Route("/control", sandbox.control, methods=["POST"]),
        Route("/received", sandbox.received, methods=["GET"]),
        Route("/state", sandbox.reset, methods=["DELETE"]),
    ])
    app.state.sandbox = sandbox
    return app


def _caller(request: Request) -> str | None:
    chain = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    if not chain:
        return None
    certificate = x509.load_pem_x509_certificate(chain[0].encode() if isinstance(chain[0], str) else chain[0])
    values = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(values[0].value) if values else None


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
