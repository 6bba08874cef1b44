"""Customs operations idempotent across retries, and reconciled with TRACES-NT's CSW-CERTEX ledger (issue 12).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:45:00.000000
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
