"""Raw payloads stored once and addressed by their SHA-256 digest (requests, responses, certificates, evidence)."""

from __future__ import annotations

import functools
import hashlib

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.store.appends import append
from hub.store.models import Payload, utcnow


def digest_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@functools.lru_cache(maxsize=4)
def _insert_once(dialect: str):
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = {name: bindparam(name) for name in ("digest", "media_type", "size", "content", "created_at")}
    return insert(Payload).values(**values).on_conflict_do_nothing(index_elements=["digest"])


def put_payload(session: Session, content: bytes, media_type: str = "application/xml", *, digest: str | None = None) -> str:
    """Store ``content`` unless already there; return its digest. Safe against a concurrent insert of the same bytes.
    Written with the transaction's other payloads in one statement (:mod:`hub.store.appends`); ``digest`` when the
    caller computed it already."""
    digest = digest or digest_of(content)
    statement = _insert_once(session.get_bind().dialect.name)
    append(session, statement, {"digest": digest, "media_type": media_type, "size": len(content), "content": content, "created_at": utcnow()}, key=digest, first=True)
    return digest


def get_payload(session: Session, digest: str) -> Payload | None:
    return session.scalars(select(Payload).where(Payload.digest == digest)).first()
