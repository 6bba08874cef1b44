"""The certificates the hub trusts when it verifies a signature.

Two kinds of trust, usable together:

* **anchors**: CA certificates (a bundle PEM file); a signer's certificate must chain to one of them;
* **pinned** certificates: signer certificates trusted as they are, exactly (byte for byte), without a CA. Useful
  for a counterpart that shares its signing certificate out of band.

Revocation: certificate revocation lists (PEM files, e.g. ``crl.pem`` beside ``ca.pem``) are read again whenever
their file changes; a signer a CRL of its issuer (signed by that issuer) lists is not trusted. A CRL file that
cannot be read fails closed: nothing chained is trusted until it can.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from hub.errors import ConfigurationError, KeyMaterialError
from hub.signing.keys import load_certificates


class TrustStore:
    """Trust anchors and pinned signer certificates, loaded once and never changed afterwards."""

    def __init__(self, *, anchors: Iterable[x509.Certificate] = (), pinned: Iterable[x509.Certificate] = (), crls: Sequence[Path | str] = ()) -> None:
        self._crl_paths = tuple(Path(path) for path in crls)
        self._crl_cache: dict[Path, tuple[tuple[int, int], tuple[x509.CertificateRevocationList, ...]]] = {}
        self._crl_lock = threading.Lock()
        self._anchors = tuple(anchors)
        self._pinned = {_fingerprint(cert): cert for cert in pinned}
        if not self._anchors and not self._pinned:
            raise ConfigurationError("a trust store needs at least one CA certificate or pinned certificate")
        try:
            self._store = x509.verification.Store(list(self._anchors)) if self._anchors else None
        except (TypeError, ValueError) as exc:
            raise KeyMaterialError(f"trust anchors cannot be used: {exc}") from None

    @classmethod
    def from_paths(cls, *, ca_bundle: Path | str | None = None, pinned: Sequence[Path | str] = (), crls: Sequence[Path | str] = ()) -> TrustStore:
        """A trust store from a CA bundle PEM file and/or pinned certificate PEM files (every certificate in each),
        with the revocation lists of ``crls`` (PEM files, read when they exist).

        Raises :class:`~hub.errors.KeyMaterialError` naming the file that cannot be read, and
        :class:`~hub.errors.ConfigurationError` when nothing at all is trusted.
        """
        anchors = load_certificates(Path(ca_bundle)) if ca_bundle is not None else []
        pins = [cert for path in pinned for cert in load_certificates(Path(path))]
        return cls(anchors=anchors, pinned=pins, crls=crls)

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

    def revocation(self, certificate: x509.Certificate, issuer: x509.Certificate) -> str | None:
        """Why ``certificate`` (issued by ``issuer``) must not be trusted any more, per the revocation lists, or None.
        Raises :class:`~hub.errors.KeyMaterialError` when a revocation list exists but cannot be read."""
        for crl in self._revocation_lists():
            if crl.issuer != certificate.issuer or not crl.is_signature_valid(issuer.public_key()):
                continue
            revoked = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if revoked is not None:
                return f"revoked by its CA on {revoked.revocation_date_utc:%Y-%m-%d %H:%M} UTC"
        return None

    def _revocation_lists(self) -> list[x509.CertificateRevocationList]:
        lists: list[x509.CertificateRevocationList] = []
        with self._crl_lock:
            for path in self._crl_paths:
                try:
                    stat = path.stat()
                    changed = (stat.st_mtime_ns, stat.st_size)
                except FileNotFoundError:
                    self._crl_cache.pop(path, None)
                    continue
                cached = self._crl_cache.get(path)
                if cached is None or cached[0] != changed:
                    cached = self._crl_cache[path] = (changed, _load_crls(path))
                lists.extend(cached[1])
        return lists

    def __repr__(self) -> str:
        return f"TrustStore(anchors={len(self._anchors)}, pinned={len(self._pinned)})"


_CRL_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.S)


def _load_crls(path: Path) -> tuple[x509.CertificateRevocationList, ...]:
    try:
        data = path.read_bytes()
        blocks = _CRL_BLOCK.findall(data)
        return tuple(x509.load_pem_x509_crl(block) for block in blocks) if blocks else (x509.load_der_x509_crl(data),)
    except (OSError, ValueError) as exc:
        raise KeyMaterialError(f"revocation list {path} cannot be read: {exc}") from None


def _fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA256())
