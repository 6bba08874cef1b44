"""Logging into the console: the password, the session cookie, its end, and what each role may open."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hub.api.auth import SESSION_COOKIE, hash_key
from hub.store.models import ApiClient, OAuthToken, utcnow
from tests.web.conftest import BASE_URL, PASSWORD, add_person, log_in


def test_a_person_logs_in_and_out(site, broker):
    name = add_person(broker.database, role="operator", acts_for="FR")
    assert site.get("/console/traces", follow_redirects=False).headers["location"] == "/console/login?next=%2Fconsole%2Ftraces"
    answer = log_in(site, name)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    cookie = answer.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=hss_" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    token = site.cookies[SESSION_COOKIE]
    with broker.database.sessions() as session:
        stored = session.get(OAuthToken, hash_key(token))
        assert stored is not None and session.scalars(select(ApiClient.password_hash).where(ApiClient.name == name)).one().startswith("scrypt$")
    page = site.get("/console/traces")
    assert page.status_code == 200 and name in page.text
    assert site.post("/console/logout", headers={"Origin": BASE_URL}, follow_redirects=False).status_code == 303
    with broker.database.sessions() as session:
        assert session.get(OAuthToken, hash_key(token)) is None
    # the old cookie, replayed, opens nothing any more
    site.cookies.set(SESSION_COOKIE, token)
    assert site.get("/console/traces", follow_redirects=False).status_code == 303


def test_a_wrong_password_or_name_is_refused_alike(site, broker):
    name = add_person(broker.database, role="operator", acts_for="FR")
    wrong = log_in(site, name, "not the password")
    nobody = log_in(site, "nobody-here", PASSWORD)
    assert wrong.status_code == nobody.status_code == 401
    assert "Wrong name or password" in wrong.text and "Wrong name or password" in nobody.text
    assert SESSION_COOKIE not in site.cookies


def test_a_client_without_a_password_cannot_log_in(site, broker):
    from hub.api.auth import create_client

    with broker.database.transaction() as session:
        create_client(session, name="machine", tenant="FR")
    assert log_in(site, "machine", "").status_code == 422 or log_in(site, "machine", "whatever-it-is").status_code == 401


def test_an_expired_session_leads_back_to_the_login(site, broker):
    name = add_person(broker.database, role="operator", acts_for="FR")
    log_in(site, name)
    digest = hash_key(site.cookies[SESSION_COOKIE])
    with broker.database.transaction() as session:
        session.execute(update(OAuthToken).where(OAuthToken.token_hash == digest).values(expires_at=utcnow() - timedelta(seconds=1)))
    site.app.state.client_cache.clear()
    answer = site.get("/console/traces", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")
    assert site.get("/v1/documents").status_code == 401


def test_a_post_with_the_cookie_from_another_site_is_refused(person, broker):
    console = person("administrator")
    forged = console.post("/v1/messages/none/resend", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "Origin" in forged.text
    del console.headers["Origin"]
    assert console.post("/v1/messages/none/resend").status_code == 403
    assert console.post("/v1/messages/none/resend", headers={"Referer": f"{BASE_URL}/console/dead-letters"}).status_code == 404
    assert console.post("/v1/messages/none/resend", headers={"Origin": BASE_URL}).status_code == 404


def test_a_login_form_posted_from_another_site_is_refused(site, broker):
    name = add_person(broker.database, role="operator", acts_for="FR")
    answer = site.post("/console/login", data={"name": name, "password": PASSWORD}, headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert answer.status_code == 403 and SESSION_COOKIE not in site.cookies


def test_a_foreign_authority_cannot_log_into_the_console(site, broker, site_app):
    name = add_person(broker.database, role="foreign_authority", tenant="US")
    answer = log_in(site, name)
    assert answer.status_code == 403 and "verification" in answer.text and SESSION_COOKIE not in site.cookies


def test_the_login_goes_back_where_it_was_asked_but_never_off_site(site, broker):
    name = add_person(broker.database, role="operator", acts_for="FR")
    for wanted, landed in (("/console/dead-letters", "/console/dead-letters"), ("https://evil.example/", "/console"), ("//evil.example", "/console")):
        answer = site.post("/console/login", data={"name": name, "password": PASSWORD, "next": wanted}, headers={"Origin": BASE_URL}, follow_redirects=False)
        assert answer.headers["location"] == landed


def test_the_page_speaks_the_language_asked(person):
    console = person("operator", acts_for="FR")
    assert 'lang="fr"' in console.get("/console/login?lang=fr").text
    assert "Connexion" in console.get("/console/login").text  # remembered in the lang cookie
    other = TestClient(console.app, base_url=BASE_URL)
    assert 'lang="fr"' in other.get("/console/login", headers={"Accept-Language": "de;q=1, fr;q=0.8, en;q=0.5"}).text
    assert 'lang="en"' in other.get("/console/login").text


def test_guessing_passwords_is_slowed_per_address(site, broker):
    from hub.api import ratelimit
    from hub.web.session import LOGINS_PER_MINUTE

    ratelimit._LIMITERS.pop(broker, None)  # a fresh budget for this hub
    name = add_person(broker.database)
    assert log_in(site, name).status_code == 303  # a good login spends nothing
    answers = [log_in(site, name, "not-the-password-at-all").status_code for _ in range(LOGINS_PER_MINUTE)]
    assert set(answers) == {401}
    blocked = log_in(site, name)  # even the right password waits now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert "hub_session" not in blocked.cookies
