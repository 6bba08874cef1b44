"""The single-window IOP wire protocol as pure functions: SOAP 1.1 envelopes built and read. No I/O.

One document/literal operation, ``envioCertificadoFitosanitarioOperation`` (FACTS.md §7, ``wsdl/`` beside this
module)::

    soap:Envelope/soap:Body/iopCFS:EnvioCertificadoFitosanitario[@VersionEsquema=0.4]
        iopC:Cabecera[@VersionEsquema=0.2]   CodigoInteraccion … IDdeDocumento, IDdeTransaccionOriginal?
        iopCFS:SignedSPSCert                 the signed certificate, as a string
    → soap:Body/iopAck:AcuseRecibo[@VersionEsquema=0.1]
        iopC:Cabecera, CodigoAcuseRecibo (RCB | ERR), GlosaAcuseRecibo, FechaHoraAcuseRecibo
    → or soap:Fault with detail/iopFalla:MensajeFalla[@VersionEsquema=0.1]: iopC:Cabecera, iopErr:DetallesError{1,99}
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from hub.errors import InputError, UnknownDocumentError
from hub.xmlsafe import parse_xml

WSDL_DIR = Path(__file__).resolve().parent / "wsdl"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
IOP_CFS = "http://iop.crimsonlogic.com/EnvioCertificadoFitosanitario"
IOP_CABECERA = "http://iop.crimsonlogic.com/Cabecera"
IOP_ACK = "http://iop.crimsonlogic.com/AcuseRecibo"
IOP_FALLA = "http://iop.crimsonlogic.com/Falla"
IOP_ERROR = "http://iop.crimsonlogic.com/Error"
#: The soapAction the published binding declares; sent as the SOAPAction header.
SOAP_ACTION = "http://localhost:8080/envioCertificadoFitosanitarioOperation"
SOAP_MEDIA_TYPE = "text/xml; charset=utf-8"

#: ``VersionEsquema`` of each element, fixed by the schemas.
VERSION_ENVIO, VERSION_CABECERA, VERSION_ACUSE, VERSION_FALLA, VERSION_ERROR = "0.4", "0.2", "0.1", "0.1", "0.1"
RECEIVED, ERROR = "RCB", "ERR"
GLOSA_MAX = 300  # IOPTextType3

_ID_DE_REFERENCIA = re.compile(r"^[A-Za-z0-9-]{12,36}$")
_REASON = re.compile(r"^\s*\[([A-Za-z0-9_.:-]+)\]\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Cabecera:
    """The IOP header, fields spelled as the schema spells them (``FechaHora`` is an ISO 8601 date-time string)."""

    CodigoInteraccion: str
    IDdeServicio: str
    IDdeRemitente: str
    PaisdeRemitente: str
    IDdeDestinatario: str
    PaisdeDestinatario: str
    IDdeTransaccion: str
    EstadoTransaccion: str
    FechaHora: str
    TipodeDocumento: str
    IDdeDocumento: str
    IDdeTransaccionOriginal: str | None = None

    def answer(self, *, transaction_id: str, at: datetime | None = None) -> "Cabecera":
        """The header of an answer to this one: sender and recipient swapped, its own ``IDdeTransaccion``, and
        ``IDdeTransaccionOriginal`` pointing at the request's."""
        return replace(
            self,
            IDdeRemitente=self.IDdeDestinatario, PaisdeRemitente=self.PaisdeDestinatario,
            IDdeDestinatario=self.IDdeRemitente, PaisdeDestinatario=self.PaisdeRemitente,
            IDdeTransaccion=transaction_id, FechaHora=timestamp(at), IDdeTransaccionOriginal=self.IDdeTransaccion,
        )


@dataclass(frozen=True)
class AcuseRecibo:
    """A synchronous receipt: ``CodigoAcuseRecibo`` is ``RCB`` (received) or ``ERR``."""

    Cabecera: Cabecera
    CodigoAcuseRecibo: str
    GlosaAcuseRecibo: str
    FechaHoraAcuseRecibo: str


@dataclass(frozen=True)
class MensajeFalla:
    """A SOAP fault: ``faultcode``'s local name (``Client``, ``Server``…), ``faultstring``, and the IOP detail:
    the header when given and each ``DetallesError`` as (``CodigodeError``, ``MensajedeError``)."""

    faultcode: str
    faultstring: str
    Cabecera: Cabecera | None
    DetallesError: tuple[tuple[str, str], ...]


def timestamp(at: datetime | None = None) -> str:
    """An xs:dateTime in UTC, to the second."""
    return (at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")


def transaction_id(message_id: str) -> str:
    """``IDdeTransaccion`` for a hub message: the message id itself when it fits ``IDdeReferencia`` (12–36 of
    ``[A-Za-z0-9-]``, as the hub's UUIDs do), otherwise a UUID derived from it, so every retry carries the same one."""
    if _ID_DE_REFERENCIA.match(message_id):
        return message_id
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:hub:message:{message_id}"))


def format_reason(code: str | None, text: str | None) -> str:
    """``[CODE] text`` cut to the 300 characters ``GlosaAcuseRecibo`` holds."""
    glosa = f"[{code}] {text or ''}".strip() if code else (text or "")
    return glosa if len(glosa) <= GLOSA_MAX else glosa[: GLOSA_MAX - 1] + "…"


def parse_reason(glosa: str | None) -> tuple[str | None, str | None]:
    """Split ``[CODE] text`` into (code, text); a glosa without a bracketed code is all text."""
    if not glosa or not glosa.strip():
        return None, None
    found = _REASON.match(glosa)
    if found is None:
        return None, glosa.strip()
    return found.group(1), (found.group(2).strip() or None)


def build_envio(cabecera: Cabecera, signed_certificate: bytes) -> bytes:
    """The SOAP request carrying ``signed_certificate`` (UTF-8 XML, kept byte for byte as the string's content)."""
    envio = etree.Element(f"{{{IOP_CFS}}}EnvioCertificadoFitosanitario", VersionEsquema=VERSION_ENVIO,
                          nsmap={"iopCFS": IOP_CFS, "iopC": IOP_CABECERA})
    envio.append(_cabecera_element(cabecera))
    try:
        etree.SubElement(envio, f"{{{IOP_CFS}}}SignedSPSCert").text = signed_certificate.decode("utf-8")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the signed certificate cannot travel as an XML string: {exc}", where="SignedSPSCert") from None
    return soap_envelope(envio)


def read_envio(envelope: bytes) -> tuple[Cabecera, str, etree._Element]:
    """(header, signed certificate string, the ``EnvioCertificadoFitosanitario`` element) of a request."""
    body = soap_body(envelope, source="request")
    if body.tag != f"{{{IOP_CFS}}}EnvioCertificadoFitosanitario":
        raise UnknownDocumentError(f"expected iopCFS:EnvioCertificadoFitosanitario, found {body.tag}", where="/soap:Envelope/soap:Body")
    return _read_cabecera(body), body.findtext(f"{{{IOP_CFS}}}SignedSPSCert") or "", body


def build_acuse(acuse: AcuseRecibo) -> bytes:
    """The SOAP answer carrying an ``AcuseRecibo``."""
    element = etree.Element(f"{{{IOP_ACK}}}AcuseRecibo", VersionEsquema=VERSION_ACUSE,
                            nsmap={"iopAck": IOP_ACK, "iopC": IOP_CABECERA})
    element.append(_cabecera_element(acuse.Cabecera))
    for name in ("CodigoAcuseRecibo", "GlosaAcuseRecibo", "FechaHoraAcuseRecibo"):
        etree.SubElement(element, f"{{{IOP_ACK}}}{name}").text = getattr(acuse, name)
    return soap_envelope(element)


def build_falla(falla: MensajeFalla) -> bytes:
    """A SOAP 1.1 fault whose detail is a ``MensajeFalla`` (a header is required by the schema)."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{falla.faultcode}"
    etree.SubElement(fault, "faultstring").text = falla.faultstring
    mensaje = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{IOP_FALLA}}}MensajeFalla",
                               VersionEsquema=VERSION_FALLA,
                               nsmap={"iopFalla": IOP_FALLA, "iopC": IOP_CABECERA, "iopErr": IOP_ERROR})
    if falla.Cabecera is not None:
        mensaje.append(_cabecera_element(falla.Cabecera))
    for code, text in falla.DetallesError:
        detalle = etree.SubElement(mensaje, f"{{{IOP_ERROR}}}DetallesError", VersionEsquema=VERSION_ERROR)
        etree.SubElement(detalle, f"{{{IOP_ERROR}}}CodigodeError").text = code[:5]
        etree.SubElement(detalle, f"{{{IOP_ERROR}}}MensajedeError").text = text[:GLOSA_MAX]
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def parse_response(envelope: bytes) -> AcuseRecibo | MensajeFalla:
    """Read an answer: an :class:`AcuseRecibo`, or a :class:`MensajeFalla` for a SOAP fault.

    Raises :class:`~hub.errors.InputError` (or a subclass) for bytes that are neither, naming the place.
    """
    body = soap_body(envelope, source="response")
    if body.tag == f"{{{SOAP_ENV}}}Fault":
        return _read_fault(body)
    if body.tag != f"{{{IOP_ACK}}}AcuseRecibo":
        raise UnknownDocumentError(f"expected iopAck:AcuseRecibo or soap:Fault, found {body.tag}", where="/soap:Envelope/soap:Body")
    values = {name: (body.findtext(f"{{{IOP_ACK}}}{name}") or "").strip()
              for name in ("CodigoAcuseRecibo", "GlosaAcuseRecibo", "FechaHoraAcuseRecibo")}
    if values["CodigoAcuseRecibo"] not in (RECEIVED, ERROR):
        raise InputError(f"CodigoAcuseRecibo {values['CodigoAcuseRecibo']!r} is not RCB or ERR",
                         where="/soap:Envelope/soap:Body/iopAck:AcuseRecibo/iopAck:CodigoAcuseRecibo")
    return AcuseRecibo(Cabecera=_read_cabecera(body), **values)


def _read_fault(fault: etree._Element) -> MensajeFalla:
    faultcode = (fault.findtext("faultcode") or "").strip()
    mensaje = fault.find(f"detail/{{{IOP_FALLA}}}MensajeFalla")
    cabecera, detalles = None, []
    if mensaje is not None:
        if mensaje.find(f"{{{IOP_CABECERA}}}Cabecera") is not None:
            cabecera = _read_cabecera(mensaje)
        for detalle in mensaje.iterfind(f"{{{IOP_ERROR}}}DetallesError"):
            detalles.append(((detalle.findtext(f"{{{IOP_ERROR}}}CodigodeError") or "").strip(),
                             (detalle.findtext(f"{{{IOP_ERROR}}}MensajedeError") or "").strip()))
    return MensajeFalla(faultcode=faultcode.rpartition(":")[2], faultstring=(fault.findtext("faultstring") or "").strip(),
                        Cabecera=cabecera, DetallesError=tuple(detalles))


def _cabecera_element(cabecera: Cabecera) -> etree._Element:
    element = etree.Element(f"{{{IOP_CABECERA}}}Cabecera", VersionEsquema=VERSION_CABECERA)
    for field in fields(Cabecera):
        value = getattr(cabecera, field.name)
        if value is not None:
            etree.SubElement(element, f"{{{IOP_CABECERA}}}{field.name}").text = value
    return element


def _read_cabecera(parent: etree._Element) -> Cabecera:
    element = parent.find(f"{{{IOP_CABECERA}}}Cabecera")
    if element is None:
        raise InputError("no iopC:Cabecera", where=f"{parent.tag}")
    values = {field.name: (element.findtext(f"{{{IOP_CABECERA}}}{field.name}") or "").strip() or None
              for field in fields(Cabecera)}
    if values["IDdeTransaccion"] is None:
        raise InputError("the header has no IDdeTransaccion", where="iopC:Cabecera/iopC:IDdeTransaccion")
    return Cabecera(**{name: value if value is not None or name == "IDdeTransaccionOriginal" else ""
                       for name, value in values.items()})


def soap_envelope(payload: etree._Element) -> bytes:
    """A SOAP 1.1 envelope whose Body carries ``payload``, serialized with an XML declaration."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(payload)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def soap_body(envelope: bytes, *, source: str) -> etree._Element:
    """The first element in a SOAP 1.1 envelope's Body. Raises :class:`~hub.errors.InputError` (or a subclass) for
    bytes that are not XML, not a SOAP 1.1 envelope, or an envelope with an empty Body; ``source`` names them."""
    root = parse_xml(envelope, source=source)
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise UnknownDocumentError(f"expected a SOAP 1.1 soap:Envelope, found {root.tag}", where="/")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    children = [] if body is None else [child for child in body if isinstance(child.tag, str)]
    if not children:
        raise InputError("the SOAP envelope has an empty or missing Body", where="/soap:Envelope/soap:Body")
    return children[0]
