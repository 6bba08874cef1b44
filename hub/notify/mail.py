"""E-mail through an SMTP server: where it is (``HUB_SMTP_URL``), and sending one message with a bounded wait.

``HUB_SMTP_URL`` names the server, its credentials and how to protect the connection::

    smtp://host:25                      plain SMTP (a relay on the same network)
    smtp://user:password@host:587       authenticated; STARTTLS is used whenever the server offers it
    smtp://host:587?starttls=required   refuse to send unless STARTTLS succeeds
    smtps://user:password@host:465      TLS from the first byte

User and password are percent-decoded (``%40`` for ``@``). Give the URL as ``HUB_SMTP_URL_FILE`` (a mounted secret)
to keep the password out of the environment. Every network step waits at most ``timeout`` seconds (``?timeout=``,
default 10), so a server that does not answer costs one bounded wait, never a stuck thread.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from hub.errors import ConfigurationError

DEFAULT_TIMEOUT = 10.0
_PORTS = {"smtp": 25, "smtps": 465}


class MailError(Exception):
    """Sending failed (refused, unreachable, timed out); the text says why, never the password."""


@dataclass(frozen=True)
class SmtpServer:
    """An SMTP server to send through: ``starttls`` is ``never`` (only for ``smtps``, where TLS is implicit),
    ``opportunistic`` (when the server offers it) or ``required``."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: str = "opportunistic"
    user: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_url(cls, url: str, *, name: str = "HUB_SMTP_URL") -> "SmtpServer":
        """The server ``url`` names; :class:`ConfigurationError` naming ``name`` (never the password) when malformed."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"{name}: not an smtp:// or smtps:// URL ({exc})") from None
        if parts.scheme not in _PORTS or not parts.hostname:
            raise ConfigurationError(f"{name}: expected smtp://[user:password@]host[:port] or smtps://…, got scheme {parts.scheme!r}")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - {"starttls", "timeout"})
        if unknown:
            raise ConfigurationError(f"{name}: unknown parameters {unknown} (known: starttls, timeout)")
        starttls = query.get("starttls", "opportunistic")
        if starttls not in ("opportunistic", "required", "never"):
            raise ConfigurationError(f"{name}: starttls must be opportunistic, required or never, not {starttls!r}")
        try:
            timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise ConfigurationError(f"{name}: timeout must be a number of seconds") from None
        if not 0 < timeout <= 300:
            raise ConfigurationError(f"{name}: timeout must be between 0 and 300 seconds")
        return cls(
            host=parts.hostname, port=port or _PORTS[parts.scheme], implicit_tls=parts.scheme == "smtps",
            starttls="never" if parts.scheme == "smtps" else starttls,
            user=unquote(parts.username) if parts.username else None, password=unquote(parts.password) if parts.password else None, timeout=timeout,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def compose(*, sender: str, recipients: Sequence[str], subject: str, text: str, headers: dict[str, str] | None = None) -> EmailMessage:
    """A plain-text message (UTF-8) from ``sender`` to ``recipients``."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    return message


def send(server: SmtpServer, message: EmailMessage, *, context: ssl.SSLContext | None = None) -> list[str]:
    """Send ``message`` to its ``To`` recipients through ``server``; returns the recipients the server refused while
    accepting the others (the message went: sending it again would repeat it to them). :class:`MailError` when it
    was not sent (refused whole, or the server could not be reached or did not answer within ``server.timeout``)."""
    context = context or ssl.create_default_context()
    try:
        if server.implicit_tls:
            connection = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout, context=context)
        else:
            connection = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        with connection:
            connection.ehlo()
            if not server.implicit_tls and server.starttls != "never":
                if connection.has_extn("starttls"):
                    connection.starttls(context=context)
                    connection.ehlo()
                elif server.starttls == "required":
                    raise MailError(f"{server.address} does not offer STARTTLS, which HUB_SMTP_URL requires")
            if server.user:
                connection.login(server.user, server.password or "")
            refused = connection.send_message(message)
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"{server.address} refused the credentials of {server.user!r}: {exc.smtp_code}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"{server.address} refused every recipient: {sorted(exc.recipients)}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{server.address}: {type(exc).__name__}: {exc}") from None
    return sorted(refused)
