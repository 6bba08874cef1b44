"""Answers bound to their message and nothing stuck (issue 12 #2, #6, #9, #10): an answer moves only the message it
names, on the counterpart that message went to, signed by the authority it went to; what cannot be matched is kept
and alerted; an answer read while the store is down is read again; an answer is applied whatever the message was
doing; past its deadline a message awaiting an answer is asked about again, then alerted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event, select

from connectors.p2p import P2PConfig, P2PConnector
from connectors.p2p.protocol import build_acknowledgement
from hub.acks.correlation import _apply_pushed, _load_pushed, take_answers
from hub.connector import AckReport, AwaitingAck, ConnectorConfig, ConnectorContext, DeliveryResult, Offered, Outcome
from hub.errors import ForeignAnswerer, SignatureError, TransientDeliveryError, UnmatchedAnswer
from hub.notify.health import destination_health
from hub.signing import PemKeyProvider, Signer
from hub.store.models import Acknowledgement, DeliveryAttempt, Message, NonConformity, TraceEvent, utcnow
from hub.store.states import MessageState
from tests.support.broker import ROUTES, ScriptedConnector, example_record, make_broker

S = MessageState
P2P_ROUTES = {"rules": ROUTES["rules"] + [{"name": "phyto-p2p", "when": {"kind": ["phytosanitary"]}, "to": ["foreign_authority"]}]}


@pytest.fixture
def p2p_broker(database_url, pki):
    """A broker whose ``foreign_authority`` is reached point to point; its answers are pushed (never delivered here:
    the messages are marked delivered by hand)."""
    context = ConnectorContext(certs_dir=str(pki.directory), public_url="http://127.0.0.1:8000", trust_store=pki.trust_store())
    foreign = P2PConnector("foreign_authority", P2PConfig(endpoints={"*": "https://127.0.0.1:9/p2p/authority"}, acks="push"),
                           transport=httpx.MockTransport(lambda request: httpx.Response(503)), context=context)
    foreign.open()
    connectors = {"authority": ScriptedConnector("authority"), "customs": ScriptedConnector("customs"), "foreign_authority": foreign}
    broker = make_broker(database_url, pki, connectors=connectors, routes=P2P_ROUTES)
    yield broker
    broker.close()


def delivered(broker, destination: str, *, importing_country: str = "US", number: str = "FR-2026-ANS-000001", state: S = S.AWAITING_ACK, ago: float = 0) -> Message:
    """A submitted certificate whose message to ``destination`` the counterpart has (``state``, delivered ``ago`` s)."""
    record = example_record(certificate_number=number)
    record["consignment"]["import_country"] = {"id": importing_country}
    stored = broker.submit(json.dumps(record).encode(), "application/json", tenant="FR", actor="api:test")
    with broker.database.transaction() as session:
        message = next(m for m in session.get(type(stored.document), stored.document.id).messages if m.destination == destination)
        message.state, message.attempts, message.receipt_id = state.value, 1, f"R-{number}"
        message.delivered_at = utcnow() - timedelta(seconds=ago)
        return message


def state_of(broker, message_id: str) -> str:
    with broker.database.sessions() as session:
        return session.get(Message, message_id).state


def signed_ack(signer: Signer, message: Message, *, status: int = 41, message_id: str | None = "same", number: str | None = None) -> bytes:
    return signer.sign(build_acknowledgement(
        status=status, certificate_type_code="851", certificate_number=number or "FR-2026-ANS-000001",
        message_id=message.id if message_id == "same" else message_id, reason_code="PEST_FOUND" if status == 41 else None))


def unmatched(broker) -> list[Acknowledgement]:
    with broker.database.sessions() as session:
        return list(session.scalars(select(Acknowledgement).where(Acknowledgement.unmatched.is_not(None))))


def non_conformities(broker) -> int:
    with broker.database.sessions() as session:
        return len(session.scalars(select(NonConformity)).all())


# --- who may answer -------------------------------------------------------------------------------------------------


def test_only_the_authority_the_message_went_to_may_answer_it(p2p_broker, pki):
    message = delivered(p2p_broker, "foreign_authority", importing_country="US")
    for country in ("JP", "FR"):  # another country's key; our own
        with pytest.raises(ForeignAnswerer, match=f"comes from {country}, but that message went to US"):
            p2p_broker.receive_inbound("foreign_authority", signed_ack(Signer(pki.key_provider(country)), message), {})
    assert state_of(p2p_broker, message.id) == S.AWAITING_ACK.value
    assert non_conformities(p2p_broker) == 0
    kept = unmatched(p2p_broker)
    assert [(a.counterpart, a.answered_by, a.message_id) for a in kept] == [("foreign_authority", "JP", None), ("foreign_authority", "FR", None)]
    [ack] = p2p_broker.receive_inbound("foreign_authority", signed_ack(Signer(pki.key_provider("US")), message), {})
    assert (ack.answered_by, state_of(p2p_broker, message.id), non_conformities(p2p_broker)) == ("US", S.REJECTED.value, 1)


def test_a_tls_key_never_signs_an_answer(p2p_broker, pki):
    message = delivered(p2p_broker, "foreign_authority")
    tls = Signer(PemKeyProvider(pki.server_key, pki.server_cert))
    with pytest.raises(SignatureError):
        p2p_broker.receive_inbound("foreign_authority", signed_ack(tls, message), {})
    assert state_of(p2p_broker, message.id) == S.AWAITING_ACK.value


def test_an_answer_naming_only_a_certificate_sent_twice_moves_nothing(p2p_broker, pki):
    """Issue 12 #2: a rejection naming only a certificate number must not move another message of that number."""
    first = delivered(p2p_broker, "foreign_authority", state=S.ACKNOWLEDGED)
    with p2p_broker.database.transaction() as session:  # the same certificate sent again (a resend of version 2)
        session.get(Message, first.id).receipt_id = None
    second = delivered(p2p_broker, "foreign_authority", number="FR-2026-ANS-000002")
    with p2p_broker.database.transaction() as session:
        document = session.get(Message, second.id).document
        document.certificate_number, document.version = "FR-2026-ANS-000001", 2
    with pytest.raises(UnmatchedAnswer, match="more than once"):
        p2p_broker.receive_inbound("foreign_authority", signed_ack(Signer(pki.key_provider("US")), first, message_id=None), {})
    assert (state_of(p2p_broker, first.id), state_of(p2p_broker, second.id)) == (S.ACKNOWLEDGED.value, S.AWAITING_ACK.value)


def test_an_answer_naming_a_message_of_another_counterpart_moves_nothing(p2p_broker, pki):
    elsewhere = delivered(p2p_broker, "authority", state=S.ACKNOWLEDGED)
    with pytest.raises(UnmatchedAnswer, match="no message .* was sent to foreign_authority"):
        p2p_broker.receive_inbound("foreign_authority", signed_ack(Signer(pki.key_provider("US")), elsewhere), {})
    assert state_of(p2p_broker, elsewhere.id) == S.ACKNOWLEDGED.value
    assert len(unmatched(p2p_broker)) == 1


def test_an_answer_pushed_twice_is_kept_once(p2p_broker, pki):
    message = delivered(p2p_broker, "foreign_authority")
    body = signed_ack(Signer(pki.key_provider("US")), message, status=39)
    first = p2p_broker.receive_inbound("foreign_authority", body, {})
    again = p2p_broker.receive_inbound("foreign_authority", body, {})
    assert first[0].id == again[0].id
    assert state_of(p2p_broker, message.id) == S.ACKNOWLEDGED.value


# --- an answer applied whatever the message was doing ----------------------------------------------------------------


@pytest.mark.parametrize("waiting", [S.RETRY_WAIT, S.DEAD_LETTER])
def test_an_answer_to_a_message_waiting_to_be_resent_is_applied(p2p_broker, pki, waiting):
    """Issue 12 #9: a release arriving while the message waits to retry its lost receipt acknowledges it."""
    message = delivered(p2p_broker, "foreign_authority", state=waiting)
    p2p_broker.receive_inbound("foreign_authority", signed_ack(Signer(pki.key_provider("US")), message, status=39), {})
    assert state_of(p2p_broker, message.id) == S.ACKNOWLEDGED.value


# --- polled answers: recorded before the counterpart is told they were read ------------------------------------------


@dataclass
class Polled:
    """A counterpart whose answers are polled, from a feed whose position moves only once they are recorded."""

    name: str
    config: ConnectorConfig = field(default_factory=lambda: ConnectorConfig(type="polled", answer_deadline=60))
    feed: list[AckReport] = field(default_factory=list)
    position: int = 0
    asked_again: list[list[str]] = field(default_factory=list)
    requery_answers: list[AckReport] = field(default_factory=list)

    def open(self) -> None: ...

    def close(self) -> None: ...

    def deliver(self, message):
        raise AssertionError("not delivered in these tests")

    def poll_acks(self) -> list[AckReport]:
        return self.feed[self.position:]

    def answers_recorded(self, reports: list[AckReport]) -> None:
        self.position += len(reports)

    def requery(self, overdue: list[AwaitingAck]) -> list[AckReport]:
        self.asked_again.append([a.message_id for a in overdue])
        return self.requery_answers


@pytest.fixture
def polled_broker(database_url, pki):
    connectors = {"authority": Polled("authority"), "customs": ScriptedConnector("customs")}
    broker = make_broker(database_url, pki, connectors=connectors)
    yield broker
    broker.close()


def test_an_answer_read_while_the_store_fails_is_read_again(polled_broker, monkeypatch):
    message = delivered(polled_broker, "authority")
    counterpart = polled_broker.connectors["authority"]
    counterpart.feed.append(AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=message.id))
    worker = polled_broker.make_worker(webhooks=False)
    real = polled_broker.database.transaction

    def down():
        raise ConnectionError("the database is down")

    monkeypatch.setattr(polled_broker.database, "transaction", down)
    assert worker.poll_acks() == 0
    assert counterpart.position == 0  # not told it was read
    monkeypatch.setattr(polled_broker.database, "transaction", real)
    assert worker.poll_acks() == 1
    assert (counterpart.position, state_of(polled_broker, message.id)) == (1, S.ACKNOWLEDGED.value)


def test_an_unmatched_polled_answer_is_kept_and_does_not_block_the_feed(polled_broker):
    message = delivered(polled_broker, "authority")
    counterpart = polled_broker.connectors["authority"]
    counterpart.feed += [AckReport(outcome=Outcome.REJECTED, receipt_id="nobody's"), AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=message.id)]
    assert polled_broker.make_worker(webhooks=False).poll_acks() == 1
    assert counterpart.position == 2
    assert [a.counterpart_reference for a in unmatched(polled_broker)] == ["nobody's"]
    assert state_of(polled_broker, message.id) == S.ACKNOWLEDGED.value
    with polled_broker.database.sessions() as session:
        health = {row.destination: row for row in destination_health(session, {"authority": "polled", "customs": "scripted"})}
    assert (health["authority"].unmatched, health["customs"].unmatched) == (1, 0)


# --- deadlines ---------------------------------------------------------------------------------------------------------


def events(broker, message_id: str, name: str) -> list[TraceEvent]:
    with broker.database.sessions() as session:
        return list(session.scalars(select(TraceEvent).where(TraceEvent.message_id == message_id, TraceEvent.event == name)))


def test_an_answer_overdue_is_asked_for_again_then_alerted_once(polled_broker):
    fresh = delivered(polled_broker, "authority", number="FR-2026-ANS-000010", ago=10)
    late = delivered(polled_broker, "authority", number="FR-2026-ANS-000011", ago=120)
    counterpart = polled_broker.connectors["authority"]
    worker = polled_broker.make_worker(webhooks=False)
    assert worker.chase_overdue() == 1
    assert counterpart.asked_again == [[late.id]]
    [alert] = events(polled_broker, late.id, "message.answer_overdue")
    assert alert.detail["asked_again"] is True
    assert events(polled_broker, fresh.id, "message.answer_overdue") == []
    with polled_broker.database.sessions() as session:
        row = session.get(Message, late.id)
        assert (row.repolls, row.overdue_at is not None, row.answer_due_at > utcnow()) == (1, True, True)
    assert worker.chase_overdue() == 0  # its next deadline is a deadline away
    assert worker.chase_overdue(now=utcnow() + timedelta(seconds=61)) == 2  # both overdue now; the late one alerted once
    assert len(events(polled_broker, late.id, "message.answer_overdue")) == 1


def test_an_answer_found_by_asking_again_settles_the_message(polled_broker):
    late = delivered(polled_broker, "authority", ago=120)
    polled_broker.connectors["authority"].requery_answers.append(AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=late.id))
    assert polled_broker.make_worker(webhooks=False).chase_overdue() == 0
    assert state_of(polled_broker, late.id) == S.ACKNOWLEDGED.value
    assert events(polled_broker, late.id, "message.answer_overdue") == []


# --- synchronous answers the store must take -------------------------------------------------------------------------


def test_a_receipt_reference_given_to_another_message_is_a_failed_attempt(broker):
    """Issue 12 #10: two envelopes given the same delivery number: the second receipt is no receipt."""
    first = delivered(broker, "authority", number="FR-2026-ANS-000020")
    with broker.database.transaction() as session:
        session.get(Message, first.id).receipt_id = "SAME-NUMBER"
    broker.connectors["authority"].deliver = lambda message: DeliveryResult(outcome=Outcome.ACCEPTED, receipt_id="SAME-NUMBER")
    broker.submit(json.dumps(example_record(certificate_number="FR-2026-ANS-000021")).encode(), "application/json", tenant="FR", actor="api:test")
    broker.make_worker(webhooks=False).drain()
    with broker.database.sessions() as session:
        second = session.scalars(select(Message).where(Message.destination == "authority", Message.id != first.id)).one()
        assert second.state == S.DEAD_LETTER.value  # every attempt failed so (max_attempts 3), none took the number
        assert "given to message" in second.last_error and second.receipt_id is None


def test_an_answer_with_nul_bytes_is_recorded_not_resent_forever(broker):
    """Issue 12 #10: on PostgreSQL, NUL in an error or reason made recording the attempt fail."""
    authority = broker.connectors["authority"]
    authority.fail_next(TransientDeliveryError("bad answer \x00\x00 from the counterpart", response=b"\x00" * 10),
                        TransientDeliveryError("again \x00"), TransientDeliveryError("and again \x00"))
    broker.submit(json.dumps(example_record(certificate_number="FR-2026-ANS-000030")).encode(), "application/json", tenant="FR", actor="api:test")
    broker.make_worker(webhooks=False).drain()
    with broker.database.sessions() as session:
        message = session.scalars(select(Message).where(Message.destination == "authority")).one()
        assert message.state == S.DEAD_LETTER.value  # max_attempts 3: retried, then dead, never stuck
        attempts = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == message.id)).all()
        assert len(attempts) == 3 and all("\x00" not in a.error for a in attempts)


def test_a_counterpart_down_for_hours_keeps_its_backlog_and_drains_when_it_returns(database_url, pki):
    """Contingency: transient failures past max_attempts keep the message while retry_for lasts."""
    patient = ScriptedConnector("authority", config=ConnectorConfig(type="scripted", max_attempts=2, retry_for=3600))
    broker = make_broker(database_url, pki, connectors={"authority": patient, "customs": ScriptedConnector("customs")})
    try:
        patient.fail_next(*[TransientDeliveryError("503 down") for _ in range(6)])
        for number in ("FR-2026-ANS-000040", "FR-2026-ANS-000041"):
            broker.submit(json.dumps(example_record(certificate_number=number)).encode(), "application/json", tenant="FR", actor="api:test")
        broker.make_worker(webhooks=False).drain()
        with broker.database.sessions() as session:
            messages = session.scalars(select(Message).where(Message.destination == "authority").order_by(Message.created_at)).all()
            assert [m.state for m in messages] == [S.AWAITING_ACK.value] * 2
            # 6 failures, then each delivered; a message left unsent behind a failure is not counted as tried
            assert sum(m.attempts for m in messages) == 8
    finally:
        broker.close()


def test_a_replacement_behind_an_abandoned_original_goes(broker):
    from hub.store.states import abandon
    from tests.support.broker import permanent, replacement_of

    authority = broker.connectors["authority"]
    original = example_record(certificate_number="FR-2026-ANS-000050")
    authority.fail_next(permanent())
    broker.submit(json.dumps(original).encode(), "application/json", tenant="FR", actor="api:test")
    broker.make_worker(webhooks=False).drain()
    broker.submit(json.dumps(replacement_of(original, "FR-2026-ANS-000051")).encode(), "application/json", tenant="FR", actor="api:test")
    worker = broker.make_worker(webhooks=False)
    worker.drain()
    with broker.database.transaction() as session:
        dead, waiting = session.scalars(select(Message).where(Message.destination == "authority").order_by(Message.created_at)).all()
        assert (dead.state, waiting.state) == (S.DEAD_LETTER.value, S.QUEUED.value)  # held behind its original
        abandon(session, dead, actor="api:ops", reason="the importing country no longer takes it")
    worker.drain()
    assert state_of(broker, waiting.id) == S.AWAITING_ACK.value


def test_answers_pushed_together_read_their_messages_at_once_and_are_written_at_the_commit(broker):
    messages = [delivered(broker, "authority", number=f"FR-2026-ANS-{n:06d}") for n in range(4)]
    batch = [("authority", [AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=m.id, payload=f"<ack n='{n}'/>".encode())], "counterpart:authority", None)
             for n, m in enumerate(messages)]
    statements: list[str] = []

    def count(_connection, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    event.listen(broker.database.engine, "before_cursor_execute", count)
    try:
        with broker.database.transaction() as session:
            _load_pushed(session, batch)
            read = len(statements)
            acks = [ack for item in batch for ack in _apply_pushed(session, item)]
            assert len(statements) == read  # no answer reads or writes on its own
    finally:
        event.remove(broker.database.engine, "before_cursor_execute", count)
    assert [s.split()[0] for s in statements[:read] if not s.startswith("BEGIN")] == ["SELECT"]  # one read for the four
    assert all(state_of(broker, m.id) == S.ACKNOWLEDGED.value for m in messages)
    assert [a.message_id for a in sorted(acks, key=lambda a: a.id)] == [m.id for m in messages]  # ids in arrival order


def test_receipts_overtaken_by_their_answers_are_kept_once_with_one_read_per_batch(broker):
    authority, sent = broker.connectors["authority"], []
    scripted = authority.deliver

    def answered_before_the_receipt(message):
        # The counterpart's answer is recorded before the worker settles the receipt the same exchange gave.
        take_answers(broker.database, "authority", [AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=message.id)], actor="counterpart:authority")
        sent.append(message)
        return scripted(message)

    authority.deliver = answered_before_the_receipt
    for n in range(3):
        broker.submit(json.dumps(example_record(certificate_number=f"FR-2026-OVT-{n:06d}")).encode(), "application/json", tenant="FR", actor="api:test")
    reads: list[str] = []

    def count(_connection, _cursor, statement, *_rest) -> None:
        if statement.startswith("SELECT") and "FROM acknowledgements" in statement:
            reads.append(statement)

    event.listen(broker.database.engine, "before_cursor_execute", count)
    try:
        worker = broker.make_worker(webhooks=False)
        assert worker.run_once(limit=3) == 3
        assert len(reads) == 1  # the batch's kept receipts, read once: no read (and no flush) per receipt
        # The same receipt given again (a redelivery answered with the same bytes) is not kept twice.
        again = [Offered(outbound=m, attempt=1, lane=worker.name, result=DeliveryResult(outcome=Outcome.ACCEPTED, receipt_id=None, response=b"<receipt>accepted</receipt>"),
                         started=utcnow(), finished=utcnow()) for m in sent]
        worker.settle_pulled(again)
    finally:
        event.remove(broker.database.engine, "before_cursor_execute", count)
    with broker.database.sessions() as session:
        for message in sent:
            assert session.get(Message, message.id).state == S.ACKNOWLEDGED.value
            kinds = sorted(a.kind for a in session.scalars(select(Acknowledgement).where(Acknowledgement.message_id == message.id)))
            assert kinds == ["acknowledgement", "receipt"]
            assert [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.message_id == message.id, TraceEvent.event == "receipt.recorded"))] == ["receipt.recorded"]
