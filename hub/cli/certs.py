"""``hub certs``: the development PKI (a CA, a signing certificate per authority, TLS server and client
certificates), and the rotation of a signing key while the hub runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hub.cli.common import DEFAULT_CERTS_DIR, audited, fail
from hub.errors import HubError
from hub.signing.pki import DEV_AUTHORITIES

certs_app = typer.Typer(no_args_is_help=True, help="The development PKI.")


@certs_app.command("init")
@audited("certs.init", target=("directory", "authority"))
def certs_init(
    directory: Path = typer.Option(DEFAULT_CERTS_DIR, "--dir", help="where to write the PKI"),
    authority: list[str] = typer.Option(list(DEV_AUTHORITIES), help="issuing authorities (ISO country) to make keys for (JP: the CITES and AS4 sandboxes' authority)"),
    if_missing: bool = typer.Option(False, "--if-missing", help="keep an existing complete PKI"),
    server_name: list[str] = typer.Option([], "--server-name", help="another host name or IP address the TLS server certificate names (a container's service name); may repeat"),
) -> None:
    """Make the development PKI: a CA, a signing certificate per authority, TLS server and client certificates."""
    from hub.signing import init_dev_pki

    try:
        pki = init_dev_pki(directory, authorities=tuple(authority), if_missing=if_missing, server_names=tuple(server_name))
    except (HubError, OSError) as exc:
        fail(f"cannot make the PKI in {directory}: {exc}")
    typer.echo(f"development PKI in {pki.directory} (private keys are git-ignored)")


@certs_app.command("rotate")
@audited("certs.rotate", target=("country", "directory"))
def certs_rotate(
    country: str = typer.Option(..., "--country", help="the issuing authority (ISO country) whose signing key to replace"),
    directory: Path = typer.Option(DEFAULT_CERTS_DIR, "--dir", help="the hub's key folder (HUB_CERTS_DIR)"),
    key: Optional[Path] = typer.Option(None, "--key", help="the new private key (unencrypted PEM) your CA certified; default: a new key certified by the development CA"),
    cert: Optional[Path] = typer.Option(None, "--cert", help="its certificate (PEM)"),
) -> None:
    """Replace an authority's signing key while the hub runs: the next document is signed with the new key, and
    documents signed with the previous one still verify (its certificate is kept in signing/retired/)."""
    from hub.signing.entitlement import fingerprint
    from hub.signing.pki import rotate_signing_key

    try:
        rotation = rotate_signing_key(directory, country.strip().upper(), key_path=key, cert_path=cert)
    except (HubError, OSError) as exc:
        fail(f"cannot rotate the signing key of {country}: {exc}")
    certificate = rotation.certificate
    typer.echo(f"{rotation.country} now signs with certificate {certificate.serial_number:x} ({certificate.subject.rfc4514_string()})")
    typer.echo(f"  SHA-256 {fingerprint(certificate)}, valid until {certificate.not_valid_after_utc:%Y-%m-%d}")
    typer.echo(f"  previous certificate kept in {rotation.retired}")
    typer.echo("  a running hub takes the new key at its next document; a signer registry (HUB_SIGNERS) naming certificates by fingerprint needs this one added")
