"""Server-rendered pages: one Jinja2 environment (autoescape on) over ``hub/web/templates/``, the translations of
``hub/web/i18n/*.yaml`` and :func:`render`.

Each area keeps its translations in its own file (``console.yaml``, ``alerts.yaml``, ``verify.yaml``…), each
``{key: {en: …, fr: …, es: …}}``; every file is loaded. A template says ``{{ t("traces.title") }}`` or
``{{ t("traces.found", count=3) }}`` (``str.format`` placeholders). A key missing in the chosen language falls back
to English, then to the key itself, so a forgotten translation shows, never breaks a page.

The language is chosen from ``?lang=`` (remembered in a ``lang`` cookie), then the ``lang`` cookie, then
``Accept-Language``; English by default.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlencode

import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

WEB = Path(__file__).resolve().parent
TEMPLATES = WEB / "templates"
I18N = WEB / "i18n"
STATIC = WEB / "static"
LANGUAGES = ("en", "fr", "es")
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "lang"


@lru_cache(maxsize=1)
def translations() -> dict[str, dict[str, str]]:
    """Every key of every ``i18n/*.yaml`` file, ``{key: {lang: text}}`` (read once per process)."""
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(I18N.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not readable YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a mapping of keys to {{en: …, fr: …}} is expected")
        for key, texts in data.items():
            if not isinstance(texts, dict):
                raise ValueError(f"{path}: key {key!r} must map languages to texts")
            merged[str(key)] = {str(lang): str(text) for lang, text in texts.items()}
    return merged


def translate(lang: str, key: str, **values: Any) -> str:
    """The text of ``key`` in ``lang`` (else English, else the key), with ``values`` put in its placeholders."""
    texts = translations().get(key) or {}
    text = texts.get(lang) or texts.get(DEFAULT_LANGUAGE) or key
    if values:
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def choose_lang(request: Request) -> str:
    """The page's language: ``?lang=``, then the ``lang`` cookie, then ``Accept-Language``, then English."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate and candidate.strip().lower() in LANGUAGES:
            return candidate.strip().lower()
    return _accepted(request.headers.get("accept-language", ""))


def _accepted(header: str) -> str:
    weighted = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().lower()[:2]
        if language in LANGUAGES and quality > 0:
            weighted.append((-quality, position, language))
    return min(weighted)[2] if weighted else DEFAULT_LANGUAGE


def _when(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    return value.strftime(pattern) + " UTC" if isinstance(value, datetime) else ""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _value(value: Any) -> str:
    """A detail's value as a person reads it: nothing for None, JSON for structures, a decimal without trailing
    zeros (``18500``, not ``18500.000000``)."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _with_page(params: Mapping[str, str], page: int | None) -> str:
    """The query string of ``params`` with ``page`` replaced (or dropped for None); ``lang`` is left to the cookie."""
    kept = [(k, v) for k, v in getattr(params, "multi_items", params.items)() if k not in ("page", "lang")]
    return urlencode(kept + ([("page", str(page))] if page is not None else []))


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The pages' Jinja2 environment: autoescaped always (a value is text, never markup)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    env.filters["value"] = _value
    env.filters["urlencode_page"] = _with_page
    return env


def render(request: Request, template: str, *, status_code: int = 200, headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
    """The page ``template`` rendered for ``request``: its context holds ``request``, ``lang``, ``t``, ``client``
    (the person logged in, or None) and ``context``. A ``?lang=`` choice is remembered in a cookie."""
    lang = choose_lang(request)
    values = {
        "request": request,
        "lang": lang,
        "languages": LANGUAGES,
        "t": lambda key, **v: translate(lang, key, **v),
        "client": getattr(request.state, "client", None),
        **context,
    }
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    chosen = request.query_params.get("lang", "").strip().lower()
    if chosen in LANGUAGES and chosen != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", httponly=True)
    return response
