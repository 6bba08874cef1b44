"""The ``hub`` command line, one package: each module holds one group of commands and registers them here, in one
place (nothing registers itself on import).

::

    documents.py    schema, convert, parse, validate, sign, verify, demo   (both document families)
    certs.py        certs init | rotate                                    (the development PKI, key rotation)
    run.py          serve, worker, sandbox                                 (serve.py: what serve runs)
    operations.py   clients, trace, connectors, fetch-permit
    facsimile.py    facsimile ID                                           (the signed PDF of a document)
    routes.py       routes show | explain
    db.py           db upgrade | downgrade | current | prune | restore-archive
    audit.py        audit show | verify                                    (the hash-chained audit log)
    customs.py      customs reconcile [--repair]                            (the ledgers kept with TRACES-NT)
"""

from __future__ import annotations

import typer

from hub import redaction
from hub.cli import documents, facsimile, operations, run
from hub.cli.as4 import as4_app
from hub.cli.audit import audit_app
from hub.cli.certs import certs_app
from hub.cli.customs import customs_app
from hub.cli.db import db_app
from hub.cli.routes import routes_app


def build_app() -> typer.Typer:
    """The ``hub`` command with every group registered."""
    app = typer.Typer(no_args_is_help=True, add_completion=False, help="Trade-document interoperability hub.", pretty_exceptions_enable=False)
    documents.register(app)
    run.register(app)
    operations.register(app)
    facsimile.register(app)
    app.add_typer(certs_app, name="certs")
    app.add_typer(customs_app, name="customs", help="Customs: reconcile the quantity ledgers with TRACES-NT (CSW-CERTEX).")
    app.add_typer(routes_app, name="routes", help="The routing table: show it, explain a document's destinations.")
    app.add_typer(db_app, name="db", help="The database: migrate, show the revision.")
    app.add_typer(audit_app, name="audit", help="The audit log: every action by a person or client, hash-chained.")
    app.add_typer(as4_app, name="as4", help="AS4 (eDelivery): read a raw message, check its signature, decrypt it.")
    return app


app = build_app()


def main() -> None:  # pragma: no cover - console entry
    redaction.install()
    app()
