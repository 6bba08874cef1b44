"""The access point's key material: its private key with its certificate, and the counterparts' certificates.

:func:`load_key_pair` reads a PKCS#12 store (``.p12``/``.pfx``) or PEM (private key, with its certificate in the same
file or in ``certificate_path``); :func:`load_certificates` reads PEM bundles, DER certificates and PKCS#7 bundles.
Everything that goes wrong is a :class:`~hub.errors.KeyMaterialError` naming the file and the reason.

How a WS-Security reference names one of these certificates (token, issuer and serial, subject key identifier) is
:mod:`connectors.as4.keyinfo`'s business.

Legacy PKCS#12: the AS4.NET sample stores encrypt their key with pbeWithSHA1And3-KeyTripleDES-CBC and
``as4-net-c3.pfx`` its certificates with pbeWithSHA1And40BitRC2-CBC. ``cryptography`` reads both because its
OpenSSL loads the *legacy* provider at start-up (``openssl pkcs12`` without ``-legacy`` refuses RC2-40). When that
provider is absent (``CRYPTOGRAPHY_OPENSSL_NO_LEGACY`` set, or an OpenSSL built without it) OpenSSL answers an RC2
store exactly as a wrong password; the error then says which legacy algorithm the file uses, so nobody hunts for a
password that was right. Validity dates are not checked here: whether an expired certificate may still be used is
the caller's policy (the sample certificates expired long ago).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from hub.errors import KeyMaterialError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Largest key or certificate file read (a store with a long chain is a few tens of kB).
MAX_KEY_FILE_BYTES = 1024 * 1024

#: DER encodings of the PKCS#12 PBE algorithm identifiers that need OpenSSL's legacy provider (RFC 7292 App. C).
_LEGACY_PBE = {
    bytes.fromhex("060a2a864886f70d010c0105"): "pbeWithSHA1And128BitRC2-CBC",
    bytes.fromhex("060a2a864886f70d010c0106"): "pbeWithSHA1And40BitRC2-CBC",
    bytes.fromhex("060a2a864886f70d010c0101"): "pbeWithSHA1And128BitRC4",
    bytes.fromhex("060a2a864886f70d010c0102"): "pbeWithSHA1And40BitRC4",
}


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A private key, the certificate of its public key, and the other certificates that came with it (intermediates,
    in the order the store gave them)."""

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __repr__(self) -> str:  # never print key material
        return f"KeyPair(subject={self.certificate.subject.rfc4514_string()!r}, serial={self.certificate.serial_number:#x})"


def load_key_pair(path: Path | str, password: str | bytes | None = None, *,
                  certificate_path: Path | str | None = None) -> KeyPair:
    """The key pair in ``path``: a PKCS#12 store, or a PEM private key (encrypted when ``password`` is given).

    The certificate comes from the store, from the PEM file itself, or from ``certificate_path`` (its first
    certificate; the others become the chain). The certificate must hold the private key's public key.
    """
    path = Path(path)
    secret = password.encode("utf-8") if isinstance(password, str) else password
    data = _read(path, "key")
    if _is_pkcs12(path, data):
        key, certificate, chain = _load_pkcs12(path, data, secret)
    else:
        key = _load_pem_key(path, data, secret)
        certificates = load_certificates(certificate_path) if certificate_path is not None else _pem_certificates(data)
        if not certificates:
            raise KeyMaterialError(f"{path}: no certificate in the file and no certificate file given")
        certificate, chain = certificates[0], tuple(certificates[1:])
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise KeyMaterialError(f"{path}: the private key must be RSA or EC, not {type(key).__name__}")
    _check_pair(path, key, certificate, certificate_path)
    return KeyPair(private_key=key, certificate=certificate, chain=chain)


def load_certificates(path: Path | str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, a DER certificate, or a PKCS#7 (``.p7b``) bundle, in file order."""
    path = Path(path)
    data = _read(path, "certificate")
    if b"-----BEGIN" in data:
        if b"-----BEGIN PKCS7-----" in data:
            certificates = _try(path, lambda: pkcs7.load_pem_pkcs7_certificates(data), "not a PKCS#7 bundle")
        else:
            certificates = _pem_certificates(data, path)
    else:
        try:
            certificates = [x509.load_der_x509_certificate(data)]
        except ValueError:
            certificates = _try(path, lambda: pkcs7.load_der_pkcs7_certificates(data),
                                "neither a PEM, a DER certificate nor a PKCS#7 bundle")
    if not certificates:
        raise KeyMaterialError(f"{path}: no certificate found")
    return list(certificates)


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyMaterialError(f"{path}: cannot read the {what} file ({exc.strerror or exc})") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyMaterialError(f"{path}: more than {MAX_KEY_FILE_BYTES} bytes, not a {what} file")
    if not data:
        raise KeyMaterialError(f"{path}: the {what} file is empty")
    return data


def _try(path: Path, load, reason: str):
    try:
        return load()
    except Exception as exc:  # ValueError, UnsupportedAlgorithm …: all end as KeyMaterialError
        raise KeyMaterialError(f"{path}: {reason} ({exc})") from None


def _is_pkcs12(path: Path, data: bytes) -> bool:
    return path.suffix.lower() in (".p12", ".pfx") or (data[:1] == b"\x30" and b"-----BEGIN" not in data)


def _load_pkcs12(path: Path, data: bytes, password: bytes | None):
    try:
        key, certificate, chain = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise KeyMaterialError(f"{path}: {_pkcs12_reason(data, password, exc)}") from None
    except Exception as exc:  # UnsupportedAlgorithm and friends
        raise KeyMaterialError(f"{path}: cannot read the PKCS#12 store ({exc})") from None
    if key is None:
        raise KeyMaterialError(f"{path}: the PKCS#12 store holds no private key")
    if certificate is None:
        raise KeyMaterialError(f"{path}: the PKCS#12 store holds no certificate for its private key")
    return key, certificate, tuple(chain)


def _pkcs12_reason(data: bytes, password: bytes | None, exc: ValueError) -> str:
    if "deserialize" in str(exc):
        return "not a PKCS#12 store (the DER structure cannot be read)"
    legacy = sorted({name for oid, name in _LEGACY_PBE.items() if oid in data})
    if legacy and not _legacy_provider_loaded():
        return (f"encrypted with {', '.join(legacy)}, which OpenSSL only reads with its legacy provider, not loaded "
                "here (is CRYPTOGRAPHY_OPENSSL_NO_LEGACY set?); re-export the store with AES-256 (openssl pkcs12 "
                "-legacy to read it, then -export without -legacy) — or the password is wrong")
    if password is None:
        return "the PKCS#12 store is password-protected and no password was given"
    return "wrong password for the PKCS#12 store (or the store is damaged: its integrity check failed)"


def _legacy_provider_loaded() -> bool:
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl
    except ImportError:  # a cryptography without the binding: assume available, the message still names the cause
        return True
    return bool(getattr(rust_openssl, "_legacy_provider_loaded", True))


def _load_pem_key(path: Path, data: bytes, password: bytes | None) -> PrivateKey:
    if b"PRIVATE KEY-----" not in data:
        raise KeyMaterialError(f"{path}: no PEM private key (and not a .p12/.pfx store; a Java keystore converts with "
                               "keytool -importkeystore -deststoretype PKCS12)")
    try:
        return serialization.load_pem_private_key(data, password=password)
    except TypeError as exc:  # "Password was not given but private key is encrypted" and the reverse
        raise KeyMaterialError(f"{path}: {exc}") from None
    except ValueError:
        reason = "wrong password for the private key" if password is not None else "cannot read the private key"
        raise KeyMaterialError(f"{path}: {reason}") from None
    except Exception as exc:
        raise KeyMaterialError(f"{path}: unsupported private key ({exc})") from None


def _pem_certificates(data: bytes, path: Path | None = None) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return []
    try:
        return list(x509.load_pem_x509_certificates(data))
    except ValueError as exc:
        raise KeyMaterialError(f"{path or 'PEM'}: a certificate cannot be read ({exc})") from None


def _check_pair(path: Path, key: PrivateKey, certificate: x509.Certificate, certificate_path) -> None:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    try:
        certified = certificate.public_key().public_bytes(der, spki)
    except Exception as exc:
        raise KeyMaterialError(f"{certificate_path or path}: cannot read the certificate's public key ({exc})") from None
    if key.public_key().public_bytes(der, spki) != certified:
        raise KeyMaterialError(f"{certificate_path or path}: the certificate ({certificate.subject.rfc4514_string()}) "
                               f"does not hold the public key of the private key in {path}")

