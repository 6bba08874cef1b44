"""The broker's store: SQLAlchemy models, engines, payloads by digest, Alembic migrations."""

from hub.store.db import Database, make_engine
from hub.store.payloads import digest_of, get_payload, put_payload

__all__ = ["Database", "make_engine", "digest_of", "get_payload", "put_payload"]
