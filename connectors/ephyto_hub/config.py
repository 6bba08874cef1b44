"""Configuration of the IPPC ePhyto Hub connector (one Hub, reached over SOAP with a TLS client certificate)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from connectors.base import ConnectorConfig

#: The Hub's addresses (FACTS.md §3.1).
PRODUCTION_ENDPOINT = "https://hub.ephytoexchange.org/hub/DeliveryService"
UAT_ENDPOINT = "https://uat-hub.ephytoexchange.org/hub/DeliveryService"
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class EphytoHubConfig(ConnectorConfig):
    """Where the Hub's ``DeliveryService`` listens and which key material identifies our NPPO to it.

    The TLS files default to the development PKI in the hub's ``certs_dir``: the CA bundle ``ca.pem`` and the client
    certificate of the sending NPPO, ``tls/client-<CC>.pem``/``.key`` (``CC`` = ``from_nppo``, else the message's
    issuing country). ``from_nppo`` also fills the envelope's ``From``; without it ``From`` is the issuing country.
    ``tracking_poll_interval`` is the least time, in seconds, between two ``GetEnvelopeTrackingInfo`` calls for the
    same envelope.
    """

    type: Literal["ephyto_hub"] = "ephyto_hub"
    endpoint: str = PRODUCTION_ENDPOINT
    profile: str = "ephyto"
    client_certificate: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None
    from_nppo: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    tracking_poll_interval: float = Field(default=60.0, ge=0)

    @field_validator("endpoint")
    @classmethod
    def _is_url(cls, endpoint: str) -> str:
        if not re.match(r"^https?://[^/\s]+", endpoint):
            raise ValueError(f"not an http(s) URL: {endpoint!r}")
        return endpoint

    @field_validator("from_nppo")
    @classmethod
    def _is_country(cls, country: str | None) -> str | None:
        if country is not None and not _COUNTRY.match(country):
            raise ValueError(f"{country!r} is not an ISO 3166 alpha-2 country code")
        return country

    @model_validator(mode="after")
    def _certificate_with_key(self) -> "EphytoHubConfig":
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("client_certificate and client_key go together: give both or neither")
        return self
