"""Answers bound to their message and followed in the store: deadlines, re-polls, unmatched answers (issue 12).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:45:00.000000
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
