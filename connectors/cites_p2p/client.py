"""A client of the EPIX-style CITES data exchange, as a foreign management authority calls it: SOAP 1.1 over HTTPS
with the development PKI's TLS client certificate of its country (``tls/client-<CC>.pem``/``.key``).

Every answer that is not the operation's response raises :class:`~connectors.cites_p2p.epix.EpixFault`: the peer's SOAP fault
(``remote=True``, with the HTTP status it came with), or ``AdapterNotAvailable`` raised here when the peer cannot be
reached or answers something that is not the exchange's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import httpx

from connectors.http import DEFAULT_MAX_ANSWER_BYTES, MutualTlsClients, snippet
from connectors.cites_p2p.epix import (
    CertificateRequest,
    CertificateResponse,
    CitesPosition,
    ConfirmQuantitiesRequest,
    ConfirmQuantitiesResponse,
    EpixError,
    EpixFault,
    Request,
    Response,
    ServiceStateRequest,
    ServiceStateResponse,
    build_request,
    read_response,
)
from hub.errors import ConfigurationError, DeliveryError

SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"


@dataclass(frozen=True)
class _TlsConfig:
    """What :class:`MutualTlsClients` reads: the development PKI's files of the caller's country."""

    client_certificate: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None
    timeout: float = 30.0
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES


class CitesExchangeClient:
    """Calls the exchange at ``url`` as the management authority of ``country``.

    ``callee`` goes in every request's ``IsoCountryCode`` (the authority asked; EPIX routes on it), ``token_id`` in
    ``TokenId``; ``version`` is the toolkit the partner speaks ("2", or "1": CBFShip permits in
    ``urn:CitesDataExchange/v1/``). ``transport`` replaces the network (tests, in-process); otherwise the client presents
    ``certs_dir/tls/client-<country>.pem`` and trusts only ``certs_dir/ca.pem``.
    """

    def __init__(
        self,
        url: str,
        *,
        country: str,
        certs_dir: Path | str,
        callee: str | None = None,
        token_id: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        version: str = "2",
    ) -> None:
        self.url = url
        self.version = version
        self.country = country
        self.callee = callee
        self.token_id = token_id
        self._clients = MutualTlsClients("cites_p2p", _TlsConfig(timeout=timeout), certs_dir=certs_dir, transport=transport, party="management authority")

    def get_final(self, number: str) -> CertificateResponse:
        """``GetFinalCitesCertificate``: the permit as issued, once it can no longer change."""
        return self._call(CertificateRequest(number, final=True, token_id=self.token_id, iso_country_code=self.callee, version=self.version))

    def get_non_final(self, number: str) -> CertificateResponse:
        """``GetNonFinalCitesCertificate``: the permit as the peer holds it now."""
        return self._call(CertificateRequest(number, final=False, token_id=self.token_id, iso_country_code=self.callee, version=self.version))

    def confirm_quantities(self, number: str, positions: Iterable[CitesPosition]) -> ConfirmQuantitiesResponse:
        """``ConfirmQuantities``: the quantities inspected at import, per permit line."""
        return self._call(ConfirmQuantitiesRequest(number, tuple(positions), token_id=self.token_id, iso_country_code=self.callee, version=self.version))

    def service_state(self) -> ServiceStateResponse:
        """``ServiceState``."""
        return self._call(ServiceStateRequest(iso_country_code=self.callee, version=self.version))

    def close(self) -> None:
        self._clients.close()

    def __enter__(self) -> "CitesExchangeClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _call(self, request: Request) -> Response:
        body = build_request(request)
        # SOAPAction as the Swiss national adapter sends it (urn:<Operation>); the service dispatches on the Body.
        headers = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"urn:{request.operation.value}"'}
        try:
            answer = self._http().post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise EpixFault(EpixError.ADAPTER_NOT_AVAILABLE, f"{self.url}: {type(exc).__name__}: {exc}") from exc
        try:
            return read_response(answer.content, request.operation, self.version)
        except EpixFault as fault:
            detail = fault.detail if fault.remote else f"{self.url} answered {answer.status_code}: {fault.detail} ({snippet(answer.content)})"
            raise EpixFault(fault.error, detail, http_status=answer.status_code, remote=fault.remote) from None

    def _http(self) -> httpx.Client:
        try:
            return self._clients.client_for(self.country)
        except DeliveryError as exc:  # the key material of the country is missing or unreadable
            raise ConfigurationError(str(exc)) from exc
