"""Border tracking events as pure functions: the hub's ``consultaEventosSeguimiento`` operation, built and read, and
each event turned into an :class:`~hub.connector.AckReport`. No I/O.

**Ours, not the IOP's**: the published IOP service has no tracking operation. This one follows its conventions
(a header in the style of ``iopC:Cabecera``, Spanish element names, the IOP simple types and error details) in its
own namespace; the schema is ``wsdl/ConsultaEventosSeguimiento_V0_1.xsd`` and the WSDL beside it::

    soap:Body/iopES:ConsultaEventosSeguimiento[@VersionEsquema=0.1]
        iopES:CabeceraConsulta    CodigoInteraccion … PaisdeDestinatario, IDdeTransaccion, FechaHora
        iopES:UltimaSecuencia     the caller's cursor: events after it
        iopES:MaximoEventos?      at most this many
    → soap:Body/iopES:RespuestaEventosSeguimiento[@VersionEsquema=0.1]
        iopES:CabeceraConsulta    answered (sender and recipient swapped, IDdeTransaccionOriginal = the query's)
        iopES:UltimaSecuencia, iopES:HayMasEventos, iopES:EventoSeguimiento*
    → or soap:Fault with detail/iopES:FallaConsulta: iopES:CabeceraConsulta?, iopErr:DetallesError{1,99}

Python names are English; the wire keeps the IOP's Spanish ones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import Enum

from lxml import etree

from hub.connector import AckReport, Outcome
from connectors.single_window.protocol import (
    GLOSA_MAX,
    IOP_ERROR,
    SOAP_ENV,
    VERSION_ERROR,
    MensajeFalla,
    soap_body,
    soap_envelope,
    timestamp,
)
from hub.errors import InputError, UnknownDocumentError

IOP_TRACKING = "urn:trade-document-hub:iop:EventosSeguimiento"
TRACKING_XSD = "ConsultaEventosSeguimiento_V0_1.xsd"
TRACKING_WSDL = "ConsultaEventosSeguimiento.wsdl"
#: Sent as the SOAPAction header of a tracking query (the value our WSDL declares).
TRACKING_SOAP_ACTION = "urn:trade-document-hub:iop:consultaEventosSeguimientoOperation"
VERSION_TRACKING = "0.1"
MAX_EVENTS = 1000  # MaximoEventos
_NSMAP = {"iopES": IOP_TRACKING}


class EventCode(str, Enum):
    """A step of a certificate at the border: the value is the wire code (``CodigoEvento``), :attr:`label` the
    English name the hub uses (``received``, ``documentary_check``…)."""

    RECEIVED = "REC"  # lodged, received by the border
    DOCUMENTARY_CHECK = "CDO"
    IDENTITY_CHECK = "CID"
    PHYSICAL_CHECK = "CFI"
    UNDER_MEASURES = "MED"  # e.g. a sample taken, the laboratory result pending
    RELEASED = "LIB"  # levante, "bon à enlever"
    REFUSED = "RCH"  # refoulement, destruction or re-export

    @property
    def label(self) -> str:
        """The English name: ``released``, ``documentary_check``…"""
        return self.name.lower()

    @classmethod
    def named(cls, label: str) -> "EventCode":
        """The code whose :attr:`label` is ``label``; ``KeyError`` for another."""
        return cls[label.upper()]


#: Decisions: nothing follows them on a certificate's timeline.
FINAL_EVENTS = frozenset({EventCode.RELEASED, EventCode.REFUSED})


class RefusalMeasure(str, Enum):
    """What becomes of refused goods (``MedidaRechazo``); :attr:`label` is the English name."""

    REFOULEMENT = "REF"  # sent back
    DESTRUCTION = "DES"
    RE_EXPORT = "REX"  # to another country

    @property
    def label(self) -> str:
        """``refoulement``, ``destruction`` or ``re_export``."""
        return self.name.lower()


@dataclass(frozen=True)
class TrackingHeader:
    """``CabeceraConsulta``: who asks whom, under which transaction (``sent_at`` is an ISO 8601 date-time)."""

    interaction_code: str
    service_id: str
    sender_id: str
    sender_country: str
    recipient_id: str
    recipient_country: str
    transaction_id: str
    sent_at: str
    original_transaction_id: str | None = None

    def answer(self, *, transaction_id: str, at: datetime | None = None) -> "TrackingHeader":
        """The header of the answer: sender and recipient swapped, its own transaction, pointing at this one."""
        return replace(
            self,
            sender_id=self.recipient_id, sender_country=self.recipient_country,
            recipient_id=self.sender_id, recipient_country=self.sender_country,
            transaction_id=transaction_id, sent_at=timestamp(at), original_transaction_id=self.transaction_id,
        )


_HEADER_WIRE = {
    "interaction_code": "CodigoInteraccion", "service_id": "IDdeServicio",
    "sender_id": "IDdeRemitente", "sender_country": "PaisdeRemitente",
    "recipient_id": "IDdeDestinatario", "recipient_country": "PaisdeDestinatario",
    "transaction_id": "IDdeTransaccion", "sent_at": "FechaHora", "original_transaction_id": "IDdeTransaccionOriginal",
}


@dataclass(frozen=True)
class TrackingQuery:
    """``ConsultaEventosSeguimiento``: the events after sequence ``after``, at most ``limit`` (the window's default
    when None)."""

    header: TrackingHeader
    after: int = 0
    limit: int | None = None


@dataclass(frozen=True)
class TrackingEvent:
    """``EventoSeguimiento``: one step of one certificate. ``transaction_id`` is the ``IDdeTransaccion`` the
    certificate travelled under, ``receipt_id`` the one of the receipt that received it, ``control_country`` the
    country whose border acts."""

    sequence: int
    transaction_id: str
    receipt_id: str
    document_type: str
    certificate_number: str
    control_country: str
    code: EventCode
    occurred_at: str
    reason_code: str | None = None
    reason_text: str | None = None
    measure: RefusalMeasure | None = None


_EVENT_WIRE = {
    "sequence": "NumeroSecuencia", "transaction_id": "IDdeTransaccion", "receipt_id": "IDdeAcuseRecibo",
    "document_type": "TipodeDocumento", "certificate_number": "IDdeDocumento", "control_country": "PaisdeControl",
    "code": "CodigoEvento", "occurred_at": "FechaHoraEvento", "reason_code": "CodigoMotivo",
    "reason_text": "GlosaMotivo", "measure": "MedidaRechazo",
}


@dataclass(frozen=True)
class TrackingAnswer:
    """``RespuestaEventosSeguimiento``: the events in sequence order, the last sequence given (the query's cursor
    when there is none) and whether more follow."""

    header: TrackingHeader
    last_sequence: int
    more: bool
    events: tuple[TrackingEvent, ...] = ()


# --- building -----------------------------------------------------------------------------------------------------


def build_query(query: TrackingQuery) -> bytes:
    """The SOAP request of a tracking query."""
    element = _element("ConsultaEventosSeguimiento", VersionEsquema=VERSION_TRACKING)
    element.append(_header_element(query.header))
    _child(element, "UltimaSecuencia", str(query.after))
    if query.limit is not None:
        _child(element, "MaximoEventos", str(query.limit))
    return soap_envelope(element)


def build_answer(answer: TrackingAnswer) -> bytes:
    """The SOAP answer carrying a ``RespuestaEventosSeguimiento``."""
    element = _element("RespuestaEventosSeguimiento", VersionEsquema=VERSION_TRACKING)
    element.append(_header_element(answer.header))
    _child(element, "UltimaSecuencia", str(answer.last_sequence))
    _child(element, "HayMasEventos", "true" if answer.more else "false")
    for event in answer.events:
        element.append(event_element(event))
    return soap_envelope(element)


def build_fault(faultcode: str, faultstring: str, header: TrackingHeader | None,
                details: tuple[tuple[str, str], ...]) -> bytes:
    """A SOAP 1.1 fault whose detail is a ``FallaConsulta``: ``header`` (the query's, answered) when it is valid,
    and each (``CodigodeError``, ``MensajedeError``)."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{faultcode}"
    etree.SubElement(fault, "faultstring").text = faultstring[:GLOSA_MAX]
    falla = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{IOP_TRACKING}}}FallaConsulta",
                             VersionEsquema=VERSION_TRACKING, nsmap={**_NSMAP, "iopErr": IOP_ERROR})
    if header is not None:
        falla.append(_header_element(header))
    for code, text in details:
        detalle = etree.SubElement(falla, f"{{{IOP_ERROR}}}DetallesError", VersionEsquema=VERSION_ERROR)
        etree.SubElement(detalle, f"{{{IOP_ERROR}}}CodigodeError").text = code[:5]
        etree.SubElement(detalle, f"{{{IOP_ERROR}}}MensajedeError").text = text[:GLOSA_MAX]
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def event_element(event: TrackingEvent) -> etree._Element:
    """One ``EventoSeguimiento`` element (optional parts only when set)."""
    element = _element("EventoSeguimiento")
    for field in fields(TrackingEvent):
        value = getattr(event, field.name)
        if value is not None:
            _child(element, _EVENT_WIRE[field.name], value.value if isinstance(value, Enum) else str(value))
    return element


def event_xml(event: TrackingEvent) -> bytes:
    """One event as a standalone XML document (the evidence an :class:`AckReport` carries)."""
    return etree.tostring(event_element(event), xml_declaration=True, encoding="UTF-8")


# --- reading ------------------------------------------------------------------------------------------------------


def read_query(envelope: bytes) -> tuple[TrackingQuery, etree._Element]:
    """(query, the ``ConsultaEventosSeguimiento`` element) of a request. Raises :class:`~hub.errors.InputError`."""
    body = soap_body(envelope, source="tracking request")
    if body.tag != f"{{{IOP_TRACKING}}}ConsultaEventosSeguimiento":
        raise UnknownDocumentError(f"expected iopES:ConsultaEventosSeguimiento, found {body.tag}", where="/soap:Envelope/soap:Body")
    limit = _text(body, "MaximoEventos")
    return TrackingQuery(_read_header(body), after=_integer(body, "UltimaSecuencia"),
                         limit=None if limit is None else _integer(body, "MaximoEventos")), body


def parse_answer(envelope: bytes) -> TrackingAnswer | MensajeFalla:
    """Read a tracking answer, or a SOAP fault as a :class:`~connectors.single_window.protocol.MensajeFalla`
    (without header). Raises :class:`~hub.errors.InputError` (or a subclass) for bytes that are neither."""
    body = soap_body(envelope, source="tracking response")
    if body.tag == f"{{{SOAP_ENV}}}Fault":
        return _read_fault(body)
    if body.tag != f"{{{IOP_TRACKING}}}RespuestaEventosSeguimiento":
        raise UnknownDocumentError(f"expected iopES:RespuestaEventosSeguimiento or soap:Fault, found {body.tag}",
                                   where="/soap:Envelope/soap:Body")
    more = _text(body, "HayMasEventos")
    if more not in ("true", "false", "1", "0"):
        raise InputError(f"HayMasEventos {more!r} is not a boolean", where="iopES:HayMasEventos")
    events = tuple(_read_event(element) for element in body.iterfind(f"{{{IOP_TRACKING}}}EventoSeguimiento"))
    return TrackingAnswer(_read_header(body), last_sequence=_integer(body, "UltimaSecuencia"),
                          more=more in ("true", "1"), events=events)


# --- meaning ------------------------------------------------------------------------------------------------------


def ack_for_event(event: TrackingEvent, *, message_id: str | None = None) -> AckReport:
    """What ``event`` tells the hub about the certificate's message.

    ``released`` → ``ACKNOWLEDGED`` (``ACKNOWLEDGED_WITH_WARNINGS`` when the release carries a remark), kind
    ``business_response``; ``refused`` → ``REJECTED``, kind ``border_refusal``, with the reason (and the measure) and
    the importing (control) country; any other step → ``ACCEPTED``, kind ``tracking``, the step's label as
    ``reason_code`` and a sentence as ``reason_text``. The event's XML is the payload; ``message_id`` defaults to the
    event's ``IDdeTransaccion`` (the hub's message id, see :func:`~connectors.single_window.protocol.transaction_id`).
    """
    common = dict(message_id=message_id or event.transaction_id, receipt_id=event.receipt_id,
                  certificate_number=event.certificate_number, payload=event_xml(event), country=event.control_country)
    if event.code is EventCode.REFUSED:
        text = event.reason_text or "refused at the border"
        if event.measure is not None:
            text = f"{text} (measure: {event.measure.label})"
        return AckReport(outcome=Outcome.REJECTED, kind="border_refusal", reason_code=event.reason_code or "REFUSED",
                         reason_text=text, **common)
    if event.code is EventCode.RELEASED:
        remarked = bool(event.reason_code or event.reason_text)
        return AckReport(outcome=Outcome.ACKNOWLEDGED_WITH_WARNINGS if remarked else Outcome.ACKNOWLEDGED,
                         kind="business_response", reason_code=event.reason_code, reason_text=event.reason_text, **common)
    return AckReport(outcome=Outcome.ACCEPTED, kind="tracking", reason_code=event.code.label,
                     reason_text=describe(event), **common)


def describe(event: TrackingEvent) -> str:
    """A one-line account of ``event``: ``documentary check at 2026-…, event 2``, with its reason when it has one."""
    said = f"{event.code.label.replace('_', ' ')} at {event.occurred_at}, event {event.sequence}"
    if event.reason_code or event.reason_text:
        reason = f"[{event.reason_code}] {event.reason_text or ''}" if event.reason_code else event.reason_text
        said = f"{said}: {reason.strip()}"
    return said


# --- internals ----------------------------------------------------------------------------------------------------


def _element(name: str, **attributes: str) -> etree._Element:
    return etree.Element(f"{{{IOP_TRACKING}}}{name}", attributes, nsmap=_NSMAP)


def _child(parent: etree._Element, name: str, text: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{IOP_TRACKING}}}{name}")
    child.text = text
    return child


def _header_element(header: TrackingHeader) -> etree._Element:
    element = _element("CabeceraConsulta", VersionEsquema=VERSION_TRACKING)
    for field in fields(TrackingHeader):
        value = getattr(header, field.name)
        if value is not None:
            _child(element, _HEADER_WIRE[field.name], value)
    return element


def _text(parent: etree._Element, name: str) -> str | None:
    found = parent.find(f"{{{IOP_TRACKING}}}{name}")
    return None if found is None else (found.text or "").strip()


def _integer(parent: etree._Element, name: str) -> int:
    value = _text(parent, name)
    if value is None or not value.isdigit():
        raise InputError(f"{name} {value!r} is not a non-negative integer", where=f"iopES:{name}")
    return int(value)


def _read_header(parent: etree._Element) -> TrackingHeader:
    element = parent.find(f"{{{IOP_TRACKING}}}CabeceraConsulta")
    if element is None:
        raise InputError("no iopES:CabeceraConsulta", where=parent.tag)
    values = {name: _text(element, wire) or None for name, wire in _HEADER_WIRE.items()}
    if values["transaction_id"] is None:
        raise InputError("the header has no IDdeTransaccion", where="iopES:CabeceraConsulta/iopES:IDdeTransaccion")
    return TrackingHeader(**{name: value if value is not None or name == "original_transaction_id" else ""
                             for name, value in values.items()})


def _read_event(element: etree._Element) -> TrackingEvent:
    values = {name: _text(element, wire) or None for name, wire in _EVENT_WIRE.items()}
    where = f"iopES:EventoSeguimiento[NumeroSecuencia={values['sequence']}]"
    missing = [_EVENT_WIRE[name] for name in ("transaction_id", "receipt_id", "certificate_number", "code", "occurred_at")
               if values[name] is None]
    if missing:
        raise InputError(f"an event without {', '.join(missing)}", where=where)
    try:
        code = EventCode(values["code"])
        measure = RefusalMeasure(values["measure"]) if values["measure"] else None
    except ValueError as exc:
        raise InputError(f"unknown code in an event: {exc}", where=where) from None
    return TrackingEvent(
        sequence=_integer(element, "NumeroSecuencia"), transaction_id=values["transaction_id"],
        receipt_id=values["receipt_id"], document_type=values["document_type"] or "",
        certificate_number=values["certificate_number"], control_country=values["control_country"] or "",
        code=code, occurred_at=values["occurred_at"], reason_code=values["reason_code"],
        reason_text=values["reason_text"], measure=measure,
    )


def _read_fault(fault: etree._Element) -> MensajeFalla:
    details = []
    for detalle in fault.iterfind(f"detail/*/{{{IOP_ERROR}}}DetallesError"):
        details.append(((detalle.findtext(f"{{{IOP_ERROR}}}CodigodeError") or "").strip(),
                        (detalle.findtext(f"{{{IOP_ERROR}}}MensajedeError") or "").strip()))
    return MensajeFalla(faultcode=(fault.findtext("faultcode") or "").strip().rpartition(":")[2],
                        faultstring=(fault.findtext("faultstring") or "").strip(), Cabecera=None,
                        DetallesError=tuple(details))
