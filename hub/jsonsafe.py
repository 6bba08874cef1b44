"""Reading untrusted JSON safely: bounded nesting, so that no input reaches the parser's recursion limit; every
failure an :class:`~hub.errors.InputError` naming the input."""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

from hub.errors import InputError

#: The deepest nesting a record needs is about 12; far deeper is an attack on the parser's recursion.
MAX_JSON_DEPTH = 64


# A JSON string, escapes understood; one left open runs to the end of the body (nothing after it is structure).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# An opening bracket as the signed byte +1, a closing one as -1.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def too_deep(body: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays and objects more than ``limit`` deep (strings and escapes understood).

    The walk is done in C: the strings and everything but the brackets are taken out (a regular expression,
    ``bytes.translate``), and the depth after each bracket is a running sum. A body of text and numbers is judged in
    a few milliseconds per megabyte, not the second that walking 20 MB byte by byte in Python took on the event loop."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    return max(accumulate(array("b", brackets.translate(_STEPS)))) > limit


def loads(body: bytes | str, *, source: str = "body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of ``body``; :class:`InputError` for JSON that is malformed or nested deeper than ``max_depth``."""
    if too_deep(body, max_depth):
        raise InputError(f"the JSON nests deeper than {max_depth} levels", where=source)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"not JSON: {exc}", where=source) from None
