"""A local foreign authority that speaks the point-to-point protocol faithfully, with switches for misbehaving.

One ASGI app mounts several authorities, each under ``/p2p/{name}``::

    POST   /p2p/{name}            a signed SPSCertificate → 202 receipt | 200 same receipt again | 422 signed rejection
    GET    /p2p/{name}/acks       ?after=N → {"acks": [{"seq": n, "xml": "<signed ack>"}], "next": m}
    POST   /p2p/{name}/control    JSON: faults for the next requests, and how to acknowledge
    GET    /p2p/{name}/received   the Message-IDs received, in arrival order
    DELETE /p2p/{name}/state      forget everything

Every acknowledgement it writes (receipts, rejections, asynchronous acks) is signed with the authority's key. Run it
in-process or over HTTPS with mutual TLS with :mod:`connectors.serving`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from pydantic import Field, ValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.p2p.protocol import (
    MESSAGE_ID_HEADER,
    CORRELATION_ID_HEADER,
    RECEIPT_ID_HEADER,
    AckStatus,
    build_acknowledgement,
    certificate_reference,
)
from connectors.sandbox_checks import check_signed_document
from connectors.serving import sandbox_app
from connectors.sandbox_faults import DroppedResponse, FaultControl, queue_fault, retry_after_headers, take_fault
from hub.errors import InputError
from hub.signing import KeyProvider, PemKeyProvider, Signer, TrustStore, Verifier
from hub.xmlsafe import MAX_DOCUMENT_BYTES, parse_xml

log = logging.getLogger(__name__)

_XML_TYPES = ("application/xml", "text/xml")
_PUSH_PAUSES = (0.2, 0.5, 1.0)
_DEFAULT_REASONS = {
    "warn": ("WARN", "accepted with remarks: consignment description abbreviated"),
    "reject": ("CONSIGNMENT_REFUSED", "the importing authority refuses the consignment"),
}


class Control(FaultControl):
    """What ``POST /p2p/{name}/control`` accepts. A fault is queued for the next ``count`` requests to ``target``;
    ``"none"`` clears the queue. ``ack`` (with its reason) stays in force until changed or reset."""

    fault: Literal["unavailable", "server_error", "slow", "malformed", "drop", "refuse", "none"] | None = None
    status: int = Field(default=403, ge=400, le=499)
    target: Literal["deliver", "acks"] = "deliver"
    ack: Literal["acknowledge", "warn", "reject", "none"] | None = None
    reason_code: str | None = None
    reason_text: str | None = None


@dataclass
class _Received:
    message_id: str
    certificate_number: str | None
    type_code: str | None
    correlation_id: str | None
    status: str = "accepted"
    reason: str | None = None
    receipt_id: str | None = None
    receipt: bytes = b""
    deliveries: int = 0

    def as_json(self) -> dict:
        keys = ("message_id", "certificate_number", "type_code", "correlation_id", "status", "reason", "receipt_id", "deliveries")
        return {key: getattr(self, key) for key in keys}


@dataclass
class _Authority:
    name: str
    received: dict[str, _Received] = field(default_factory=dict)
    acks: list[tuple[int, str]] = field(default_factory=list)
    faults: list[Control] = field(default_factory=list)
    ack: Control = field(default_factory=lambda: Control(ack="acknowledge"))

    def take_fault(self, target: str) -> Control | None:
        return take_fault(self.faults, target)


class _Sandbox:
    def __init__(
        self,
        *,
        trust_store: TrustStore,
        signing_key_provider: KeyProvider,
        authorities: Sequence[str],
        push_url: str | Mapping[str, str] | None,
        push_transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.verifier = Verifier(trust_store)
        self.signer = Signer(signing_key_provider)
        self.authorities = {name: _Authority(name) for name in authorities}
        self.push_url = push_url
        self.push_transport = push_transport
        self._push_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def authority(self, request: Request) -> _Authority | None:
        return self.authorities.get(request.path_params["authority"])

    async def receive(self, request: Request) -> Response:
        authority = self.authority(request)
        if authority is None:
            return _problem(404, "UNKNOWN_AUTHORITY", f"no authority at {request.url.path}")
        body = await request.body()
        fault = authority.take_fault("deliver")
        if fault is not None and fault.fault == "slow":
            # A reset meanwhile replaces the _Authority: what this request stores then goes nowhere, as it should.
            await asyncio.sleep(fault.seconds)
        elif fault is not None:
            return _fault_response(fault)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not content_type:
            return _problem(400, "CONTENT_TYPE_MISSING", "a Content-Type header is required")
        if content_type not in _XML_TYPES:
            return _problem(415, "CONTENT_TYPE_UNSUPPORTED", f"Content-Type {content_type} is not XML")
        message_id = request.headers.get(MESSAGE_ID_HEADER, "").strip()
        if not message_id or len(message_id) > 200:
            return _problem(400, "MESSAGE_ID_MISSING", f"a {MESSAGE_ID_HEADER} header (1 to 200 characters) is required")
        if len(body) > MAX_DOCUMENT_BYTES:
            return _problem(413, "TOO_LARGE", f"{len(body)} bytes is more than {MAX_DOCUMENT_BYTES}")
        try:
            root = parse_xml(body, source="request body")
        except InputError as exc:
            return _problem(400, "XML_REFUSED", str(exc))
        earlier = authority.received.get(message_id)
        if earlier is not None and earlier.status == "accepted":
            earlier.deliveries += 1
            return self._receipt_response(earlier, 200)
        type_code, number = certificate_reference(root)
        entry = _Received(message_id, number, type_code, request.headers.get(CORRELATION_ID_HEADER))
        signed_root, reason = check_signed_document(self.verifier, body)
        if reason is not None:
            return self._reject(authority, entry, earlier, *reason)
        entry.type_code, entry.certificate_number = certificate_reference(signed_root)
        entry.receipt_id = f"RCPT-{uuid.uuid4()}"
        entry.receipt = self._ack(AckStatus.PENDING, entry)
        entry.deliveries = (earlier.deliveries if earlier else 0) + 1
        authority.received[message_id] = entry
        background = self._acknowledge_later(authority, entry)
        return self._receipt_response(entry, 202, background)

    def _reject(self, authority: _Authority, entry: _Received, earlier: _Received | None, code: str, text: str) -> Response:
        entry.status, entry.reason = "rejected", f"[{code}] {text}"
        entry.deliveries = (earlier.deliveries if earlier else 0) + 1
        authority.received[entry.message_id] = entry
        body = self._ack(AckStatus.REJECTED, entry, code, text)
        return Response(body, 422, media_type="application/xml")

    def _ack(self, status: AckStatus, entry: _Received, code: str | None = None, text: str | None = None) -> bytes:
        unsigned = build_acknowledgement(
            status=status,
            certificate_type_code=entry.type_code or "851",
            certificate_number=entry.certificate_number or "",
            message_id=entry.message_id,
            reason_code=code,
            reason_text=text,
        )
        return self.signer.sign(unsigned)

    def _receipt_response(self, entry: _Received, status: int, background: BackgroundTask | None = None) -> Response:
        headers = {RECEIPT_ID_HEADER: entry.receipt_id or ""}
        return Response(entry.receipt, status, headers=headers, media_type="application/xml", background=background)

    def _acknowledge_later(self, authority: _Authority, entry: _Received) -> BackgroundTask | None:
        mode = authority.ack.ack
        if mode == "none":
            return None
        default_code, default_text = _DEFAULT_REASONS.get(mode, (None, None))
        status = AckStatus.REJECTED if mode == "reject" else AckStatus.APPROVED
        code = authority.ack.reason_code or default_code
        text = authority.ack.reason_text or default_text
        xml = self._ack(status, entry, code, text)
        authority.acks.append((len(authority.acks) + 1, xml.decode("utf-8")))
        url = self._push_url(authority.name)
        return BackgroundTask(self._push, url, xml) if url else None

    def _push_url(self, name: str) -> str | None:
        if self.push_url is None:
            return None
        if isinstance(self.push_url, Mapping):
            return self.push_url.get(name)
        return self.push_url.format(authority=name)

    def _push_client(self) -> httpx.AsyncClient:
        """One client per event loop, kept: a new client per push costs an SSL context (~20 ms) on the loop."""
        loop = asyncio.get_running_loop()
        client = self._push_clients.get(loop)
        if client is None:
            client = self._push_clients[loop] = httpx.AsyncClient(transport=self.push_transport, timeout=5.0)
        return client

    async def close(self) -> None:
        clients, self._push_clients = self._push_clients, {}
        loop = asyncio.get_running_loop()
        for owner, client in clients.items():
            if owner is loop:
                await client.aclose()

    async def _push(self, url: str, xml: bytes) -> None:
        client = self._push_client()
        for pause in (*_PUSH_PAUSES, None):
            try:
                response = await client.post(url, content=xml, headers={"Content-Type": "application/xml"})
                if response.status_code < 300:
                    return
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    log.warning("push to %s refused with %s: %s", url, response.status_code, response.text[:200])
                    return
            except httpx.HTTPError as exc:
                log.info("push to %s failed: %s", url, exc)
            if pause is None:
                log.warning("push to %s abandoned; the acknowledgement stays in the /acks feed", url)
                return
            await asyncio.sleep(pause)

    async def acks(self, request: Request) -> Response:
        authority = self.authority(request)
        if authority is None:
            return _problem(404, "UNKNOWN_AUTHORITY", f"no authority at {request.url.path}")
        fault = authority.take_fault("acks")
        if fault is not None:
            if fault.fault == "slow":
                await asyncio.sleep(fault.seconds)
            else:
                return _fault_response(fault)
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return _problem(400, "BAD_CURSOR", "after must be an integer")
        entries = [{"seq": seq, "xml": xml} for seq, xml in authority.acks if seq > after]
        return JSONResponse({"acks": entries, "next": entries[-1]["seq"] if entries else max(after, 0)})

    async def control(self, request: Request) -> Response:
        authority = self.authority(request)
        if authority is None:
            return _problem(404, "UNKNOWN_AUTHORITY", f"no authority at {request.url.path}")
        try:
            control = Control.model_validate_json(await request.body())
        except ValidationError as exc:
            return _problem(400, "BAD_CONTROL", str(exc))
        queue_fault(authority.faults, control)
        if control.ack is not None:
            authority.ack = control
        return JSONResponse({"faults": [f.model_dump(exclude_none=True) for f in authority.faults], "ack": authority.ack.ack})

    async def received(self, request: Request) -> Response:
        authority = self.authority(request)
        if authority is None:
            return _problem(404, "UNKNOWN_AUTHORITY", f"no authority at {request.url.path}")
        return JSONResponse({"received": [entry.as_json() for entry in authority.received.values()]})

    async def reset(self, request: Request) -> Response:
        authority = self.authority(request)
        if authority is None:
            return _problem(404, "UNKNOWN_AUTHORITY", f"no authority at {request.url.path}")
        self.authorities[authority.name] = _Authority(authority.name)
        return Response(status_code=204)


def create_sandbox_app(
    *,
    trust_store: TrustStore,
    signing_key_provider: KeyProvider,
    authorities: Sequence[str] = ("authority", "customs"),
    push_url: str | Mapping[str, str] | None = None,
    push_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The sandbox as an ASGI app, one foreign authority per name in ``authorities`` (mounted at ``/p2p/{name}``).

    ``trust_store`` checks the signatures of what it receives; ``signing_key_provider`` signs what it answers.
    ``push_url`` is where asynchronous acks are POSTed: a template (``{authority}`` is replaced by the name) or a
    mapping name → URL; without it acks are only served by the ``/acks`` feed. ``push_transport`` (async) replaces
    the network for pushes, e.g. ``httpx.ASGITransport(app=hub_api)``.
    """
    sandbox = _Sandbox(
        trust_store=trust_store, signing_key_provider=signing_key_provider, authorities=authorities,
        push_url=push_url, push_transport=push_transport,
    )
    routes = [
        Route("/p2p/{authority}", sandbox.receive, methods=["POST"]),
        Route("/p2p/{authority}/acks", sandbox.acks, methods=["GET"]),
        Route("/p2p/{authority}/control", sandbox.control, methods=["POST"]),
        Route("/p2p/{authority}/received", sandbox.received, methods=["GET"]),
        Route("/p2p/{authority}/state", sandbox.reset, methods=["DELETE"]),
    ]
    return sandbox_app(routes, close=sandbox.close, sandbox=sandbox)


def create_sandbox_from_pki(
    certs_dir: Path | str,
    *,
    authority_country: str = "US",
    authorities: Sequence[str] = ("authority", "customs"),
    push_url: str | Mapping[str, str] | None = None,
) -> Starlette:
    """The sandbox keyed from a development PKI: trusts its CA, signs as ``signing/<authority_country>``."""
    certs_dir = Path(certs_dir)
    return create_sandbox_app(
        trust_store=TrustStore.from_paths(ca_bundle=certs_dir / "ca.pem"),
        signing_key_provider=PemKeyProvider(
            certs_dir / "signing" / f"{authority_country}.key", certs_dir / "signing" / f"{authority_country}.pem"
        ),
        authorities=authorities,
        push_url=push_url,
    )


def _fault_response(fault: Control) -> Response:
    if fault.fault == "unavailable":
        headers = retry_after_headers(fault.retry_after)
        return _problem(503, "UNAVAILABLE", "the authority is temporarily unavailable", headers=headers)
    if fault.fault == "server_error":
        return _problem(500, "SERVER_ERROR", "the authority failed while processing the request")
    if fault.fault == "malformed":
        return Response(b"<<<\x00 this is not an acknowledgement", 200, media_type="application/xml")
    if fault.fault == "drop":
        return DroppedResponse(b"<rsm:SPSAck")
    return _problem(fault.status, "REFUSED", "the authority refuses this request")


def _problem(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "detail": detail}, status, headers=dict(headers or {}),
                        media_type="application/problem+json")
