"""Text from outside made fit for a column: what a counterpart or a connector says is stored, never refused by the
database. PostgreSQL's text cannot hold NUL, UTF-8 cannot hold a lone surrogate, and a bounded column cannot hold
more than its length: an answer carrying any of these must still be recorded (or the message is resent forever)."""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str | None, limit: int | None = None) -> str | None:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, cut to ``limit`` characters (ending in ``…``)."""
    if text is None:
        return None
    text = _UNSTORABLE.sub("\ufffd", str(text))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
