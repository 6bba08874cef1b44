"""``hub as4 inspect``: read a raw AS4 message, print what it is as JSON, and say whether its signature verifies.

Exit codes: 0 the signature verifies (and the message decrypts, when a key is given; and the signer is, or is issued
by, a ``--trust`` certificate, when one is given); 1 it does not; 2 the input cannot be read as an AS4 message (or a
key or certificate file cannot be used).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from connectors.as4.errors import As4Error
from connectors.as4.inspect import UNREADABLE, inspect_message
from connectors.as4.keys import load_certificates, load_key_pair
from hub.errors import HubError

as4_app = typer.Typer(no_args_is_help=True, add_completion=False, help="AS4 (eDelivery): inspect raw messages.")

#: Largest message read from a file.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@as4_app.command()
def inspect(
    message: Path = typer.Argument(..., help="the raw message: bare XML, a MIME body with or without its headers, an HTTP dump"),
    key: Optional[Path] = typer.Option(None, "--key", help="our private key to decrypt with: PEM (with --certificate) or PKCS#12 (.p12/.pfx)"),
    certificate: Optional[Path] = typer.Option(None, "--certificate", help="the certificate of a PEM --key"),
    password: Optional[str] = typer.Option(None, "--password", help="the password of --key"),
    trust: Optional[List[Path]] = typer.Option(None, "--trust", help="a certificate the signer must be, or be issued by (repeatable)"),
    signer: Optional[List[Path]] = typer.Option(None, "--signer", help="a certificate to resolve IssuerSerial/SKI key references against (repeatable)"),
) -> None:
    """Print a JSON summary of MESSAGE: kind, ids, parties, service and action, parts, signature, decryption."""
    try:
        if message.stat().st_size > MAX_MESSAGE_BYTES:
            raise typer.Exit(_unreadable(f"{message}: larger than {MAX_MESSAGE_BYTES} bytes"))
        raw = message.read_bytes()
        key_pair = load_key_pair(key, password, certificate_path=certificate) if key else None
        trusted = [c for path in trust or () for c in load_certificates(path)]
        candidates = [c for path in signer or () for c in load_certificates(path)]
        inspection = inspect_message(raw, key_pair=key_pair, trusted=trusted, candidates=candidates)
    except OSError as exc:
        raise typer.Exit(_unreadable(f"{message}: {exc.strerror or exc}")) from None
    except As4Error as exc:
        raise typer.Exit(_unreadable(f"{exc.code} {exc}")) from None
    except HubError as exc:
        raise typer.Exit(_unreadable(str(exc))) from None
    typer.echo(json.dumps(inspection.summary, indent=2, ensure_ascii=False))
    raise typer.Exit(inspection.exit_code)


def _unreadable(reason: str) -> int:
    typer.echo(json.dumps({"error": reason}), err=True)
    return UNREADABLE
