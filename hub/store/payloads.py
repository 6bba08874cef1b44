"""Raw payloads stored once and addressed by their SHA-256 digest (requests, responses, certificates, evidence)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.store.models import Payload


def digest_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def put_payload(session: Session, content: bytes, media_type: str = "application/xml") -> str:
    """Store ``content`` unless already there; return its digest. Safe against a concurrent insert of the same bytes."""
    digest = digest_of(content)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Payload)
        .values(digest=digest, media_type=media_type, size=len(content), content=content)
        .on_conflict_do_nothing(index_elements=["digest"])
    )
    return digest


def get_payload(session: Session, digest: str) -> Payload | None:
    return session.scalars(select(Payload).where(Payload.digest == digest)).first()
