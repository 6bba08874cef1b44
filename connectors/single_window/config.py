"""Configuration of a national single window reached through the IOP ``EnvioCertificadoFitosanitario`` service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from connectors.config_checks import COUNTRY_PATTERN, HTTP_URL_PATTERN, MutualTlsConfig, is_country  # noqa: F401

_COUNTRY = COUNTRY_PATTERN  # CodigoPais
_PARTICIPANT = r"^[A-Za-z0-9]{3,10}$"  # IDdeParticipante
_CODE = r"^[A-Za-z0-9.]{8,16}$"  # CodigoInteraccion, IDdeServicio


class SingleWindowConfig(MutualTlsConfig):
    """Where the single window listens and how the hub names itself and the window in every ``Cabecera``.

    ``interaction_code`` → ``CodigoInteraccion``, ``service_id`` → ``IDdeServicio``, ``sender_id`` /
    ``sender_country`` → ``IDdeRemitente`` / ``PaisdeRemitente``, ``recipient_id`` / ``recipient_country`` →
    ``IDdeDestinatario`` / ``PaisdeDestinatario``; the values come from the bilateral agreement (the interface fixes
    their shape only). Without ``sender_country`` the message's exporting (else issuing) country is used; without
    ``recipient_country`` its importing country.

    ``receipt_outcome``: an ``RCB`` receipt is the only answer this protocol gives, so it is final
    (``acknowledged``) unless the window's business decision reaches the hub by another channel (``accepted``:
    the message then waits for that acknowledgement).

    Border tracking (ours: the IOP has no such operation, see README.md): ``tracking_endpoint`` is where the
    window answers ``consultaEventosSeguimiento`` (none: no tracking is asked); it needs ``recipient_country`` (the
    window's country, in the query's header). The events are asked for on behalf of ``sender_country``, else of
    ``tracking_countries`` and of every country the connector delivered for since it started, at most once per
    ``tracking_poll_interval`` seconds and ``tracking_batch`` events per answer. With tracking, ``receipt_outcome:
    accepted`` keeps each message waiting for the border's decision.

    The TLS files default to the development PKI in the hub's ``certs_dir``: ``ca.pem`` and the client certificate
    of the sender country ``tls/client-<CC>.pem``/``.key``.
    """

    type: Literal["single_window"] = "single_window"
    endpoint: str = Field(pattern=HTTP_URL_PATTERN)
    interaction_code: str = Field(pattern=_CODE)
    service_id: str = Field(pattern=_CODE)
    sender_id: str = Field(pattern=_PARTICIPANT)
    recipient_id: str = Field(pattern=_PARTICIPANT)
    sender_country: str | None = Field(default=None, pattern=_COUNTRY)
    recipient_country: str | None = Field(default=None, pattern=_COUNTRY)
    receipt_outcome: Literal["acknowledged", "accepted"] = "acknowledged"
    timeout: float = Field(default=30.0, gt=0)
    tracking_endpoint: str | None = Field(default=None, pattern=HTTP_URL_PATTERN)
    tracking_countries: list[str] = Field(default_factory=list)
    tracking_poll_interval: float = Field(default=30.0, ge=0)
    tracking_batch: int = Field(default=100, ge=1, le=1000)  # MaximoEventos

    @field_validator("endpoint", "tracking_endpoint")
    @classmethod
    def _no_trailing_slash(cls, endpoint: str | None) -> str | None:
        return endpoint.rstrip("/") if endpoint is not None else None

    @field_validator("tracking_countries")
    @classmethod
    def _countries(cls, countries: list[str]) -> list[str]:
        wrong = [country for country in countries if not is_country(country)]
        if wrong:
            raise ValueError(f"not ISO 3166 alpha-2 country codes: {wrong}")
        return countries

    @model_validator(mode="after")
    def _tracking_names_the_window(self) -> "SingleWindowConfig":
        if self.tracking_endpoint is not None and self.recipient_country is None:
            raise ValueError("tracking_endpoint needs recipient_country (the window's country, for the query's header)")
        return self

