"""Configuration of the EU TRACES-NT connector (one TRACES web-service account)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from connectors.base import ConnectorConfig
from connectors.config_checks import check_http_url

#: Acceptance environment (FACTS §5); the production host is not named in the stored material.
ACCEPTANCE_ENDPOINT = "https://webgate.acceptance.ec.europa.eu/tracesnt/ws"


class TracesNtConfig(ConnectorConfig):
    """Where TRACES-NT listens and the web-service account the hub uses there.

    ``endpoint`` is the base of the services (``…/tracesnt/ws``); a service's URL is ``{endpoint}/{service}``.
    ``certificate_service`` answers ``getChedCertificateStatus`` (``ChedCertificateServiceV2`` in FACTS §5);
    ``submission_service`` takes ``CreateAndSubmitChedForDecision`` and has no default because its name is not in
    the stored material: take it from the TRACES onboarding documents. ``authentication_key`` is the account's
    key (write ``${TRACES_AUTHENTICATION_KEY}`` in ``connectors.yaml``); ``client_id`` goes in
    ``v3:WebServiceClientId``; ``authority_activity_access_identifier``, when set, adds ``v31:BodyIdentity``.
    """

    type: Literal["traces_nt"] = "traces_nt"
    profile: Literal["full"] = "full"
    endpoint: str = ACCEPTANCE_ENDPOINT
    submission_service: str = Field(min_length=1)
    certificate_service: str = "ChedCertificateServiceV2"
    username: str = Field(min_length=1)
    authentication_key: SecretStr
    client_id: str = Field(min_length=1)
    language: str = "en"
    authority_activity_access_identifier: str | None = None
    ca_bundle: Path | None = Field(default=None, description="CA certificates trusted for the TRACES-NT server; default: the system's")
    timeout: float = Field(default=30.0, gt=0)
    timestamp_ttl: float = Field(default=60.0, gt=0, le=600)

    @field_validator("endpoint")
    @classmethod
    def _is_url(cls, endpoint: str) -> str:
        return check_http_url(endpoint).rstrip("/")

    @field_validator("authentication_key")
    @classmethod
    def _key_is_set(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value():
            raise ValueError("the authentication key is empty")
        return key

    @field_validator("language")
    @classmethod
    def _is_language(cls, language: str) -> str:
        if not re.match(r"^[A-Za-z]{2}$", language):
            raise ValueError(f"{language!r} is not an ISO 639-1 language code")
        return language

    def url(self, service: str) -> str:
        """The URL of one TRACES-NT service."""
        return f"{self.endpoint}/{service}"
