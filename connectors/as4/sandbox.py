"""A local AS4 access point playing a foreign authority's gateway, speaking ebMS3/AS4 faithfully, with switches for
misbehaving.

::

    POST   /as4              an AS4 user message from the hub → signed receipt | error signal (same answer to a repeat);
                             a pull request → the next message held for the hub | EBMS:0006; callback receipts/errors
    POST   /as4/control      JSON: faults for the next messages, how to answer certificates later, push or pull mode
    GET    /as4/received     the user messages received (eb:MessageId, certificate number, status, deliveries)
    GET    /as4/outbox       in pull mode, what it holds for the hub and what became of it (offered, receipted, refused)
    DELETE /as4/state        forget everything
    POST   /as4/send         a signed certificate (the body) sent to the hub as an AS4 user message (or held, in pull
                             mode); JSON: the hub's answer
    POST   /as4/pull         pull the next message the hub holds for it (?mpc=, ?receipt=false); JSON: what came

It checks what arrives as a receiving access point must (MIME, ebMS header, decryption with its key, the hub's
signature against the development CA, payload decompression), then the certificate itself as the authority would
(signature, validity): a refused certificate is answered with EBMS:0004, as a back end refusing the business document.
Later it pushes a business response (a signed user message, Action ``BusinessResponse``, ``RefToMessageId`` = the
hub's message) to the hub's AS4 endpoint. Faults: ``unavailable`` (503 + Retry-After), ``server_error``, ``slow``,
``malformed``, ``drop``, ``refuse`` (EBMS:0010), ``error_signal`` (any ``code``, e.g. EBMS:0202), ``no_receipt``,
``bad_signature`` (a receipt whose signature does not verify), ``bad_receipt`` (non-repudiation digests that are not
ours); ``duplicates`` pushes each business response twice. In pull mode (``{"pull": true}``) it pushes nothing: what
it has for the hub waits on its MPC, is offered to the hub's signed pull requests, and is offered again until the hub
receipts it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from cryptography import x509
from lxml import etree
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.as4 import ns
from connectors.as4.connector import NUMBER_PROPERTY, OUTCOME_PROPERTY, REASON_CODE_PROPERTY, REASON_TEXT_PROPERTY
from connectors.as4.ebms import Error, MessageInfo, Party, PartyId, Property, PullRequest, SignalMessage, UserMessage, new_message_id, utc_now
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.keys import KeyPair, load_certificates, load_key_pair
from connectors.as4.msh import (
    Counterpart,
    Payload,
    Security,
    compose_signal,
    compose_user_message,
    error_signal,
    open_message,
    payloads_of,
    read_answer,
    receipt_for,
)
from connectors.p2p.protocol import certificate_reference
from connectors.sandbox_checks import check_signed_document
from connectors.serving import sandbox_app
from connectors.sandbox_faults import DroppedResponse, FaultControl, queue_fault, retry_after_headers, take_fault
from hub.errors import InputError
from hub.signing import TrustStore, Verifier
from hub.xmlsafe import parse_xml

log = logging.getLogger(__name__)

#: The default deployment's P-Mode values, the sandbox's side of them (config/connectors.yaml, type as4).
HUB_PARTY = ("fr-nppo-ap", ns.PARTY_TYPE_UNREGISTERED, ns.ROLE_INITIATOR)
SANDBOX_PARTY = ("jp-nppo-ap", ns.PARTY_TYPE_UNREGISTERED, ns.ROLE_RESPONDER)
SERVICE = "urn:trade-document-hub:services:sps-certificates"
DOCUMENT_ACTION, RESPONSE_ACTION = "Certificate", "BusinessResponse"
#: The message partition channel on which, in pull mode, it holds what it has for the hub.
MPC = "urn:trade-document-hub:mpc:jp-nppo-to-fr-nppo"
#: The MPC on which the hub holds what this authority pulls (the hub's P-Mode, binding pull).
HUB_MPC = "urn:trade-document-hub:mpc:fr-nppo-to-jp-nppo"
#: A message pulled and not receipted is offered again after this many seconds (reception awareness).
REOFFER_AFTER = 2.0
_MAX_BYTES = 32 * 1024 * 1024
_PUSH_PAUSES = (0.2, 0.5, 1.0)
_DEFAULT_REASONS = {"warn": ("WARN", "accepted with remarks: consignment description abbreviated"),
                    "reject": ("CONSIGNMENT_REFUSED", "the importing authority refuses the consignment")}
_ACK_OUTCOMES = {"acknowledge": "acknowledged", "warn": "acknowledged_with_warnings", "reject": "rejected"}


class Control(FaultControl):
    """What ``POST /as4/control`` accepts: a fault queued for the next ``count`` messages (``code`` for
    ``error_signal``), and how certificates are answered later (``ack``, with its reason; ``duplicates`` pushes each
    answer twice)."""

    fault: Literal["unavailable", "server_error", "slow", "malformed", "drop", "refuse", "error_signal", "no_receipt",
                   "bad_signature", "bad_receipt", "none"] | None = None
    code: str = "EBMS:0202"
    ack: Literal["acknowledge", "warn", "reject", "none"] | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    duplicates: bool | None = None
    pull: bool | None = None
    target: Literal["deliver"] = "deliver"


@dataclass
class _Received:
    message_id: str
    certificate_number: str | None
    status: str = "accepted"
    reason: str | None = None
    receipt_id: str | None = None
    answer: bytes = b""
    answer_type: str = "application/soap+xml"
    deliveries: int = 0

    def as_json(self) -> dict:
        keys = ("message_id", "certificate_number", "status", "reason", "receipt_id", "deliveries")
        return {key: getattr(self, key) for key in keys}


@dataclass
class _Queued:
    """A message this access point holds for the hub to pull (One-way/Pull), with what became of it."""

    message_id: str
    action: str
    body: bytes
    content_type: str
    state: str = "waiting"  # offered, receipted, refused
    offered_at: float | None = None
    offers: int = 0
    answer: str | None = None

    def as_json(self) -> dict:
        return {"message_id": self.message_id, "action": self.action, "state": self.state, "offers": self.offers, "answer": self.answer}


@dataclass
class _State:
    received: dict[str, _Received] = field(default_factory=dict)
    faults: list[Control] = field(default_factory=list)
    ack: Control = field(default_factory=lambda: Control(ack="acknowledge"))
    duplicates: bool = False
    pull: bool = False
    outbox: dict[str, _Queued] = field(default_factory=dict)


class _AccessPoint:
    def __init__(self, *, key_pair: KeyPair, hub_certificate: x509.Certificate, anchors: tuple[x509.Certificate, ...],
                 trust_store: TrustStore, push_url: str | None, push_transport: httpx.AsyncBaseTransport | None,
                 country: str, hub_country: str, host: str = "as4.sandbox.localhost") -> None:
        self.security = Security(key_pair=key_pair)
        self.country, self.hub_country = country, hub_country
        self.hub = Counterpart((hub_certificate,), anchors)
        self.verifier = Verifier(trust_store)
        self.push_url, self.push_transport, self.host = push_url, push_transport, host
        self.state = _State()
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    # --- receiving --------------------------------------------------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        state = self.state
        fault = take_fault(state.faults)
        if fault is not None and fault.fault == "slow":
            await asyncio.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.fault in ("unavailable", "server_error", "malformed", "drop"):
            return _transport_fault(fault)
        try:
            received = open_message(body, request.headers.get("content-type"), security=self.security, counterpart=self.hub,
                                    max_size=_MAX_BYTES)
        except As4Error as exc:
            return self._signal(error_signal([exc], ref_to_message_id=exc.ref_to_message_id, security=self.security, host=self.host))
        if not received.messaging.user_messages:
            return self._signals(received)
        [user_message] = received.messaging.user_messages[:1]
        message_id = user_message.info.message_id
        earlier = state.received.get(message_id)
        if earlier is not None and earlier.status == "accepted":
            earlier.deliveries += 1  # duplicate elimination: the same receipt, nothing processed again
            return Response(earlier.answer, 200, media_type=earlier.answer_type)
        if fault is not None and fault.fault in ("refuse", "error_signal"):
            error = EbmsError.PROCESSING_MODE_MISMATCH if fault.fault == "refuse" else EbmsError.from_code(fault.code)
            described = Error.of(error or EbmsError.OTHER, ref_to_message_in_error=message_id,
                                 description=f"the access point answers {fault.fault} (sandbox fault)")
            return self._signal(error_signal([described], ref_to_message_id=message_id, security=self.security, host=self.host))
        try:
            [(_, document)] = payloads_of(received, user_message, limit=_MAX_BYTES)
        except As4Error as exc:
            return self._signal(error_signal([exc], ref_to_message_id=message_id, security=self.security, host=self.host))
        except ValueError:
            exc = As4Error(EbmsError.VALUE_INCONSISTENT, "one certificate per message is expected", ref_to_message_id=message_id)
            return self._signal(error_signal([exc], ref_to_message_id=message_id, security=self.security, host=self.host))
        entry = _Received(message_id, _number(document), deliveries=(earlier.deliveries if earlier else 0) + 1)
        state.received[message_id] = entry
        signed_root, reason = check_signed_document(self.verifier, document)
        if reason is not None:
            code, text = reason
            entry.status, entry.reason = "rejected", f"[{code}] {text}"
            refusal = Error.of(EbmsError.OTHER, ref_to_message_in_error=message_id, description=f"[{code}] {text}", detail=text)
            return self._signal(error_signal([refusal], ref_to_message_id=message_id, security=self.security, host=self.host))
        entry.certificate_number = certificate_reference(signed_root)[1]
        entry.receipt_id, entry.answer, entry.answer_type = receipt_for(received, user_message, security=self.security, host=self.host)
        answer = entry.answer
        if fault is not None and fault.fault == "no_receipt":
            return Response(b"", 200)
        if fault is not None and fault.fault == "bad_signature":
            answer = _altered(answer, f".//{{{ns.DS}}}SignatureValue")
        if fault is not None and fault.fault == "bad_receipt":
            # Validly signed, but quoting digests that are not those of what the hub sent.
            received.signature.references[0].element.find(f"{{{ns.DS}}}DigestValue").text = base64.b64encode(bytes(32)).decode()
            _, answer, _ = receipt_for(received, user_message, security=self.security, host=self.host)
        return Response(answer, 200, media_type=entry.answer_type, background=self._answer_later(user_message, entry))

    def _signals(self, received) -> Response:
        """A pull request (answered with the next message held for the hub, or EBMS:0006), or callback receipts and
        errors about messages the hub pulled (taken: HTTP 200, nothing in the body)."""
        for signal in received.messaging.signal_messages:
            if signal.pull_request is not None:
                return self._pulled(signal)
            held = self.state.outbox.get(signal.info.ref_to_message_id or "")
            if held is None:
                continue
            if signal.receipt is not None:
                held.state, held.answer = "receipted", signal.info.message_id
            elif signal.errors:
                held.state = "refused"
                held.answer = "; ".join(f"{e.error_code} {e.description or e.short_description or ''}".strip() for e in signal.errors)
        return Response(b"", 200)

    def _pulled(self, signal) -> Response:
        mpc = signal.pull_request.mpc
        if mpc != MPC:
            error = Error.of(EbmsError.PROCESSING_MODE_MISMATCH, ref_to_message_in_error=signal.info.message_id,
                             description=f"no message partition channel {mpc!r} here for you")
            return self._signal(error_signal([error], ref_to_message_id=signal.info.message_id, security=self.security, host=self.host))
        now = time.monotonic()
        for held in self.state.outbox.values():
            if held.state == "waiting" or (held.state == "offered" and now - (held.offered_at or 0) >= REOFFER_AFTER):
                held.state, held.offered_at, held.offers = "offered", now, held.offers + 1
                return Response(held.body, 200, media_type=held.content_type)
        empty = Error.of(EbmsError.EMPTY_MPC, ref_to_message_in_error=signal.info.message_id, severity="warning")
        return self._signal(error_signal([empty], ref_to_message_id=signal.info.message_id, security=self.security, host=self.host))

    def _hold(self, outgoing, action: str) -> dict:
        self.state.outbox[outgoing.message_id] = _Queued(outgoing.message_id, action, outgoing.body, outgoing.content_type)
        return {"message_id": outgoing.message_id, "kind": "queued", "mpc": MPC}

    @staticmethod
    def _signal(composed: tuple[bytes, str]) -> Response:
        body, content_type = composed
        return Response(body, 200, media_type=content_type)

    # --- answering later --------------------------------------------------------------------------------------------

    def _answer_later(self, user_message: UserMessage, entry: _Received) -> BackgroundTask | None:
        control = self.state.ack
        if control.ack == "none" or (self.push_url is None and not self.state.pull):
            return None
        code, text = _DEFAULT_REASONS.get(control.ack, (None, None))
        properties = [Property(OUTCOME_PROPERTY, _ACK_OUTCOMES[control.ack]), Property(NUMBER_PROPERTY, entry.certificate_number or "")]
        for name, value in ((REASON_CODE_PROPERTY, control.reason_code or code), (REASON_TEXT_PROPERTY, control.reason_text or text)):
            if value:
                properties.append(Property(name, value))
        response = self._user_message(RESPONSE_ACTION, properties=tuple(properties), refers_to=entry.message_id,
                                      conversation=user_message.conversation_id)
        outgoing = compose_user_message(response, [], security=self.security, counterpart=self.hub)
        if self.state.pull:
            self._hold(outgoing, RESPONSE_ACTION)
            return None
        times = 2 if self.state.duplicates else 1
        return BackgroundTask(self._push, outgoing, times)

    def _user_message(self, action: str, *, properties: tuple[Property, ...] = (), refers_to: str | None = None,
                      conversation: str | None = None) -> UserMessage:
        return UserMessage(
            mpc=None, info=MessageInfo(utc_now(), new_message_id(self.host), refers_to),
            from_party=Party((PartyId(SANDBOX_PARTY[0], SANDBOX_PARTY[1]),), SANDBOX_PARTY[2]),
            to_party=Party((PartyId(HUB_PARTY[0], HUB_PARTY[1]),), HUB_PARTY[2]),
            agreement_ref=None, agreement_ref_type=None, agreement_pmode=None, service=SERVICE, service_type=None, action=action,
            conversation_id=conversation or new_message_id(self.host), properties=properties)

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = httpx.AsyncClient(transport=self.push_transport, timeout=10.0)
        return client

    async def _push(self, outgoing, times: int = 1) -> dict:
        """POST ``outgoing`` to the hub (``times`` times: a duplicate), retried a few times; the hub's answer read."""
        outcome: dict = {"message_id": outgoing.message_id}
        for _ in range(times):
            outcome = await self._post_with_retries(outgoing)
        return outcome

    async def _post_with_retries(self, outgoing) -> dict:
        for pause in (*_PUSH_PAUSES, None):
            try:
                response = await self._client().post(self.push_url, content=outgoing.body, headers={"Content-Type": outgoing.content_type})
                if response.status_code < 500:
                    return self._hub_answer(outgoing, response)
            except httpx.HTTPError as exc:
                log.info("push to %s failed: %s", self.push_url, exc)
            if pause is None:
                log.warning("push of %s to %s abandoned", outgoing.message_id, self.push_url)
                return {"message_id": outgoing.message_id, "status": None, "kind": "unanswered"}
            await asyncio.sleep(pause)

    def _hub_answer(self, outgoing, response: httpx.Response) -> dict:
        said = {"message_id": outgoing.message_id, "status": response.status_code}
        try:
            answer = read_answer(response.content, response.headers.get("content-type"), sent=outgoing, counterpart=self.hub,
                                 max_size=_MAX_BYTES)
        except As4Error as exc:
            return {**said, "kind": "refused", "errors": [f"{exc.code} {exc}"]}
        if answer.receipt_id:
            return {**said, "kind": "receipt", "receipt_id": answer.receipt_id}
        return {**said, "kind": "error", "errors": [f"{e.error_code} {e.description or e.short_description or ''}".strip() for e in answer.errors]}

    async def pull_from_hub(self, request: Request) -> Response:
        """Pull the next message the hub holds for this authority (One-way/Pull, the hub responding), check it as a
        pushed one, and answer it with a callback receipt (or error); ``?receipt=false`` keeps the receipt back, as an
        access point that stopped before storing would (the hub offers the message again when its lease ends)."""
        if self.push_url is None:
            return JSONResponse({"detail": "this sandbox was given no hub endpoint"}, 409)
        mpc = request.query_params.get("mpc", HUB_MPC)
        pull = SignalMessage(MessageInfo(utc_now(), new_message_id(self.host)), pull_request=PullRequest(mpc))
        body, content_type = compose_signal(pull, security=self.security)
        response = await self._client().post(self.push_url, content=body, headers={"Content-Type": content_type})
        try:
            received = open_message(response.content, response.headers.get("content-type"), security=self.security,
                                    counterpart=self.hub, max_size=_MAX_BYTES)
        except As4Error as exc:
            return JSONResponse({"kind": "refused", "status": response.status_code, "errors": [f"{exc.code} {exc}"]})
        if not received.messaging.user_messages:
            errors = [f"{e.error_code} {e.short_description or ''}".strip() for s in received.messaging.signal_messages for e in s.errors]
            return JSONResponse({"kind": "empty" if errors == ["EBMS:0006 EmptyMessagePartitionChannel"] else "error", "errors": errors})
        [user_message] = received.messaging.user_messages[:1]
        message_id = user_message.info.message_id
        [(_, document)] = payloads_of(received, user_message, limit=_MAX_BYTES)
        entry = self.state.received.get(message_id) or _Received(message_id, _number(document))
        entry.deliveries += 1
        self.state.received[message_id] = entry
        _, reason = check_signed_document(self.verifier, document)
        if reason is not None:
            entry.status, entry.reason = "rejected", f"[{reason[0]}] {reason[1]}"
            refusal = Error.of(EbmsError.OTHER, ref_to_message_in_error=message_id, description=entry.reason)
            answer = error_signal([refusal], ref_to_message_id=message_id, security=self.security, host=self.host)
        else:
            entry.receipt_id, receipt, receipt_type = receipt_for(received, user_message, security=self.security, host=self.host)
            answer = (receipt, receipt_type)
        if request.query_params.get("receipt") != "false":
            await self._client().post(self.push_url, content=answer[0], headers={"Content-Type": answer[1]})
            later = self._answer_later(user_message, entry) if reason is None else None
            if later is not None:
                await later()
        return JSONResponse({"kind": "user-message", **entry.as_json()})

    async def send(self, request: Request) -> Response:
        """Send the signed certificate in the body to the hub, as this authority's access point would (or hold it for
        the hub to pull, in pull mode)."""
        if self.push_url is None and not self.state.pull:
            return JSONResponse({"detail": "this sandbox was given no hub endpoint"}, 409)
        document = await request.body()
        try:
            parse_xml(document, source="certificate")
        except InputError as exc:
            return JSONResponse({"detail": str(exc)}, 400)
        times = 2 if request.query_params.get("repeat") == "true" else 1
        message = self._user_message(DOCUMENT_ACTION, properties=(Property("originalSender", self.country), Property("finalRecipient", self.hub_country)))
        outgoing = compose_user_message(message, [Payload(f"certificate@{self.host}", document)], security=self.security, counterpart=self.hub)
        if self.state.pull:
            return JSONResponse(self._hold(outgoing, DOCUMENT_ACTION))
        return JSONResponse(await self._push(outgoing, times))

    # --- control ----------------------------------------------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        try:
            control = Control.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"detail": str(exc)}, 400)
        queue_fault(self.state.faults, control)
        if control.ack is not None:
            self.state.ack = control
        if control.duplicates is not None:
            self.state.duplicates = control.duplicates
        if control.pull is not None:
            self.state.pull = control.pull
        return JSONResponse({"faults": [f.model_dump(exclude_none=True) for f in self.state.faults], "ack": self.state.ack.ack})

    async def received(self, request: Request) -> Response:
        return JSONResponse({"received": [entry.as_json() for entry in self.state.received.values()]})

    async def outbox(self, request: Request) -> Response:
        return JSONResponse({"mpc": MPC, "held": [held.as_json() for held in self.state.outbox.values()]})

    async def reset(self, request: Request) -> Response:
        self.state = _State()
        return Response(status_code=204)

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        loop = asyncio.get_running_loop()
        for owner, client in clients.items():
            if owner is loop:
                await client.aclose()


def create_as4_sandbox(*, key_pair: KeyPair, hub_certificate: x509.Certificate, anchors: tuple[x509.Certificate, ...] = (),
                       trust_store: TrustStore, push_url: str | None = None,
                       push_transport: httpx.AsyncBaseTransport | None = None, country: str = "JP", hub_country: str = "FR") -> Starlette:
    """The sandbox access point as an ASGI app. ``key_pair`` is its identity (it signs and decrypts with it);
    ``hub_certificate`` is the hub's access point (what it encrypts for; ``anchors`` may stand in for it as signer);
    ``trust_store`` checks the certificates' own signatures; ``push_url`` is the hub's AS4 endpoint
    (``…/v1/inbound/<connector>``) for business responses and documents sent with ``/as4/send``; ``country`` is the
    authority it plays, ``hub_country`` the hub's (the four-corner originalSender and finalRecipient)."""
    point = _AccessPoint(key_pair=key_pair, hub_certificate=hub_certificate, anchors=anchors, trust_store=trust_store,
                         push_url=push_url, push_transport=push_transport, country=country, hub_country=hub_country)
    routes = [
        Route("/as4", point.receive, methods=["POST"]),
        Route("/as4/control", point.control, methods=["POST"]),
        Route("/as4/received", point.received, methods=["GET"]),
        Route("/as4/state", point.reset, methods=["DELETE"]),
        Route("/as4/send", point.send, methods=["POST"]),
        Route("/as4/outbox", point.outbox, methods=["GET"]),
        Route("/as4/pull", point.pull_from_hub, methods=["POST"]),
    ]

    return sandbox_app(routes, close=point.close, access_point=point)


def create_as4_sandbox_from_pki(certs_dir: Path | str, *, country: str = "JP", hub_country: str = "FR",
                                push_url: str | None = None) -> Starlette:
    """The sandbox keyed from a development PKI: it is ``as4/<country>``, sends to ``as4/<hub_country>``, and trusts
    the development CA for access points and certificates alike."""
    certs_dir = Path(certs_dir)
    anchors = tuple(load_certificates(certs_dir / "ca.pem"))
    return create_as4_sandbox(
        key_pair=load_key_pair(certs_dir / "as4" / f"{country}.key", certificate_path=certs_dir / "as4" / f"{country}.pem"),
        hub_certificate=load_certificates(certs_dir / "as4" / f"{hub_country}.pem")[0], anchors=anchors,
        trust_store=TrustStore.from_paths(ca_bundle=certs_dir / "ca.pem"), push_url=push_url, country=country, hub_country=hub_country)


def _number(document: bytes) -> str | None:
    try:
        return certificate_reference(parse_xml(document, source="certificate"))[1]
    except InputError:
        return None


def _altered(document: bytes, path: str) -> bytes:
    """``document`` with the first character of the element at ``path`` changed (a forged signature value)."""
    root = parse_xml(document, source="receipt")
    element = root.find(path)
    element.text = ("A" if not element.text.startswith("A") else "B") + element.text[1:]
    return etree.tostring(root)


def _transport_fault(fault: Control) -> Response:
    if fault.fault == "unavailable":
        return Response(b"the access point is temporarily unavailable", 503, headers=retry_after_headers(fault.retry_after))
    if fault.fault == "server_error":
        return Response(b"internal error", 500, media_type="text/plain")
    if fault.fault == "malformed":
        return Response(b"<<<\x00 this is not a SOAP envelope", 200, media_type="application/soap+xml")
    return DroppedResponse(b"<S12:Envelope")

