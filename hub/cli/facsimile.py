"""``hub facsimile ID``: the printable facsimile of a stored certificate or permit (the PDF ``GET
/v1/documents/{id}/pdf`` answers), written to a file or to standard output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from hub.cli.common import SEVERE, DatabaseUrl, audited, fail, open_database, settings
from hub.errors import HubError


@audited("facsimile.print", target="document_id")
def facsimile(
    document_id: str = typer.Argument(..., help="the document's id (as POST /v1/documents answered it)"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="the PDF file to write ('-': standard output); default: <number>.pdf here"),
    lang: Optional[list[str]] = typer.Option(None, "--lang", help="a language of the labels: en, fr, es (repeatable); default: English, French and the document's own"),
    certs_dir: Optional[Path] = typer.Option(None, "--certs-dir", envvar="HUB_CERTS_DIR", help="where the signing keys and the verification secret are; default: certs/dev"),
    public_url: Optional[str] = typer.Option(None, "--public-url", envvar="HUB_PUBLIC_URL", help="the hub's public address, which the QR code leads to"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Write the signed PDF facsimile of a document and print its verification address."""
    from hub.facsimile import for_document
    from hub.store.models import Document

    chosen = settings(database_url, certs_dir=certs_dir, public_url=public_url)
    database = open_database(chosen)
    try:
        with database.sessions() as session:
            document = session.get(Document, document_id)
            if document is None:
                fail(f"no document {document_id}", SEVERE)
            made = for_document(document, certs_dir=chosen.certs_dir, public_url=chosen.public_url, languages=lang)
    except HubError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if output == "-":
        sys.stdout.buffer.write(made.pdf)
        sys.stdout.buffer.flush()
        return
    target = Path(output or made.filename)
    try:
        target.write_bytes(made.pdf)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror}")
    typer.echo(f"{target}: {len(made.pdf)} bytes, signed; verification {made.url}")


def register(app: typer.Typer) -> None:
    """Add ``hub facsimile`` to ``app``."""
    app.command(help="Write the signed PDF facsimile of a stored certificate or permit.")(facsimile)
