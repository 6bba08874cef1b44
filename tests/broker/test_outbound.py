"""The broker on both engines: one transaction per submission, idempotency, ordering, retries, dead letters and
resend, a killed worker, acknowledgements and non-conformities."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from hub.connector import AckReport, Outcome
from hub.store.states import MessageState, abandon
from hub.errors import ConflictError, PermissionDenied, ValidationFailed
from hub.routing.table import NoRouteError
from hub.store.models import DeliveryAttempt, Document, Message, NonConformity, Payload, TraceEvent, utcnow
from tests.support.broker import ScriptedConnector, example_record, make_broker, permanent, replacement_of, transient

S = MessageState


def submit(broker, record: dict, **options):
    return broker.submit(json.dumps(record).encode(), "application/json", tenant="FR", actor="api:test", **options)


def states(broker, document_id: str) -> dict[str, str]:
    with broker.database.sessions() as session:
        return {m.destination: m.state for m in session.scalars(select(Message).where(Message.document_id == document_id))}


def count(broker, model) -> int:
    with broker.database.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_submission_stores_the_document_and_one_queued_message_per_destination(broker):
    stored = submit(broker, example_record())
    assert stored.created
    assert states(broker, stored.document.id) == {"authority": "queued", "customs": "queued"}
    with broker.database.sessions() as session:
        document = session.get(Document, stored.document.id)
        assert (document.kind, document.issuing_country, document.importing_country) == ("phytosanitary", "FR", "EC")
        assert [p.hs_code for p in document.products] == ["080810"]
        events = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.document_id == document.id).order_by(TraceEvent.id))]
    assert events[:4] == ["document.received", "document.validated", "document.signed", "document.routed"]
    assert events.count("message.queued") == 2


def test_invalid_input_stores_nothing(broker):
    bad = example_record(consignment={**example_record()["consignment"], "import_country": {"id": "FR"}})
    with pytest.raises(ValidationFailed) as failed:
        submit(broker, bad)
    assert any(f.rule == "BR-COUNTRIES-DIFFER" or "import" in (f.field or "") for f in failed.value.report.severe)
    assert count(broker, Document) == count(broker, Message) == count(broker, Payload) == count(broker, TraceEvent) == 0


def test_a_document_no_rule_matches_is_refused(broker):
    ched = json.loads((example_record.__globals__["EXAMPLES"] / "ched-P-FR-cheese.record.json").read_text())
    with pytest.raises(NoRouteError, match="no rule"):
        submit(broker, ched)
    assert count(broker, Document) == 0


def test_a_tenant_cannot_submit_another_authoritys_certificate(broker):
    with pytest.raises(PermissionDenied):
        broker.submit(json.dumps(example_record()).encode(), "application/json", tenant="NL", actor="api:nl")


def test_repeated_submission_returns_the_first_result(broker):
    first = submit(broker, example_record())
    again = submit(broker, example_record())
    assert (again.created, again.document.id) == (False, first.document.id)
    assert count(broker, Message) == 2


def test_same_business_key_with_other_content_is_a_conflict_until_the_version_changes(broker):
    submit(broker, example_record())
    changed = example_record(description="corrected")
    with pytest.raises(ConflictError, match="version 2"):
        submit(broker, changed)
    second = submit(broker, changed, version=2)
    assert second.created and second.document.version == 2


def test_idempotency_key_returns_the_first_result_and_refuses_other_content(broker):
    first = submit(broker, example_record(), idempotency_key="k-1")
    assert submit(broker, example_record(), idempotency_key="k-1").document.id == first.document.id
    with pytest.raises(ConflictError, match="Idempotency-Key"):
        submit(broker, example_record(certificate_number="FR-2026-PC-999"), idempotency_key="k-1")


def test_delivery_acknowledgement_and_trace(broker):
    stored = submit(broker, example_record())
    worker = broker.make_worker()
    assert worker.drain() == 2
    assert states(broker, stored.document.id) == {"authority": "awaiting_ack", "customs": "awaiting_ack"}
    authority = broker.connectors["authority"]
    message_id = authority.received[0].id
    with broker.database.transaction() as session:
        from hub.acks.correlation import apply_ack

        apply_ack(session, "authority", AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=message_id, payload=b"<ack/>"), actor="test")
    assert states(broker, stored.document.id)["authority"] == "acknowledged"
    with broker.database.sessions() as session:
        events = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.message_id == message_id).order_by(TraceEvent.id))]
    assert events == ["message.queued", "message.sending", "receipt.accepted", "acknowledgement.acknowledged"]


def test_tracking_events_are_traced_without_moving_the_message(broker):
    stored = submit(broker, example_record())
    broker.make_worker().drain()
    message_id = broker.connectors["authority"].received[0].id
    from hub.acks.correlation import apply_ack

    with broker.database.transaction() as session:
        apply_ack(session, "authority", AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=message_id), actor="test")
        apply_ack(session, "authority", AckReport(outcome=Outcome.ACCEPTED, kind="tracking", reason_code="documentary_check", message_id=message_id), actor="test")
    assert states(broker, stored.document.id)["authority"] == "acknowledged"
    with broker.database.sessions() as session:
        events = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.message_id == message_id).order_by(TraceEvent.id))]
    assert events[-1] == "tracking.documentary_check"
    with broker.database.transaction() as session:  # read again after a restart: not traced twice
        apply_ack(session, "authority", AckReport(outcome=Outcome.ACCEPTED, kind="tracking", reason_code="documentary_check", message_id=message_id), actor="test")
    with broker.database.sessions() as session:
        again = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.message_id == message_id).order_by(TraceEvent.id))]
    assert again == events


def test_a_starting_worker_hands_connectors_the_messages_still_awaiting_an_answer(database_url, pki):
    resumed = []

    class Following(ScriptedConnector):
        def resume(self, awaiting):
            resumed.extend(awaiting)

    broker = make_broker(database_url, pki, connectors={"authority": Following("authority"), "customs": Following("customs")})
    try:
        stored = submit(broker, example_record())
        broker.make_worker().drain()
        with broker.database.transaction() as session:  # one of them answered already
            from hub.acks.correlation import apply_ack

            apply_ack(session, "customs", AckReport(outcome=Outcome.ACKNOWLEDGED, certificate_number=stored.document.certificate_number), actor="test")
        restarted = broker.make_worker()
        assert restarted.resume_awaiting() == 1
        assert [(a.certificate_number, a.importing_country) for a in resumed] == [(stored.document.certificate_number, "EC")]
        assert resumed[0].message_id == broker.connectors["authority"].received[0].id
        assert resumed[0].receipt_id.startswith("R-")
    finally:
        broker.close()


def test_transient_errors_wait_honouring_retry_after_then_succeed(broker):
    stored = submit(broker, example_record())
    broker.connectors["authority"].fail_next(transient(retry_after=30))
    worker = broker.make_worker()
    worker.drain()
    with broker.database.sessions() as session:
        message = session.scalars(select(Message).where(Message.destination == "authority")).one()
        assert message.state == "retry_wait"
        assert message.next_attempt_at >= utcnow() + timedelta(seconds=29)
        assert "503" in message.last_error
    assert worker.drain() == 0  # not due yet
    with broker.database.transaction() as session:
        session.scalars(select(Message).where(Message.destination == "authority")).one().next_attempt_at = utcnow()
    assert worker.drain() == 1
    assert states(broker, stored.document.id)["authority"] == "awaiting_ack"
    with broker.database.sessions() as session:
        outcomes = [a.outcome for a in session.scalars(select(DeliveryAttempt).join(Message).where(Message.destination == "authority").order_by(DeliveryAttempt.id))]
    assert outcomes == ["transient_error", "accepted"]


def test_exhausted_retries_and_permanent_errors_are_dead_letters_and_a_resend_keeps_the_identity(broker):
    stored = submit(broker, example_record())
    authority, customs = broker.connectors["authority"], broker.connectors["customs"]
    authority.fail_next(transient(), transient(), transient())  # max_attempts is 3
    customs.fail_next(permanent())
    worker = broker.make_worker()
    for _ in range(3):
        worker.drain()
    assert states(broker, stored.document.id) == {"authority": "dead_letter", "customs": "dead_letter"}
    assert len(customs.received) == 1  # a permanent error is not retried
    dead = customs.received[0].id
    broker.resend(dead, tenant="FR", actor="api:ops")
    worker.drain()
    assert states(broker, stored.document.id)["customs"] == "awaiting_ack"
    assert [m.id for m in customs.received] == [dead, dead]
    with pytest.raises(ConflictError):
        broker.resend(dead, tenant="FR", actor="api:ops")


def test_a_replacement_never_overtakes_the_certificate_it_replaces(broker):
    original = example_record()
    submit(broker, original)
    submit(broker, replacement_of(original, "FR-2026-PC-000124"))
    authority = broker.connectors["authority"]
    authority.fail_next(transient(retry_after=60))  # the original fails first…
    worker = broker.make_worker()
    worker.drain()
    assert authority.numbers == ["FR-2026-PC-000123"]  # …and the replacement waits for it
    with broker.database.transaction() as session:
        for message in session.scalars(select(Message).where(Message.state == "retry_wait")):
            message.next_attempt_at = utcnow()
    worker.drain()
    assert authority.numbers == ["FR-2026-PC-000123", "FR-2026-PC-000123", "FR-2026-PC-000124"]
    with broker.database.sessions() as session:
        lifecycles = dict(session.execute(select(Document.certificate_number, Document.lifecycle)).all())
    assert lifecycles == {"FR-2026-PC-000123": "replaced", "FR-2026-PC-000124": "issued"}


def test_a_replacements_message_names_the_message_that_took_the_original_to_the_same_destination(broker):
    original = example_record()
    first = submit(broker, original)
    broker.connectors["customs"].fail_next(permanent())  # customs never gets the original
    broker.make_worker().drain()
    replacement = submit(broker, replacement_of(original, "FR-2026-PC-000124"))
    with broker.database.transaction() as session:
        sent = {m.destination: m for m in session.scalars(select(Message).where(Message.document_id == first.document.id))}
        abandon(session, sent["customs"], actor="api:ops", reason="customs never took it")  # the replacement goes on
        sent = {destination: m.id for destination, m in sent.items()}
    broker.make_worker().drain()  # a new worker, as after a restart: nothing of the first one's is remembered
    by_number = {(m.destination, m.certificate_number): m for name in ("authority", "customs") for m in broker.connectors[name].received}
    assert by_number["authority", "FR-2026-PC-000123"].replaces is None
    assert by_number["authority", "FR-2026-PC-000124"].replaces == sent["authority"]
    assert by_number["customs", "FR-2026-PC-000124"].replaces is None  # the original never reached customs
    assert replacement.created and by_number["customs", "FR-2026-PC-000123"].id == sent["customs"]


def test_a_withdrawal_follows_the_certificate_on_each_destination(broker):
    original = example_record()
    submit(broker, original)
    submit(broker, example_record(status="withdrawn"))
    broker.connectors["authority"].fail_next(transient(retry_after=60))
    broker.make_worker().drain()
    assert broker.connectors["authority"].numbers == ["FR-2026-PC-000123"]
    assert [m.status for m in broker.connectors["customs"].received] == ["issued", "withdrawn"]


def test_a_killed_worker_loses_nothing(broker):
    stored = submit(broker, example_record())
    doomed = broker.make_worker(name="worker:doomed", lease_seconds=0.05)
    with broker.database.transaction() as session:
        from hub.delivery.outbox import claim

        taken = claim(session, worker=doomed.name, lease_seconds=0.05, destinations=["authority"])
    assert len(taken) == 1  # …and the worker dies here, mid-delivery
    import time

    time.sleep(0.1)
    survivor = broker.make_worker(name="worker:survivor")
    survivor.drain()
    assert states(broker, stored.document.id) == {"authority": "awaiting_ack", "customs": "awaiting_ack"}
    assert [m.id for m in broker.connectors["authority"].received] == [taken[0].message_id]
    with broker.database.sessions() as session:
        events = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.message_id == taken[0].message_id).order_by(TraceEvent.id))]
    assert "message.lease_expired" in events
    # the dead worker's late answer changes nothing
    doomed.deliver(taken[0])
    assert states(broker, stored.document.id)["authority"] == "awaiting_ack"


def test_two_workers_never_deliver_the_same_message_twice(broker):
    for n in range(6):
        submit(broker, example_record(certificate_number=f"FR-2026-PC-{n:06d}"))
    one, two = broker.make_worker(name="w1"), broker.make_worker(name="w2")
    import threading

    threads = [threading.Thread(target=w.drain) for w in (one, two)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ids = [m.id for c in broker.connectors.values() for m in c.received]
    assert len(ids) == len(set(ids)) == 12


def test_a_rejection_opens_a_non_conformity_that_the_replacement_closes_the_loop_on(broker):
    original = example_record()
    stored = submit(broker, original)
    broker.connectors["authority"].fail_next(Outcome.REJECTED)
    broker.make_worker().drain()
    assert states(broker, stored.document.id)["authority"] == "rejected"
    with broker.database.sessions() as session:
        nc = session.scalars(select(NonConformity)).one()
        assert (nc.document_id, nc.counterpart, nc.country, nc.cause_code, nc.source) == (stored.document.id, "authority", "EC", "BAD", "acknowledgement")
        assert [p.hs_code for p in nc.products] == ["080810"]
    replacement = submit(broker, replacement_of(original, "FR-2026-PC-000124"))
    with broker.database.sessions() as session:
        assert session.scalars(select(NonConformity)).one().replacement_document_id == replacement.document.id


def test_an_acknowledgement_after_a_rejection_changes_nothing_but_is_recorded(broker):
    stored = submit(broker, example_record())
    broker.connectors["authority"].fail_next(Outcome.REJECTED)
    broker.make_worker().drain()
    message_id = broker.connectors["authority"].received[0].id
    with broker.database.transaction() as session:
        from hub.acks.correlation import apply_ack

        apply_ack(session, "authority", AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=message_id), actor="test")
    assert states(broker, stored.document.id)["authority"] == "rejected"


def test_concurrent_identical_submissions_store_one_document(broker):
    import threading

    results, errors = [], []

    def go():
        try:
            results.append(submit(broker, example_record()))
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    assert len({r.document.id for r in results}) == 1 and sum(r.created for r in results) == 1
    assert count(broker, Document) == 1 and count(broker, Message) == 2


def _prepared(broker, number: str, *, version: int = 1):
    from hub.intake.submission import prepare

    docs = broker.documents
    body = json.dumps(example_record(certificate_number=number)).encode()
    return prepare(body, "application/json", tenant="FR", routing=docs.routing, profiles=docs.profiles, signer_for=docs.signer_for,
                   verifier=docs.verifier, signers=docs.signers, version=version)


def test_submissions_stored_together_read_the_store_once_and_a_second_version_still_follows_the_first(broker):
    from hub.broker.documents import _read_earlier, _store_in

    stored_first = broker.submit(json.dumps(example_record(certificate_number="FR-2026-BATCH-0")).encode(), "application/json", tenant="FR", actor="api:test")
    options = {"tenant": "FR", "actor": "api:test"}
    # Three certificates, the first a new version of one stored already.
    distinct = [(_prepared(broker, "FR-2026-BATCH-0", version=2), options)] + [(_prepared(broker, f"FR-2026-BATCH-{n}"), options) for n in (1, 2)]
    reads: list[str] = []

    def count(_connection, _cursor, statement, *_rest) -> None:
        if statement.startswith("SELECT"):
            reads.append(statement)

    event.listen(broker.database.engine, "before_cursor_execute", count)
    try:
        with broker.database.transaction() as session:
            _read_earlier(session, distinct)
            stored = [_store_in(session, work) for work in distinct]
    finally:
        event.remove(broker.database.engine, "before_cursor_execute", count)
    assert len(reads) == 1  # one read for the three, none per submission
    assert all(s.created for s in stored)
    assert_follows(broker, stored[0].document.id, stored_first.document.id)
    # The same certificate twice in one batch: each reads what the ones before it wrote.
    first = _prepared(broker, "FR-2026-BATCH-7")
    second = _prepared(broker, "FR-2026-BATCH-7", version=2)
    with broker.database.transaction() as session:
        _read_earlier(session, [(first, options), (second, options)])
        one, two = _store_in(session, (first, options)), _store_in(session, (second, options))
    assert_follows(broker, two.document.id, one.document.id)


def assert_follows(broker, later_id: str, earlier_id: str) -> None:
    """Each message of document ``later_id`` waits for the message of ``earlier_id`` to the same destination."""
    with broker.database.sessions() as session:
        earlier = {m.destination: m.id for m in session.get(Document, earlier_id).messages}
        later = {m.destination: m.predecessor_id for m in session.get(Document, later_id).messages}
    assert later and later == earlier
