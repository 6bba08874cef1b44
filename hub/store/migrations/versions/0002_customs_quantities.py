"""Customs quantities (certified per product line, movements per declaration) and the direction of a document.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:48:54.337118
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('quantity_movements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('declaration', sa.String(length=70), nullable=False),
    sa.Column('goods_item', sa.Integer(), nullable=False),
    sa.Column('document_code', sa.String(length=4), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('unit', sa.String(length=10), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('office', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_quantity_movements_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quantity_movements'))
    )
    with op.batch_alter_table('quantity_movements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quantity_movements_declaration'), ['declaration'], unique=False)
        batch_op.create_index(batch_op.f('ix_quantity_movements_document_id'), ['document_id'], unique=False)

    with op.batch_alter_table('document_products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quantity', sa.Numeric(precision=20, scale=6), nullable=True))
        batch_op.add_column(sa.Column('unit', sa.String(length=10), nullable=True))

    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('direction', sa.String(length=10), server_default='outbound', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_column('direction')

    with op.batch_alter_table('document_products', schema=None) as batch_op:
        batch_op.drop_column('unit')
        batch_op.drop_column('quantity')

    with op.batch_alter_table('quantity_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quantity_movements_document_id'))
        batch_op.drop_index(batch_op.f('ix_quantity_movements_declaration'))

    op.drop_table('quantity_movements')
