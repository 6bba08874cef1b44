"""A local TRACES-NT that authenticates like the real one and decides CHEDs as a test tells it to.

::

    POST   /tracesnt/ws/CustomsCertexChedServiceV06   SOAP 1.1, customs accounts only: ProcessedChedRequest |
                                              ChedClearanceRequest (CSW-CERTEX, see connectors/traces_nt/customs.py)
    POST   /tracesnt/ws/{service}   SOAP 1.1: CreateAndSubmitChedForDecisionRequest | GetChedCertificateStatusRequest |
                                    GetChedCertificateRequest | GetChedSignedXmlCertificateRequest (the last three:
                                    see connectors/traces_nt/certificates.py)
    POST   /control                 JSON: the decision later CHEDs get, and faults for the next calls
    GET    /received                the CHEDs received, in arrival order
    GET    /quantities[/{ref}]      each CHED's quantity ledger: lines (certified, reserved, written off, available)
                                    and customs' movements
    DELETE /state                   forget every CHED, fault and decision (accounts and nonces stay)

Every call is authenticated (:func:`~connectors.traces_nt.wssecurity.verify_security`): a wrong digest, a stale
timestamp, a replayed nonce, an unknown user or client id are answered with the ``UnauthenticatedException`` fault
of the saved capture. The customs port has its own accounts (as TRACES gives customs a separate account): a CHED
account is refused there, and a customs account on the CHED services. An account sees only the CHEDs it submitted
(another's is answered with ``ChedCertificatePermissionDeniedException``, as captured); the signed CHED is signed
with the key the sandbox is given (``signing_key_provider``, a development PKI identity). A resubmission of a CHED
with the same ``SPSExchangedDocument/ID`` by the same account is the same CHED (same reference); the stored material
does not say what TRACES does there, this is the sandbox's choice.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from lxml import etree
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox_faults import DroppedResponse, FaultControl, queue_fault, retry_after_headers, take_fault
from connectors.traces_nt import euintra, protocol
from connectors.traces_nt.euintra import EuIntraPort
from connectors.traces_nt.certificates import REQUESTS as CERTIFICATE_REQUESTS
from connectors.traces_nt.certificates import ChedCertificatePort
from connectors.traces_nt.customs import CertexPort, ChedLedger, certified_lines
from connectors.traces_nt.wssecurity import (
    TRACES_BASE_V3,
    NonceCache,
    Unauthenticated,
    answer_security,
    unauthenticated_fault,
    verify_security,
)
from connectors.traces_nt.certex import SERVICE as CERTEX_SERVICE
from hub.errors import InputError
from hub.namespaces import RAM, TRACES_CHED_SUBMISSION
from hub.signing import KeyProvider, Signer

_SUBMIT = f"{{{TRACES_CHED_SUBMISSION}}}CreateAndSubmitChedForDecisionRequest"
_TARGETS = {_SUBMIT: "submit", protocol.CERTIFICATE_REQUEST: "certificate", protocol.SIGNED_XML_REQUEST: "certificate"}
_XML = "text/xml; charset=utf-8"


class Control(FaultControl):
    """What ``POST /control`` accepts. A fault is queued for the next ``count`` calls to ``target`` (``certificate``:
    ``getChedCertificate`` and ``getChedSignedXmlCertificate``; ``status``: the other calls but submissions);
    ``"none"`` clears the queue. ``decision`` (with its reason, measure and remarks) stays in force for later CHEDs
    until changed."""

    fault: Literal["unavailable", "server_error", "soap_fault", "refuse", "slow", "malformed", "drop", "none"] | None = None
    target: Literal["submit", "status", "certificate", "certex"] = "submit"
    decision: Literal["accept", "partial", "reject", "not_acceptable", "pending"] | None = None
    decision_conclusion: str | None = None
    reason_code: str | None = None
    measure: str | None = None
    reason_text: str | None = None


@dataclass
class Ched:
    """One CHED the sandbox holds."""

    reference: str
    local_id: str | None
    username: str
    certificate: bytes
    status: protocol.ChedStatus
    deliveries: int = 1
    ledger: ChedLedger = field(default_factory=lambda: ChedLedger(()))

    def as_json(self) -> dict:
        return {"reference": self.reference, "certificate_number": self.local_id, "username": self.username,
                "status": "accepted", "ched_status": self.status.status_code, "deliveries": self.deliveries}


class TracesSandbox:
    """The state and handlers behind :func:`create_traces_sandbox_app` (``app.state.sandbox``)."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, str],
        client_ids: Mapping[str, str] | None,
        customs_accounts: Mapping[str, str] | None = None,
        customs_client_ids: Mapping[str, str] | None = None,
        signing_key_provider: KeyProvider | None = None,
    ) -> None:
        self.accounts = dict(accounts)
        self.signer = Signer(signing_key_provider) if signing_key_provider is not None else None
        self.client_ids = dict(client_ids or {})
        self.nonces = NonceCache()
        self.customs_accounts = dict(customs_accounts or {})
        self.customs_client_ids = dict(customs_client_ids or {})
        self.customs_nonces = NonceCache()
        self.reset_state()

    def reset_state(self) -> None:
        self.cheds: dict[str, Ched] = {}
        self.certex = CertexPort(self.cheds)
        self.certificates = ChedCertificatePort(self.cheds, signer=self.signer)
        self.eu_intra = EuIntraPort()
        self.faults: list[Control] = []
        self.decision = Control(decision="accept")
        self._numbers = itertools.count(1)

    def take_fault(self, target: str) -> Control | None:
        return take_fault(self.faults, target)

    async def service(self, request: Request) -> Response:
        body = await request.body()
        try:
            header, element = protocol.read_envelope(body)
        except InputError as exc:
            return _soap(protocol.fault("Client", f"unreadable SOAP request: {exc}"), 500)
        target = _TARGETS.get(element.tag, "status")
        fault = self.take_fault(target)
        if fault is not None and fault.fault == "slow":
            await asyncio.sleep(fault.seconds)
        elif fault is not None:
            return _fault_response(fault)
        try:
            username = self._authenticate(header)
        except Unauthenticated:
            return _soap(unauthenticated_fault(), 500)
        if element.tag == _SUBMIT:
            return self._submit(username, element)
        if element.tag in CERTIFICATE_REQUESTS:
            status, answer = self.certificates.answer(username, element)
            return _soap(answer, status)
        if element.tag in euintra.REQUESTS:
            status, answer = self.eu_intra.answer(element)
            return _answer(answer) if status == 200 else _soap(answer, status)
        return _soap(protocol.fault("Client", f"no operation takes {element.tag}"), 500)

    async def certex_service(self, request: Request) -> Response:
        """The CSW-CERTEX port: faults queued for ``certex``, then a customs account, then the ledger's answer."""
        body = await request.body()
        try:
            header, element = protocol.read_envelope(body)
        except InputError as exc:
            return _soap(protocol.fault("Client", f"unreadable SOAP request: {exc}"), 500)
        fault = self.take_fault("certex")
        if fault is not None and fault.fault == "slow":
            await asyncio.sleep(fault.seconds)
        elif fault is not None:
            return _fault_response(fault)
        try:
            self._authenticate(header, customs=True)
        except Unauthenticated:
            return _soap(unauthenticated_fault(), 500)
        status, answer = self.certex.answer(header, element)
        return _soap(answer, status)

    def _authenticate(self, header: etree._Element | None, *, customs: bool = False) -> str:
        accounts, client_ids = (self.customs_accounts, self.customs_client_ids) if customs else (self.accounts, self.client_ids)
        username = verify_security(header, accounts=accounts, nonces=self.customs_nonces if customs else self.nonces)
        expected = client_ids.get(username)
        given = header.findtext(f"{{{TRACES_BASE_V3}}}WebServiceClientId") if header is not None else None
        if expected is not None and (given or "").strip() != expected:
            raise Unauthenticated(f"WebServiceClientId {given!r} is not the one of {username!r}")
        return username

    def _submit(self, username: str, request: etree._Element) -> Response:
        certificate = next(iter(request), None)
        document = certificate.find("{*}SPSExchangedDocument") if certificate is not None else None
        if document is None:
            return _soap(protocol.fault("Client", "no SPSCertificate/SPSExchangedDocument in the request"), 500)
        local_id = (document.findtext(f"{{{RAM}}}ID") or "").strip() or None
        earlier = next((c for c in self.cheds.values() if local_id and (c.username, c.local_id) == (username, local_id)), None)
        if earlier is not None:
            earlier.deliveries += 1
            return _answer(protocol.submission_response(earlier.reference))
        reference = self._reference(document, certificate)
        self.cheds[reference] = Ched(reference, local_id, username, etree.tostring(certificate),
                                     self._decide(reference), ledger=ChedLedger(certified_lines(certificate)))
        return _answer(protocol.submission_response(reference))

    def _reference(self, document: etree._Element, certificate: etree._Element) -> str:
        ched_type = "P"
        for note in document.iterfind(f"{{{RAM}}}IncludedSPSNote"):
            if (note.findtext(f"{{{RAM}}}SubjectCode") or "").strip().upper() == "CHED_TYPE":
                ched_type = (note.findtext(f"{{{RAM}}}ContentCode") or ched_type).strip()
        country = (certificate.findtext(f".//{{{RAM}}}ImportSPSCountry/{{{RAM}}}ID") or "EU").strip()
        return f"CHED{ched_type}.{country}.{datetime.now(timezone.utc).year}.{next(self._numbers):07d}"

    def _decide(self, reference: str) -> protocol.ChedStatus:
        control, kind = self.decision, self.decision.decision
        if kind == "pending":
            return protocol.ChedStatus(reference, "42")
        if kind == "accept":
            return protocol.ChedStatus(reference, "70", control.decision_conclusion or "ACCEPTABLE_FOR_INTERNAL_MARKET",
                                       remarks=control.reason_text)
        if kind == "partial":
            reasons = (control.reason_code,) if control.reason_code else ()
            return protocol.ChedStatus(reference, "122", control.decision_conclusion or "ACCEPTABLE_FOR_INTERNAL_MARKET",
                                       refusal_reasons=reasons, measure=control.measure, remarks=control.reason_text)
        if kind == "not_acceptable":
            return protocol.ChedStatus(reference, "41", "NOT_ACCEPTABLE", measure=control.measure or control.reason_code
                                       or "REDISPATCHING", remarks=control.reason_text)
        return protocol.ChedStatus(reference, "41", "NOT_ACCEPTABLE", refusal_reasons=(control.reason_code or "FAILED_PHYSICAL_CHECK",),
                                   measure=control.measure, remarks=control.reason_text)

    async def control(self, request: Request) -> Response:
        try:
            control = Control.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"code": "BAD_CONTROL", "detail": str(exc)}, 400)
        queue_fault(self.faults, control)
        if control.decision is not None:
            self.decision = control
        return JSONResponse({"faults": [f.model_dump(exclude_none=True) for f in self.faults],
                             "decision": self.decision.decision})

    async def hold_eu_intra(self, request: Request) -> Response:
        """``POST /euintra``: hold an intra-EU health certificate (XML) for ``findEuIntraCertificate`` and
        ``getEuIntraCertificate`` to hand out, as a member state's authority would have issued it."""
        try:
            held = self.eu_intra.hold(await request.body())
        except InputError as exc:
            return JSONResponse({"error": exc.message, "where": exc.where}, status_code=422)
        return JSONResponse({"id": held.id, "destination": held.destination, "updated_at": held.updated_at.isoformat()}, status_code=201)

    async def received(self, request: Request) -> Response:
        return JSONResponse({"received": [ched.as_json() for ched in self.cheds.values()]})

    async def quantities(self, request: Request) -> Response:
        """Every CHED's ledger, or one CHED's (``/quantities/{reference}``; 404 when unknown)."""
        reference = request.path_params.get("reference")
        if reference is None:
            return JSONResponse({"cheds": [self._quantities(ched) for ched in self.cheds.values()]})
        ched = self.cheds.get(reference)
        if ched is None:
            return JSONResponse({"code": "NOT_FOUND", "detail": f"no CHED {reference}"}, 404)
        return JSONResponse(self._quantities(ched))

    @staticmethod
    def _quantities(ched: Ched) -> dict:
        return {"reference": ched.reference, "ched_status": ched.status.status_code, **ched.ledger.as_json()}

    async def reset(self, request: Request) -> Response:
        self.reset_state()
        return Response(status_code=204)


def create_traces_sandbox_app(
    *,
    accounts: Mapping[str, str],
    client_ids: Mapping[str, str] | None = None,
    customs_accounts: Mapping[str, str] | None = None,
    customs_client_ids: Mapping[str, str] | None = None,
    signing_key_provider: KeyProvider | None = None,
) -> Starlette:
    """The sandbox as an ASGI app. ``accounts`` maps usernames to authentication keys; ``client_ids``, when given,
    maps usernames to the ``WebServiceClientId`` each must send. ``customs_accounts`` and ``customs_client_ids`` are
    the same for the CSW-CERTEX port (none: every customs call is refused as unauthenticated).
    ``signing_key_provider`` signs what ``getChedSignedXmlCertificate`` hands out (e.g. ``DevPki.key_provider("FR")``);
    without it that call is answered with a ``Server`` fault."""
    sandbox = TracesSandbox(accounts=accounts, client_ids=client_ids, customs_accounts=customs_accounts,
                            customs_client_ids=customs_client_ids, signing_key_provider=signing_key_provider)
    app = Starlette(routes=[
        Route(f"/tracesnt/ws/{CERTEX_SERVICE}", sandbox.certex_service, methods=["POST"]),
        Route("/tracesnt/ws/{service}", sandbox.service, methods=["POST"]),
        Route("/control", sandbox.control, methods=["POST"]),
        Route("/euintra", sandbox.hold_eu_intra, methods=["POST"]),
        Route("/received", sandbox.received, methods=["GET"]),
        Route("/quantities", sandbox.quantities, methods=["GET"]),
        Route("/quantities/{reference}", sandbox.quantities, methods=["GET"]),
        Route("/state", sandbox.reset, methods=["DELETE"]),
    ])
    app.state.sandbox = sandbox
    return app


def _answer(element: etree._Element) -> Response:
    return _soap(protocol.envelope([answer_security()], element), 200)


def _soap(body: bytes, status: int) -> Response:
    return Response(body, status, media_type=_XML)


def _fault_response(fault: Control) -> Response:
    if fault.fault == "unavailable":
        headers = retry_after_headers(fault.retry_after)
        return Response("Service Unavailable", 503, headers=headers, media_type="text/plain")
    if fault.fault == "server_error":
        return Response("Internal Server Error", 500, media_type="text/plain")
    if fault.fault == "soap_fault":
        return _soap(protocol.fault("Server", "the service failed while processing the request"), 500)
    if fault.fault == "refuse":
        return _soap(unauthenticated_fault(), 500)
    if fault.fault == "malformed":
        return _soap(b"<<<\x00 this is not SOAP", 200)
    return DroppedResponse(b"<S:Envelope")
