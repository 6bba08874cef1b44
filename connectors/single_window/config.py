"""Configuration of a national single window reached through the IOP ``EnvioCertificadoFitosanitario`` service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

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

    @field_validator("endpoint")
    @classmethod
    def _no_trailing_slash(cls, endpoint: str) -> str:
        return endpoint.rstrip("/")

