"""Configuration of the IPPC ePhyto Hub connector (one Hub, reached over SOAP with a TLS client certificate)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from connectors.config_checks import MutualTlsConfig, check_country, check_http_url

#: The Hub's addresses (FACTS.md §3.1).
PRODUCTION_ENDPOINT = "https://hub.ephytoexchange.org/hub/DeliveryService"
UAT_ENDPOINT = "https://uat-hub.ephytoexchange.org/hub/DeliveryService"


class EphytoHubConfig(MutualTlsConfig):
    """Where the Hub's ``DeliveryService`` listens and which key material identifies our NPPO to it.

    The TLS files default to the development PKI in the hub's ``certs_dir``: the CA bundle ``ca.pem`` and the client
    certificate of the sending NPPO, ``tls/client-<CC>.pem``/``.key`` (``CC`` = ``from_nppo``, else the message's
    issuing country). ``from_nppo`` also fills the envelope's ``From``; without it ``From`` is the issuing country.
    ``tracking_poll_interval`` is the least time, in seconds, between two ``GetEnvelopeTrackingInfo`` calls for the
    same envelope. ``import_nppos`` are the NPPOs whose envelopes the connector imports (certificates for
    ``pull_documents``, country responses for ``poll_acks``), each calling with its own client certificate
    ``tls/client-<CC>.pem``; empty (the default): no import.
    """

    type: Literal["ephyto_hub"] = "ephyto_hub"
    endpoint: str = PRODUCTION_ENDPOINT
    profile: str = "ephyto"
    from_nppo: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    tracking_poll_interval: float = Field(default=60.0, ge=0)
    import_nppos: list[str] = Field(default_factory=list)

    @field_validator("endpoint")
    @classmethod
    def _is_url(cls, endpoint: str) -> str:
        return check_http_url(endpoint)

    @field_validator("from_nppo")
    @classmethod
    def _is_country(cls, country: str | None) -> str | None:
        return check_country(country)

    @field_validator("import_nppos")
    @classmethod
    def _are_countries(cls, countries: list[str]) -> list[str]:
        for country in countries:
            check_country(country)
        if len(set(countries)) != len(countries):
            raise ValueError(f"import_nppos names an NPPO twice: {countries}")
        return countries
