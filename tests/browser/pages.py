"""What the browser tests do on any page: log in as a person, save a screenshot when asked, and check the basics of
accessibility with the page's own computed styles."""

from __future__ import annotations

import os
from pathlib import Path

from hub.standards import PROJECT_ROOT
from tests.browser.hub_data import PASSWORD, PEOPLE

#: Where screenshots go, when set (relative to the project's root): ``HUB_SCREENSHOTS=docs/screenshots``.
SCREENSHOTS = "HUB_SCREENSHOTS"


def screenshots_dir() -> Path | None:
    value = os.environ.get(SCREENSHOTS)
    return PROJECT_ROOT / value if value else None


def shoot(page, name: str, *, full_page: bool = True) -> None:
    """A picture of the page as ``name`` under :data:`SCREENSHOTS`; nothing without it."""
    folder = screenshots_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name), full_page=full_page, animations="disabled")


def log_in(page, role: str = "operator", *, then: str = "/console/traces") -> str:
    """Log in through the form as the person of ``role``, coming back to ``then``; returns the person's name."""
    name = PEOPLE[role]
    page.goto(f"/console/login?next={then}")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{then}")
    return name


# --- accessibility ----------------------------------------------------------------------------------------------------

# Every check reads what the browser computed, so a stylesheet or template change that breaks one is caught.
_PROBLEMS_JS = r"""
() => {
  const problems = [];
  const visible = (e) => { const s = getComputedStyle(e), r = e.getBoundingClientRect();
    return s.display !== "none" && s.visibility !== "hidden" && r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0; };
  const describe = (e) => e.outerHTML.slice(0, 100);

  if (!document.documentElement.lang) problems.push("the page has no lang attribute");

  // every form control has an accessible name
  for (const e of document.querySelectorAll("input, select, textarea")) {
    if (e.type === "hidden") continue;
    const labelled = (e.labels && [...e.labels].some(l => l.textContent.trim())) || e.getAttribute("aria-label")
      || (e.getAttribute("aria-labelledby") || "").split(/\s+/).some(id => id && document.getElementById(id) && document.getElementById(id).textContent.trim())
      || e.title;
    if (!labelled) problems.push("a form control without a label: " + describe(e));
  }
  for (const e of document.querySelectorAll("button")) {
    if (!(e.textContent.trim() || e.getAttribute("aria-label"))) problems.push("a button without a name: " + describe(e));
  }
  // images have a text alternative (an empty alt says decorative); a drawing says what it shows
  for (const e of document.querySelectorAll("img:not([alt])")) problems.push("an image without alt: " + describe(e));
  for (const e of document.querySelectorAll("svg")) {
    if (e.parentElement.closest("svg") || e.getAttribute("aria-hidden") === "true") continue;
    const named = e.getAttribute("aria-label") || e.getAttribute("aria-labelledby") || e.querySelector(":scope > title");
    if (!named) problems.push("a drawing (svg) without a title: " + describe(e));
  }
  // one h1 first, and no heading level skipped on the way down
  const levels = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].map(h => Number(h.tagName[1]));
  if (levels[0] !== 1 || levels.filter(l => l === 1).length !== 1) problems.push("headings must start with the one h1: " + levels.join(","));
  levels.forEach((level, i) => { if (i && level > levels[i - 1] + 1) problems.push(`heading h${level} follows h${levels[i - 1]}`); });

  // colour contrast of every visible text against what is painted behind it (WCAG AA: 4.5:1, 3:1 for large text)
  const rgba = (c) => { const p = (c.match(/rgba?\(([^)]+)\)/) || [, "0 0 0 0"])[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const over = (top, bottom) => ({ r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a), b: top.b * top.a + bottom.b * (1 - top.a), a: 1 });
  const behind = (e) => { const layers = [];
    for (let n = e; n; n = n.parentElement) { const c = rgba(getComputedStyle(n).backgroundColor); if (c.a > 0) { layers.push(c); if (c.a >= 1) break; } }
    return layers.reverse().reduce((below, layer) => over(layer, below), { r: 255, g: 255, b: 255, a: 1 }); };
  const luminance = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const e = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !e || seen.has(e) || e.closest("svg, option, script, style")) continue;
    seen.add(e);
    if (!visible(e)) continue;
    const s = getComputedStyle(e), background = behind(e), ink = over(rgba(s.color), background);
    const [light, dark] = [luminance(ink), luminance(background)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(s.fontSize), large = size >= 24 || (Number(s.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}:1 for "${walker.currentNode.textContent.trim().slice(0, 40)}" (${e.tagName.toLowerCase()}, ${s.color} on rgb(${Math.round(background.r)}, ${Math.round(background.g)}, ${Math.round(background.b)}))`);
  }
  return problems;
}
"""


def accessibility_problems(page) -> list[str]:
    """What the page gets wrong of the basics: lang, labels, alt texts, heading order, contrast. Empty when none."""
    return page.evaluate(_PROBLEMS_JS)


def assert_accessible(page) -> None:
    problems = accessibility_problems(page)
    assert not problems, f"{page.url}:\n  " + "\n  ".join(problems)


_FOCUS_JS = """
() => { const e = document.activeElement, s = getComputedStyle(e);
  return { id: e.id, tag: e.tagName.toLowerCase(), type: e.type || "", text: (e.textContent || "").trim().slice(0, 40),
           outline: s.outlineStyle, width: parseFloat(s.outlineWidth) }; }
"""


def focused(page) -> dict:
    """The element that has the keyboard focus, and its outline as computed."""
    return page.evaluate(_FOCUS_JS)
