"""Configuration of the EU TRACES-NT connector (one TRACES web-service account, and optionally the separate customs
account of the CSW-CERTEX port)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from hub.connector import ConnectorConfig
from connectors.config_checks import check_http_url
from connectors.traces_nt.certex import SERVICE as CERTEX_SERVICE

#: Acceptance environment (FACTS §5); the production host is not named in the stored material.
ACCEPTANCE_ENDPOINT = "https://webgate.acceptance.ec.europa.eu/tracesnt/ws"


class TracesNtConfig(ConnectorConfig):
    """Where TRACES-NT listens and the web-service account the hub uses there.

    ``endpoint`` is the base of the services (``…/tracesnt/ws``); a service's URL is ``{endpoint}/{service}``.
    ``certificate_service`` answers ``getChedCertificateStatus``, ``getChedCertificate`` and
    ``getChedSignedXmlCertificate`` (``ChedCertificateServiceV2`` in FACTS §5);
    ``submission_service`` takes ``CreateAndSubmitChedForDecision`` and has no default because its name is not in
    the stored material: take it from the TRACES onboarding documents. ``authentication_key`` is the account's
    key (write ``${TRACES_AUTHENTICATION_KEY}`` in ``connectors.yaml``); ``client_id`` goes in
    ``v3:WebServiceClientId``; ``authority_activity_access_identifier``, when set, adds ``v31:BodyIdentity``.
    ``fetch_signed_ched``: when a decision is polled, fetch TRACES's signed CHED and keep it as the acknowledgement's
    payload (the evidence of the decision); off, or when the fetch fails, the status answer is kept.

    Customs (CSW-CERTEX, ``CustomsCertexChedServiceV06``) uses a separate account: ``certex_username`` and
    ``certex_authentication_key`` (both or neither; write ``${TRACES_CERTEX_AUTHENTICATION_KEY}``),
    ``certex_client_id`` (default: ``client_id``), ``certex_url`` (default: ``{endpoint}/CustomsCertexChedServiceV06``),
    ``customs_office`` (the customs office reference number, e.g. ``XI000002``, used when a call names none) and
    ``certex_requester_prefix`` (``UniqRequesterPrefix``; default: the office, as in the captures).

    EU-Intra certificates (``eu_intra_service``, ``getEuIntraCertificate`` / ``findEuIntraCertificate``): with
    ``eu_intra_import`` naming countries, the hub receives the intra-EU health certificates destined to them, looking
    back ``eu_intra_since_hours`` when it starts.
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
    fetch_signed_ched: bool = True
    certex_url: str | None = None
    certex_username: str | None = Field(default=None, min_length=1)
    certex_authentication_key: SecretStr | None = None
    certex_client_id: str | None = Field(default=None, min_length=1)
    certex_requester_prefix: str | None = Field(default=None, min_length=1)
    customs_office: str | None = Field(default=None, min_length=1)
    eu_intra_service: str = Field(default="EuIntraCertificateServiceV1", min_length=1)
    eu_intra_import: list[str] = Field(default_factory=list, description="countries (ISO 3166) whose incoming intra-EU health certificates the hub receives")
    eu_intra_since_hours: float = Field(default=24.0, gt=0, le=24 * 31)

    @field_validator("endpoint")
    @classmethod
    def _is_url(cls, endpoint: str) -> str:
        return check_http_url(endpoint).rstrip("/")

    @field_validator("certex_url")
    @classmethod
    def _certex_is_url(cls, url: str | None) -> str | None:
        return check_http_url(url).rstrip("/") if url is not None else None

    @field_validator("authentication_key", "certex_authentication_key")
    @classmethod
    def _key_is_set(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and not key.get_secret_value():
            raise ValueError("the authentication key is empty")
        return key

    @model_validator(mode="after")
    def _certex_account_is_whole(self) -> "TracesNtConfig":
        if (self.certex_username is None) != (self.certex_authentication_key is None):
            raise ValueError("certex_username and certex_authentication_key go together: give both or neither")
        return self

    @property
    def certex_enabled(self) -> bool:
        """Whether a customs (CSW-CERTEX) account is configured."""
        return self.certex_username is not None

    def certex_endpoint(self) -> str:
        """The URL of the CSW-CERTEX service."""
        return self.certex_url or self.url(CERTEX_SERVICE)

    @field_validator("language")
    @classmethod
    def _is_language(cls, language: str) -> str:
        if not re.match(r"^[A-Za-z]{2}$", language):
            raise ValueError(f"{language!r} is not an ISO 639-1 language code")
        return language

    def url(self, service: str) -> str:
        """The URL of one TRACES-NT service."""
        return f"{self.endpoint}/{service}"
