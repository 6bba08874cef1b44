"""Where the signer's private key and certificate come from.

A :class:`KeyProvider` hands the :class:`~hub.signing.signer.Signer` a loaded key, its certificate and any
intermediate certificates. :class:`PemKeyProvider` reads PEM files once, at construction, and checks that the key and
the certificate belong together, so a misconfigured key is found at start-up rather than on the first document.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hub.errors import KeyMaterialError
from hub.signing.policy import KeyKind

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_SUPPORTED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


@runtime_checkable
class KeyProvider(Protocol):
    """A loaded signing identity: private key, its certificate, and intermediates up to (not including) the root."""

    @property
    def private_key(self) -> SigningKey: ...

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def chain(self) -> tuple[x509.Certificate, ...]: ...

    @property
    def key_kind(self) -> KeyKind: ...


class PemKeyProvider:
    """A signing identity read from PEM files, once.

    ``key_path`` holds the private key (PKCS#8 or traditional PEM, encrypted when ``passphrase`` is given),
    ``cert_path`` the signer's certificate, ``chain_paths`` intermediate certificates. Raises
    :class:`~hub.errors.KeyMaterialError` naming the file when something cannot be read, when the key is neither
    RSA nor EC on a NIST curve, when the key does not match the certificate, or when the certificate is not valid now.
    """

    def __init__(
        self,
        key_path: Path | str,
        cert_path: Path | str,
        *,
        chain_paths: Sequence[Path | str] = (),
        passphrase: bytes | None = None,
    ) -> None:
        self._key_path = Path(key_path)
        self._private_key = _load_private_key(self._key_path, passphrase)
        self._certificate = load_certificate(Path(cert_path))
        self._chain = tuple(cert for path in chain_paths for cert in load_certificates(Path(path)))
        self._key_kind = KeyKind.RSA if isinstance(self._private_key, rsa.RSAPrivateKey) else KeyKind.EC
        _check_pair(self._private_key, self._certificate, Path(cert_path))

    @property
    def private_key(self) -> SigningKey:
        return self._private_key

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self._chain

    @property
    def key_kind(self) -> KeyKind:
        return self._key_kind

    def __repr__(self) -> str:
        return f"PemKeyProvider({str(self._key_path)!r}, subject={self._certificate.subject.rfc4514_string()!r})"


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM file; :class:`KeyMaterialError` naming the path when there is none."""
    return load_certificates(path)[0]


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM file (a bundle); :class:`KeyMaterialError` naming the path when there is none."""
    data = _read(path, "certificate")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyMaterialError(f"{path}: not a PEM certificate file ({exc})") from None
    if not certificates:
        raise KeyMaterialError(f"{path}: no certificate found")
    return certificates


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(f"{path}: cannot read the {what} file ({exc.strerror or exc})") from None


def _load_private_key(path: Path, passphrase: bytes | None) -> SigningKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        # cryptography says "Bad decrypt" or "Password was not given" here; both mean the passphrase is wrong.
        raise KeyMaterialError(f"{path}: cannot load the private key ({exc})") from None
    except Exception as exc:  # UnsupportedAlgorithm and friends must not escape as third-party errors
        raise KeyMaterialError(f"{path}: unsupported private key ({exc})") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, _SUPPORTED_CURVES):
        return key
    raise KeyMaterialError(f"{path}: a signing key must be RSA or EC on P-256/P-384/P-521, not {type(key).__name__}")


def _check_pair(key: SigningKey, certificate: x509.Certificate, cert_path: Path) -> None:
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    key_public = key.public_key().public_bytes(serialization.Encoding.DER, raw)
    try:
        cert_public = certificate.public_key().public_bytes(serialization.Encoding.DER, raw)
    except Exception as exc:  # an unsupported key type in the certificate
        raise KeyMaterialError(f"{cert_path}: cannot read the certificate's public key ({exc})") from None
    if key_public != cert_public:
        raise KeyMaterialError(f"{cert_path}: the certificate does not match the private key")
    now = datetime.now(timezone.utc)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise KeyMaterialError(
            f"{cert_path}: the certificate is valid from {certificate.not_valid_before_utc:%Y-%m-%d} "
            f"to {certificate.not_valid_after_utc:%Y-%m-%d}, not now"
        )
