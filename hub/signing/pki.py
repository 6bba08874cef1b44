"""A development PKI: everything the hub and its sandboxes need to sign and talk TLS on one machine.

Layout under the chosen directory (``certs/dev/`` by default, never committed)::

    ca.pem, ca.key                      "Hub Development CA", the one trust anchor
    signing/<CC>.pem, signing/<CC>.key  one document-signing identity per issuing authority (country code)
    tls/server.pem, tls/server.key      TLS server certificate for localhost, 127.0.0.1 and ::1
    tls/client-<CC>.pem, .key           TLS client certificate per authority; the subject's C= is the country,
                                        because counterparts take the caller's country from it
    as4/<CC>.pem, as4/<CC>.key          AS4 access point identity per authority (RSA: it signs WS-Security
                                        headers and receives RSA-OAEP-wrapped payload keys)
    pki.json                            index of the above (paths relative to the directory), written last
    signing/retired/<CC>-<serial>.pem   certificates replaced by :func:`rotate_signing_key` (still verifying)

Private keys are written with 0600 permissions. Signing keys are RSA 3072 unless the authority is listed in
``ec_authorities`` (EC P-256, for ECDSA); TLS keys are EC P-256.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.errors import ConfigurationError, HubError, KeyMaterialError
from hub.signing.entitlement import check_signing_usage, subject_country
from hub.signing.keys import PemKeyProvider, load_certificate, load_certificates
from hub.signing.trust import TrustStore
from hub.standards import PROJECT_ROOT

DEFAULT_DEV_PKI_DIR = PROJECT_ROOT / "certs" / "dev"
CA_COMMON_NAME = "Hub Development CA"
#: The authorities the default deployment (config/) names: FR issues, EC/NL/US/JP answer (JP: the CITES and AS4
#: sandboxes' authority). ``hub certs init`` makes keys for these unless told otherwise.
DEV_AUTHORITIES = ("FR", "EC", "NL", "US", "JP")
INDEX_NAME = "pki.json"

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_CA_DAYS, _LEAF_DAYS = 3650, 825


@dataclass(frozen=True)
class DevPki:
    """Paths of a development PKI. ``generated`` tells whether this call created it (False: it was already there)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    signing_certs: Mapping[str, Path]
    signing_keys: Mapping[str, Path]
    server_cert: Path
    server_key: Path
    client_certs: Mapping[str, Path]
    client_keys: Mapping[str, Path]
    access_point_certs: Mapping[str, Path]
    access_point_keys: Mapping[str, Path]
    index: Path
    generated: bool

    def key_files(self) -> list[Path]:
        """Every private key file of the PKI."""
        return [self.ca_key, *self.signing_keys.values(), self.server_key, *self.client_keys.values(),
                *self.access_point_keys.values()]

    def key_provider(self, country: str) -> PemKeyProvider:
        """The signing identity of one authority, loaded."""
        return PemKeyProvider(self.signing_keys[country], self.signing_certs[country])

    def trust_store(self) -> TrustStore:
        """A trust store anchored at this PKI's CA, with its revocation list (``crl.pem`` beside it) when there is one."""
        return TrustStore.from_paths(ca_bundle=self.ca_cert, crls=[self.ca_cert.parent / "crl.pem"])


def init_dev_pki(
    directory: Path = DEFAULT_DEV_PKI_DIR,
    *,
    authorities: Sequence[str] = ("FR",),
    ec_authorities: Sequence[str] = (),
    if_missing: bool = False,
    rsa_key_bits: int = 3072,
    server_names: Sequence[str] = (),
) -> DevPki:
    """Create (or, with ``if_missing``, reuse) a development PKI under ``directory``.

    ``authorities`` are ISO 3166 alpha-2 country codes; those also in ``ec_authorities`` get an EC P-256 signing
    key. With ``if_missing=True`` a complete PKI covering the requested authorities is left untouched; if any file
    is missing (or an authority is absent or of the other key kind, or the TLS server certificate lacks one of
    ``server_names``) the whole PKI is generated afresh. ``server_names`` are host names or IP addresses the TLS
    server certificate names besides localhost, 127.0.0.1 and ::1 (the service names of a container deployment).
    """
    countries = _countries(authorities, ec_authorities)
    if rsa_key_bits < 2048:
        raise ConfigurationError(f"RSA keys of {rsa_key_bits} bits are too weak; use 2048 or more")
    directory = Path(directory)
    extra_names = tuple(_general_name(name) for name in dict.fromkeys(server_names))
    if if_missing:
        existing = _load_complete(directory, countries)
        if existing is not None and set(extra_names) <= _server_names(existing.server_cert):
            return existing
    _remove_previous(directory)
    return _generate(directory, countries, rsa_key_bits, extra_names)


def _general_name(name: str) -> x509.GeneralName:
    """A host name or an IP address as a subjectAltName entry."""
    try:
        return x509.IPAddress(ip_address(name))
    except ValueError:
        pass
    if not _HOST_NAME.match(name):
        raise ConfigurationError(f"server name {name!r} is neither a host name nor an IP address")
    return x509.DNSName(name.lower())


def _server_names(path: Path) -> set[x509.GeneralName]:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        return set(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return set()


def _countries(authorities: Sequence[str], ec_authorities: Sequence[str]) -> dict[str, str]:
    if isinstance(authorities, str) or isinstance(ec_authorities, str):
        raise ConfigurationError("authorities must be a sequence of country codes, not a string")
    for code in [*authorities, *ec_authorities]:
        if not _COUNTRY.match(code):
            raise ConfigurationError(f"authority {code!r} is not an ISO 3166 alpha-2 country code (e.g. 'FR')")
    if not authorities:
        raise ConfigurationError("a development PKI needs at least one authority")
    stray = sorted(set(ec_authorities) - set(authorities))
    if stray:
        raise ConfigurationError(f"ec_authorities {stray} are not among the authorities {list(authorities)}")
    return {code: ("EC" if code in ec_authorities else "RSA") for code in dict.fromkeys(authorities)}


def _generate(directory: Path, countries: dict[str, str], rsa_key_bits: int, server_names: tuple[x509.GeneralName, ...] = ()) -> DevPki:
    ca_key = _rsa(rsa_key_bits)
    ca_name = _name(O="Trade Document Hub (development)", CN=CA_COMMON_NAME)
    ca_cert = _issue(ca_name, ca_key.public_key(), ca_name, ca_key, days=_CA_DAYS, ca=True)
    index: dict = {"format": 1, "created": _now().isoformat(timespec="seconds")}
    index["ca"] = _write(directory, "ca", ca_cert, ca_key)

    index["signing"] = {}
    for country, kind in countries.items():
        key = _rsa(rsa_key_bits) if kind == "RSA" else ec.generate_private_key(ec.SECP256R1())
        subject = _authority_name(country, f"{country} NPPO signing (development)")
        cert = _issue(subject, key.public_key(), ca_name, ca_key, usage="signing")
        entry = _write(directory, f"signing/{country}", cert, key)
        index["signing"][country] = {**entry, "kind": kind}

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(_name(CN="localhost"), server_key.public_key(), ca_name, ca_key, usage="server", names=server_names)
    index["tls"] = {"server": _write(directory, "tls/server", server_cert, server_key), "clients": {}}
    for country in countries:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _authority_name(country, f"{country} hub client (development)")
        cert = _issue(subject, key.public_key(), ca_name, ca_key, usage="client")
        index["tls"]["clients"][country] = _write(directory, f"tls/client-{country}", cert, key)

    index["as4"] = {}
    for country in countries:
        key = _rsa(rsa_key_bits)
        subject = _authority_name(country, f"{country} AS4 access point (development)")
        cert = _issue(subject, key.public_key(), ca_name, ca_key, usage="access_point")
        index["as4"][country] = _write(directory, f"as4/{country}", cert, key)

    _atomic_write(directory / INDEX_NAME, json.dumps(index, indent=2).encode() + b"\n", mode=0o644)
    return _from_index(directory, index, generated=True)


def _issue(
    subject: x509.Name,
    public_key,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    days: int = _LEAF_DAYS,
    ca: bool = False,
    usage: str = "",
    names: tuple[x509.GeneralName, ...] = (),
) -> x509.Certificate:
    """A certificate for ``subject``; ``usage`` is "signing", "server" or "client" (ignored for the CA)."""
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # tolerate small clock differences between machines
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        usages = {"key_cert_sign": True, "crl_sign": True}
    elif usage == "signing":
        usages = {"digital_signature": True, "content_commitment": True}
    elif usage == "access_point":
        usages = {"digital_signature": True, "key_encipherment": True}
    else:
        usages = {"digital_signature": True}
    builder = builder.add_extension(_key_usage(**usages), critical=True)
    if usage == "server":
        local = [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1")), x509.IPAddress(ip_address("::1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(list(dict.fromkeys([*local, *names]))), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif usage == "client":
        # Strict (WebPKI-profile) verifiers require a SAN on client certificates too; the country stays in C=.
        country = subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
        names = [x509.DNSName(f"{country.lower()}.client.hub.localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _key_usage(**enabled: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"],
        False,
    )
    return x509.KeyUsage(**{**flags, **enabled})


def _name(**parts: str) -> x509.Name:
    oids = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME}
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in parts.items()])


def _authority_name(country: str, common_name: str) -> x509.Name:
    return _name(C=country, O=f"{country} issuing authority (development)", CN=common_name)


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _write(directory: Path, stem: str, cert: x509.Certificate, key) -> dict[str, str]:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _atomic_write(directory / f"{stem}.key", key_pem, mode=0o600)
    _atomic_write(directory / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return {"cert": f"{stem}.pem", "key": f"{stem}.key", "subject": cert.subject.rfc4514_string()}


def _atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Write through a temporary file so a crash never leaves a half-written key that looks complete."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise KeyMaterialError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _read_index(directory: Path) -> dict | None:
    try:
        return json.loads((directory / INDEX_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _load_complete(directory: Path, countries: dict[str, str]) -> DevPki | None:
    index = _read_index(directory)
    try:
        pki = _from_index(directory, index, generated=False)
        kinds = {code: entry["kind"] for code, entry in index["signing"].items()}
    except (KeyError, TypeError, AttributeError):
        return None
    if any(kinds.get(code) != kind or code not in pki.client_certs or code not in pki.access_point_certs
           for code, kind in countries.items()):
        return None
    files = [pki.ca_cert, pki.server_cert, *pki.signing_certs.values(), *pki.client_certs.values(),
             *pki.access_point_certs.values(), *pki.key_files()]
    return pki if all(path.is_file() for path in files) else None


def _remove_previous(directory: Path) -> None:
    """Files of an earlier PKI would chain to a CA that no longer exists; remove those the old index names."""
    index = _read_index(directory)
    try:
        previous = _from_index(directory, index, generated=False)
    except (KeyError, TypeError, AttributeError):
        return
    stale = [previous.ca_cert, previous.server_cert, *previous.signing_certs.values(), *previous.client_certs.values(),
             *previous.access_point_certs.values()]
    # Without its index, a generation interrupted half-way is never mistaken for a complete PKI.
    for path in [directory / INDEX_NAME, *stale, *previous.key_files()]:
        if path.resolve().is_relative_to(directory.resolve()):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise KeyMaterialError(f"{path}: cannot remove an old PKI file ({exc.strerror or exc})") from None


def _from_index(directory: Path, index: dict | None, *, generated: bool) -> DevPki:
    if index is None:
        raise KeyError(INDEX_NAME)

    def at(entry: dict, field: str) -> Path:
        return directory / entry[field]

    signing, clients, access_points = index["signing"], index["tls"]["clients"], index.get("as4", {})
    return DevPki(
        directory=directory,
        ca_cert=at(index["ca"], "cert"),
        ca_key=at(index["ca"], "key"),
        signing_certs={code: at(entry, "cert") for code, entry in signing.items()},
        signing_keys={code: at(entry, "key") for code, entry in signing.items()},
        server_cert=at(index["tls"]["server"], "cert"),
        server_key=at(index["tls"]["server"], "key"),
        client_certs={code: at(entry, "cert") for code, entry in clients.items()},
        client_keys={code: at(entry, "key") for code, entry in clients.items()},
        access_point_certs={code: at(entry, "cert") for code, entry in access_points.items()},
        access_point_keys={code: at(entry, "key") for code, entry in access_points.items()},
        index=directory / INDEX_NAME,
        generated=generated,
    )


# --- rotating a signing key ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    """A signing key replaced: the new certificate in place, the previous one kept in ``retired`` (documents it
    signed still verify while it is valid: it chains to the same trust anchors)."""

    country: str
    certificate: x509.Certificate
    path: Path
    retired: Path | None


def rotate_signing_key(
    directory: Path | str,
    country: str,
    *,
    key_path: Path | str | None = None,
    cert_path: Path | str | None = None,
) -> Rotation:
    """Replace the signing key of ``country`` under ``directory/signing`` while the hub runs (its keyring takes the
    new pair at the next document it signs).

    With ``key_path`` and ``cert_path`` (an unencrypted PEM key and its certificate, as the authority's CA issued
    them) that pair is installed after checking that they match, are valid now, may sign documents and name
    ``country``; without them a new key of the same kind is made and certified by the development CA. The previous
    certificate moves to ``signing/retired/<CC>-<serial>.pem``; the previous private key is removed. Raises
    :class:`~hub.errors.ConfigurationError` or :class:`~hub.errors.KeyMaterialError` naming what is wrong, before
    anything is changed."""
    if not _COUNTRY.match(country):
        raise ConfigurationError(f"country {country!r} is not an ISO 3166 alpha-2 code (e.g. 'FR')")
    directory = Path(directory)
    cert_file = directory / "signing" / f"{country}.pem"
    if not cert_file.is_file():
        raise ConfigurationError(f"{cert_file}: {country} has no signing certificate to rotate (hub certs init makes one)")
    previous = load_certificate(cert_file)
    if (key_path is None) != (cert_path is None):
        raise ConfigurationError("give the new key and its certificate together (--key and --cert), or neither")
    if key_path is not None:
        provider = PemKeyProvider(key_path, cert_path)
        key, certificate = provider.private_key, provider.certificate
        try:
            check_signing_usage(certificate)
        except HubError as exc:
            raise KeyMaterialError(f"{cert_path}: {exc}") from None
        if subject_country(certificate) != country:
            raise KeyMaterialError(f"{cert_path}: the certificate names {subject_country(certificate) or 'no country'}, not {country}")
        _check_issued_by_anchor(certificate, directory / "ca.pem", cert_path)
    else:
        key, certificate = _certify_new_key(directory, previous)
    if certificate.fingerprint(hashes.SHA256()) == previous.fingerprint(hashes.SHA256()):
        raise KeyMaterialError(f"{cert_path}: this is the certificate in use already")
    retired = directory / "signing" / "retired" / f"{country}-{previous.serial_number:x}.pem"
    _atomic_write(retired, previous.public_bytes(serialization.Encoding.PEM), mode=0o644)
    # The key first, then its certificate: a keyring reading between the two sees a pair that does not match and
    # keeps the previous one for that moment.
    _write(directory, f"signing/{country}", certificate, key)
    return Rotation(country=country, certificate=certificate, path=cert_file, retired=retired)


def _check_issued_by_anchor(certificate: x509.Certificate, anchors: Path, cert_path) -> None:
    """A new signer must be issued by one of the hub's trust anchors, or nobody would verify what it signs."""
    if not anchors.is_file():
        return
    for anchor in load_certificates(anchors):
        try:
            certificate.verify_directly_issued_by(anchor)
            return
        except (ValueError, TypeError, InvalidSignature):
            continue
    raise KeyMaterialError(f"{cert_path}: not issued by a trust anchor in {anchors}: documents it signed would not verify")


def _certify_new_key(directory: Path, previous: x509.Certificate):
    index = _read_index(directory)
    ca_key_file = directory / (index or {}).get("ca", {}).get("key", "ca.key")
    ca_cert_file = directory / (index or {}).get("ca", {}).get("cert", "ca.pem")
    if not ca_key_file.is_file():
        raise ConfigurationError(f"{ca_key_file}: no development CA key here to certify a new key; give the new pair your CA issued (--key and --cert)")
    ca_key = _load_ca_key(ca_key_file)
    ca_cert = load_certificate(ca_cert_file)
    public = previous.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        key = _rsa(max(public.key_size, 2048))
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    return key, _issue(previous.subject, key.public_key(), ca_cert.subject, ca_key, usage="signing")


def _load_ca_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyMaterialError(f"{path}: cannot load the CA key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyMaterialError(f"{path}: the development CA key is RSA")
    return key
