"""The screenshots the browser tests take (HUB_SCREENSHOTS) are in docs/screenshots/, and every picture the README
and docs/*.md show exists."""

from __future__ import annotations

import re

from hub.standards import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def test_every_page_the_browser_tests_visit_has_its_screenshot():
    source = (PROJECT_ROOT / "tests" / "browser" / "test_journeys.py").read_text(encoding="utf-8")
    taken = set(re.findall(r'shoot\(page, "([^"]+\.png)"', source))
    assert len(taken) == 11
    assert not [name for name in sorted(taken) if not (SCREENSHOTS / name).is_file()], "run HUB_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/browser"


def test_every_picture_the_documentation_shows_exists():
    pages = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
    shown = [(page, target) for page in pages for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", page.read_text(encoding="utf-8"))]
    assert any(page.name == "README.md" for page, _ in shown)
    missing = [f"{page.name}: {target}" for page, target in shown if not (page.parent / target).is_file()]
    assert not missing, missing
