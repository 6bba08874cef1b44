"""``/verify``: the public verification page, no account, no JavaScript (plain forms).

``GET /verify?number=…&code=…`` is what a facsimile's QR code opens: the document's authenticity and status, or
"not found or code incorrect" (one answer for both). ``GET /verify`` alone is the empty form. ``POST /verify`` takes
a signed XML file (``multipart/form-data``, field ``document``) and checks its signature, its signer's entitlement
and the document's status. The checks and what they show are those of the public API
(:mod:`hub.api.verify_public`), with the same attempts' budget per client address; every refusal is a page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from hub.api.deps import get_broker
from hub.api.limits import RequestLimits
from hub.api.verify_public import check_signed_copy, statement_by_code, wait_for
from hub.broker import Broker
from hub.errors import InputError, NotFound
from hub.web.templating import LANGUAGES, render

router = APIRouter(include_in_schema=False)

PATH = "/verify"
#: Nothing of a verification may be cached, indexed, framed, or leak its code through a Referer.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}
#: The message key shown beside each field an input error names.
FIELD_ERRORS = {"number": "verify.error.number", "code": "verify.error.code", "file": "verify.error.file"}


@router.get(PATH, response_class=HTMLResponse)
def verify_page(request: Request, number: str | None = None, code: str | None = None, broker: Broker = Depends(get_broker)) -> HTMLResponse:
    """The form; with ``number`` or ``code`` (a QR code's link, or the form sent), the verification too."""
    if number is None and code is None:
        return _page(request, broker)
    shown = {"number": number, "code": code}
    wait = wait_for(request, broker)
    if wait:
        return _page(request, broker, status_code=429, outcome="too_many", wait=wait, retry_after=wait, **shown)
    try:
        statement = statement_by_code(broker, number or "", code or "")
    except NotFound:
        return _page(request, broker, status_code=404, outcome="not_found", **shown)
    except InputError as exc:
        return _page(request, broker, status_code=422, outcome="input", errors={exc.where: FIELD_ERRORS.get(exc.where or "", "verify.error")}, **shown)
    return _page(request, broker, outcome="found", statement=statement, **shown)


@router.post(PATH, response_class=HTMLResponse)
async def verify_upload(request: Request, broker: Broker = Depends(get_broker)) -> HTMLResponse:
    """A signed XML file checked (the form's ``document`` field); the body is bounded like every request's."""
    wait = wait_for(request, broker)
    if wait:
        return _page(request, broker, status_code=429, outcome="too_many", wait=wait, retry_after=wait)
    try:
        form = await request.form(max_files=1, max_fields=10)
    except HTTPException as exc:  # a multipart body that cannot be parsed
        return _page(request, broker, status_code=400, outcome="unreadable", failure=str(exc.detail))
    try:
        upload = form.get("document")
        body = await upload.read() if isinstance(upload, UploadFile) else b""
    finally:
        await form.close()
    if not body.strip():
        return _page(request, broker, status_code=422, outcome="input", errors={"file": FIELD_ERRORS["file"]})
    try:
        checked = await run_in_threadpool(check_signed_copy, broker, body)
    except InputError as exc:  # hostile, malformed, or no document the hub reads
        return _page(request, broker, status_code=exc.status, outcome="unreadable", failure=exc.message)
    return _page(request, broker, outcome="upload", upload=checked)


def _page(request: Request, broker: Broker, *, status_code: int = 200, retry_after: int | None = None, **context: Any) -> HTMLResponse:
    headers = {**HEADERS, **({"Retry-After": str(retry_after)} if retry_after else {})}
    context.setdefault("errors", {})
    return render(request, "public/verify.html", status_code=status_code, headers=headers,
                  language_links=_language_links(request), max_upload=_size(upload_limit(broker)), **context)


def upload_limit(broker: Broker) -> int:
    """The largest request the page's upload may send: the API's body limit for this path (HUB_BODY_LIMITS)."""
    return RequestLimits(None, max_body_bytes=broker.settings.max_body_bytes, limits=broker.settings.body_limits).limit_for(PATH)


def _size(size: int) -> str:
    return f"{size / 1048576:.3g} MB" if size >= 1048576 else f"{size // 1024} kB"


def _language_links(request: Request) -> dict[str, str]:
    """This page in each language, the verification asked (number and code) kept."""
    kept = {name: request.query_params[name] for name in ("number", "code") if name in request.query_params and request.method == "GET"}
    return {lang: f"{PATH}?{urlencode({**kept, 'lang': lang})}" for lang in LANGUAGES}
