"""Customs operations idempotent across retries, and reconciled with TRACES-NT's CSW-CERTEX ledger (issue 12).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:45:00.000000
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customs_operations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('authority', sa.String(length=60), nullable=False),
    sa.Column('ched_reference', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('declaration', sa.String(length=70), nullable=False),
    sa.Column('clearance', sa.String(length=2), nullable=True),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('office', sa.String(length=20), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_customs_operations_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customs_operations'))
    )
    with op.batch_alter_table('customs_operations', schema=None) as batch_op:
        batch_op.create_index('ix_customs_operations_state', ['state', 'updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customs_operations_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customs_operations_key'), ['key'], unique=False)

    with op.batch_alter_table('quantity_movements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('operation_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_quantity_movements_operation_id'), ['operation_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_quantity_movements_operation_id_customs_operations'), 'customs_operations', ['operation_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('quantity_movements', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_quantity_movements_operation_id_customs_operations'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_quantity_movements_operation_id'))
        batch_op.drop_column('operation_id')

    with op.batch_alter_table('customs_operations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customs_operations_key'))
        batch_op.drop_index(batch_op.f('ix_customs_operations_document_id'))
        batch_op.drop_index('ix_customs_operations_state')

    op.drop_table('customs_operations')
