"""Who is calling: the TLS client certificate of an HTTPS request served over mutual TLS, and its country.

The certificate comes from the ASGI TLS extension when the server gives it (``client_cert_chain``), else from the
connection uvicorn serves (which does not give the extension). Read it before awaiting the body: a client that stops
waiting takes its connection, and so its certificate, away. In-process (no TLS) there is none.

The server has already verified the certificate against its CA (``ssl.CERT_REQUIRED``); nothing here checks trust.
"""

from __future__ import annotations

import ssl

from cryptography import x509
from cryptography.x509.oid import NameOID
from starlette.requests import Request


def client_certificate(request: Request) -> x509.Certificate | None:
    """The caller's TLS client certificate, or None when it presented none (or the request came without TLS)."""
    chain = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    if chain:
        first = chain[0]
        return x509.load_pem_x509_certificate(first.encode() if isinstance(first, str) else first)
    return _uvicorn_peer_certificate(request)


def subject_country(certificate: x509.Certificate) -> str | None:
    """The country (``C=``) of the certificate's subject, or None when the subject names none."""
    values = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(values[0].value) if values else None


def client_country(request: Request) -> str | None:
    """The country of the caller's client certificate; None without a certificate or without ``C=``."""
    certificate = client_certificate(request)
    return subject_country(certificate) if certificate is not None else None


def _uvicorn_peer_certificate(request: Request) -> x509.Certificate | None:
    # uvicorn's receive() is bound to its request cycle, which holds the connection's transport, and so the client
    # certificate the TLS handshake verified.
    transport = getattr(getattr(request.receive, "__self__", None), "transport", None)
    if transport is None or transport.is_closing():
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return x509.load_der_x509_certificate(der) if der else None


class PeerCertificate:
    """ASGI middleware, outermost: puts the TLS client certificate of the connection uvicorn serves into the scope
    as the ASGI TLS extension (``client_cert_chain``), before any other middleware wraps ``receive`` and hides the
    connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and "tls" not in scope.get("extensions", {}):
            transport = getattr(getattr(receive, "__self__", None), "transport", None)
            ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if der:
                pem = ssl.DER_cert_to_PEM_cert(der)
                scope = {**scope, "extensions": {**scope.get("extensions", {}), "tls": {"client_cert_chain": [pem]}}}
        await self.app(scope, receive, send)
