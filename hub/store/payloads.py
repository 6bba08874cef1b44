"""Raw payloads stored once and addressed by their SHA-256 digest (requests, responses, certificates, evidence)."""

from __future__ import annotations

import functools
import hashlib

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.store.models import Payload


def digest_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@functools.lru_cache(maxsize=4)
def _insert_once(dialect: str):
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = {name: bindparam(name) for name in ("digest", "media_type", "size", "content")}
    return insert(Payload).values(**values).on_conflict_do_nothing(index_elements=["digest"])


def put_payload(session: Session, content: bytes, media_type: str = "application/xml") -> str:
    """Store ``content`` unless already there; return its digest. Safe against a concurrent insert of the same bytes."""
    digest = digest_of(content)
    statement = _insert_once(session.get_bind().dialect.name)
    # Through the connection: the ORM adds nothing to an insert of plain values, and costs as much again.
    session.connection().execute(statement, {"digest": digest, "media_type": media_type, "size": len(content), "content": content})
    return digest


def get_payload(session: Session, digest: str) -> Payload | None:
    return session.scalars(select(Payload).where(Payload.digest == digest)).first()
