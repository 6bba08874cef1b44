"""Bounds on what a request may send, checked before any router reads it: the body's size (announced, and as it
streams) and, for JSON, its nesting depth. Past them the answer is a clear 413 or 422, never a 500."""

from __future__ import annotations

import json

from hub.jsonsafe import MAX_JSON_DEPTH, too_deep as json_too_deep

#: Default largest body: a document at the XML parser's limit, with room for its envelope.
MAX_BODY_BYTES = 21 * 1024 * 1024
class RequestLimits:
    """ASGI middleware: a body larger than ``max_body_bytes`` gets 413 (unread when its Content-Length says so),
    JSON nested deeper than ``max_json_depth`` gets 422."""

    def __init__(self, app, *, max_body_bytes: int = MAX_BODY_BYTES, max_json_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, "BodyTooLarge", f"the body is {declared} bytes; at most {self.max_body_bytes} are accepted")
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _answer(send, 413, "BodyTooLarge", f"the body exceeds the {self.max_body_bytes} bytes accepted")
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
