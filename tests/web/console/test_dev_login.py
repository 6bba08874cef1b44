"""The development hub (`make run`) prints a console login that works, made once and kept."""

from __future__ import annotations

from hub.cli.serve import ServeOptions, banner, development_person
from tests.web.conftest import log_in


def test_the_development_login_is_made_once_and_logs_in(broker, site, tmp_path):
    login_file = tmp_path / "dev-console-login"
    name, password = development_person(broker, login_file)
    assert development_person(broker, login_file) == (name, password)
    assert login_file.stat().st_mode & 0o077 == 0
    assert log_in(site, name, password).status_code == 303
    assert site.get("/console/counterparts").status_code == 200  # an administrator: sees every counterpart
    shown = banner(broker, ServeOptions(sandboxes=False), "hub_key", (name, password))
    assert f"log in as {name}, password {password}" in shown and "/verify" in shown
