"""A foreign CITES management authority (Japan's by default) that calls the hub's permit exchange when told to::

    POST   /control/fetch     {"number": "FR2607512345-R", "final": true}    GetFinalCitesCertificate (or NonFinal)
    POST   /control/confirm   {"number": "…", "positions": [{"id": "A", "quantity": "12", "unit": "PCS"}]}
                                                                            ConfirmQuantities
    POST   /control/state     {}                                             ServiceState
    GET    /received          every answer, in order
    DELETE /state             forget them

Each control call answers the entry it recorded. A permit received is checked as an importing authority would: its
signature against the development trust store (the signer must chain to the CA; the signer's country must be the
permit's issuing country), then read as a CITESEPermit 2 (its number must be the one asked for). Outcomes:
``received`` (verified and read), ``refused`` (``problem`` says why), ``confirmed``, ``answered`` (service state), or
``fault`` (the exchange answered a SOAP fault, or could not be reached: ``fault.error`` is the EPIX error name).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.cites_p2p.client import CitesExchangeClient
from connectors.config_checks import COUNTRY_PATTERN
from connectors.cites_p2p.epix import CertificateRequest, CertificateResponse, CitesPosition, EpixError, EpixFault, build_fault, build_response, read_request
from hub.families import routing_facts
from hub.errors import HubError, InputError
from hub.mapping.cites_permit import parse_permit, permit_from_data, render_permit, to_xml
from hub.records.cites import CITESPermit
from hub.signing.keyring import Keyring
from hub.tls_peer import client_certificate, subject_country
from hub.records import dump_record
from hub.signing import TrustStore, Verifier


class AuthoritySandboxConfig(BaseModel):
    """Who the sandbox is and whom it calls: ``country`` (its TLS client certificate, ``tls/client-<country>``),
    ``exchange_url`` (the hub's ``…/cites/v2/CitesDataExchange``), ``callee`` (``IsoCountryCode``: the
    authority asked)."""

    model_config = ConfigDict(extra="forbid")

    country: str = Field("JP", pattern=COUNTRY_PATTERN)
    exchange_url: str
    callee: str | None = Field(None, pattern=COUNTRY_PATTERN)
    timeout: float = Field(30.0, gt=0)


class FetchControl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1)
    final: bool = True


class PositionControl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    quantity: Decimal
    unit: str | None = None


class ConfirmControl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1)
    positions: list[PositionControl] = Field(min_length=1)


@dataclass
class _Authority:
    config: AuthoritySandboxConfig
    client: CitesExchangeClient
    verifier: Verifier
    received: list[dict[str, Any]] = field(default_factory=list)
    numbers: Any = field(default_factory=lambda: itertools.count(1))

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"seq": next(self.numbers), **entry}
        self.received.append(entry)
        return entry

    def fetch(self, control: FetchControl) -> dict[str, Any]:
        operation = "GetFinalCitesCertificate" if control.final else "GetNonFinalCitesCertificate"
        entry: dict[str, Any] = {"operation": operation, "number": control.number}
        try:
            answer = self.client.get_final(control.number) if control.final else self.client.get_non_final(control.number)
        except EpixFault as fault:
            return self.record({**entry, "outcome": "fault", "fault": _fault(fault)})
        return self.record({**entry, **self._check(answer, control.number)})

    def confirm(self, control: ConfirmControl) -> dict[str, Any]:
        positions = [CitesPosition(p.id, p.quantity, p.unit) for p in control.positions]
        entry: dict[str, Any] = {"operation": "ConfirmQuantities", "number": control.number, "positions": _positions(positions)}
        try:
            answer = self.client.confirm_quantities(control.number, positions)
        except EpixFault as fault:
            return self.record({**entry, "outcome": "fault", "fault": _fault(fault)})
        return self.record({**entry, "outcome": "confirmed", "recorded": _positions(answer.positions)})

    def state(self) -> dict[str, Any]:
        try:
            answer = self.client.service_state()
        except EpixFault as fault:
            return self.record({"operation": "ServiceState", "outcome": "fault", "fault": _fault(fault)})
        return self.record({"operation": "ServiceState", "outcome": "answered", "state": answer.state, "iso_country_code": answer.iso_country_code})

    def _check(self, answer: CertificateResponse, number: str) -> dict[str, Any]:
        seen: dict[str, Any] = {"sha256": hashlib.sha256(answer.permit).hexdigest(), "composite": answer.composite}
        try:
            verified = self.verifier.verify(answer.permit)
            seen["signer"] = verified.signer_subject
            signer_country = verified.signer_certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
            seen["signer_country"] = str(signer_country[0].value) if signer_country else None
            parsed = parse_permit(verified.signed_root, source="permit received")
        except HubError as exc:
            return {**seen, "outcome": "refused", "problem": f"{type(exc).__name__}: {exc}"}
        record = parsed.record
        issuing = routing_facts(record).issuing_country
        found = record.permit_number.value.strip() if record.permit_number else None
        seen.update(permit_number=found, issuing_country=issuing, record=dump_record(record))
        if found != number:
            return {**seen, "outcome": "refused", "problem": f"asked for permit {number}, received {found}"}
        if seen["signer_country"] != issuing:
            return {**seen, "outcome": "refused", "problem": f"signed by {seen['signer']}, not by the issuing authority of {issuing}"}
        return {**seen, "outcome": "received"}


def _fault(fault: EpixFault) -> dict[str, Any]:
    return {"error": fault.error, "detail": fault.detail, "http_status": fault.http_status, "remote": fault.remote}


def _positions(positions) -> list[dict[str, Any]]:
    return [{"id": p.id, "quantity": format(p.quantity, "f"), "unit": p.unit} for p in positions]


class HeldPermits:
    """The sandbox authority's own permits, served through its exchange in the toolkit version the caller asks in:
    ``POST /control/permits`` holds a permit record (its own, signed with its key when served);
    ``POST /cites/v1|v2/CitesDataExchange`` answers ``Get(Non)FinalCitesCertificate`` to the permit's parties."""

    def __init__(self, country: str, certs_dir: Path) -> None:
        self.country = country
        self.keyring = Keyring(certs_dir / "signing")
        self.permits: dict[str, CITESPermit] = {}

    def hold(self, data: dict[str, Any]) -> dict[str, Any]:
        permit = permit_from_data(data)
        number = permit.permit_number.value.strip() if permit.permit_number else ""
        if not number:
            raise InputError("a permit to hold needs its permit_number", where="permit_number")
        self.permits[number] = permit
        return {"permit_number": number, "kind": permit.kind.value}

    def answer(self, body: bytes, caller: str | None) -> tuple[int, bytes]:
        try:
            request = read_request(body)
        except EpixFault as fault:
            return 500, build_fault(fault)
        version = request.version
        if not isinstance(request, CertificateRequest):
            return 500, build_fault(EpixFault(EpixError.INVALID_REQUEST, "this authority answers only Get(Non)FinalCitesCertificate"), version)
        permit = self.permits.get(request.certificate_number)
        parties = {routing_facts(permit).issuing_country, permit.importing_country()} if permit else set()
        if permit is None or caller not in parties:
            return 500, build_fault(EpixFault(EpixError.CERTIFICATE_MISSING, f"no permit {request.certificate_number} for {caller}"), version)
        rendered = render_permit(permit, "v1-epix" if version == "1" else "epix")
        signed = self.keyring.signer_for(self.country).sign(to_xml(rendered.root))
        return 200, build_response(CertificateResponse(final=request.final, permit=signed), version)


def create_cites_authority_sandbox(config: AuthoritySandboxConfig, *, certs_dir: Path | str, transport: httpx.BaseTransport | None = None) -> Starlette:
    """The sandbox authority as an ASGI app. It calls the exchange with ``certs_dir/tls/client-<country>.pem`` and
    trusts ``certs_dir/ca.pem`` (TLS and signatures); ``transport`` replaces the network (in-process tests). It also
    serves its own permits (:class:`HeldPermits`) to the hub, the caller taken from its TLS client certificate."""
    certs_dir = Path(certs_dir)
    client = CitesExchangeClient(config.exchange_url, country=config.country, certs_dir=certs_dir, callee=config.callee, timeout=config.timeout, transport=transport)
    authority = _Authority(config, client, Verifier(TrustStore.from_paths(ca_bundle=certs_dir / "ca.pem")))

    async def fetch(request: Request) -> Response:
        return await _control(request, FetchControl, authority.fetch)

    async def confirm(request: Request) -> Response:
        return await _control(request, ConfirmControl, authority.confirm)

    async def state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(authority.state))

    async def received(request: Request) -> Response:
        return JSONResponse({"country": config.country, "received": authority.received})

    async def reset(request: Request) -> Response:
        authority.received.clear()
        return Response(status_code=204)

    held = HeldPermits(config.country, certs_dir)

    async def hold_permit(request: Request) -> Response:
        try:
            return JSONResponse(held.hold(json.loads(await request.body())), status_code=201)
        except (ValueError, HubError) as exc:
            return JSONResponse({"detail": str(exc)}, 400)

    async def exchange(request: Request) -> Response:
        certificate = client_certificate(request)
        body = await request.body()
        status, answer = await run_in_threadpool(held.answer, body, subject_country(certificate) if certificate is not None else None)
        return Response(answer, status_code=status, media_type="text/xml; charset=utf-8")

    app = Starlette(
        routes=[
            Route("/control/fetch", fetch, methods=["POST"]),
            Route("/control/confirm", confirm, methods=["POST"]),
            Route("/control/state", state, methods=["POST"]),
            Route("/received", received, methods=["GET"]),
            Route("/state", reset, methods=["DELETE"]),
            Route("/control/permits", hold_permit, methods=["POST"]),
            Route("/cites/v1/CitesDataExchange", exchange, methods=["POST"]),
            Route("/cites/v2/CitesDataExchange", exchange, methods=["POST"]),
        ],
    )
    app.state.authority = authority  # its client is closed with app.state.authority.client.close()
    return app


async def _control(request: Request, model: type[BaseModel], action) -> Response:
    try:
        control = model.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"detail": str(exc)}, 400)
    # The client is synchronous, and the exchange may be served by this very process.
    return JSONResponse(await run_in_threadpool(action, control))
