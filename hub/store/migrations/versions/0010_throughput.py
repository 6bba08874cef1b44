"""Throughput (issue 14): a certificate's earlier documents found from its number, whatever the store holds.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:30:00.000000
"""

from __future__ import annotations

from typing import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index('ix_documents_number', ['issuing_country', 'certificate_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index('ix_documents_number')
