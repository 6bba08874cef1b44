"""Alembic scripts of the store; a package so that they ship in the wheel (run them through hub.store.migrate)."""
