"""Initial schema: every table of hub.store.models (constraints named by the models' naming convention).

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 10:51:30.414319
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_clients',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('tenant', sa.String(length=20), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('operator', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_clients')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_clients_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_api_clients_name'))
    )
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_clients_tenant'), ['tenant'], unique=False)

    op.create_table('payloads',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_payloads'))
    )
    op.create_table('webhook_subscriptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=20), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_event_id', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_subscriptions'))
    )
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_subscriptions_tenant'), ['tenant'], unique=False)

    op.create_table('documents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=20), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('issuing_country', sa.String(length=2), nullable=False),
    sa.Column('exporting_country', sa.String(length=2), nullable=True),
    sa.Column('importing_country', sa.String(length=2), nullable=True),
    sa.Column('certificate_number', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('lifecycle', sa.String(length=30), nullable=False),
    sa.Column('refers_to_number', sa.String(length=100), nullable=True),
    sa.Column('product_codes', sa.JSON(), nullable=False),
    sa.Column('source_format', sa.String(length=10), nullable=False),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('payload_digest', sa.String(length=64), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payload_digest'], ['payloads.digest'], name=op.f('fk_documents_payload_digest_payloads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents')),
    sa.UniqueConstraint('issuing_country', 'kind', 'certificate_number', 'status', 'version', name='uq_documents_business_key'),
    sa.UniqueConstraint('tenant', 'idempotency_key', name='uq_documents_idempotency_key')
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_documents_certificate_number'), ['certificate_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_correlation_id'), ['correlation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_documents_search', ['kind', 'importing_country', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_tenant'), ['tenant'], unique=False)

    op.create_table('trace_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=20), nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=True),
    sa.Column('message_id', sa.String(length=36), nullable=True),
    sa.Column('event', sa.String(length=60), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=True),
    sa.Column('destination', sa.String(length=60), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('products', sa.JSON(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('payload_digest', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['payload_digest'], ['payloads.digest'], name=op.f('fk_trace_events_payload_digest_payloads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trace_events'))
    )
    with op.batch_alter_table('trace_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trace_events_correlation_id'), ['correlation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trace_events_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trace_events_message_id'), ['message_id'], unique=False)

    op.create_table('document_products',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('hs_code', sa.String(length=20), nullable=True),
    sa.Column('scientific_name', sa.String(length=200), nullable=True),
    sa.Column('common_name', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_document_products_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_products'))
    )
    with op.batch_alter_table('document_products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_products_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_products_hs_code'), ['hs_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_products_scientific_name'), ['scientific_name'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('destination', sa.String(length=60), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('predecessor_id', sa.String(length=36), nullable=True),
    sa.Column('payload_digest', sa.String(length=64), nullable=False),
    sa.Column('receipt_id', sa.String(length=200), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_messages_document_id_documents')),
    sa.ForeignKeyConstraint(['payload_digest'], ['payloads.digest'], name=op.f('fk_messages_payload_digest_payloads')),
    sa.ForeignKeyConstraint(['predecessor_id'], ['messages.id'], name=op.f('fk_messages_predecessor_id_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_destination_state', ['destination', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_document_id'), ['document_id'], unique=False)
        batch_op.create_index('ix_messages_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_predecessor_id'), ['predecessor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_receipt_id'), ['receipt_id'], unique=False)

    op.create_table('acknowledgements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=36), nullable=True),
    sa.Column('document_id', sa.String(length=36), nullable=True),
    sa.Column('counterpart', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('reason_code', sa.String(length=60), nullable=True),
    sa.Column('reason_text', sa.Text(), nullable=True),
    sa.Column('counterpart_reference', sa.String(length=200), nullable=True),
    sa.Column('payload_digest', sa.String(length=64), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_acknowledgements_document_id_documents')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_acknowledgements_message_id_messages')),
    sa.ForeignKeyConstraint(['payload_digest'], ['payloads.digest'], name=op.f('fk_acknowledgements_payload_digest_payloads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acknowledgements'))
    )
    with op.batch_alter_table('acknowledgements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_acknowledgements_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_acknowledgements_message_id'), ['message_id'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=True),
    sa.Column('response_digest', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_delivery_attempts_message_id_messages')),
    sa.ForeignKeyConstraint(['request_digest'], ['payloads.digest'], name=op.f('fk_delivery_attempts_request_digest_payloads')),
    sa.ForeignKeyConstraint(['response_digest'], ['payloads.digest'], name=op.f('fk_delivery_attempts_response_digest_payloads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts'))
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_attempts_message_id'), ['message_id'], unique=False)

    op.create_table('non_conformities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('message_id', sa.String(length=36), nullable=True),
    sa.Column('acknowledgement_id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
    sa.Column('tenant', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('counterpart', sa.String(length=60), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('cause_code', sa.String(length=60), nullable=False),
    sa.Column('cause_text', sa.Text(), nullable=True),
    sa.Column('evidence_digest', sa.String(length=64), nullable=True),
    sa.Column('replacement_document_id', sa.String(length=36), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['acknowledgement_id'], ['acknowledgements.id'], name=op.f('fk_non_conformities_acknowledgement_id_acknowledgements')),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_non_conformities_document_id_documents')),
    sa.ForeignKeyConstraint(['evidence_digest'], ['payloads.digest'], name=op.f('fk_non_conformities_evidence_digest_payloads')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_non_conformities_message_id_messages')),
    sa.ForeignKeyConstraint(['replacement_document_id'], ['documents.id'], name=op.f('fk_non_conformities_replacement_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_non_conformities'))
    )
    with op.batch_alter_table('non_conformities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_non_conformities_cause_code'), ['cause_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_non_conformities_counterpart'), ['counterpart'], unique=False)
        batch_op.create_index(batch_op.f('ix_non_conformities_country'), ['country'], unique=False)
        batch_op.create_index(batch_op.f('ix_non_conformities_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_non_conformities_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_non_conformities_tenant'), ['tenant'], unique=False)

    op.create_table('non_conformity_products',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column('non_conformity_id', sa.String(length=36), nullable=False),
    sa.Column('hs_code', sa.String(length=20), nullable=True),
    sa.Column('scientific_name', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['non_conformity_id'], ['non_conformities.id'], name=op.f('fk_non_conformity_products_non_conformity_id_non_conformities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_non_conformity_products'))
    )
    with op.batch_alter_table('non_conformity_products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_non_conformity_products_hs_code'), ['hs_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_non_conformity_products_non_conformity_id'), ['non_conformity_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('non_conformity_products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_non_conformity_products_non_conformity_id'))
        batch_op.drop_index(batch_op.f('ix_non_conformity_products_hs_code'))

    op.drop_table('non_conformity_products')
    with op.batch_alter_table('non_conformities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_non_conformities_tenant'))
        batch_op.drop_index(batch_op.f('ix_non_conformities_opened_at'))
        batch_op.drop_index(batch_op.f('ix_non_conformities_document_id'))
        batch_op.drop_index(batch_op.f('ix_non_conformities_country'))
        batch_op.drop_index(batch_op.f('ix_non_conformities_counterpart'))
        batch_op.drop_index(batch_op.f('ix_non_conformities_cause_code'))

    op.drop_table('non_conformities')
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_attempts_message_id'))

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('acknowledgements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_acknowledgements_message_id'))
        batch_op.drop_index(batch_op.f('ix_acknowledgements_document_id'))

    op.drop_table('acknowledgements')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_receipt_id'))
        batch_op.drop_index(batch_op.f('ix_messages_predecessor_id'))
        batch_op.drop_index('ix_messages_due')
        batch_op.drop_index(batch_op.f('ix_messages_document_id'))
        batch_op.drop_index('ix_messages_destination_state')

    op.drop_table('messages')
    with op.batch_alter_table('document_products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_products_scientific_name'))
        batch_op.drop_index(batch_op.f('ix_document_products_hs_code'))
        batch_op.drop_index(batch_op.f('ix_document_products_document_id'))

    op.drop_table('document_products')
    with op.batch_alter_table('trace_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trace_events_message_id'))
        batch_op.drop_index(batch_op.f('ix_trace_events_document_id'))
        batch_op.drop_index(batch_op.f('ix_trace_events_correlation_id'))

    op.drop_table('trace_events')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_tenant'))
        batch_op.drop_index('ix_documents_search')
        batch_op.drop_index(batch_op.f('ix_documents_created_at'))
        batch_op.drop_index(batch_op.f('ix_documents_correlation_id'))
        batch_op.drop_index(batch_op.f('ix_documents_certificate_number'))

    op.drop_table('documents')
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_subscriptions_tenant'))

    op.drop_table('webhook_subscriptions')
    op.drop_table('payloads')
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_clients_tenant'))

    op.drop_table('api_clients')
