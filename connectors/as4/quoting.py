"""Splitting text at separators outside double quotes and backslash escapes: what MIME parameters (RFC 2045) and
X.500 distinguished names in their string form (RFC 4514, as WS-Security's ``ds:X509IssuerName`` writes them) share."""

from __future__ import annotations


def split_outside_quotes(text: str, separators: str) -> tuple[list[str], bool]:
    """``text`` split at each character of ``separators`` that is neither quoted nor escaped (quotes and escapes are
    kept in the pieces), and whether every quote and escape was closed."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts, not (quoted or escaped)
