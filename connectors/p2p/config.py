"""Configuration of a point-to-point destination (one foreign authority reached directly over HTTPS)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from connectors.config_checks import MutualTlsConfig, check_country, check_http_url, is_country

DEFAULT_ENDPOINT = "*"


class P2PConfig(MutualTlsConfig):
    """Where a foreign authority listens, which key material to use, and how its acknowledgements come back.

    ``endpoints`` maps the importing country (ISO 3166 alpha-2) to the URL messages are POSTed to; ``"*"`` serves
    every other country. The TLS files default to the development PKI in the hub's ``certs_dir``: the CA bundle
    ``ca.pem``, and the client certificate of the message's issuing country ``tls/client-<CC>.pem``/``.key``.
    ``client_country`` names the client certificate used for requests that belong to no message (polling acks);
    by default the first ``tls/client-*.pem`` of the development PKI. ``answered_by`` maps the importing country (or
    ``"*"``) to the country of the authority whose signature the answers to such a message must bear; by default
    the importing country itself. Any other signer's answer is kept as unmatched, never applied.
    """

    type: Literal["p2p"] = "p2p"
    endpoints: dict[str, str] = Field(min_length=1)
    client_country: str | None = None
    acks: Literal["push", "poll"] = "push"
    timeout: float = Field(default=30.0, gt=0)
    answered_by: dict[str, str] = Field(default_factory=dict)

    @field_validator("answered_by")
    @classmethod
    def _answerers_are_countries(cls, answered_by: dict[str, str]) -> dict[str, str]:
        for country, answerer in answered_by.items():
            if country != DEFAULT_ENDPOINT and not is_country(country):
                raise ValueError(f"key {country!r} is neither an ISO 3166 alpha-2 country code (e.g. 'US') nor '*'")
            if not is_country(answerer):
                raise ValueError(f"{answerer!r} (answering for {country!r}) is not an ISO 3166 alpha-2 country code")
        return answered_by

    @field_validator("endpoints")
    @classmethod
    def _endpoints_are_urls(cls, endpoints: dict[str, str]) -> dict[str, str]:
        for country, url in endpoints.items():
            if country != DEFAULT_ENDPOINT and not is_country(country):
                raise ValueError(f"key {country!r} is neither an ISO 3166 alpha-2 country code (e.g. 'US') nor '*'")
            check_http_url(url, what=f"endpoint for {country!r} is not an http(s) URL")
        return {country: url.rstrip("/") for country, url in endpoints.items()}

    @field_validator("client_country")
    @classmethod
    def _is_country(cls, country: str | None) -> str | None:
        return check_country(country)

    def answerer_for(self, importing_country: str | None) -> str | None:
        """The country whose authority signs the answers to a message for ``importing_country``."""
        if importing_country and importing_country in self.answered_by:
            return self.answered_by[importing_country]
        return self.answered_by.get(DEFAULT_ENDPOINT, importing_country)

    def endpoint_for(self, importing_country: str | None) -> str | None:
        """The URL for messages to ``importing_country``, or None when no endpoint (not even ``"*"``) serves it."""
        if importing_country and importing_country in self.endpoints:
            return self.endpoints[importing_country]
        return self.endpoints.get(DEFAULT_ENDPOINT)
