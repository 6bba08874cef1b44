"""The connector contract: what every connector, run against its sandbox, must do.

Subclass :class:`ConnectorContract` in a test module (a ``Test…`` name) and give it a ``harness`` fixture returning a
:class:`ContractHarness` for a freshly reset sandbox. The suite then checks delivery with a receipt, duplicates,
transient faults and retry hints, permanent refusals, business rejections, acknowledgement mapping, ordering of a
certificate and its replacement, timeouts, dropped connections and malformed replies.
"""

from __future__ import annotations

import copy
import itertools
import json
import ssl
import time
import uuid
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Callable, Protocol

import pytest

from hub.connector import AckReport, Connector, DeliveryResult, OutboundMessage, Outcome
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.signing import Signer
from hub.standards import PROJECT_ROOT

EXAMPLE_RECORD = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the sandbox saw it; ``status`` is ``accepted`` or ``rejected``."""

    message_id: str
    certificate_number: str | None
    status: str
    deliveries: int


class SandboxControls(Protocol):
    """How a test steers a counterpart's sandbox and reads what it received."""

    def fault(self, kind: str, *, count: int = 1, retry_after: float | str | None = None, seconds: float | None = None) -> None:
        """Misbehave on the next ``count`` deliveries: ``unavailable`` (with ``retry_after``), ``server_error``,
        ``slow`` (``seconds``), ``malformed``, ``drop``, ``refuse``."""

    def acknowledge_with(self, mode: str, *, reason_code: str | None = None, reason_text: str | None = None) -> None:
        """How later acknowledgements answer: ``acknowledge``, ``warn`` or ``reject``."""

    def received(self) -> list[ReceivedMessage]:
        """Messages received, in the order they first arrived, one entry per message identity."""

    def reset(self) -> None:
        """Forget every message, fault and acknowledgement."""


class ContractHarness(Protocol):
    """One connector type wired to its sandbox."""

    controls: SandboxControls

    def connector(self, **settings: object) -> Connector:
        """A new, opened connector; ``settings`` override its config (e.g. ``timeout``). Closed by the harness."""

    def message(self, *, certificate_number: str | None = None, replaces: OutboundMessage | None = None,
                tampered: bool = False) -> OutboundMessage:
        """A signed certificate for this counterpart, new identity each call; ``replaces`` makes it the replacement
        of an earlier one, ``tampered`` breaks its signature."""

    def acks(self, connector: Connector, *, count: int, timeout: float = 5.0) -> list[AckReport]:
        """Acknowledgements that reached the connector (pushed or polled), waiting until ``count`` have arrived."""


class SampleCertificates:
    """Signed phytosanitary certificates (the worked example, FR → EC), a new certificate number for each message."""

    def __init__(self, signer: Signer, *, profile: str = "full") -> None:
        self._signer = signer
        self._profile = profile
        self._example = json.loads(EXAMPLE_RECORD.read_text(encoding="utf-8"))
        self._numbers = itertools.count(1)

    def signed(self, certificate_number: str, *, replaces: str | None = None) -> bytes:
        """The example under another number, signed; ``replaces`` flags it as the replacement of that number."""
        data = copy.deepcopy(self._example)
        data["certificate_number"] = certificate_number
        if replaces:
            data["notes"] += [{"subject": "ADRP", "content": ["true"]}, {"subject": "ADRPN", "content": [replaces]}]
        return self._signer.sign(to_xml(render_certificate(record_from_data(data), self._profile).root))

    def message(
        self,
        *,
        destination: str,
        certificate_number: str | None = None,
        replaces: OutboundMessage | None = None,
        tampered: bool = False,
        importing_country: str | None = "EC",
        media_type: str = "application/xml",
    ) -> OutboundMessage:
        """An outbound message carrying a freshly signed certificate; ``tampered`` changes it after signing."""
        number = certificate_number or f"FR-2026-PC-{900000 + next(self._numbers)}"
        payload = self.signed(number, replaces=replaces.certificate_number if replaces else None)
        if tampered:
            payload = payload.replace(b"free of Cydia pomonella", b"free of Cydia pomonelle")
        return OutboundMessage(
            id=str(uuid.uuid4()),
            correlation_id=str(uuid.uuid4()),
            destination=destination,
            document_id=f"doc-{number}",
            document_kind="phytosanitary",
            certificate_number=number,
            status="issued",
            issuing_country="FR",
            exporting_country="FR",
            importing_country=importing_country,
            payload=payload,
            media_type=media_type,
            created_at=datetime.now(timezone.utc),
            replaces=replaces.id if replaces else None,  # as the worker's claim reads it from the store
        )


def client_tls(pki, country: str | None = "FR") -> ssl.SSLContext:
    """A TLS context trusting the development CA, presenting ``country``'s client certificate (none with None)."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if country:
        context.load_cert_chain(pki.client_certs[country], pki.client_keys[country])
    return context


def wait_for(condition: Callable[[], object], *, timeout: float = 5.0, what: str = "condition") -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class ConnectorContract:
    """The shared suite; not collected itself (no ``Test`` prefix)."""

    def test_delivery_returns_a_receipt(self, harness: ContractHarness) -> None:
        connector, message = harness.connector(), harness.message()
        result = connector.deliver(message)
        assert isinstance(result, DeliveryResult)
        assert result.outcome is Outcome.ACCEPTED
        assert result.receipt_id
        assert result.request and result.response
        [received] = harness.controls.received()
        assert (received.message_id, received.certificate_number, received.status) == (
            message.id, message.certificate_number, "accepted",
        )

    def test_duplicate_delivery_is_one_message_with_one_receipt(self, harness: ContractHarness) -> None:
        connector, message = harness.connector(), harness.message()
        first = connector.deliver(message)
        again = connector.deliver(message)
        assert again.outcome is Outcome.ACCEPTED
        assert again.receipt_id == first.receipt_id
        [received] = harness.controls.received()
        assert received.message_id == message.id and received.deliveries == 2

    def test_transient_fault_carries_retry_after_then_succeeds(self, harness: ContractHarness) -> None:
        connector, message = harness.connector(), harness.message()
        harness.controls.fault("unavailable", count=1, retry_after=7)
        with pytest.raises(TransientDeliveryError) as raised:
            connector.deliver(message)
        assert raised.value.retry_after == 7
        assert raised.value.request and raised.value.response is not None
        assert harness.controls.received() == []
        assert connector.deliver(message).outcome is Outcome.ACCEPTED
        assert [r.message_id for r in harness.controls.received()] == [message.id]

    @pytest.mark.parametrize("fault", ["server_error", "drop"])
    def test_server_failures_are_transient(self, harness: ContractHarness, fault: str) -> None:
        connector, message = harness.connector(), harness.message()
        harness.controls.fault(fault)
        with pytest.raises(TransientDeliveryError) as raised:
            connector.deliver(message)
        assert raised.value.retry_after is None
        assert connector.deliver(message).outcome is Outcome.ACCEPTED

    def test_refusal_is_permanent(self, harness: ContractHarness) -> None:
        connector, message = harness.connector(), harness.message()
        harness.controls.fault("refuse")
        with pytest.raises(PermanentDeliveryError) as raised:
            connector.deliver(message)
        assert not isinstance(raised.value, TransientDeliveryError)
        assert raised.value.request and raised.value.response

    def test_business_rejection_is_a_result_not_an_error(self, harness: ContractHarness) -> None:
        connector, message = harness.connector(), harness.message(tampered=True)
        result = connector.deliver(message)
        assert result.outcome is Outcome.REJECTED
        assert result.reason_code and result.reason_text
        assert [(r.message_id, r.status) for r in harness.controls.received()] == [(message.id, "rejected")]

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [("acknowledge", Outcome.ACKNOWLEDGED), ("warn", Outcome.ACKNOWLEDGED_WITH_WARNINGS), ("reject", Outcome.REJECTED)],
    )
    def test_acknowledgement_mapping(self, harness: ContractHarness, mode: str, expected: Outcome) -> None:
        reason = {"reject": ("PEST_FOUND", "live Cydia pomonella found at inspection"),
                  "warn": (None, "botanical name abbreviated")}.get(mode, (None, None))
        harness.controls.acknowledge_with(mode, reason_code=reason[0], reason_text=reason[1])
        connector, message = harness.connector(), harness.message()
        assert connector.deliver(message).outcome is Outcome.ACCEPTED
        [ack] = harness.acks(connector, count=1)
        assert ack.outcome is expected
        assert ack.message_id == message.id
        assert ack.certificate_number == message.certificate_number
        if mode == "reject":
            assert (ack.reason_code, ack.reason_text) == reason
        if mode == "warn":
            assert reason[1] in (ack.reason_text or "")

    def test_acknowledgements_follow_their_messages(self, harness: ContractHarness) -> None:
        connector = harness.connector()
        messages = [harness.message() for _ in range(3)]
        for message in messages:
            connector.deliver(message)
        acks = harness.acks(connector, count=3)
        assert sorted(a.message_id for a in acks) == sorted(m.id for m in messages)

    def test_replacement_arrives_after_the_original(self, harness: ContractHarness) -> None:
        connector = harness.connector()
        original = harness.message()
        replacement = harness.message(replaces=original)
        assert replacement.certificate_number != original.certificate_number
        for message in (original, replacement):
            assert connector.deliver(message).outcome is Outcome.ACCEPTED
        received = harness.controls.received()
        assert [(r.message_id, r.certificate_number) for r in received] == [
            (original.id, original.certificate_number), (replacement.id, replacement.certificate_number),
        ]

    def test_timeout_is_transient_and_the_retry_is_the_same_message(self, harness: ContractHarness) -> None:
        connector, message = harness.connector(timeout=0.2), harness.message()
        harness.controls.fault("slow", seconds=0.6)
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError):
            connector.deliver(message)
        assert time.monotonic() - started < 0.55, "the connector waited for the slow answer instead of timing out"
        # The counterpart finishes the slow request on its own: the retry must be seen as the same message.
        wait_for(harness.controls.received, what="the slow delivery to be processed")
        result = connector.deliver(message)
        assert result.outcome is Outcome.ACCEPTED
        [received] = harness.controls.received()
        assert received.message_id == message.id and received.deliveries == 2

    def test_malformed_reply_is_transient(self, harness: ContractHarness) -> None:
        connector, message = harness.connector(), harness.message()
        harness.controls.fault("malformed")
        with pytest.raises(TransientDeliveryError) as raised:
            connector.deliver(message)
        assert raised.value.response, "the unreadable reply is kept for the trace"
        assert connector.deliver(message).outcome is Outcome.ACCEPTED
