"""The certificates the hub trusts when it verifies a signature.

Two kinds of trust, usable together:

* **anchors**: CA certificates (a bundle PEM file); a signer's certificate must chain to one of them;
* **pinned** certificates: signer certificates trusted as they are, exactly (byte for byte), without a CA. Useful
  for a counterpart that shares its signing certificate out of band.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from hub.errors import ConfigurationError, KeyMaterialError
from hub.signing.keys import load_certificates


class TrustStore:
    """Trust anchors and pinned signer certificates, loaded once and never changed afterwards."""

    def __init__(self, *, anchors: Iterable[x509.Certificate] = (), pinned: Iterable[x509.Certificate] = ()) -> None:
        self._anchors = tuple(anchors)
        self._pinned = {_fingerprint(cert): cert for cert in pinned}
        if not self._anchors and not self._pinned:
            raise ConfigurationError("a trust store needs at least one CA certificate or pinned certificate")
        try:
            self._store = x509.verification.Store(list(self._anchors)) if self._anchors else None
        except (TypeError, ValueError) as exc:
            raise KeyMaterialError(f"trust anchors cannot be used: {exc}") from None

    @classmethod
    def from_paths(cls, *, ca_bundle: Path | str | None = None, pinned: Sequence[Path | str] = ()) -> TrustStore:
        """A trust store from a CA bundle PEM file and/or pinned certificate PEM files (every certificate in each).

        Raises :class:`~hub.errors.KeyMaterialError` naming the file that cannot be read, and
        :class:`~hub.errors.ConfigurationError` when nothing at all is trusted.
        """
        anchors = load_certificates(Path(ca_bundle)) if ca_bundle is not None else []
        pins = [cert for path in pinned for cert in load_certificates(Path(path))]
        return cls(anchors=anchors, pinned=pins)

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates that signer certificates may chain to."""
        return self._anchors

    @property
    def pinned(self) -> tuple[x509.Certificate, ...]:
        """The signer certificates trusted as they are."""
        return tuple(self._pinned.values())

    @property
    def verification_store(self) -> x509.verification.Store | None:
        """The anchors as a cryptography verification store, or None when only pinned certificates are trusted."""
        return self._store

    def pinned_match(self, certificate: x509.Certificate) -> x509.Certificate | None:
        """The pinned certificate identical to ``certificate``, if there is one."""
        return self._pinned.get(_fingerprint(certificate))

    def __repr__(self) -> str:
        return f"TrustStore(anchors={len(self._anchors)}, pinned={len(self._pinned)})"


def _fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA256())
