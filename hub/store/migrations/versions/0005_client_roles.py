"""Machine clients by role: issuing authority, operator on behalf of an authority, auditor, foreign authority, administrator; mutual TLS and OAuth2 client credentials (issue 12).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:45:00.000000
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=30), server_default='issuing_authority', nullable=False))
        batch_op.add_column(sa.Column('acts_for', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('certificate_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('certificate_subject', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('jwt_public_key', sa.Text(), nullable=True))
        batch_op.alter_column('tenant', existing_type=sa.String(length=20), nullable=True)
        batch_op.alter_column('key_hash', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_api_clients_certificate_sha256'), ['certificate_sha256'])
        batch_op.create_unique_constraint(batch_op.f('uq_api_clients_certificate_subject'), ['certificate_subject'])
    # The migration path: an operator key (the flag, or tenant *) read every tenant: it becomes an administrator.
    op.execute("UPDATE api_clients SET role = 'administrator', tenant = '*' WHERE operator OR tenant = '*'")
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_column('operator')

    op.create_table('oauth_assertions',
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('jti', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['api_clients.id'], name=op.f('fk_oauth_assertions_client_id_api_clients')),
    sa.PrimaryKeyConstraint('client_id', 'jti', name=op.f('pk_oauth_assertions'))
    )
    with op.batch_alter_table('oauth_assertions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_assertions_expires_at'), ['expires_at'], unique=False)

    op.create_table('oauth_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['api_clients.id'], name=op.f('fk_oauth_tokens_client_id_api_clients')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_oauth_tokens'))
    )
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_tokens_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_tokens_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_expires_at'))
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_client_id'))
    op.drop_table('oauth_tokens')
    with op.batch_alter_table('oauth_assertions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_assertions_expires_at'))
    op.drop_table('oauth_assertions')

    # Before roles a client was a tenant's key or an operator's (*). Operators and auditors become keys of no tenant
    # ('-', which sees nothing) and clients without an API key get one nobody holds: both lose their access.
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('operator', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE api_clients SET operator = (role = 'administrator')")
    op.execute("UPDATE api_clients SET tenant = '-' WHERE tenant IS NULL")
    op.execute("UPDATE api_clients SET key_hash = 'disabled-' || id WHERE key_hash IS NULL")
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.alter_column('operator', server_default=None)
        batch_op.drop_constraint(batch_op.f('uq_api_clients_certificate_subject'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_api_clients_certificate_sha256'), type_='unique')
        batch_op.alter_column('key_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('tenant', existing_type=sa.String(length=20), nullable=False)
        batch_op.drop_column('jwt_public_key')
        batch_op.drop_column('certificate_subject')
        batch_op.drop_column('certificate_sha256')
        batch_op.drop_column('acts_for')
        batch_op.drop_column('role')
