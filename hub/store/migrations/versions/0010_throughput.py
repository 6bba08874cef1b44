"""Throughput (issue 14): a certificate's earlier documents found from its number, whatever the store holds; the rows
that refer to a payload found from its digest (retention deletes only payloads nothing refers to).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:30:00.000000
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: (table, column) of the nullable references to payloads: indexed where set only.
_REFERRING = (
    ('delivery_attempts', 'request_digest'), ('delivery_attempts', 'response_digest'), ('acknowledgements', 'payload_digest'),
    ('non_conformities', 'evidence_digest'), ('trace_events', 'payload_digest'),
)


def upgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index('ix_documents_number', ['issuing_country', 'certificate_number'], unique=False)
        batch_op.create_index('ix_documents_payload_digest', ['payload_digest'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_payload_digest', ['payload_digest'], unique=False)
    for table, column in _REFERRING:
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(f'ix_{table}_{column}', table, [column], unique=False, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for table, column in reversed(_REFERRING):
        op.drop_index(f'ix_{table}_{column}', table_name=table)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_payload_digest')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index('ix_documents_payload_digest')
        batch_op.drop_index('ix_documents_number')
