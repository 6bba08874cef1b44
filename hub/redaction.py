"""Secrets never reach a log line, and no line can be forged: API keys and access tokens (``Authorization``, ``X-API-Key``, ``hub_…``),
``password=`` / ``secret=`` / ``token=`` values, database URL passwords and PEM private keys are masked as ``***``; CR and LF in a message are escaped (``\\r``,
``\\n``), tracebacks keep their lines.

:class:`RedactingFilter` is a logging filter for handlers one configures oneself; :func:`install` masks every record
of the process when it is made (whatever logger and handler carry it: the hub's, uvicorn's, httpx's), tracebacks
included. Both are idempotent and cheap when nothing is logged: a record is only made for a level that is enabled.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token> / Basic <credentials>, in headers and their reprs (quoted or not)
    (re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*(?:b?['\"])?\s*(?:(?:bearer|basic|token)\s+)?)[^\s'\",;)}\]]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)(x-api-key['\"]?\s*[:=,]\s*(?:b?['\"])?\s*)[^\s'\",;)}\]]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{MASK}"),
    # the hub's own API keys and access tokens, wherever they appear
    (re.compile(r"\b(hub_|hat_)[A-Za-z0-9_-]{16,}"), rf"\1{MASK}"),
    # password=…, secret: …, "token": "…" (query strings, configuration, JSON)
    (re.compile(r"(?i)(['\"]?\b(?:password|passwd|pwd|passphrase|secret|client_secret|api_key|apikey|access_token|token)['\"]?\s*[:=]\s*['\"]?)[^\s'\"&,;)}\]]+"), rf"\1{MASK}"),
    # scheme://user:password@host
    (re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s'\"]*:)[^@/\s'\"]+(@)"), rf"\1{MASK}\2"),
    (re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S), f"-----BEGIN PRIVATE KEY----- {MASK} -----END PRIVATE KEY-----"),
)


def redact(text: str) -> str:
    """``text`` with every secret the patterns know masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask ``record``'s message (formatted with its arguments) and its traceback, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it itself, with the arguments masked below
        message = str(record.msg)
    # What a counterpart or client wrote may hold CR or LF: escaped, it can never forge a log line of its own.
    record.msg, record.args = redact(message).replace("\r", "\\r").replace("\n", "\\n"), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """A handler's (or logger's) filter that masks secrets in every record it lets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed = threading.Lock()
_factory_installed = False


def install() -> None:
    """Mask secrets in every log record the process makes from now on (once; later calls change nothing)."""
    global _factory_installed
    with _installed:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def make(*args, **kwargs) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(make)
        _factory_installed = True
