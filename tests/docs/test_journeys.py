"""The journeys of the documentation, run as written: the docs cannot rot.

A runnable block is a fenced ``sh`` block right after an HTML comment that names it and says what its last line
of output must be::

    <!-- journey: first expect: acknowledged -->
    ```sh
    ...
    ```

A file may hold one ``<!-- journey-setup -->`` block (variables and shell functions): it runs before each of that
file's journeys. Blocks are read from README.md and docs/*.md.

One ``hub serve`` runs for the whole module on the default ports (the docs name them), with a temporary SQLite
database and a temporary development PKI, so a developer's ``var/hub.db`` and ``certs/dev`` are never touched, and
with ``HUB_STANDARDS_DIR`` pointing nowhere (the hub runs without the standards artefacts, as the README says). The
journeys read the API key from ``HUB_API_KEY`` and the PKI from ``HUB_CERTS_DIR``, as the docs' set-up lines do.
Each block runs in ``bash`` with ``set -euo pipefail``, from the repository root, with a time limit.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hub.standards import PROJECT_ROOT

pytestmark = pytest.mark.slow

HUB = [sys.executable, "-m", "hub"]
#: The API and every sandbox or exchange ``hub serve`` listens on by default, and the webhook receiver of journeys.md.
PORTS = (8000, 8443, 8444, 8445, 8446, 8447, 8448, 8449, 8450, 8999)
JOURNEY_TIMEOUT = 60
MARKER = re.compile(
    r"<!--\s*journey(?P<setup>-setup)?(?::\s*(?P<name>[\w-]+))?(?:\s+expect:\s*(?P<expect>.*?))?\s*-->\s*\n"
    r"```sh\n(?P<code>.*?)\n```",
    re.DOTALL,
)


@dataclass(frozen=True)
class Journey:
    source: str
    name: str
    expect: str
    code: str
    setup: str

    @property
    def id(self) -> str:
        return f"{self.source}:{self.name}"


def journeys_in(path: Path) -> list[Journey]:
    """The marked blocks of one Markdown file, each with the file's set-up block (if any)."""
    text = path.read_text(encoding="utf-8")
    source = str(path.relative_to(PROJECT_ROOT))
    setup, found = "", []
    for match in MARKER.finditer(text):
        if match["setup"]:
            setup = match["code"]
            continue
        if not match["name"] or not match["expect"]:
            raise AssertionError(f"{source}: a journey block needs a name and an expected last line: {match.group(0)[:80]!r}")
        found.append((match["name"], match["expect"].strip(), match["code"]))
    return [Journey(source, name, expect, code, setup) for name, expect, code in found]


def all_journeys() -> list[Journey]:
    files = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
    return [journey for path in files if path.is_file() for journey in journeys_in(path)]


JOURNEYS = all_journeys()


def test_the_readme_has_its_first_journey_and_names_are_unique():
    assert any(j.source == "README.md" and j.name == "first" for j in JOURNEYS), "README.md lost its <!-- journey: first --> block"
    ids = [j.id for j in JOURNEYS]
    assert len(ids) == len(set(ids)), f"journey names repeat: {ids}"


def _taken(port: int) -> bool:
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        probe.close()


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory) -> dict[str, str]:
    """``hub serve`` on the default ports, a temporary database and PKI, an API key of tenant FR; its environment."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: the documented journeys capture ids with it (apt-get install -y jq)")
    if not (PROJECT_ROOT / ".venv" / "bin" / "hub").exists():
        pytest.skip("the journeys call .venv/bin/hub: run the tests through `make test`")
    taken = [port for port in PORTS if _taken(port)]
    if taken:
        pytest.skip(f"ports {taken} are taken (a `make run` hub?): the journeys need the default ports; stop it to run them")
    from hub.signing.pki import init_dev_pki

    tmp = tmp_path_factory.mktemp("journeys")
    pki = init_dev_pki(tmp / "certs", authorities=("FR", "US", "JP"), rsa_key_bits=2048)
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite:///{tmp / 'hub.db'}",
        "HUB_CERTS_DIR": str(pki.directory),
        "HUB_STANDARDS_DIR": str(tmp / "no-standards-here"),
        "HUB_WEBHOOK_PRIVATE_TARGETS": "1",  # the webhook journey's receiver listens on loopback
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("HUB_ROUTES", "HUB_CONNECTORS", "HUB_PUBLIC_URL", "HUB_SANDBOX_URL", "HUB_EPHYTO_URL", "HUB_TRACES_URL", "HUB_SINGLE_WINDOW_URL", "HUB_AS4_URL"):
        env.pop(name, None)
    migrated = subprocess.run([*HUB, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    added = subprocess.run([*HUB, "clients", "add", "docs-journeys", "--tenant", "FR"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    env["HUB_API_KEY"] = added.stdout.strip()
    log = (tmp / "hub.log").open("w")
    server = subprocess.Popen([*HUB, "serve"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get("http://127.0.0.1:8000/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"hub serve did not come up:\n{(tmp / 'hub.log').read_text()}")
            time.sleep(0.2)
        env["HUB_LOG"] = str(tmp / "hub.log")
        yield env
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.parametrize("journey", JOURNEYS, ids=[j.id for j in JOURNEYS])
def test_journey_runs_as_documented(live_hub, journey: Journey):
    script = f"set -euo pipefail\n{journey.setup}\n{journey.code}\n"
    try:
        done = subprocess.run(["bash", "-c", script], env=live_hub, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=JOURNEY_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{journey.id} took more than {JOURNEY_TIMEOUT} s; its output so far:\n{exc.stdout}\n{exc.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    context = f"{journey.id} (exit {done.returncode})\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, context
    assert lines and lines[-1].strip() == journey.expect, f"last line should be {journey.expect!r}\n{context}"
