"""Fixtures of the tests in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``, which
``make tools`` installs; never a browser Playwright downloads) over the hub's site served on loopback.

- ``live_hub`` (module, once on SQLite and once on PostgreSQL): the site served by uvicorn over a broker with
  scripted counterparts, filled with the documents, people, non-conformities and alerts of
  :mod:`tests.browser.hub_data`. The journeys share it, each on data of its own.
- ``chromium`` (module): the browser; the tests are skipped, with the reason, only when it is missing.
- ``page``: a new browser context (no cookies, English) and a page in it, every wait bounded; an uncaught script
  error on a page fails the test.

``HUB_SCREENSHOTS=docs/screenshots`` makes the tests save a picture of each page they visit there
(:func:`tests.browser.pages.shoot`); a plain run writes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser.hub_data import LiveHub, Served, api_key, populate
from tests.support.broker import make_broker

CHROMIUM = "/usr/bin/chromium"
#: The longest any one step (a navigation, a click, a wait for an element) may take.
STEP_MS = 10_000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def browser_database_url(request, tmp_path_factory):
    """A new database at head for the module's hub (the copy of a migrated template, as tests/support/databases.py)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("browser") / "hub.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server, template = request.getfixturevalue("postgres_server"), request.getfixturevalue("_postgres_template")
    name = template.create()
    yield server.url_for(name)
    template.drop(name)


@pytest.fixture(scope="module")
def live_hub(pki, browser_database_url):
    broker = make_broker(browser_database_url, pki)
    try:
        with Served(broker) as url:
            # the facsimile's QR code and the Origin check name the site as a browser reaches it
            broker.settings = broker.settings.model_copy(update={"public_url": url})
            hub = LiveHub(url=url, broker=broker, api_key=api_key(broker))
            populate(hub)
            yield hub
    finally:
        broker.close()


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Debian's Chromium is missing at {CHROMIUM}: run `make tools` (apt-get install chromium) to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"], timeout=30_000)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_hub):
    context = chromium.new_context(base_url=live_hub.url, viewport={"width": 1280, "height": 860}, locale="en-GB", accept_downloads=True)
    context.set_default_timeout(STEP_MS)
    context.set_default_navigation_timeout(STEP_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"script errors on the pages: {errors}"
