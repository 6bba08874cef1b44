"""The P-Mode of an AS4 counterpart (OASIS ebMS3 §D, CEF eDelivery AS4 1.15 §1.4.5), as connector settings.

One ``type: as4`` entry of ``config/connectors.yaml`` is one counterpart access point and the one-way leg the hub
uses with it: who the parties are (PartyId, type, role), what the messages are (Service, Action, AgreementRef, MPC),
where they go (Protocol.Address), how they are secured (X.509 signing and encryption, algorithms, token reference)
and how reliability works (receipts with non-repudiation, reception awareness through the hub's retries, duplicate
detection). Every field is checked at start-up; the key material is loaded and checked by :meth:`As4Connector.open`.

Retries are the hub's, common to every connector (``max_attempts``, ``retry_for``): an AS4 retry *is* a resend of the
same ``eb:MessageId`` (ReceptionAwareness.Retry), and the counterpart's duplicate detection makes it harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.as4 import ns
from connectors.config_checks import check_country, check_http_url
from hub.connector import ConnectorConfig

#: Signature algorithms by the short name used in the settings (eDelivery AS4 1.x: rsa-sha256).
SIGNATURE_METHODS = {"rsa-sha256": ns.RSA_SHA256, "rsa-sha384": ns.RSA_SHA384, "rsa-sha512": ns.RSA_SHA512}
DIGEST_METHODS = {"sha256": ns.SHA256, "sha384": ns.SHA384, "sha512": ns.SHA512}
DATA_ENCRYPTION_METHODS = {"aes128-gcm": ns.AES128_GCM, "aes256-gcm": ns.AES256_GCM}
KEY_TRANSPORTS = {"rsa-oaep": ns.RSA_OAEP, "rsa-oaep-mgf1p": ns.RSA_OAEP_MGF1P}
MGFS = {"mgf1sha256": ns.MGF1_SHA256, "mgf1sha384": ns.MGF1_SHA384, "mgf1sha512": ns.MGF1_SHA512, "mgf1sha1": ns.MGF1_SHA1}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartyConfig(_Strict):
    """A party of the leg: its PartyId (with its type: ED115 wants one unless the id is a URI), its role, and the
    country of the authority its access point speaks for (ISO 3166 alpha-2)."""

    party_id: str = Field(min_length=1, max_length=255)
    party_id_type: str | None = ns.PARTY_TYPE_UNREGISTERED
    role: str = Field(min_length=1, max_length=255)
    country: str | None = None

    @field_validator("country")
    @classmethod
    def _is_country(cls, country: str | None) -> str | None:
        return check_country(country)


class ValueWithType(_Strict):
    """A value with an optional type attribute (``eb:Service@type``, ``eb:AgreementRef@type``)."""

    value: str = Field(min_length=1, max_length=255)
    type: str | None = None


class SecurityConfig(_Strict):
    """PMode[1].Security: X.509 signing (always) and encryption of the payloads (sign then encrypt).

    Our identity defaults to the development PKI's access point of the initiator's country (``as4/<CC>.pem``/``.key``);
    ``key_password`` opens an encrypted PEM or a PKCS#12 ``key``. The counterpart's certificate is what its receipts,
    errors and messages must be signed with, and what our payload keys are encrypted for; its ``trust`` anchors (CA
    certificates) may stand in for it when the counterpart renews its certificate under the same CA; by default it is
    the development PKI's access point of the responder's country.
    """

    certificate: Path | None = None
    key: Path | None = None
    key_password: str | None = None
    counterpart_certificate: Path | None = None
    trust: list[Path] = Field(default_factory=list)
    signature_algorithm: Literal["rsa-sha256", "rsa-sha384", "rsa-sha512"] = "rsa-sha256"
    digest_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    key_reference: Literal["BST", "IssuerSerial", "SKI"] = "BST"
    encrypt: bool = True
    data_encryption: Literal["aes128-gcm", "aes256-gcm"] = "aes128-gcm"
    key_transport: Literal["rsa-oaep", "rsa-oaep-mgf1p"] = "rsa-oaep"
    mgf: Literal["mgf1sha256", "mgf1sha384", "mgf1sha512", "mgf1sha1"] = "mgf1sha256"

    @model_validator(mode="after")
    def _certificate_with_key(self) -> "SecurityConfig":
        if self.key is not None and self.certificate is None and self.key.suffix.lower() not in (".p12", ".pfx"):
            raise ValueError("security.key needs security.certificate (or a PKCS#12 .p12/.pfx key holding both)")
        if self.certificate is not None and self.key is None:
            raise ValueError("security.certificate needs security.key")
        return self


class ReceiptConfig(_Strict):
    """PMode[1].Security.SendReceipt: a receipt is asked for every user message, returned on the HTTP response
    (ReplyPattern ``response``), with NonRepudiationInformation when ``non_repudiation`` (the only pattern the hub
    accepts for a signed leg: a receipt that does not prove what it receipts does not count)."""

    non_repudiation: bool = True
    reply_pattern: Literal["response"] = "response"


class DuplicateDetectionConfig(_Strict):
    """PMode[1].ReceptionAwareness.DuplicateDetection for what the counterpart sends the hub: a repeated
    ``eb:MessageId`` within ``window_days`` is answered with the first receipt and handed on once."""

    enabled: bool = True
    window_days: int = Field(default=7, ge=1, le=366)


class PullConfig(_Strict):
    """The leg on which the hub pulls (One-way/Pull, the hub initiating, AS4 profile §2.1): what the counterpart holds
    for the hub (business responses, certificates) waits in its message partition channel ``mpc``; the hub asks for it
    with a signed ``eb:PullRequest`` every ``interval`` seconds (``endpoint``: the counterpart's, by default the
    leg's), takes up to ``max_per_poll`` messages in a row, and receipts each one (a callback receipt) once stored."""

    mpc: str = Field(min_length=1, max_length=1024)
    endpoint: str | None = None
    interval: float = Field(default=5.0, gt=0)
    max_per_poll: int = Field(default=10, ge=1, le=1000)

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, endpoint: str | None) -> str | None:
        return None if endpoint is None else check_http_url(endpoint, what="pull.endpoint is not an http(s) URL")


class As4Config(ConnectorConfig):
    """One AS4 counterpart access point and the P-Mode of the one-way/push leg the hub sends on.

    ``endpoint`` is PMode[1].Protocol.Address (not needed when the counterpart pulls and is never pulled from).
    ``initiator`` is the hub's access point, ``responder`` the counterpart's; ``service``/``action``/``agreement``/``mpc`` go into each user message. ``business_response_action``
    names the Action of the user messages in which the counterpart answers a certificate later (its acceptance or
    refusal, ``RefToMessageId`` = our message); ``document_actions`` the Actions of user messages that carry a
    certificate or permit for the hub to receive. Those come pushed to ``/v1/inbound/<name>``, or, with ``pull``,
    pulled by the hub from the counterpart's message partition channel. The responder's ``country`` is the authority that counterpart
    speaks for: answers count only from it, and documents it brings are taken as sent by it.
    """

    type: Literal["as4"] = "as4"
    pmode_id: str = Field(default="hub-as4-push", min_length=1, max_length=255)
    endpoint: str | None = None
    soap_version: Literal["1.2"] = "1.2"
    mep: Literal["oneWay"] = "oneWay"
    #: push: the hub POSTs each message to ``endpoint``; pull: it holds them on ``mpc`` for the counterpart's signed
    #: pull requests at /v1/inbound/<name> (a message not receipted within ``timeout`` seconds is offered again).
    binding: Literal["push", "pull"] = "push"
    initiator: PartyConfig
    responder: PartyConfig
    service: ValueWithType
    action: str = Field(min_length=1, max_length=255)
    agreement: ValueWithType | None = None
    send_pmode_attribute: bool = False
    mpc: str = ns.DEFAULT_MPC
    #: MessageProperties sent in every user message; originalSender/finalRecipient (four-corner) are added from the
    #: certificate's issuing and importing countries unless set here.
    properties: dict[str, str] = Field(default_factory=dict)
    compress: bool = True
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    receipt: ReceiptConfig = Field(default_factory=ReceiptConfig)
    duplicate_detection: DuplicateDetectionConfig = Field(default_factory=DuplicateDetectionConfig)
    business_response_action: str = Field(default="BusinessResponse", min_length=1, max_length=255)
    document_actions: list[str] = Field(default_factory=lambda: ["Certificate"])
    #: Pulling what the counterpart holds for the hub (none: the counterpart pushes to /v1/inbound/<name>).
    pull: PullConfig | None = None
    #: Largest AS4 message (all MIME parts) read from the counterpart.
    max_message_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024)
    tls_ca_bundle: Path | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, endpoint: str | None) -> str | None:
        return None if endpoint is None else check_http_url(endpoint, what="endpoint (PMode[1].Protocol.Address) is not an http(s) URL")

    @field_validator("properties")
    @classmethod
    def _property_names(cls, properties: dict[str, str]) -> dict[str, str]:
        for name in properties:
            if not name or len(name) > 255:
                raise ValueError(f"message property name {name!r} must be 1 to 255 characters")
        return properties

    @model_validator(mode="after")
    def _distinct_parties(self) -> "As4Config":
        if (self.initiator.party_id, self.initiator.party_id_type) == (self.responder.party_id, self.responder.party_id_type):
            raise ValueError("initiator and responder are the same party")
        if self.endpoint is None and (self.binding == "push" or (self.pull is not None and self.pull.endpoint is None)):
            raise ValueError("endpoint (PMode[1].Protocol.Address) is required to push to the counterpart, or to pull from it")
        if self.responder.country is None:
            raise ValueError("responder.country: the country of the authority the counterpart speaks for is required")
        if self.business_response_action in self.document_actions:
            raise ValueError(f"action {self.business_response_action!r} cannot be both a business response and a document")
        return self

    def answerer_for(self, importing_country: str | None) -> str | None:
        """The country whose authority the counterpart's answers (about a message for any importing country) come
        from: the responder's."""
        return self.responder.country
