"""Answers bound to their message and followed in the store: deadlines, re-polls, unmatched answers (issue 12).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:45:00.000000
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('repolls', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('acknowledgements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('unmatched', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('acknowledgements', schema=None) as batch_op:
        batch_op.drop_column('unmatched')
        batch_op.drop_column('answered_by')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('repolls')
        batch_op.drop_column('overdue_at')
        batch_op.drop_column('answer_due_at')
