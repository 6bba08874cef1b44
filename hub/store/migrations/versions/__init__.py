"""Revisions of the store, oldest first (Alembic skips this file)."""
