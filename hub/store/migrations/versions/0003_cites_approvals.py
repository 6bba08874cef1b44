"""Approvals of the CITES simplified re-export procedure (PSSM).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:11:45.688896
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cites_approvals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=20), nullable=False),
    sa.Column('approval_number', sa.String(length=100), nullable=False),
    sa.Column('holder_account', sa.String(length=100), nullable=False),
    sa.Column('holder_sub_account', sa.String(length=100), nullable=True),
    sa.Column('specimen_code', sa.String(length=100), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cites_approvals')),
    sa.UniqueConstraint('tenant', 'approval_number', name='uq_cites_approvals_number')
    )
    with op.batch_alter_table('cites_approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cites_approvals_tenant'), ['tenant'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('cites_approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cites_approvals_tenant'))

    op.drop_table('cites_approvals')
