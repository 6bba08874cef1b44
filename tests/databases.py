"""Database fixtures: filled in by the store work (SQLite and embedded PostgreSQL)."""
