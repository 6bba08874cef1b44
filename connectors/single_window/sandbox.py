"""A local foreign single window that speaks the IOP ``EnvioCertificadoFitosanitario`` service and our border
tracking operation, with switches for misbehaving::

    POST   /iop/EnvioCertificadoFitosanitario  SOAP 1.1 → AcuseRecibo RCB | ERR (200), or a MensajeFalla fault (500)
    POST   /iop/ConsultaEventosSeguimiento     SOAP 1.1 (ours) → the caller's tracking events after its cursor
    POST   /control                            JSON: faults for the next requests, forced ERR receipts, an
                                               automatic border decision
    POST   /decision                           JSON: append a border event (a check, measures, release, refusal)
    GET    /received                           what arrived, one entry per IDdeTransaccion, in arrival order
    GET    /events                             every tracking event, in sequence order, with the caller who sees it
    DELETE /state                              forget everything

Each request is validated against the hub's own XSDs (``wsdl/``); a request that does not validate gets a
``soap:Client`` fault. The embedded certificate must carry a signature the trust store accepts and must validate,
else the receipt is ``ERR`` with ``[CODE] text`` in ``GlosaAcuseRecibo``. A repeated ``IDdeTransaccion`` gets the
first receipt again. A received certificate goes to the border (:mod:`connectors.single_window.border`): its
``received`` and ``documentary_check`` events come at once, the rest when decided.

The caller is the country of its TLS client certificate when the server hands it to the app (the ASGI ``tls``
extension), else the header's ``PaisdeRemitente``; a tracking query whose header speaks for another country than its
certificate is a ``soap:Client`` fault. Serve it over mutual TLS with :func:`connectors.serving.serve_sandbox`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from pydantic import Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox_faults import DroppedResponse, FaultControl, queue_fault, retry_after_headers, take_fault
from connectors.single_window.border import Border, BorderError, Decision, Lodged
from connectors.single_window.protocol import (
    ERROR,
    IOP_CABECERA,
    RECEIVED,
    SOAP_MEDIA_TYPE,
    WSDL_DIR,
    AcuseRecibo,
    Cabecera,
    MensajeFalla,
    build_acuse,
    build_falla,
    format_reason,
    read_envio,
    timestamp,
)
from connectors.single_window.tracking import (
    IOP_TRACKING,
    TRACKING_XSD,
    TrackingAnswer,
    TrackingEvent,
    TrackingHeader,
    build_answer,
    build_fault,
    read_query,
)
from hub.errors import InputError, SignatureError, SignatureMissing
from hub.signing import TrustStore, Verifier
from hub.validation.validator import validate_certificate

SERVICE_PATH = "/iop/EnvioCertificadoFitosanitario"
TRACKING_PATH = "/iop/ConsultaEventosSeguimiento"


class Control(FaultControl):
    """What ``POST /control`` accepts. A fault is queued for the next ``count`` requests to ``target`` (``deliver``:
    ``EnvioCertificadoFitosanitario``, ``tracking``: ``ConsultaEventosSeguimiento``; ``"none"`` clears the queue);
    ``acuse`` (``"ERR"`` with its reason, or ``"RCB"``) stays in force until changed or reset; so does ``decide``
    (``released``, ``refused`` with its reason and ``measure``, ``under_measures``; ``"none"`` ends it), the border
    decision taken on every certificate received from then on."""

    fault: Literal["unavailable", "server_error", "slow", "malformed", "drop", "refuse", "fault", "none"] | None = None
    target: Literal["deliver", "tracking"] = "deliver"
    status: int = Field(default=403, ge=400, le=499)
    fault_code: Literal["Client", "Server"] = "Server"
    acuse: Literal["RCB", "ERR"] | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    decide: Literal["released", "refused", "under_measures", "none"] | None = None
    measure: Literal["refoulement", "destruction", "re_export"] | None = None

    def decision(self) -> Decision | None:
        """The automatic border decision this control sets (None for ``decide: none``). Raises pydantic's
        ``ValidationError`` for one the border cannot take (a refusal without its reason…)."""
        if self.decide in (None, "none"):
            return None
        return Decision(event=self.decide, reason_code=self.reason_code, reason_text=self.reason_text, measure=self.measure)


@dataclass
class _Received:
    message_id: str
    certificate_number: str
    status: str
    reason: str | None
    receipt_id: str
    receipt: bytes
    sender_country: str
    deliveries: int = 1

    def as_json(self) -> dict:
        keys = ("message_id", "certificate_number", "status", "reason", "receipt_id", "sender_country", "deliveries")
        return {key: getattr(self, key) for key in keys}


@dataclass
class _State:
    received: dict[str, _Received] = field(default_factory=dict)
    faults: list[Control] = field(default_factory=list)
    forced: Control | None = None
    decide: Decision | None = None
    border: Border = field(default_factory=Border)

    def take_fault(self, target: str) -> Control | None:
        return take_fault(self.faults, target)


class _Sandbox:
    def __init__(self, trust_store: TrustStore) -> None:
        self.verifier = Verifier(trust_store)
        self.schema = _schema("EnvioCertificadoFitosanitario_V0_2.xsd")
        self.tracking_schema = _schema(TRACKING_XSD)
        self.state = _State()

    async def receive(self, request: Request) -> Response:
        state, body = self.state, await request.body()
        fault = state.take_fault("deliver")
        if fault is not None and fault.fault == "slow":
            await asyncio.sleep(fault.seconds)  # then answer normally: a slow window still processes the request
        elif fault is not None and fault.fault != "fault":
            return _fault_response(fault)
        try:
            cabecera, signed, envio = read_envio(body)
        except InputError as exc:
            return _soap_fault(None, "Client", "E0001", f"unreadable request: {exc}")
        envio_document = etree.ElementTree(_detached(envio))
        if not self.schema.validate(envio_document):
            error = self.schema.error_log.last_error
            # The header echoed back may be what broke the schema: then the fault goes without it.
            valid = self.schema.validate(etree.ElementTree(_detached(envio.find(f"{{{IOP_CABECERA}}}Cabecera"))))
            return _soap_fault(cabecera if valid else None, "Client", "E0002", f"line {error.line}: {error.message}")
        if fault is not None and fault.fault == "fault":  # a SOAP fault, answering the request's (valid) header
            return _soap_fault(cabecera, fault.fault_code, fault.reason_code or "E0500",
                               fault.reason_text or f"the single window reports a {fault.fault_code.lower()} fault")
        earlier = state.received.get(cabecera.IDdeTransaccion)
        if earlier is not None:
            earlier.deliveries += 1
            return _xml(earlier.receipt)
        reason = self._check(signed.encode("utf-8"))
        if reason is None and state.forced is not None and state.forced.acuse == ERROR:
            reason = (state.forced.reason_code or "E0100", state.forced.reason_text or "refused by the single window")
        receipt_id = str(uuid.uuid4())
        acuse = AcuseRecibo(
            Cabecera=cabecera.answer(transaction_id=receipt_id),
            CodigoAcuseRecibo=ERROR if reason else RECEIVED,
            GlosaAcuseRecibo=format_reason(*reason) if reason else "certificado recibido",
            FechaHoraAcuseRecibo=timestamp(),
        )
        sender = _caller(request) or cabecera.PaisdeRemitente
        entry = _Received(cabecera.IDdeTransaccion, cabecera.IDdeDocumento, "rejected" if reason else "accepted",
                          acuse.GlosaAcuseRecibo if reason else None, receipt_id, build_acuse(acuse), sender)
        state.received[entry.message_id] = entry
        if not reason:
            state.border.lodge(Lodged(cabecera.IDdeTransaccion, receipt_id, cabecera.TipodeDocumento,
                                      cabecera.IDdeDocumento, sender, cabecera.PaisdeDestinatario), automatic=state.decide)
        return _xml(entry.receipt)

    async def track(self, request: Request) -> Response:
        """``consultaEventosSeguimiento``: the caller's events after its cursor."""
        state, body = self.state, await request.body()
        fault = state.take_fault("tracking")
        if fault is not None and fault.fault == "slow":
            await asyncio.sleep(fault.seconds)
        elif fault is not None and fault.fault != "fault":
            return _fault_response(fault)
        try:
            query, element = read_query(body)
        except InputError as exc:
            return _tracking_fault(None, "Client", "E0001", f"unreadable request: {exc}")
        if not self.tracking_schema.validate(etree.ElementTree(_detached(element))):
            error = self.tracking_schema.error_log.last_error
            header = _detached(element.find(f"{{{IOP_TRACKING}}}CabeceraConsulta"))
            valid = self.tracking_schema.validate(etree.ElementTree(header))
            return _tracking_fault(query.header if valid else None, "Client", "E0002", f"line {error.line}: {error.message}")
        caller = _caller(request)
        if caller and caller != query.header.sender_country:
            return _tracking_fault(query.header, "Client", "E0403", f"the client certificate is {caller}'s, the header "
                                   f"asks for {query.header.sender_country}'s events")
        if fault is not None and fault.fault == "fault":
            return _tracking_fault(query.header, fault.fault_code, fault.reason_code or "E0500",
                                   fault.reason_text or f"the single window reports a {fault.fault_code.lower()} fault")
        events, more = state.border.after(query.header.sender_country, query.after, query.limit)
        answer = TrackingAnswer(header=query.header.answer(transaction_id=str(uuid.uuid4())),
                                last_sequence=events[-1].sequence if events else query.after, more=more, events=tuple(events))
        return _xml(build_answer(answer))

    async def decide(self, request: Request) -> Response:
        """Append a border event to a certificate's timeline (201 with the event)."""
        try:
            decision = Decision.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"code": "BAD_DECISION", "detail": str(exc)}, 400)
        try:
            event = self.state.border.record(decision)
        except BorderError as exc:
            return JSONResponse({"code": "DECISION_REFUSED", "detail": str(exc)}, exc.status)
        return JSONResponse({"event": _event_json(event)}, 201)

    async def events(self, request: Request) -> Response:
        return JSONResponse({"events": [{**_event_json(logged.event), "caller": logged.owner}
                                        for logged in self.state.border.log]})

    def _check(self, certificate: bytes) -> tuple[str, str] | None:
        """None for a certificate to receive, else (reason code, text)."""
        try:
            verified = self.verifier.verify(certificate)
        except SignatureMissing as exc:
            return "SIGNATURE_MISSING", str(exc)
        except SignatureError as exc:
            return "SIGNATURE_INVALID", str(exc)
        except InputError as exc:
            return "NOT_XML", str(exc)
        try:
            severe = validate_certificate(verified.signed_root, source="SignedSPSCert").report.severe
        except InputError as exc:
            return "UNKNOWN_DOCUMENT", str(exc)
        if severe:
            return "VALIDATION_FAILED", f"{severe[0].xpath}: {severe[0].message_en} ({len(severe)} severe finding(s))"
        return None

    async def control(self, request: Request) -> Response:
        try:
            control = Control.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"code": "BAD_CONTROL", "detail": str(exc)}, 400)
        try:
            decision = control.decision()
        except ValidationError as exc:
            return JSONResponse({"code": "BAD_CONTROL", "detail": str(exc)}, 400)
        queue_fault(self.state.faults, control)
        if control.acuse is not None:
            self.state.forced = control
        if control.decide is not None:
            self.state.decide = decision
        return JSONResponse({"faults": [f.model_dump(exclude_none=True) for f in self.state.faults],
                             "acuse": self.state.forced.acuse if self.state.forced else RECEIVED,
                             "decide": self.state.decide.event if self.state.decide else None})

    async def received(self, request: Request) -> Response:
        border = self.state.border
        return JSONResponse({"received": [
            {**entry.as_json(), "events": [event.code.label for event in border.timeline(entry.message_id)]}
            for entry in self.state.received.values()
        ]})

    async def reset(self, request: Request) -> Response:
        self.state = _State()
        return Response(status_code=204)


def create_sandbox_app(*, trust_store: TrustStore) -> Starlette:
    """The sandbox as an ASGI app; ``trust_store`` decides which certificate signatures it accepts."""
    sandbox = _Sandbox(trust_store)
    app = Starlette(routes=[
        Route(SERVICE_PATH, sandbox.receive, methods=["POST"]),
        Route(TRACKING_PATH, sandbox.track, methods=["POST"]),
        Route("/control", sandbox.control, methods=["POST"]),
        Route("/decision", sandbox.decide, methods=["POST"]),
        Route("/received", sandbox.received, methods=["GET"]),
        Route("/events", sandbox.events, methods=["GET"]),
        Route("/state", sandbox.reset, methods=["DELETE"]),
    ])
    app.state.sandbox = sandbox
    return app


def create_sandbox_from_pki(certs_dir: Path | str) -> Starlette:
    """The sandbox trusting the development PKI's CA (``ca.pem`` under ``certs_dir``)."""
    return create_sandbox_app(trust_store=TrustStore.from_paths(ca_bundle=Path(certs_dir) / "ca.pem"))


def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(WSDL_DIR / name), etree.XMLParser(no_network=True)))


def _detached(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type=SOAP_MEDIA_TYPE)


def _soap_fault(cabecera: Cabecera | None, faultcode: str, code: str, text: str) -> Response:
    header = cabecera.answer(transaction_id=str(uuid.uuid4())) if cabecera else None
    falla = MensajeFalla(faultcode=faultcode, faultstring=text[:300], Cabecera=header, DetallesError=((code, text),))
    return _xml(build_falla(falla), 500)  # SOAP 1.1 §6.2: a fault travels with HTTP 500


def _tracking_fault(header: TrackingHeader | None, faultcode: str, code: str, text: str) -> Response:
    answered = header.answer(transaction_id=str(uuid.uuid4())) if header else None
    return _xml(build_fault(faultcode, text, answered, ((code, text),)), 500)


def _event_json(event: TrackingEvent) -> dict:
    return {"sequence": event.sequence, "transaction_id": event.transaction_id, "receipt_id": event.receipt_id,
            "certificate_number": event.certificate_number, "event": event.code.label, "occurred_at": event.occurred_at,
            "reason_code": event.reason_code, "reason_text": event.reason_text,
            "measure": event.measure.label if event.measure else None}


def _caller(request: Request) -> str | None:
    """The country of the caller's TLS client certificate, when the server hands it to the app (uvicorn does not)."""
    chain = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    if not chain:
        return None
    certificate = x509.load_pem_x509_certificate(chain[0].encode() if isinstance(chain[0], str) else chain[0])
    values = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(values[0].value) if values else None


def _fault_response(fault: Control) -> Response:
    if fault.fault == "unavailable":
        headers = retry_after_headers(fault.retry_after)
        return Response(b"the single window is temporarily unavailable", 503, headers=headers, media_type="text/plain")
    if fault.fault == "server_error":
        return Response(b"<html><body>Internal Server Error</body></html>", 500, media_type="text/html")
    if fault.fault == "malformed":
        return Response(b"<<<\x00 this is not an AcuseRecibo", 200, media_type=SOAP_MEDIA_TYPE)
    if fault.fault == "drop":
        return DroppedResponse(b"<soap:Envelope")
    return Response(b"the single window refuses this request", fault.status, media_type="text/plain")
