"""The delivery worker: claims due messages, hands each to its destination's connector, and settles the outcome.

Each delivery is two short transactions around the network call: claim (lease taken, attempt traced), then settle
(attempt with raw request and response stored, state moved, receipt or rejection correlated). A worker that dies
between the two leaves a lease that expires; another worker then delivers the same message again. Transient errors
wait (exponential backoff with jitter, never sooner than the counterpart's ``Retry-After``); permanent errors and
exhausted retries go to the dead letters.

Answers are followed from the store, not from a worker's memory: every ``resume_interval`` each connector that tracks
answers is handed the messages of its destination still awaiting one (so any worker follows what another delivered,
and an answer read but not recorded is asked for again). A connector's read position moves on only once what it read
is recorded (:class:`~hub.connector.ConfirmsAnswers`). Past its counterpart's ``answer_deadline`` a message awaiting
an answer is asked about again where the protocol allows (:class:`~hub.connector.RequeriesAnswers`), then alerted
(``message.answer_overdue``) and asked about again every deadline.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Mapping

from sqlalchemy import bindparam, insert, or_, select, update

from hub.connector import (
    AckReport,
    AwaitingAck,
    BindsAnswerers,
    ConfirmsAnswers,
    Connector,
    DeliveryResult,
    Offered,
    OutboundMessage,
    PollsAcks,
    RequeriesAnswers,
    ResumesAwaiting,
    ServesPulls,
)
from hub.acks.correlation import answers_kept, record_answer, take_answers
from hub.delivery.outbox import Claim, claim, lock_taken, still_held
from hub.store.states import transition
from hub.delivery.retry import RetryStrategy
from hub.store.states import MessageState
from hub.errors import DeliveryError, HubError, PermanentDeliveryError, TransientDeliveryError, UnmatchedAnswer
from hub.stages import stage
from hub.store.db import Database
from hub.store.models import DeliveryAttempt, Document, Message, utcnow
from hub.store.appends import append
from hub.store.payloads import put_payload
from hub.store.text import storable
from hub.store.wakeups import Listener
from hub.store.trace import add_event

log = logging.getLogger("hub.worker")
S = MessageState


_AWAITING_COLUMNS = (Message.id, Message.receipt_id, Document.certificate_number, Document.issuing_country, Document.importing_country)
_AWAITING = (
    select(*_AWAITING_COLUMNS)
    .join(Document, Message.document_id == Document.id)
    .where(Message.destination == bindparam("destination"), Message.state == bindparam("state"), Message.receipt_id.is_not(None))
    .order_by(Message.created_at)
)
_OVERDUE = (
    select(*_AWAITING_COLUMNS)
    .join(Document, Message.document_id == Document.id)
    .where(
        Message.destination == bindparam("destination"),
        Message.state == S.AWAITING_ACK.value,
        Message.delivered_at <= bindparam("delivered_before"),
        or_(Message.answer_due_at.is_(None), Message.answer_due_at <= bindparam("now")),
    )
    .order_by(Message.delivered_at)
    .limit(bindparam("limit"))
)


def _awaiting_ack(row) -> AwaitingAck:
    return AwaitingAck(message_id=row.id, receipt_id=row.receipt_id, certificate_number=row.certificate_number, issuing_country=row.issuing_country, importing_country=row.importing_country)


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
    batch_size: int = 16  # messages one delivery thread claims at once and sends one after the other
    lease_seconds: float = 60.0
    poll_interval: float = 0.2
    idle_poll_interval: float = 1.0  # how often an idle delivery thread looks for due messages when it hears wake-ups
    ack_poll_interval: float = 2.0
    resume_interval: float = 30.0  # how often connectors that track answers are handed what the store awaits
    overdue_batch: int = 200  # overdue messages asked about again per destination and round
    wake: threading.Event = field(default_factory=threading.Event)
    periodic: list[Callable[[], object]] = field(default_factory=list)
    polls: list[Callable[[], object]] = field(default_factory=list)  # run with ack polling, every ack_poll_interval
    observe_delivery: Callable[[str, float], None] | None = None  # (destination, seconds), e.g. a histogram
    on_stop: list[Callable[[], object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener: Listener | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_resume = time.monotonic()

    # --- one step at a time (tests drive these directly) ---------------------------------------------------------

    def run_once(self, *, limit: int = 1, lane: str | None = None) -> int:
        """Claim up to ``limit`` due messages as one delivery lane (``lane``: the lease owner, by default this
        worker), send them one after the other, and settle them together; return how many were delivered."""
        lane = lane or self.name
        pushed = [name for name, connector in self.connectors.items()
                  if not (isinstance(connector, ServesPulls) and connector.waits_to_be_pulled())]
        if not pushed:
            return 0
        with stage("claim"), self.database.transaction() as session:
            claims = claim(session, worker=lane, lease_seconds=self.lease_seconds, limit=limit, destinations=pushed,
                           max_in_flight={name: c.config.max_in_flight for name, c in self.connectors.items()})
        if not claims:
            return 0
        exchanges: list[_Exchange] = []
        renewed = time.monotonic()
        for index, taken in enumerate(claims):
            exchange = self._exchange(taken, taken.outbound)
            exchanges.append(exchange)
            rest = claims[index + 1:]
            if not rest:
                break
            if isinstance(exchange.result, TransientDeliveryError):
                # The counterpart fails now: the rest of the batch (all for it) waits with this one, not sent.
                exchanges.extend(_Exchange(t, t.outbound, NotSent(exchange.result), exchange.finished, exchange.finished) for t in rest)
                break
            if time.monotonic() - renewed > self.lease_seconds / 2:
                self._renew([t.message_id for t in rest], lane)
                renewed = time.monotonic()
        self._settle_all(exchanges)
        return len(claims)

    def _renew(self, message_ids: list[str], lane: str) -> None:
        """Lengthen the lease of the batch's messages still to send (a slow counterpart took half the lease)."""
        with self.database.transaction() as session:
            session.execute(_RENEW, {"ids": message_ids, "lane": lane, "lease": utcnow() + timedelta(seconds=self.lease_seconds)})

    def drain(self, *, limit: int = 10_000) -> int:
        """Deliver until nothing is due (tests and ``hub worker --once``)."""
        done = 0
        while done < limit:
            delivered = self.run_once(limit=min(self.batch_size, limit - done))
            if not delivered:
                break
            done += delivered
        return done

    def deliver(self, taken: Claim) -> None:
        """Deliver one claimed message (with what its claim read for it) and settle what came of it."""
        self._settle_all([self._exchange(taken, taken.outbound)])

    def settle_pulled(self, offered: list[Offered]) -> None:
        """Record what came of messages counterparts pulled (their callback receipts, or the errors they signalled) as
        the outcome of the attempt each pull was."""
        self._settle_all([_Exchange(Claim(message_id=o.outbound.id, attempt=o.attempt, lease_expires_at=o.finished, redelivery=False,
                                          outbound=o.outbound, worker=o.lane), o.outbound, o.result, o.started, o.finished)
                          for o in offered])

    def _exchange(self, taken: Claim, outbound: OutboundMessage) -> "_Exchange":
        connector = self.connectors[outbound.destination]
        started = utcnow()
        try:
            with stage("deliver"):
                result: DeliveryResult | DeliveryError = connector.deliver(outbound)
        except DeliveryError as exc:
            result = exc
        except Exception as exc:  # a connector bug must not kill the worker: treat it as transient, keep the text
            log.exception("connector %s failed on message %s", outbound.destination, outbound.id)
            result = TransientDeliveryError(f"{type(exc).__name__}: {exc}")
        finished = utcnow()
        if self.observe_delivery:
            self.observe_delivery(outbound.destination, (finished - started).total_seconds())
        return _Exchange(taken, outbound, result, started, finished)

    def poll_acks(self) -> int:
        """Ask every connector that offers ``poll_acks`` for answers and record them; a connector that
        :class:`~hub.connector.ConfirmsAnswers` is told once everything it gave is recorded. Returns how many were
        applied."""
        count = 0
        for name, connector in self.connectors.items():
            if not isinstance(connector, PollsAcks):
                continue
            try:
                reports = list(connector.poll_acks())
            except HubError as exc:
                log.warning("polling acknowledgements from %s failed: %s", name, exc)
                continue
            applied, recorded = self._record_reports(name, connector, reports)
            count += applied
            if recorded and isinstance(connector, ConfirmsAnswers):
                connector.answers_recorded(reports)
        return count

    def _record_reports(self, name: str, connector: Connector, reports: list[AckReport]) -> tuple[int, bool]:
        """Record each report (an unmatched one is kept as such and alerted); (how many applied, whether every one
        is now in the store). A store that fails stops the round: what was not recorded is read again later."""
        answerer = connector.answerer_for if isinstance(connector, BindsAnswerers) else None
        if len(reports) > 1:
            try:
                with stage("ack"):
                    take_answers(self.database, name, reports, actor=f"connector:{name}", answerer=answerer, keep_unmatched_one=False, batched=True)
                return len(reports), True
            except UnmatchedAnswer:
                pass  # one of them answers nothing of ours: one by one below, that one kept as unmatched
            except Exception:
                log.exception("answers from %s could not be recorded: they will be read again", name)
                return 0, False
        applied = 0
        for report in reports:
            try:
                with stage("ack"):
                    take_answers(self.database, name, [report], actor=f"connector:{name}", answerer=answerer)
                applied += 1
            except UnmatchedAnswer as exc:
                log.warning("answer from %s kept unmatched: %s", name, exc)
            except Exception:
                log.exception("answers from %s could not be recorded: they will be read again", name)
                return applied, False
        return applied, True

    def chase_overdue(self, *, now=None) -> int:
        """Messages awaiting an answer past their counterpart's ``answer_deadline``: asked about again where the
        connector can (``requery``, else handed to ``resume``), then, still unanswered, alerted once
        (``message.answer_overdue``) and given a new deadline. Returns how many were overdue."""
        now = now or utcnow()
        overdue_count = 0
        for name, connector in self.connectors.items():
            deadline = timedelta(seconds=connector.config.answer_deadline)
            with self.database.sessions() as session:
                rows = session.execute(_OVERDUE, {"destination": name, "delivered_before": now - deadline, "now": now, "limit": self.overdue_batch}).all()
            if not rows:
                continue
            overdue = [_awaiting_ack(row) for row in rows]
            asked = self._ask_again(name, connector, overdue)
            overdue_count += self._mark_overdue(name, [o.message_id for o in overdue], deadline=deadline, asked_again=asked, now=now)
        return overdue_count

    def _ask_again(self, name: str, connector: Connector, overdue: list[AwaitingAck]) -> bool:
        if isinstance(connector, RequeriesAnswers):
            try:
                reports = connector.requery(overdue)
            except HubError as exc:
                log.warning("asking %s again about %d overdue answers failed: %s", name, len(overdue), exc)
                return False
            self._record_reports(name, connector, reports)
            return True
        if isinstance(connector, ResumesAwaiting):
            connector.resume([o for o in overdue if o.receipt_id])
            return True
        return False

    def _mark_overdue(self, name: str, message_ids: list[str], *, deadline: timedelta, asked_again: bool, now) -> int:
        marked = 0
        with self.database.transaction() as session:
            for message_id in message_ids:
                message = session.get(Message, message_id)
                if message is None or message.state != S.AWAITING_ACK.value:
                    continue  # answered meanwhile
                marked += 1
                message.answer_due_at = now + deadline
                message.repolls = (message.repolls or 0) + 1
                if message.overdue_at is None:
                    message.overdue_at = now
                    add_event(session, document=message.document, message_id=message.id, destination=name, event="message.answer_overdue", actor=self.name, state=message.state,
                              detail={"deadline_seconds": deadline.total_seconds(), "delivered_at": message.delivered_at.isoformat() if message.delivered_at else None, "asked_again": asked_again})
        return marked

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

    def follow_answers(self) -> None:
        """The periodic round of answers: poll, hand the store's awaited messages again (every ``resume_interval``),
        and chase what is overdue."""
        self._guarded(self.poll_acks)
        if time.monotonic() - self._last_resume >= self.resume_interval:
            self._last_resume = time.monotonic()
            self._guarded(self.resume_awaiting)
        self._guarded(self.chase_overdue)

    def start(self) -> None:
        for connector in self.connectors.values():
            connector.open()
        # Woken when another process queues messages: idle threads then poll only for retries falling due.
        self._listener = Listener(self.database, self.wake)
        self._listener.start()
        self._guarded(self.resume_awaiting)
        self._last_resume = time.monotonic()
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._loop, args=(f"{self.name}/{index}",), name=f"hub-delivery-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        thread = threading.Thread(target=self._periodic_loop, name="hub-periodic", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake.set()
        if self._listener is not None:
            self._listener.stop()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        for connector in self.connectors.values():
            connector.close()
        for task in self.on_stop:
            self._guarded(task)

    def _loop(self, lane: str) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once(limit=self.batch_size, lane=lane)
            except Exception:
                log.exception("delivery loop error")
                worked = 0
            if not worked:
                self.wake.wait(self.idle_poll_interval if self._listener is not None else self.poll_interval)
                self.wake.clear()

    def _periodic_loop(self) -> None:
        last_poll = 0.0
        while not self._stop.wait(self.poll_interval):
            if time.monotonic() - last_poll >= self.ack_poll_interval:
                last_poll = time.monotonic()
                self.follow_answers()
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

    def _settle_all(self, exchanges: list["_Exchange"]) -> None:
        """Record a batch of exchanges in one transaction; if the store refuses it, each is recorded on its own (so
        that one answer the store cannot hold does not keep the others from being recorded)."""
        try:
            with stage("settle"), self.database.transaction() as session:
                self._settle_in(session, exchanges)
            return
        except Exception:
            if len(exchanges) == 1:
                return self._settle_alone(exchanges[0])
            log.exception("a batch of %d deliveries could not be recorded at once; recording them one by one", len(exchanges))
        for exchange in exchanges:
            self._settle_alone(exchange)

    def _settle_alone(self, exchange: "_Exchange") -> None:
        """Record one exchange. An answer the store refuses (whatever it holds) is recorded as a failed attempt
        instead, so the message is retried and ends in the dead letters at worst, never resent at every lease
        expiry."""
        try:
            with self.database.transaction() as session:
                self._settle_in(session, [exchange])
            return
        except Exception as exc:
            result = exchange.result
            if not isinstance(result, DeliveryResult) and getattr(result, "response", None) is None:
                raise  # nothing of the answer to leave out: the store itself fails; the lease will expire
            log.exception("the answer to message %s could not be recorded; recorded as a failed attempt", exchange.outbound.id)
            failed = TransientDeliveryError(f"{exchange.outbound.destination}: its answer could not be recorded ({type(exc).__name__})", request=getattr(result, "request", None))
        with self.database.transaction() as session:
            self._settle_in(session, [exchange.failed_as(failed)])

    def _settle_in(self, session, exchanges: list["_Exchange"]) -> None:
        messages = lock_taken(session, [e.taken.message_id for e in exchanges])
        receipts = self._receipts_given(session, exchanges)
        kept = self._receipts_kept(session, exchanges, messages)
        for exchange in exchanges:
            self._settle_one(session, self._checked_receipt(exchange, receipts), messages.get(exchange.taken.message_id), kept)

    @staticmethod
    def _receipts_kept(session, exchanges: list["_Exchange"], messages: dict[str, Message]) -> set[tuple]:
        """The receipts kept already for the messages whose answer overtook their receipt (no longer ``sending``):
        such a receipt is kept unless it was already, and this reads them for the batch at once (see
        :func:`~hub.acks.correlation.answers_kept`)."""
        overtaken = [e.taken.message_id for e in exchanges if isinstance(e.result, DeliveryResult)
                     and (message := messages.get(e.taken.message_id)) is not None and message.state != S.SENDING.value]
        return answers_kept(session, overtaken, kind="receipt") if overtaken else set()

    @staticmethod
    def _receipts_given(session, exchanges: list["_Exchange"]) -> dict[tuple[str, str], str]:
        """(destination, receipt reference) → the message holding it already, for the references in ``exchanges``:
        one query, asked in the settling transaction."""
        references = {e.result.receipt_id for e in exchanges if isinstance(e.result, DeliveryResult) and e.result.receipt_id}
        if not references:
            return {}
        rows = session.execute(select(Message.id, Message.destination, Message.receipt_id).where(Message.receipt_id.in_(references))).all()
        return {(row.destination, row.receipt_id): row.id for row in rows}

    @staticmethod
    def _checked_receipt(exchange: "_Exchange", given: dict[tuple[str, str], str]) -> "_Exchange":
        """A receipt whose reference the counterpart gave another message already is no receipt: a failed attempt."""
        result, outbound = exchange.result, exchange.outbound
        if not isinstance(result, DeliveryResult) or not result.receipt_id:
            return exchange
        key = (outbound.destination, result.receipt_id)
        other = given.setdefault(key, outbound.id)  # a reference given twice in one batch goes to the first
        if other == outbound.id:
            return exchange
        return exchange.failed_as(TransientDeliveryError(
            f"{outbound.destination}: its receipt {result.receipt_id!r} was given to message {other} already",
            request=result.request, response=result.response))

    def _settle_one(self, session, exchange: "_Exchange", message: Message | None, kept: set[tuple] | None = None) -> None:
        taken, outbound, result = exchange.taken, exchange.outbound, exchange.result
        connector = self.connectors[outbound.destination]
        actor = f"connector:{outbound.destination}"
        lane = taken.worker or self.name
        if isinstance(result, NotSent):
            if still_held(message, lane):
                message.attempts -= 1  # claimed, never tried
                message.next_attempt_at = utcnow() + timedelta(seconds=self.retry.delay(max(taken.attempt - 1, 1), result.cause.retry_after))
                transition(session, message, S.RETRY_WAIT, actor=lane, event="message.not_sent", detail={"because": storable(str(result.cause)), "retry_after": result.cause.retry_after})
            return
        request = getattr(result, "request", None)
        response = getattr(result, "response", None)
        request_digest = None
        if request:
            # Mostly the very document sent, stored already: referred to, not stored again.
            request_digest = message.payload_digest if message is not None and request == outbound.payload else put_payload(session, request)
        append(session, _INSERT_ATTEMPT, {
            "message_id": taken.message_id, "number": taken.attempt, "worker": lane, "started_at": exchange.started, "finished_at": exchange.finished,
            "outcome": _outcome_name(result), "request_digest": request_digest, "response_digest": put_payload(session, response) if response else None,
            "error": storable(str(result)) if isinstance(result, DeliveryError) else None,
        })
        if not still_held(message, lane):
            if isinstance(result, DeliveryResult) and message is not None and message.state != S.SENDING.value:
                # The counterpart's acknowledgement overtook its own receipt: keep the receipt, not the state.
                record_answer(session, message, counterpart=outbound.destination, outcome=result.outcome, kind="receipt", actor=actor, reason_code=result.reason_code, reason_text=result.reason_text, receipt_id=result.receipt_id, payload=response, batched=True, received_at=exchange.finished, kept=kept)
            elif message is not None:
                add_event(session, document=message.document, message_id=message.id, destination=message.destination, event="message.lease_lost", actor=lane, state=message.state, detail={"attempt": taken.attempt})
            return
        if isinstance(result, DeliveryResult):
            message.last_error = None
            record_answer(session, message, counterpart=outbound.destination, outcome=result.outcome, kind="receipt", actor=actor, reason_code=result.reason_code, reason_text=result.reason_text, receipt_id=result.receipt_id, payload=response, batched=True, received_at=exchange.finished)
            return
        message.last_error = storable(str(result))
        detail = {"attempt": taken.attempt, "error": message.last_error, "error_type": type(result).__name__}
        max_attempts = connector.config.max_attempts
        patient = utcnow() - message.created_at < timedelta(seconds=connector.config.retry_for)
        if isinstance(result, PermanentDeliveryError) or (self.retry.exhausted(taken.attempt, max_attempts) and not patient):
            reason = "permanent error" if isinstance(result, PermanentDeliveryError) else f"{taken.attempt} attempts exhausted"
            transition(session, message, S.DEAD_LETTER, actor=lane, detail={**detail, "reason": reason})
            return
        retry_after = getattr(result, "retry_after", None)
        delay = self.retry.delay(taken.attempt, retry_after)
        message.next_attempt_at = utcnow() + timedelta(seconds=delay)
        transition(session, message, S.RETRY_WAIT, actor=lane, detail={**detail, "retry_in_seconds": round(delay, 3), "retry_after": retry_after})


@dataclass(frozen=True)
class _Exchange:
    """One message sent: the claim, what was sent, what came back (or the error), and when."""

    taken: Claim
    outbound: OutboundMessage
    result: DeliveryResult | DeliveryError
    started: datetime
    finished: datetime

    def failed_as(self, error: DeliveryError) -> "_Exchange":
        return _Exchange(self.taken, self.outbound, error, self.started, self.finished)


@dataclass(frozen=True)
class NotSent:
    """A message of a batch left unsent because the counterpart failed on the one before (``cause``)."""

    cause: TransientDeliveryError


_INSERT_ATTEMPT = insert(DeliveryAttempt)
_RENEW = (
    update(Message)
    .where(Message.id.in_(bindparam("ids", expanding=True)), Message.state == S.SENDING.value, Message.lease_owner == bindparam("lane"))
    .values(lease_expires_at=bindparam("lease"))
)


def _outcome_name(result: DeliveryResult | DeliveryError) -> str:
    if isinstance(result, DeliveryResult):
        return result.outcome.value
    return "permanent_error" if isinstance(result, PermanentDeliveryError) else "transient_error"
