"""Checks the connectors' config models share: http(s) URLs, country codes, a client certificate with its key.

Each is a plain function raising ``ValueError`` (what a pydantic validator raises), so a config model calls it from
its own ``field_validator`` with the field it applies to; :class:`MutualTlsConfig` is the base of the configs that
present a TLS client certificate.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import model_validator

from hub.connector import ConnectorConfig

#: An http(s) URL with a host (the pattern also works as a pydantic ``Field(pattern=…)``).
HTTP_URL_PATTERN = r"^https?://[^/\s]+"
#: An ISO 3166 alpha-2 country code as the standards spell it (two upper-case letters).
COUNTRY_PATTERN = r"^[A-Z]{2}$"


def is_country(value: str | None) -> bool:
    """Whether ``value`` is an ISO 3166 alpha-2 country code (two upper-case letters)."""
    return bool(value) and re.match(COUNTRY_PATTERN, value) is not None


def check_http_url(url: str, *, what: str = "not an http(s) URL") -> str:
    """``url`` unchanged when it is an http(s) URL; otherwise ``ValueError`` saying ``what: 'url'``."""
    if not re.match(HTTP_URL_PATTERN, url):
        raise ValueError(f"{what}: {url!r}")
    return url


def check_country(country: str | None) -> str | None:
    """``country`` unchanged when it is None or an ISO 3166 alpha-2 code; otherwise ``ValueError``."""
    if country is not None and not is_country(country):
        raise ValueError(f"{country!r} is not an ISO 3166 alpha-2 country code")
    return country


class MutualTlsConfig(ConnectorConfig):
    """A connector config with TLS key material: the client certificate and its key (both or neither) and the CA
    bundle; each, when unset, comes from the development PKI in the hub's ``certs_dir``."""

    client_certificate: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None

    @model_validator(mode="after")
    def _certificate_with_key(self) -> "MutualTlsConfig":
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("client_certificate and client_key go together: give both or neither")
        return self
