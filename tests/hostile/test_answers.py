"""Hostile answers from every counterpart type: the real connector sends a real signed certificate to its sandbox
(in-process, through the connector's own bounded HTTP client), and the answer is replaced on the way back by a
hostile one: XXE, entity expansion, NUL bytes, an answer far past the size limit, one trickled a byte at a time, one
naming another message, one signed by a key nobody trusts. Each must end in a failed attempt that the worker retries
(:class:`~hub.errors.TransientDeliveryError`), never in a result, a hang, an expanded entity or a third-party
exception. Answers pushed to the hub (``POST /v1/inbound/…``) are in cases.py."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterator

import httpx
import pytest

from connectors.ephyto_hub import EphytoHubConfig, EphytoHubConnector
from connectors.ephyto_hub.sandbox import create_ephyto_hub_sandbox
from connectors.p2p import P2PConfig, P2PConnector
from connectors.p2p.sandbox import create_sandbox_from_pki
from connectors.serving import InProcessTransport
from connectors.single_window import SingleWindowConfig, SingleWindowConnector
from connectors.traces_nt import TracesNtConfig, TracesNtConnector
from connectors.single_window.sandbox import SERVICE_PATH, create_sandbox_from_pki as create_single_window_from_pki
from hub.connector import ConnectorContext, DeliveryResult, OutboundMessage
from hub.errors import HubError, TransientDeliveryError
from hub.signing import Signer
from tests.contract.suite import SampleCertificates
from tests.connectors.traces_nt.harness import CLIENT_ID, KEY, USERNAME, ChedMessages, make_harness
from tests.hostile import payloads as p

LIMIT = 256 * 1024  # max_answer_bytes of every connector here: a huge answer is 64 times that
TIMEOUT = 1.0  # seconds for a whole exchange: a trickled answer lasts 8 times that


class Hostile(httpx.BaseTransport):
    """Hands each request to the sandbox (which really receives it) and replaces its answer with ``answer(real)``
    when the request is a delivery; ``consumed`` counts the bytes of hostile answer the connector read."""

    def __init__(self, inner: httpx.BaseTransport, answer: Callable[[httpx.Response], httpx.Response], *, delivery: str) -> None:
        self.inner, self.answer, self.delivery = inner, answer, delivery
        self.consumed = 0
        self.message: OutboundMessage | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        real = self.inner.handle_request(request)
        if request.method != "POST" or self.delivery not in request.url.path:
            return real
        real.read()
        hostile = self.answer(real, self.message) if self.answer is another_message else self.answer(real)
        if isinstance(hostile.stream, CountedStream):
            hostile.stream.owner = self
        return hostile

    def close(self) -> None:
        self.inner.close()


class CountedStream(httpx.SyncByteStream):
    """An answer body yielded chunk by chunk (``pause`` seconds between chunks), counting what was read."""

    def __init__(self, chunks: Iterator[bytes], *, pause: float = 0.0) -> None:
        self.chunks, self.pause, self.owner = chunks, pause, None

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.pause:
                time.sleep(self.pause)
            if self.owner is not None:
                self.owner.consumed += len(chunk)
            yield chunk


def replaced(body: bytes) -> Callable[[httpx.Response], httpx.Response]:
    return lambda real: httpx.Response(200, headers={"Content-Type": real.headers.get("content-type", "text/xml")}, content=body)


def nul_bytes(real: httpx.Response) -> httpx.Response:
    body = real.content
    cut = body.index(b">", body.index(b"<", body.index(b"?>") + 2 if b"?>" in body else 0)) + 1
    return httpx.Response(real.status_code, headers=dict(real.headers), content=body[:cut] + b"\x00\x00NUL" + body[cut:])


def huge(real: httpx.Response) -> httpx.Response:
    head = real.content[: real.content.rindex(b"<")]
    return httpx.Response(200, headers={"Content-Type": "text/xml"}, stream=CountedStream(iter([head] + [b" " * 65536] * 256 + [b"</x>"])))


def trickled(real: httpx.Response) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "text/xml"}, stream=CountedStream(iter([real.content[:1]] * 40 + [real.content]), pause=TIMEOUT / 5))


def another_message(real: httpx.Response, message: OutboundMessage) -> httpx.Response:
    """The real answer, naming another message and another certificate than the ones sent."""
    body = real.content.replace(message.id.encode(), str(uuid.uuid4()).encode())
    body = body.replace(message.certificate_number.encode(), message.certificate_number.encode() + b"9")
    assert body != real.content, "the answer names nothing the test can change"
    return httpx.Response(real.status_code, headers=dict(real.headers), content=body)


ANSWERS = {
    "xxe": replaced(p.xxe_file()),
    "billion-laughs": replaced(p.billion_laughs()),
    "quadratic-blowup": replaced(p.quadratic_blowup()),
    "nul-bytes": nul_bytes,
    "huge": huge,
    "trickled": trickled,
    "not-xml": replaced(b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
}


@dataclass
class Counterpart:
    """A connector type wired to its sandbox through a :class:`Hostile` transport."""

    connector: Callable[[httpx.BaseTransport], object]
    message: Callable[[], OutboundMessage]
    app: object
    delivery: str


@pytest.fixture(scope="module")
def counterparts(pki) -> dict[str, Callable[[], Counterpart]]:
    context = ConnectorContext(certs_dir=str(pki.directory), public_url="http://127.0.0.1:8000", trust_store=pki.trust_store())
    bounds = {"timeout": TIMEOUT, "max_answer_bytes": LIMIT}
    full, ephyto = SampleCertificates(Signer(pki.key_provider("FR"))), SampleCertificates(Signer(pki.key_provider("FR")), profile="ephyto")
    cheds = ChedMessages(Signer(pki.key_provider("FR")))
    return {
        "p2p": lambda: Counterpart(
            lambda t: P2PConnector("foreign_authority", P2PConfig(endpoints={"*": "http://sandbox/p2p/authority"}, answered_by={"*": "US"}, **bounds), transport=t, context=context),
            lambda: full.message(destination="foreign_authority"), create_sandbox_from_pki(pki.directory), "/p2p/authority"),
        "ephyto_hub": lambda: Counterpart(
            lambda t: EphytoHubConnector("ephyto_hub", EphytoHubConfig(endpoint="http://sandbox/hub/DeliveryService", tracking_poll_interval=0, **bounds), transport=t, context=context),
            lambda: ephyto.message(destination="ephyto_hub"), create_ephyto_hub_sandbox(), "/hub/DeliveryService"),
        "single_window": lambda: Counterpart(
            lambda t: SingleWindowConnector("single_window", SingleWindowConfig(endpoint=f"http://sandbox{SERVICE_PATH}", interaction_code="CFS.ENVIO01", service_id="IOPCFS0001",
                                                                                 sender_id="HUBFR", recipient_id="VUCEEC", **bounds), transport=t, context=context),
            lambda: full.message(destination="single_window"), create_single_window_from_pki(pki.directory), SERVICE_PATH),
        "traces_nt": lambda: Counterpart(
            lambda t: TracesNtConnector(
                "traces_nt", TracesNtConfig(
                    endpoint="http://traces/tracesnt/ws", submission_service="ChedSubmissionService", username=USERNAME, authentication_key=KEY, client_id=CLIENT_ID, **bounds),
                transport=t, context=context),
            cheds.message, make_harness(pki, signing_key_provider=pki.key_provider("US")).app, "/tracesnt/ws"),
    }


def deliver(counterpart: Counterpart, answer) -> tuple[DeliveryResult | BaseException, Hostile, float]:
    transport = Hostile(InProcessTransport(counterpart.app), answer, delivery=counterpart.delivery)
    transport.message = counterpart.message()
    connector = counterpart.connector(transport)
    connector.open()
    started = time.monotonic()
    try:
        return connector.deliver(transport.message), transport, time.monotonic() - started
    except BaseException as exc:  # judged by the test: only the hub's own errors may come out
        return exc, transport, time.monotonic() - started
    finally:
        connector.close()


TYPES = ["p2p", "ephyto_hub", "single_window", "traces_nt"]


@pytest.mark.parametrize("kind", TYPES)
def test_an_untouched_answer_is_a_result(counterparts, kind):
    """The harness itself: without a hostile answer, each delivery succeeds (so the failures below are the answers')."""
    outcome, _, _ = deliver(counterparts[kind](), lambda real: real)
    assert isinstance(outcome, DeliveryResult), outcome


@pytest.mark.parametrize("answer", sorted(ANSWERS))
@pytest.mark.parametrize("kind", TYPES)
def test_a_hostile_answer_is_a_failed_attempt_retried(counterparts, kind, answer):
    outcome, transport, seconds = deliver(counterparts[kind](), ANSWERS[answer])
    assert isinstance(outcome, HubError), f"{type(outcome).__name__}: {outcome}"
    assert isinstance(outcome, TransientDeliveryError), f"{type(outcome).__name__} is not retried: {outcome}"
    assert b"root:x:0" not in (outcome.response or b"") and "root:x:0" not in str(outcome)
    if answer == "huge":
        assert transport.consumed <= 2 * LIMIT + 65536, f"{transport.consumed} bytes read of an answer past {LIMIT}"
        assert len(outcome.response or b"") <= LIMIT, "the huge answer is kept whole as the attempt's response"
    if answer == "trickled":
        assert seconds < 4 * TIMEOUT, f"a trickled answer held the delivery {seconds:.1f} s (its deadline: {TIMEOUT} s)"


@pytest.mark.parametrize("kind", [
    "p2p",
    "ephyto_hub",
    "single_window",
])  # TRACES-NT's answer names only the CHED identifier it assigns: nothing of ours to compare
def test_an_answer_naming_another_message_is_never_taken_for_this_ones(counterparts, kind):
    outcome, _, _ = deliver(counterparts[kind](), another_message)
    assert isinstance(outcome, TransientDeliveryError), f"{type(outcome).__name__}: {outcome}"


def test_a_receipt_signed_by_a_key_nobody_trusts_is_a_failed_attempt(counterparts, stranger_pki):
    """The point-to-point receipt is a signed acknowledgement: one re-signed by a stranger is not believed (#10)."""
    from lxml import etree

    from hub.signing.verifier import without_unsigned

    def resigned(real: httpx.Response) -> httpx.Response:
        root = etree.fromstring(without_unsigned(real.content))
        root.remove(root.find("{http://www.w3.org/2000/09/xmldsig#}Signature"))
        return httpx.Response(real.status_code, headers=dict(real.headers), content=Signer(stranger_pki.key_provider("US")).sign(root))

    outcome, _, _ = deliver(counterparts["p2p"](), resigned)
    assert isinstance(outcome, TransientDeliveryError) and "chain" in str(outcome), outcome
