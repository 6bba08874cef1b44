"""``hub certs``: the development PKI (a CA, a signing certificate per authority, TLS server and client
certificates)."""

from __future__ import annotations

from pathlib import Path

import typer

from hub.cli.common import DEFAULT_CERTS_DIR, fail
from hub.errors import HubError

certs_app = typer.Typer(no_args_is_help=True, help="The development PKI.")


@certs_app.command("init")
def certs_init(
    directory: Path = typer.Option(DEFAULT_CERTS_DIR, "--dir", help="where to write the PKI"),
    authority: list[str] = typer.Option(["FR", "EC", "NL", "US", "JP"], help="issuing authorities (ISO country) to make keys for (JP: the CITES sandbox's management authority)"),
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
