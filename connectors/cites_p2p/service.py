"""The exchange's SOAP endpoint for foreign management authorities: ``POST /cites/v2/CitesDataExchange``.

SOAP 1.1, ``urn:CitesDataExchange/v2/`` (:mod:`connectors.cites_p2p.epix`), answered by :class:`~connectors.cites_p2p.exchange.PermitExchange`.
The caller is the country (``C=``) of its TLS client certificate, never anything the request says; serve the app over
mutual TLS (:func:`connectors.serving.serve_sandbox` requires a certificate from the CA of ``certs_dir``).

Answers: ``200`` with the operation's response; a SOAP fault whose ``faultstring`` is the EPIX error name, with ``403``
when the caller cannot be told (``CertificateMissing``: no client certificate; ``CallerNotFound``: its subject names
no country), ``503`` for ``AdapterNotAvailable`` (the store or a signing key fails), else ``500`` as SOAP 1.1 wants.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.cites_p2p.epix import EpixError, EpixFault, build_fault, build_response, read_request
from connectors.cites_p2p.exchange import PermitExchange
from hub.tls_peer import client_certificate, subject_country
from hub.signing import Signer
from hub.signing.keyring import Keyring
from hub.store.db import Database

log = logging.getLogger(__name__)

SERVICE_PATH = "/cites/v2/CitesDataExchange"
#: Toolkit v1 partners call the same exchange here (and may call it at SERVICE_PATH: a request's namespace says its version).
SERVICE_PATH_V1 = "/cites/v1/CitesDataExchange"
SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"


def create_exchange_app(
    database: Database,
    *,
    certs_dir: Path | str,
    signer_for: Callable[[str], Signer] | None = None,
    authorities: Iterable[str] | None = None,
    caller_country_for_tests: str | None = None,
) -> Starlette:
    """The exchange as an ASGI app over ``database``.

    ``signer_for`` (e.g. the broker's) signs the permits served, by issuing country; by default the keys under
    ``certs_dir/signing``. ``authorities`` are the countries it answers for; by default those with a key there.
    ``caller_country_for_tests`` stands for the caller's certificate when a request comes without TLS (in-process
    tests only: a request with a certificate is always its certificate's country). The exchange is
    ``app.state.exchange``.
    """
    keys = Keyring(Path(certs_dir) / "signing")
    exchange = PermitExchange(database, signer_for=signer_for or keys.signer_for, authorities=keys.countries() if authorities is None else authorities)
    endpoint = _Endpoint(exchange, caller_country_for_tests)
    app = Starlette(routes=[Route(path, endpoint.service, methods=["POST"]) for path in (SERVICE_PATH, SERVICE_PATH_V1)])
    app.state.exchange = exchange
    return app


class _Endpoint:
    def __init__(self, exchange: PermitExchange, caller_country_for_tests: str | None) -> None:
        self.exchange = exchange
        self.caller_country_for_tests = caller_country_for_tests

    async def service(self, request: Request) -> Response:
        certificate = client_certificate(request)  # before the body: see hub.tls_peer
        body = await request.body()
        caller = subject_country(certificate) if certificate is not None else self.caller_country_for_tests
        try:
            if certificate is not None and caller is None:
                raise EpixFault(EpixError.CALLER_NOT_FOUND, "the client certificate's subject names no country (C=)", http_status=403)
            if caller is None:
                raise EpixFault(EpixError.CERTIFICATE_MISSING, "no TLS client certificate: the caller is not known", http_status=403)
            parsed = read_request(body)
        except EpixFault as fault:
            return await self._refused(caller, fault)
        try:
            answer = await run_in_threadpool(self.exchange.handle, caller, parsed, raw=body)
        except EpixFault as fault:
            return _fault(fault, parsed.version)
        except SQLAlchemyError:
            log.exception("the CITES exchange's store failed on %s from %s", type(parsed).__name__, caller)
            return _fault(EpixFault(EpixError.ADAPTER_NOT_AVAILABLE, "the permit store does not answer", http_status=503), parsed.version)
        return Response(build_response(answer, parsed.version), media_type=SOAP_CONTENT_TYPE)

    async def _refused(self, caller: str | None, fault: EpixFault) -> Response:
        try:
            await run_in_threadpool(self.exchange.record_refusal, caller, fault)
        except SQLAlchemyError:
            log.exception("cannot trace a refused CITES exchange request from %s", caller)
        return _fault(fault)


def _fault(fault: EpixFault, version: str = "2") -> Response:
    status = fault.http_status or (503 if fault.error == EpixError.ADAPTER_NOT_AVAILABLE.value else 500)
    return Response(build_fault(fault, version), status_code=status, media_type=SOAP_CONTENT_TYPE)
