"""Bounds on what a request may send, checked before any router reads it: the body's size (announced, and as it
streams), for JSON its nesting depth, and in the path and query characters no store or document can hold (NUL and
other control characters). Past them the answer is a clear 413 or 422, never a 500."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, unquote


from hub.jsonsafe import MAX_JSON_DEPTH, too_deep as json_too_deep

#: Default largest body of a route that takes documents: one at the XML parser's limit, with room for its envelope.
MAX_BODY_BYTES = 21 * 1024 * 1024
#: The routes that take documents (signed XML or records); every other route takes small JSON.
DOCUMENT_ROUTES = ("/v1/documents", "/v1/verify", "/v1/inbound/")
#: Default largest body of every other route.
MAX_CONTROL_BODY_BYTES = 1024 * 1024
#: Characters refused in a path or a query value: C0 controls (NUL included) and DEL.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def control_character_in(scope, routes=()) -> str | None:
    """Where a request's path or query carries a control character (``path.NAME`` for a parameter of one of
    ``routes``, else ``path``; ``query.NAME``), if it does."""
    path = scope.get("path") or ""
    if _CONTROL.search(path) or _CONTROL.search(unquote(scope.get("raw_path", b"").decode("latin-1"))):
        for regex in _path_patterns(routes):
            matched = regex.match(path)
            if matched:
                names = [name for name, value in matched.groupdict().items() if _CONTROL.search(value or "")]
                if names:
                    return f"path.{names[0]}"
        return "path"
    query = (scope.get("query_string") or b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if _CONTROL.search(name) or _CONTROL.search(value):
            return f"query.{_CONTROL.sub('?', name)}"
    return None


def _path_patterns(routes):
    """The path patterns of ``routes`` and of the routers included in them, at any depth."""
    for route in routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None:
            yield regex
        inner = getattr(route, "routes", None) or getattr(getattr(route, "original_router", None), "routes", None)
        if inner:
            yield from _path_patterns(inner)


class RequestLimits:
    """ASGI middleware: a body larger than its route's limit gets 413 (unread when its Content-Length says so),
    JSON nested deeper than ``max_json_depth`` gets 422. The limit is ``max_body_bytes`` for the routes that take
    documents, ``max_control_bytes`` for the others, or what ``limits`` (path prefix → bytes, the longest prefix
    wins) says."""

    def __init__(self, app, *, max_body_bytes: int = MAX_BODY_BYTES, max_control_bytes: int = MAX_CONTROL_BODY_BYTES,
                 limits: dict[str, int] | None = None, max_json_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        defaults = {prefix: max_body_bytes for prefix in DOCUMENT_ROUTES}
        self._limits = sorted({"/": max_control_bytes, **defaults, **(limits or {})}.items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        """The largest body a request to ``path`` may send."""
        return next(size for prefix, size in self._limits if path.startswith(prefix))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            where = control_character_in(scope, getattr(scope.get("app"), "routes", ()))
            if where is not None:
                await _answer(send, 422, "RequestInvalid", f"{where.split('.', 1)[-1]}: a control character (NUL, CR, LF…) is no part of any identifier or value", where=where)
                return
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        limit = self.limit_for(scope.get("path") or "/")
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, "BodyTooLarge", f"the body is {declared} bytes; at most {limit} are accepted here")
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, "BodyTooLarge", f"the body exceeds the {limit} bytes accepted here")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if "json" in content_type and json_too_deep(body, self.max_json_depth):
            await _answer(send, 422, "RequestInvalid", f"the JSON body nests deeper than {self.max_json_depth} levels", where="body")
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send, status: int, error: str, message: str, *, where: str | None = None) -> None:
    payload = {"error": error, "message": message, **({"where": where} if where else {})}
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
