"""The delivery worker: claims due messages, hands each to its destination's connector, and settles the outcome.

Each delivery is two short transactions around the network call: claim (lease taken, attempt traced), then settle
(attempt with raw request and response stored, state moved, receipt or rejection correlated). A worker that dies
between the two leaves a lease that expires; another worker then delivers the same message again. Transient errors
wait (exponential backoff with jitter, never sooner than the counterpart's ``Retry-After``); permanent errors and
exhausted retries go to the dead letters.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Mapping

from sqlalchemy import bindparam, select

from hub.connector import AwaitingAck, Connector, DeliveryResult, OutboundMessage, PollsAcks, ResumesAwaiting
from hub.acks.correlation import apply_ack, record_answer
from hub.delivery.outbox import Claim, claim, held_by
from hub.store.states import transition
from hub.delivery.retry import RetryStrategy
from hub.store.states import MessageState
from hub.errors import DeliveryError, HubError, PermanentDeliveryError, TransientDeliveryError
from hub.store.db import Database
from hub.store.models import DeliveryAttempt, Document, Message, utcnow
from hub.store.payloads import get_payload, put_payload
from hub.store.trace import add_event

log = logging.getLogger("hub.worker")
S = MessageState


_AWAITING = (
    select(Message.id, Message.receipt_id, Document.certificate_number, Document.issuing_country, Document.importing_country)
    .join(Document, Message.document_id == Document.id)
    .where(Message.destination == bindparam("destination"), Message.state == bindparam("state"), Message.receipt_id.is_not(None))
    .order_by(Message.created_at)
)


def worker_name() -> str:
    return f"worker:{socket.gethostname()}:{os.getpid()}"


@dataclass
class Worker:
    """Delivers the outbox with ``concurrency`` threads; ``periodic`` tasks (ack polling, webhooks) run beside."""

    database: Database
    connectors: Mapping[str, Connector]
    retry: RetryStrategy = field(default_factory=RetryStrategy)
    name: str = field(default_factory=worker_name)
    concurrency: int = 4
    lease_seconds: float = 60.0
    poll_interval: float = 0.2
    ack_poll_interval: float = 2.0
    wake: threading.Event = field(default_factory=threading.Event)
    periodic: list[Callable[[], object]] = field(default_factory=list)
    polls: list[Callable[[], object]] = field(default_factory=list)  # run with ack polling, every ack_poll_interval
    observe_delivery: Callable[[str, float], None] | None = None  # (destination, seconds), e.g. a histogram
    on_stop: list[Callable[[], object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- one step at a time (tests drive these directly) ---------------------------------------------------------

    def run_once(self) -> int:
        """Claim and deliver at most one message; return how many were delivered (0 or 1)."""
        with self.database.transaction() as session:
            claims = claim(session, worker=self.name, lease_seconds=self.lease_seconds, destinations=list(self.connectors))
            outbound = [self._outbound(session, taken) for taken in claims]
        for taken, message in zip(claims, outbound):
            self.deliver(taken, message)
        return len(claims)

    def drain(self, *, limit: int = 10_000) -> int:
        """Deliver until nothing is due (tests and ``hub worker --once``)."""
        done = 0
        while done < limit and self.run_once():
            done += 1
        return done

    def deliver(self, taken: Claim, outbound: OutboundMessage | None = None) -> None:
        """Deliver one claimed message and settle what came of it."""
        if outbound is None:
            with self.database.transaction() as session:
                outbound = self._outbound(session, taken)
        connector = self.connectors[outbound.destination]
        started = utcnow()
        try:
            result: DeliveryResult | DeliveryError = connector.deliver(outbound)
        except DeliveryError as exc:
            result = exc
        except Exception as exc:  # a connector bug must not kill the worker: treat it as transient, keep the text
            log.exception("connector %s failed on message %s", outbound.destination, outbound.id)
            result = TransientDeliveryError(f"{type(exc).__name__}: {exc}")
        self._settle(taken, outbound, result, started=started)
        if self.observe_delivery:
            self.observe_delivery(outbound.destination, (utcnow() - started).total_seconds())

    def poll_acks(self) -> int:
        """Ask every connector that offers ``poll_acks`` for answers, and correlate them."""
        count = 0
        for name, connector in self.connectors.items():
            if not isinstance(connector, PollsAcks):
                continue
            try:
                reports = list(connector.poll_acks())
            except HubError as exc:
                log.warning("polling acknowledgements from %s failed: %s", name, exc)
                continue
            for report in reports:
                try:
                    with self.database.transaction() as session:
                        apply_ack(session, name, report, actor=f"connector:{name}")
                    count += 1
                except HubError as exc:
                    log.warning("acknowledgement from %s not applied: %s", name, exc)
        return count

    # --- threads ------------------------------------------------------------------------------------------------

    def resume_awaiting(self) -> int:
        """Tell each connector that follows answers in memory which of its messages still await one (after a
        restart, or when another process delivered them). Returns how many were handed over."""
        handed = 0
        for name, connector in self.connectors.items():
            if not isinstance(connector, ResumesAwaiting):
                continue
            with self.database.sessions() as session:
                rows = session.execute(_AWAITING, {"destination": name, "state": S.AWAITING_ACK.value}).all()
            awaiting = [AwaitingAck(message_id=r.id, receipt_id=r.receipt_id, certificate_number=r.certificate_number, issuing_country=r.issuing_country, importing_country=r.importing_country) for r in rows]
            connector.resume(awaiting)
            handed += len(awaiting)
        return handed

    def start(self) -> None:
        for connector in self.connectors.values():
            connector.open()
        self._guarded(self.resume_awaiting)
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._loop, name=f"hub-delivery-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        thread = threading.Thread(target=self._periodic_loop, name="hub-periodic", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        for connector in self.connectors.values():
            connector.close()
        for task in self.on_stop:
            self._guarded(task)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:
                log.exception("delivery loop error")
                worked = 0
            if not worked:
                self.wake.wait(self.poll_interval)
                self.wake.clear()

    def _periodic_loop(self) -> None:
        last_poll = 0.0
        while not self._stop.wait(self.poll_interval):
            if time.monotonic() - last_poll >= self.ack_poll_interval:
                last_poll = time.monotonic()
                self._guarded(self.poll_acks)
                for task in self.polls:
                    self._guarded(task)
            for task in self.periodic:
                self._guarded(task)

    @staticmethod
    def _guarded(task: Callable[[], object]) -> None:
        try:
            task()
        except Exception:
            log.exception("periodic task %s failed", getattr(task, "__name__", task))

    # --- internals ----------------------------------------------------------------------------------------------

    @staticmethod
    def _outbound(session, taken: Claim) -> OutboundMessage:
        message = session.get(Message, taken.message_id)
        document: Document = message.document
        payload = get_payload(session, message.payload_digest)
        return OutboundMessage(
            id=message.id,
            correlation_id=document.correlation_id,
            destination=message.destination,
            document_id=document.id,
            document_kind=document.kind,
            certificate_number=document.certificate_number,
            status=document.status,
            issuing_country=document.issuing_country,
            exporting_country=document.exporting_country,
            importing_country=document.importing_country,
            payload=payload.content,
            media_type=payload.media_type,
            attempt=taken.attempt,
        )

    def _settle(self, taken: Claim, outbound: OutboundMessage, result: DeliveryResult | DeliveryError, *, started) -> None:
        connector = self.connectors[outbound.destination]
        actor = f"connector:{outbound.destination}"
        with self.database.transaction() as session:
            request = getattr(result, "request", None)
            response = getattr(result, "response", None)
            attempt = DeliveryAttempt(
                message_id=taken.message_id,
                number=taken.attempt,
                worker=self.name,
                started_at=started,
                finished_at=utcnow(),
                outcome=_outcome_name(result),
                request_digest=put_payload(session, request) if request else None,
                response_digest=put_payload(session, response) if response else None,
                error=str(result) if isinstance(result, DeliveryError) else None,
            )
            session.add(attempt)
            message = held_by(session, taken.message_id, self.name)
            if message is None:
                current = session.get(Message, taken.message_id)
                if isinstance(result, DeliveryResult) and current is not None and current.state != S.SENDING.value:
                    # The counterpart's acknowledgement overtook its own receipt: keep the receipt, not the state.
                    record_answer(session, current, counterpart=outbound.destination, outcome=result.outcome, kind="receipt", actor=actor, reason_code=result.reason_code, reason_text=result.reason_text, receipt_id=result.receipt_id, payload=response)
                elif current is not None:
                    add_event(session, document=current.document, message_id=current.id, destination=current.destination, event="message.lease_lost", actor=self.name, state=current.state, detail={"attempt": taken.attempt})
                return
            if isinstance(result, DeliveryResult):
                message.last_error = None
                record_answer(session, message, counterpart=outbound.destination, outcome=result.outcome, kind="receipt", actor=actor, reason_code=result.reason_code, reason_text=result.reason_text, receipt_id=result.receipt_id, payload=response)
                return
            message.last_error = str(result)
            detail = {"attempt": taken.attempt, "error": str(result), "error_type": type(result).__name__}
            max_attempts = connector.config.max_attempts
            if isinstance(result, PermanentDeliveryError) or self.retry.exhausted(taken.attempt, max_attempts):
                reason = "permanent error" if isinstance(result, PermanentDeliveryError) else f"{taken.attempt} attempts exhausted"
                transition(session, message, S.DEAD_LETTER, actor=self.name, detail={**detail, "reason": reason})
                return
            retry_after = getattr(result, "retry_after", None)
            delay = self.retry.delay(taken.attempt, retry_after)
            message.next_attempt_at = utcnow() + timedelta(seconds=delay)
            transition(session, message, S.RETRY_WAIT, actor=self.name, detail={**detail, "retry_in_seconds": round(delay, 3), "retry_after": retry_after})


def _outcome_name(result: DeliveryResult | DeliveryError) -> str:
    if isinstance(result, DeliveryResult):
        return result.outcome.value
    return "permanent_error" if isinstance(result, PermanentDeliveryError) else "transient_error"
