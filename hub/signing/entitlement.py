"""Who may sign what: a signing certificate speaks only for the issuing authority it belongs to, and only if it is
a certificate for signing documents at all.

* **Usage.** A document signer's certificate must allow digital signatures (``KeyUsage`` digitalSignature or
  contentCommitment); one whose ``ExtendedKeyUsage`` names only TLS purposes (serverAuth, clientAuth) never signs a
  document: a stolen web server key must not issue certificates.
* **Entitlement.** The certificate must be entitled to sign for the document's issuing country and family. By
  default the entitlement is the certificate's own country (its subject's ``C=``), for every family; a registry
  (``config/signers.yaml``, see :meth:`SignerRegistry.load`) names certificates by SHA-256 fingerprint with their
  country and families, for authorities whose certificates name no country or several authorities of a country.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.errors import ConfigurationError, NotEntitled, WrongKeyUsage

#: Extended key usages that let a certificate sign documents: RFC 9336's id-kp-documentSigning, Microsoft's and
#: Adobe's document-signing purposes, S/MIME's emailProtection (which eIDAS signing certificates carry) and
#: anyExtendedKeyUsage. A certificate whose ExtendedKeyUsage names none of them (TLS only, code signing,
#: time stamping, OCSP signing…) signs no document; one without ExtendedKeyUsage is limited by its KeyUsage alone.
DOCUMENT_SIGNING_PURPOSES = frozenset({
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),      # id-kp-documentSigning (RFC 9336)
    x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),  # Microsoft document signing
    x509.ObjectIdentifier("1.2.840.113583.1.1.5"),     # Adobe authentic documents trust
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
})
#: TLS purposes: a certificate limited to these is a TLS certificate.
_TLS_PURPOSES = frozenset({ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH})


def check_signing_usage(certificate: x509.Certificate) -> None:
    """Raise :class:`~hub.errors.WrongKeyUsage` unless ``certificate`` may sign documents."""
    subject = certificate.subject.rfc4514_string()
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature or usage.content_commitment):
            raise WrongKeyUsage(f"{subject}: its KeyUsage allows neither digitalSignature nor contentCommitment")
    except x509.ExtensionNotFound:
        pass  # no KeyUsage: every usage allowed (RFC 5280 §4.2.1.3)
    try:
        purposes = set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return
    named = ", ".join(sorted(getattr(p, "_name", p.dotted_string) for p in purposes))
    if purposes and purposes <= _TLS_PURPOSES:
        raise WrongKeyUsage(f"{subject}: a TLS certificate (ExtendedKeyUsage {named}) never signs documents")
    if not purposes & DOCUMENT_SIGNING_PURPOSES:
        raise WrongKeyUsage(f"{subject}: its ExtendedKeyUsage ({named}) names no document-signing purpose")


def fingerprint(certificate: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint, lower-case hex."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def subject_country(certificate: x509.Certificate) -> str | None:
    """The ``C=`` of the certificate's subject, when it names exactly one."""
    countries = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(countries[0].value).upper() if len(countries) == 1 else None


@dataclass(frozen=True)
class Grant:
    """What one registered certificate may sign: for ``country``, documents of ``families`` (None: every family)."""

    country: str
    families: frozenset[str] | None = None


class SignerRegistry:
    """Which signing certificate may sign for which issuing authority and document family."""

    def __init__(self, grants: Mapping[str, Grant] | None = None, *, by_subject_country: bool = True) -> None:
        self.grants = {key.lower().replace(":", ""): grant for key, grant in (grants or {}).items()}
        self.by_subject_country = by_subject_country

    @classmethod
    def load(cls, path: Path | str) -> "SignerRegistry":
        """A registry from YAML: ``signers: [{fingerprint: <sha256 hex>, country: FR, families: [sps]}]`` and
        ``by_subject_country: true|false`` (whether an unregistered certificate speaks for its own ``C=``). A
        missing file is the default registry."""
        path = Path(path)
        if not path.is_file():
            return cls()
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"{path}: cannot read the signer registry ({exc})") from None
        grants = {}
        for index, entry in enumerate(data.get("signers") or []):
            try:
                families = entry.get("families")
                grants[str(entry["fingerprint"])] = Grant(str(entry["country"]).upper(), frozenset(families) if families else None)
            except (KeyError, TypeError, AttributeError):
                raise ConfigurationError(f"{path}: signers[{index}] needs a fingerprint and a country") from None
        return cls(grants, by_subject_country=bool(data.get("by_subject_country", True)))

    def check(self, certificate: x509.Certificate, *, country: str | None, family: str) -> None:
        """Raise :class:`~hub.errors.WrongKeyUsage` or :class:`~hub.errors.NotEntitled` unless ``certificate`` may
        sign a ``family`` document issued by ``country``."""
        check_signing_usage(certificate)
        subject = certificate.subject.rfc4514_string()
        grant = self.grants.get(fingerprint(certificate))
        if grant is None and self.by_subject_country and subject_country(certificate):
            grant = Grant(subject_country(certificate))
        if grant is None:
            raise NotEntitled(f"{subject} is entitled to sign for no issuing authority (not in the signer registry)")
        if country is None or grant.country != country.upper():
            raise NotEntitled(f"{subject} signs for {grant.country}, not for the issuing authority of {country or 'an unknown country'}")
        if grant.families is not None and family not in grant.families:
            raise NotEntitled(f"{subject} signs {', '.join(sorted(grant.families))} documents, not {family}")
