"""Acting on stuck messages from the console and the API: resend under the same identity, abandon with a reason;
each traced with who did it; refused to a role that may only read, and to a request from another site."""

from __future__ import annotations

from sqlalchemy import select

from hub.store.models import Message, TraceEvent
from tests.web.console.test_pages import shipped


def state_of(broker, message_id: str) -> str:
    with broker.database.sessions() as session:
        return session.get(Message, message_id).state


def events_of(broker, message_id: str) -> list[TraceEvent]:
    with broker.database.sessions() as session:
        return session.scalars(select(TraceEvent).where(TraceEvent.message_id == message_id).order_by(TraceEvent.id)).all()


def test_a_dead_letter_is_resent_from_the_console_under_the_same_identity(person, broker):
    _, messages = shipped(broker)
    dead = messages["customs"]
    console = person("operator", acts_for="FR")
    listed = console.get("/console/dead-letters")
    assert f'action="/console/messages/{dead}/resend"' in listed.text
    answer = console.post(f"/console/messages/{dead}/resend", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/messages/{dead}?done=resent"
    assert state_of(broker, dead) == "queued"
    resent = events_of(broker, dead)[-1]
    assert (resent.event, resent.actor) == ("message.resend", f"console:{console.person_name}")
    broker.make_worker().drain()
    assert [m.id for m in broker.connectors["customs"].received] == [dead, dead]  # the same message, twice
    assert "The message is queued again." in console.get(answer.headers["location"]).text
    again = console.post(f"/console/messages/{dead}/resend")
    assert again.status_code == 409 and "only dead letters" in again.text


def test_a_message_is_abandoned_with_a_reason_and_who_did_it(person, broker):
    _, messages = shipped(broker)
    console = person("operator", acts_for="FR")
    page = console.get(f"/console/messages/{messages['authority']}")  # awaiting its answer: may be abandoned
    assert 'name="reason"' in page.text and "/resend" not in page.text
    empty = console.post(f"/console/messages/{messages['authority']}/abandon", data={"reason": "   "})
    assert empty.status_code == 422 and "reason" in empty.text and state_of(broker, messages["authority"]) == "awaiting_ack"
    answer = console.post(f"/console/messages/{messages['authority']}/abandon", data={"reason": "sent by post <instead>"}, follow_redirects=False)
    assert answer.status_code == 303
    assert state_of(broker, messages["authority"]) == "abandoned"
    event = events_of(broker, messages["authority"])[-1]
    assert (event.event, event.state, event.actor, event.detail) == ("message.abandoned", "abandoned", f"console:{console.person_name}", {"reason": "sent by post <instead>", "from": "awaiting_ack"})
    timeline = console.get(answer.headers["location"]).text
    assert "message.abandoned" in timeline and "sent by post &lt;instead&gt;" in timeline and 'name="reason"' not in timeline
    assert console.post(f"/console/messages/{messages['authority']}/abandon", data={"reason": "again"}).status_code == 409


def test_the_api_abandons_a_dead_letter_for_its_tenant_only(api, broker):
    _, messages = shipped(broker)
    dead = messages["customs"]
    assert api.post(f"/v1/messages/{dead}/abandon", json={"reason": "x"}, headers=api.headers_of("NL")).status_code == 404
    assert api.post(f"/v1/messages/{dead}/abandon", json={}).status_code == 422
    answer = api.post(f"/v1/messages/{dead}/abandon", json={"reason": "the importer withdrew"})
    assert answer.status_code == 200 and answer.json() == {"id": dead, "destination": "customs", "state": "abandoned"}
    event = events_of(broker, dead)[-1]
    assert (event.event, event.actor, event.detail["reason"]) == ("message.abandoned", "api:fr-system", "the importer withdrew")
    assert api.post(f"/v1/messages/{dead}/resend").status_code == 409  # abandoned is final
    assert api.post(f"/v1/messages/{messages['authority']}/abandon", json={"reason": "r" * 501}).status_code == 422


def test_an_auditor_reads_but_may_not_act(person, broker):
    _, messages = shipped(broker)
    auditor = person("auditor", acts_for="FR")
    page = auditor.get("/console/dead-letters")
    assert page.status_code == 200 and messages["customs"] in page.text and "/resend" not in page.text
    assert 'name="reason"' not in auditor.get(f"/console/messages/{messages['customs']}").text
    refused = auditor.post(f"/console/messages/{messages['customs']}/resend")
    assert refused.status_code == 403 and "auditor" in refused.text
    assert auditor.post(f"/console/messages/{messages['customs']}/abandon", data={"reason": "x"}).status_code == 403
    assert state_of(broker, messages["customs"]) == "dead_letter"


def test_an_action_posted_from_another_site_is_refused(person, broker):
    _, messages = shipped(broker)
    console = person("operator", acts_for="FR")
    forged = console.post(f"/console/messages/{messages['customs']}/resend", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "Origin" in forged.text
    del console.headers["Origin"]
    assert console.post(f"/console/messages/{messages['customs']}/abandon", data={"reason": "x"}).status_code == 403
    assert state_of(broker, messages["customs"]) == "dead_letter"
