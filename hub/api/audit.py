"""The API's side of the audit log (:mod:`hub.store.audit`): every state-changing request (POST, PUT, PATCH, DELETE),
whatever its outcome, and every read of audit or trace data, becomes one entry.

An entry names the caller (``api:<client name>``, ``anonymous`` when none was authenticated), the action (method and
route template, ``POST /v1/documents/{document_id}/lifecycle``), the target (the path's ids and the ``id`` the answer
gives), the HTTP status, the request id (the caller's ``X-Request-ID`` when well formed, else a new one, sent back in
the answer) and the SHA-256 of the request body. Secret fields of a JSON body (a webhook's ``secret``…) are masked
before the digest, so that it never helps guess them.

The entry is written before the answer leaves: a caller who saw a success can count on its entry. A store that cannot
write it is logged (``hub.audit``) and the answer still goes out, because the action is done by then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from hub import jsonsafe, redaction
from hub.api import audit_routes
from hub.errors import HubError
from hub.store import audit

log = logging.getLogger("hub.audit")

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Reads of audit and trace data (route templates): who looked is recorded too.
AUDITED_READS = frozenset({"/v1/audit", "/v1/audit/verify", "/v1/messages/{message_id}/trace", "/v1/events"})
REQUEST_ID = "X-Request-ID"
#: JSON fields whose values never reach the digest as they are.
SECRET_FIELDS = frozenset({"secret", "password", "passphrase", "key", "api_key", "token", "access_token", "refresh_token",
                           "client_secret", "client_assertion", "private_key"})
_TARGET_FIELDS = ("id", "document_id", "message_id")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: Bodies (request and answer) kept to mask secrets and read ids: JSON up to this size; larger ones are only hashed.
_KEPT = 64 * 1024


def install_audit(app: FastAPI) -> None:
    """Audit ``app``: the middleware around every request, the ``/v1/audit`` routes, and secrets redacted from
    every log line (:mod:`hub.redaction`)."""
    app.include_router(audit_routes.router)
    app.add_middleware(AuditTrail)
    redaction.install()


class AuditTrail:
    """ASGI middleware writing one audit entry per audited request (see the module's docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES | {"GET", "HEAD"}:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        given = headers.get(REQUEST_ID.lower(), "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        entry = _Entry(scope, state, request_id, headers)

        async def receiving():
            message = await receive()
            if message["type"] == "http.request":
                entry.take_body(message.get("body", b""))
            return message

        held: list[dict] = []

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REQUEST_ID.lower().encode(), request_id.encode())]}
                entry.status = message["status"]
                if not entry.audited():
                    await send(message)
                elif scope["method"] in WRITES:
                    held.append(message)  # held until the answer is whole (or large): its ids name the target
                else:
                    await entry.write()
                    await send(message)
                return
            if held and message["type"] == "http.response.body":
                held.append(message)
                entry.take_answer(message.get("body", b""))
                if message.get("more_body", False) and entry.answer_size <= _KEPT:
                    return
                await entry.write()
                for waiting in held:
                    await send(waiting)
                held.clear()
                return
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except BaseException:
            if entry.status is None:
                entry.status = 500  # no answer began: the server fails it
            raise
        finally:
            if entry.audited() and not entry.written:
                await entry.write()


class _Entry:
    """What one request contributes to its audit entry, gathered as it passes."""

    def __init__(self, scope, state: dict, request_id: str, headers: dict[str, str]) -> None:
        self.scope, self.state, self.request_id, self.headers = scope, state, request_id, headers
        self.status: int | None = None
        self.written = False
        self._digest = hashlib.sha256()
        self._body: list[bytes] | None = [] if "json" in headers.get("content-type", "") else None
        self._size = 0
        self._answer: list[bytes] = []
        self.answer_size = 0

    def audited(self) -> bool:
        if self.scope["method"] in WRITES:
            return True
        return self._route() in AUDITED_READS

    def take_body(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._size += len(chunk)
        if self._body is not None and self._size <= _KEPT:
            self._body.append(chunk)
        else:
            self._body = None

    def take_answer(self, chunk: bytes) -> None:
        self.answer_size += len(chunk)
        if self.answer_size <= _KEPT:
            self._answer.append(chunk)

    def _route(self) -> str | None:
        route = self.scope.get("route")
        return getattr(route, "path", None)

    def _actor(self) -> str:
        actor = getattr(self.state.get("client"), "actor", None) or "anonymous"
        on_behalf = self.headers.get("x-on-behalf-of", "").strip()
        return f"{actor} for {on_behalf[:20]}" if on_behalf and actor != "anonymous" else actor

    def _body_digest(self) -> str | None:
        if self._size == 0:
            return None
        if self._body:
            masked = _masked(b"".join(self._body))
            if masked is not None:
                return hashlib.sha256(masked).hexdigest()
        return self._digest.hexdigest()

    def _target(self) -> str | None:
        found = {str(k): str(v) for k, v in (self.scope.get("path_params") or {}).items()}
        if self.status is not None and 200 <= self.status < 300 and self._answer and self.answer_size <= _KEPT:
            try:
                answer = json.loads(b"".join(self._answer))  # the hub's own answer, not a caller's input
            except ValueError:
                answer = None
            if isinstance(answer, dict):
                for field in _TARGET_FIELDS:
                    if isinstance(answer.get(field), (str, int)) and field not in found:
                        found[field] = str(answer[field])
        return " ".join(f"{k}={v}" for k, v in found.items()) or None

    async def write(self) -> None:
        if self.written:
            return
        self.written = True
        broker = self.scope["app"].state.broker
        values = {
            "actor": self._actor(),
            "action": f"{self.scope['method']} {self._route() or self.scope.get('path', '')}",
            "target": self._target(),
            "outcome": str(self.status if self.status is not None else 500),
            "request_id": self.request_id,
            "body_digest": self._body_digest(),
        }
        try:
            await run_in_threadpool(audit.record, broker.database, **values)
        except Exception:  # the action is done: the answer goes out, the loss is loud
            log.exception("the audit log could not record %s by %s (request %s)", values["action"], values["actor"], self.request_id)


_SECRET_NAMES = tuple(f'"{name}"'.encode() for name in SECRET_FIELDS)


def _masked(body: bytes) -> bytes | None:
    """The JSON body with every secret field's value replaced, or None when it holds none (or is no JSON)."""
    lowered = body.lower()
    if b"\\u" not in lowered and not any(name in lowered for name in _SECRET_NAMES):
        return None  # no key can be a secret field's (nor hide one in an escape): not read at all
    try:
        data = jsonsafe.loads(body)
    except HubError:
        return None
    found = False

    def mask(value: Any) -> Any:
        nonlocal found
        if isinstance(value, dict):
            masked = {}
            for key, inner in value.items():
                if isinstance(key, str) and key.lower() in SECRET_FIELDS:
                    masked[key], found = "***", True
                else:
                    masked[key] = mask(inner)
            return masked
        if isinstance(value, list):
            return [mask(item) for item in value]
        return value

    result = mask(data)
    return json.dumps(result, sort_keys=True, separators=(",", ":")).encode() if found else None
