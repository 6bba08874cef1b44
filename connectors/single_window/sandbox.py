"""A local foreign single window that speaks the IOP ``EnvioCertificadoFitosanitario`` service, with switches for
misbehaving::

    POST   /iop/EnvioCertificadoFitosanitario  SOAP 1.1 → AcuseRecibo RCB | ERR (200), or a MensajeFalla fault (500)
    POST   /control                            JSON: faults for the next requests, forced ERR receipts
    GET    /received                           what arrived, one entry per IDdeTransaccion, in arrival order
    DELETE /state                              forget everything

Each request is validated against the hub's own XSDs (``wsdl/``); a request that does not validate gets a
``soap:Client`` fault. The embedded certificate must carry a signature the trust store accepts and must validate,
else the receipt is ``ERR`` with ``[CODE] text`` in ``GlosaAcuseRecibo``. A repeated ``IDdeTransaccion`` gets the
first receipt again. Serve it over mutual TLS with :func:`connectors.p2p.serving.serve_sandbox`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lxml import etree
from pydantic import Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox_faults import DroppedResponse, FaultControl, queue_fault, retry_after_headers, take_fault
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
from hub.errors import InputError, SignatureError, SignatureMissing
from hub.signing import TrustStore, Verifier
from hub.validation.validator import validate_certificate

SERVICE_PATH = "/iop/EnvioCertificadoFitosanitario"


class Control(FaultControl):
    """What ``POST /control`` accepts. A fault is queued for the next ``count`` requests (``"none"`` clears the
    queue); ``acuse`` (``"ERR"`` with its reason, or ``"RCB"``) stays in force until changed or reset."""

    fault: Literal["unavailable", "server_error", "slow", "malformed", "drop", "refuse", "fault", "none"] | None = None
    status: int = Field(default=403, ge=400, le=499)
    fault_code: Literal["Client", "Server"] = "Server"
    acuse: Literal["RCB", "ERR"] | None = None
    reason_code: str | None = None
    reason_text: str | None = None


@dataclass
class _Received:
    message_id: str
    certificate_number: str
    status: str
    reason: str | None
    receipt_id: str
    receipt: bytes
    deliveries: int = 1

    def as_json(self) -> dict:
        keys = ("message_id", "certificate_number", "status", "reason", "receipt_id", "deliveries")
        return {key: getattr(self, key) for key in keys}


@dataclass
class _State:
    received: dict[str, _Received] = field(default_factory=dict)
    faults: list[Control] = field(default_factory=list)
    forced: Control | None = None

    def take_fault(self) -> Control | None:
        return take_fault(self.faults)


class _Sandbox:
    def __init__(self, trust_store: TrustStore) -> None:
        self.verifier = Verifier(trust_store)
        self.schema = _schema("EnvioCertificadoFitosanitario_V0_2.xsd")
        self.state = _State()

    async def receive(self, request: Request) -> Response:
        state, body = self.state, await request.body()
        fault = state.take_fault()
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
        entry = _Received(cabecera.IDdeTransaccion, cabecera.IDdeDocumento, "rejected" if reason else "accepted",
                          acuse.GlosaAcuseRecibo if reason else None, receipt_id, build_acuse(acuse))
        state.received[entry.message_id] = entry
        return _xml(entry.receipt)

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
        queue_fault(self.state.faults, control)
        if control.acuse is not None:
            self.state.forced = control
        return JSONResponse({"faults": [f.model_dump(exclude_none=True) for f in self.state.faults],
                             "acuse": self.state.forced.acuse if self.state.forced else RECEIVED})

    async def received(self, request: Request) -> Response:
        return JSONResponse({"received": [entry.as_json() for entry in self.state.received.values()]})

    async def reset(self, request: Request) -> Response:
        self.state = _State()
        return Response(status_code=204)


def create_sandbox_app(*, trust_store: TrustStore) -> Starlette:
    """The sandbox as an ASGI app; ``trust_store`` decides which certificate signatures it accepts."""
    sandbox = _Sandbox(trust_store)
    app = Starlette(routes=[
        Route(SERVICE_PATH, sandbox.receive, methods=["POST"]),
        Route("/control", sandbox.control, methods=["POST"]),
        Route("/received", sandbox.received, methods=["GET"]),
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
