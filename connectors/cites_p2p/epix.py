"""The EPIX CITES data exchange, ``urn:CitesDataExchange/v2/``: its SOAP 1.1 messages, built and read both ways.

What is the standard's (FACTS §4; the EPIX hub's ``soap_api_controller.rb``; the real sample
``samples/cites/epix-v2-GetNonFinalCitesCertificateResponse.xml``):

* the operations ``GetFinalCitesCertificate`` and ``GetNonFinalCitesCertificate`` (``CertificateNumber``,
  ``TokenId``, ``IsoCountryCode``), ``ConfirmQuantities`` (the same, plus ``ConfirmedQuantities/CitesPosition*``
  {``ID``, ``InspectedUnitQuantity``}; EPIX refuses an ``ID`` that is not a token) and ``ServiceState``
  (``IsoCountryCode``);
* the error names ``CertificateMissing``, ``CallerNotFound``, ``CalleeNotFound``, ``AdapterNotAvailable`` and
  ``Invalid Request``;
* the response that carries a permit: ``v2:Get…CitesCertificateResponse`` holding the ``CITESEPermit`` with an
  **unqualified** root (its children in the CITESEPermit 2 namespace), then ``Attachments*``
  {``AttachmentName``, ``AttachmentContent``} and ``Composite``, all unqualified.

What is **ours**, where the stored material is silent: a request's element is the operation's name in the v2
namespace with unqualified children, like the sample's response (read: also ``<Operation>Request``, as the Swiss
national adapter names them, and children in the v2 namespace); ``InspectedUnitQuantity`` is a decimal with an
optional ``unitCode`` (EPIX types it as an integer with no unit); the contents of ``ConfirmQuantitiesResponse``
(the number and the positions recorded) and ``ServiceStateResponse`` (``IsoCountryCode``, ``ServiceState`` =
``Available``); a fault's ``faultstring`` is the EPIX error name, its ``detail/v2:Message`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum

from lxml import etree

from hub.errors import HubError, InputError, UnknownDocumentError
from hub.mapping.cites_permit import permit_root_tags
from hub.namespaces import CITES_DATA_EXCHANGE_V1, CITES_DATA_EXCHANGE_V2, SOAP11_ENV
from hub.xmlsafe import parse_xml

V2 = CITES_DATA_EXCHANGE_V2
#: The exchange's namespace per version: a request says its version by its namespace, and is answered in it.
NAMESPACES = {"1": CITES_DATA_EXCHANGE_V1, "2": CITES_DATA_EXCHANGE_V2}
_VERSION_OF = {uri: version for version, uri in NAMESPACES.items()}
#: The root EPIX gives a permit inside its responses (no namespace): toolkit v2's, and toolkit v1's.
EPIX_PERMIT_ROOT = "CITESEPermit"
EPIX_PERMIT_ROOTS = {"1": "CBFShip", "2": EPIX_PERMIT_ROOT}
SERVICE_AVAILABLE = "Available"


class Operation(str, Enum):
    """The operations of the EPIX CITES data exchange."""

    GET_FINAL = "GetFinalCitesCertificate"
    GET_NON_FINAL = "GetNonFinalCitesCertificate"
    CONFIRM_QUANTITIES = "ConfirmQuantities"
    SERVICE_STATE = "ServiceState"

    @property
    def response(self) -> str:
        return f"{self.value}Response"


class EpixError(str, Enum):
    """The error names EPIX answers with, as it spells them."""

    CERTIFICATE_MISSING = "CertificateMissing"
    CALLER_NOT_FOUND = "CallerNotFound"
    CALLEE_NOT_FOUND = "CalleeNotFound"
    ADAPTER_NOT_AVAILABLE = "AdapterNotAvailable"
    INVALID_REQUEST = "Invalid Request"


class EpixFault(HubError):
    """A SOAP fault of the exchange: ``error`` is the EPIX error name (an :class:`EpixError` value, or whatever a
    peer wrote), ``detail`` says why. ``http_status`` is the status it travels with; ``remote`` tells a fault the
    peer answered from one raised here (e.g. the peer could not be reached)."""

    def __init__(self, error: EpixError | str, detail: str = "", *, http_status: int | None = None, remote: bool = False) -> None:
        self.error = error.value if isinstance(error, EpixError) else str(error)
        self.detail = detail
        self.http_status = http_status
        self.remote = remote
        super().__init__(f"{self.error}: {detail}" if detail else self.error)


@dataclass(frozen=True)
class CitesPosition:
    """One ``CitesPosition``: a permit line (its ``ID``) and the quantity inspected, with its unit when given."""

    id: str
    quantity: Decimal
    unit: str | None = None


@dataclass(frozen=True)
class CertificateRequest:
    """``GetFinalCitesCertificate`` (``final``) or ``GetNonFinalCitesCertificate``."""

    certificate_number: str
    final: bool
    token_id: str | None = None
    iso_country_code: str | None = None
    version: str = "2"

    @property
    def operation(self) -> Operation:
        return Operation.GET_FINAL if self.final else Operation.GET_NON_FINAL


@dataclass(frozen=True)
class ConfirmQuantitiesRequest:
    """``ConfirmQuantities``: the quantities the importing side inspected, per permit line."""

    certificate_number: str
    positions: tuple[CitesPosition, ...]
    token_id: str | None = None
    iso_country_code: str | None = None
    version: str = "2"
    operation = Operation.CONFIRM_QUANTITIES


@dataclass(frozen=True)
class ServiceStateRequest:
    """``ServiceState``: is the service of ``iso_country_code`` (or the whole service) available?"""

    iso_country_code: str | None = None
    version: str = "2"
    operation = Operation.SERVICE_STATE


Request = CertificateRequest | ConfirmQuantitiesRequest | ServiceStateRequest


@dataclass(frozen=True)
class Attachment:
    """One ``Attachments`` entry of a certificate response."""

    name: str
    content: str


@dataclass(frozen=True)
class CertificateResponse:
    """A permit as an EPIX response carries it. ``permit`` is the ``CITESEPermit`` serialised on its own: the bytes a
    signature over the whole permit is checked on."""

    final: bool
    permit: bytes
    composite: bool = False
    attachments: tuple[Attachment, ...] = ()

    @property
    def operation(self) -> Operation:
        return Operation.GET_FINAL if self.final else Operation.GET_NON_FINAL


@dataclass(frozen=True)
class ConfirmQuantitiesResponse:
    """What was recorded for a ``ConfirmQuantities`` (ours)."""

    certificate_number: str
    positions: tuple[CitesPosition, ...]
    operation = Operation.CONFIRM_QUANTITIES


@dataclass(frozen=True)
class ServiceStateResponse:
    """The state of the service (ours): ``Available`` when it answers."""

    state: str = SERVICE_AVAILABLE
    iso_country_code: str | None = None
    operation = Operation.SERVICE_STATE


Response = CertificateResponse | ConfirmQuantitiesResponse | ServiceStateResponse


# ------------------------------------------------------------------------------------------------------ building


def build_request(request: Request) -> bytes:
    """The SOAP envelope of ``request``."""
    namespace = NAMESPACES[request.version]
    operation = etree.Element(f"{{{namespace}}}{request.operation.value}", nsmap={f"v{request.version}": namespace})
    if isinstance(request, ServiceStateRequest):
        _optional(operation, "IsoCountryCode", request.iso_country_code)
        return _envelope(operation)
    _add(operation, "CertificateNumber", request.certificate_number)
    _optional(operation, "TokenId", request.token_id)
    _optional(operation, "IsoCountryCode", request.iso_country_code)
    if isinstance(request, ConfirmQuantitiesRequest):
        operation.append(_positions(request.positions))
    return _envelope(operation)


def build_response(response: Response, version: str = "2") -> bytes:
    """The SOAP envelope of ``response`` in the exchange's ``version`` ("1" or "2"). A certificate response needs the
    permit in EPIX's form of that version (unqualified root ``CITESEPermit``, or ``CBFShip`` for toolkit v1)."""
    namespace = NAMESPACES[version]
    wrapper = etree.Element(f"{{{namespace}}}{response.operation.response}", nsmap={f"v{version}": namespace})
    if isinstance(response, CertificateResponse):
        permit = parse_xml(response.permit, source="permit")
        if permit.tag != EPIX_PERMIT_ROOTS[version]:
            raise UnknownDocumentError(f"an EPIX v{version} response carries a {EPIX_PERMIT_ROOTS[version]} with an unqualified root, not {permit.tag}", where="permit")
        wrapper.append(permit)
        for attachment in response.attachments:
            entry = _add(wrapper, "Attachments")
            _add(entry, "AttachmentName", attachment.name)
            _add(entry, "AttachmentContent", attachment.content)
        _add(wrapper, "Composite", "true" if response.composite else "false")
    elif isinstance(response, ConfirmQuantitiesResponse):
        _add(wrapper, "CertificateNumber", response.certificate_number)
        wrapper.append(_positions(response.positions))
    else:
        _optional(wrapper, "IsoCountryCode", response.iso_country_code)
        _add(wrapper, "ServiceState", response.state)
    return _envelope(wrapper)


def build_fault(fault: EpixFault, version: str = "2") -> bytes:
    """A SOAP 1.1 fault: ``faultstring`` the EPIX error name; ``Client`` unless the service itself is unavailable."""
    body = etree.Element(f"{{{SOAP11_ENV}}}Fault")
    side = "Server" if fault.error == EpixError.ADAPTER_NOT_AVAILABLE.value else "Client"
    _add(body, "faultcode", f"soapenv:{side}")
    _add(body, "faultstring", fault.error)
    if fault.detail:
        etree.SubElement(_add(body, "detail"), f"{{{NAMESPACES[version]}}}Message").text = fault.detail
    return _envelope(body)


def _envelope(content: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soapenv": SOAP11_ENV})
    etree.SubElement(envelope, f"{{{SOAP11_ENV}}}Header")
    etree.SubElement(envelope, f"{{{SOAP11_ENV}}}Body").append(content)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _positions(positions: tuple[CitesPosition, ...]) -> etree._Element:
    quantities = etree.Element("ConfirmedQuantities")
    for position in positions:
        entry = _add(quantities, "CitesPosition")
        _add(entry, "ID", position.id)
        quantity = _add(entry, "InspectedUnitQuantity", format(position.quantity, "f"))
        if position.unit:
            quantity.set("unitCode", position.unit)
    return quantities


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, name)
    child.text = text
    return child


def _optional(parent: etree._Element, name: str, text: str | None) -> None:
    if text is not None:
        _add(parent, name, text)


# ------------------------------------------------------------------------------------------------------- reading


def read_request(body: bytes) -> Request:
    """The request in a SOAP envelope; :class:`EpixFault` ``Invalid Request`` naming what is wrong."""
    operation = _body_content(body, source="request")
    name = etree.QName(operation)
    local = name.localname.removesuffix("Request")
    version = _VERSION_OF.get(name.namespace or "")
    if version is None or local not in {o.value for o in Operation}:
        raise EpixFault(EpixError.INVALID_REQUEST, f"{name.localname} ({name.namespace}) is not an operation of {' or '.join(NAMESPACES.values())}")
    kind = Operation(local)
    country = _country(_text(operation, "IsoCountryCode", version))
    if kind is Operation.SERVICE_STATE:
        return ServiceStateRequest(iso_country_code=country, version=version)
    number = _text(operation, "CertificateNumber", version)
    if not number:
        raise EpixFault(EpixError.INVALID_REQUEST, f"{local}/CertificateNumber is missing")
    token = _text(operation, "TokenId", version)
    if kind is Operation.CONFIRM_QUANTITIES:
        return ConfirmQuantitiesRequest(number, _read_positions(operation, local, version), token_id=token, iso_country_code=country, version=version)
    return CertificateRequest(number, final=kind is Operation.GET_FINAL, token_id=token, iso_country_code=country, version=version)


def read_response(body: bytes, expected: Operation, version: str = "2") -> Response:
    """The answer to an ``expected`` request of ``version``; a SOAP fault is raised as :class:`EpixFault` (``remote``)."""
    wrapper = _body_content(body, source="response", remote=True)
    if etree.QName(wrapper).namespace != NAMESPACES[version] or etree.QName(wrapper).localname != expected.response:
        raise EpixFault(EpixError.ADAPTER_NOT_AVAILABLE, f"expected {expected.response}, the answer holds {wrapper.tag}")
    if expected in (Operation.GET_FINAL, Operation.GET_NON_FINAL):
        permit = next((child for child in wrapper if child.tag in permit_root_tags()), None)
        if permit is None:
            raise EpixFault(EpixError.ADAPTER_NOT_AVAILABLE, f"{expected.response} holds no CITESEPermit")
        attachments = tuple(Attachment(_text(a, "AttachmentName", version) or "", _text(a, "AttachmentContent", version) or "") for a in _children(wrapper, "Attachments", version))
        return CertificateResponse(
            final=expected is Operation.GET_FINAL,
            permit=etree.tostring(permit),
            composite=(_text(wrapper, "Composite", version) or "false").lower() in ("true", "1"),
            attachments=attachments,
        )
    if expected is Operation.CONFIRM_QUANTITIES:
        return ConfirmQuantitiesResponse(_text(wrapper, "CertificateNumber", version) or "", _read_positions(wrapper, expected.response, version))
    return ServiceStateResponse(state=_text(wrapper, "ServiceState", version) or "", iso_country_code=_text(wrapper, "IsoCountryCode", version))


def _body_content(body: bytes, *, source: str, remote: bool = False) -> etree._Element:
    """The element in the SOAP Body; a fault there is raised as it is."""
    try:
        root = parse_xml(body, source=source)
    except InputError as exc:
        raise EpixFault(EpixError.ADAPTER_NOT_AVAILABLE if remote else EpixError.INVALID_REQUEST, str(exc)) from None
    content = root.find(f"{{{SOAP11_ENV}}}Body/*") if root.tag == f"{{{SOAP11_ENV}}}Envelope" else None
    if content is None:
        error = EpixError.ADAPTER_NOT_AVAILABLE if remote else EpixError.INVALID_REQUEST
        raise EpixFault(error, f"the {source} is not a SOAP 1.1 envelope with a Body (root {root.tag})")
    if content.tag == f"{{{SOAP11_ENV}}}Fault":
        message = next((m for uri in NAMESPACES.values() if (m := content.find(f"detail/{{{uri}}}Message")) is not None), None)
        detail = (message.text or "") if message is not None else ""
        raise EpixFault(_text(content, "faultstring") or "", detail, remote=remote)
    return content


def _read_positions(parent: etree._Element, where: str, version: str = "2") -> tuple[CitesPosition, ...]:
    quantities = _child(parent, "ConfirmedQuantities", version)
    entries = _children(quantities, "CitesPosition", version) if quantities is not None else []
    if not entries:
        raise EpixFault(EpixError.INVALID_REQUEST, f"{where}/ConfirmedQuantities holds no CitesPosition")
    positions = []
    for index, entry in enumerate(entries, start=1):
        at = f"{where}/ConfirmedQuantities/CitesPosition[{index}]"
        line = _child(entry, "ID", version)
        identifier = (line.text or "") if line is not None else ""
        if not identifier or identifier != identifier.strip() or any(c.isspace() for c in identifier):
            raise EpixFault(EpixError.INVALID_REQUEST, f"{at}/ID {identifier!r}: ID must be a token (no spaces)")
        element = _child(entry, "InspectedUnitQuantity", version)
        try:
            quantity = Decimal((element.text or "").strip()) if element is not None else None
        except InvalidOperation:
            quantity = None
        if quantity is None or not quantity.is_finite() or quantity < 0:
            shown = element.text if element is not None else None
            raise EpixFault(EpixError.INVALID_REQUEST, f"{at}/InspectedUnitQuantity {shown!r} is not a quantity (a decimal number, 0 or more)")
        unit = (element.get("unitCode") or "").strip() or None
        positions.append(CitesPosition(identifier, quantity, unit))
    return tuple(positions)


def _country(code: str | None) -> str | None:
    if code is None:
        return None
    if len(code) != 2 or not code.isalpha() or not code.isascii():
        raise EpixFault(EpixError.INVALID_REQUEST, f"IsoCountryCode {code!r} is not an ISO 3166-1 alpha-2 code")
    return code.upper()


def _children(parent: etree._Element, name: str, version: str = "2") -> list[etree._Element]:
    # Children are unqualified (the sample); a partner qualifying them with the exchange's namespace is read the same.
    return [c for c in parent if isinstance(c.tag, str) and c.tag in (name, f"{{{NAMESPACES[version]}}}{name}")]


def _child(parent: etree._Element, name: str, version: str = "2") -> etree._Element | None:
    found = _children(parent, name, version)
    return found[0] if found else None


def _text(parent: etree._Element, name: str, version: str = "2") -> str | None:
    child = _child(parent, name, version)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None
