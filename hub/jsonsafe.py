"""Reading untrusted JSON safely: bounded nesting, so that no input reaches the parser's recursion limit; every
failure an :class:`~hub.errors.InputError` naming the input."""

from __future__ import annotations

import json
from typing import Any

from hub.errors import InputError

#: The deepest nesting a record needs is about 12; far deeper is an attack on the parser's recursion.
MAX_JSON_DEPTH = 64


def too_deep(body: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays and objects more than ``limit`` deep (strings and escapes understood)."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def loads(body: bytes | str, *, source: str = "body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of ``body``; :class:`InputError` for JSON that is malformed or nested deeper than ``max_depth``."""
    if too_deep(body, max_depth):
        raise InputError(f"the JSON nests deeper than {max_depth} levels", where=source)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"not JSON: {exc}", where=source) from None
