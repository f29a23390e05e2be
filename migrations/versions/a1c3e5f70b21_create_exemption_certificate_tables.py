"""create exemption certificate tables

Revision ID: a1c3e5f70b21
Revises: f83d074eac0c
Create Date: 2026-11-23 17:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a1c3e5f70b21'
down_revision = 'f83d074eac0c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('exemption_send_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'done', name='sendrunstatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('customer_ids', sa.JSON(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('sent_count', sa.Integer(), nullable=False),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_exemption_send_runs_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exemption_send_runs'))
    )
    op.create_table('exemption_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('link_nonce', sa.String(length=32), nullable=False),
    sa.Column('status', sa.Enum('sent', 'opened', 'completed', 'expired', 'cancelled', name='exemptionrequeststatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('link_version', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reminders_sent', sa.JSON(), nullable=False),
    sa.Column('last_reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('prefill', sa.JSON(), nullable=True),
    sa.Column('previous_certificate_id', sa.Integer(), nullable=True),
    sa.Column('renewal_of_id', sa.Integer(), nullable=True),
    sa.Column('send_run_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_exemption_requests_created_by_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_exemption_requests_customer_id_customers')),
    sa.ForeignKeyConstraint(['send_run_id'], ['exemption_send_runs.id'], name=op.f('fk_exemption_requests_send_run_id_exemption_send_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exemption_requests')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_exemption_requests_token_hash'))
    )
    with op.batch_alter_table('exemption_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exemption_requests_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemption_requests_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemption_requests_send_run_id'), ['send_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemption_requests_status'), ['status'], unique=False)
    op.create_table('exemption_certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('pending_review', 'active', 'rejected', 'expired', name='exemptioncertificatestatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('reason', sa.Enum('resale', 'government', 'non_profit', 'manufacturing', 'agriculture', 'direct_pay', 'other', name='exemptionreason', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('reason_other', sa.String(length=200), nullable=False),
    sa.Column('purchase_type', sa.Enum('blanket', 'single', name='purchasetype', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('po_number', sa.String(length=60), nullable=False),
    sa.Column('form_type', sa.Enum('uniform_multistate', 'streamlined', 'state_specific', name='exemptionformtype', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('tax_id_number', sa.String(length=60), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('expiration_date', sa.Date(), nullable=True),
    sa.Column('purchaser_name', sa.String(length=200), nullable=False),
    sa.Column('purchaser_address', sa.String(length=400), nullable=False),
    sa.Column('signer_name', sa.String(length=120), nullable=False),
    sa.Column('signer_title', sa.String(length=120), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('document_key', sa.String(length=80), nullable=False),
    sa.Column('document_filename', sa.String(length=120), nullable=False),
    sa.Column('document_content_type', sa.String(length=40), nullable=False),
    sa.Column('document_size', sa.Integer(), nullable=False),
    sa.Column('document_pages', sa.Integer(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('review_notes', sa.Text(), nullable=False),
    sa.Column('edited_on_review', sa.Boolean(), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('renewal_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_exemption_certificates_customer_id_customers')),
    sa.ForeignKeyConstraint(['request_id'], ['exemption_requests.id'], name=op.f('fk_exemption_certificates_request_id_exemption_requests')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_exemption_certificates_reviewed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exemption_certificates'))
    )
    with op.batch_alter_table('exemption_certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exemption_certificates_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemption_certificates_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemption_certificates_status'), ['status'], unique=False)
    op.create_table('exemption_certificate_jurisdictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('state_id_number', sa.String(length=60), nullable=False),
    sa.Column('expiration_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['exemption_certificates.id'], name=op.f('fk_exemption_certificate_jurisdictions_certificate_id_exemption_certificates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exemption_certificate_jurisdictions')),
    sa.UniqueConstraint('certificate_id', 'state', name='certificate_state')
    )
    with op.batch_alter_table('exemption_certificate_jurisdictions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exemption_certificate_jurisdictions_certificate_id'), ['certificate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemption_certificate_jurisdictions_state'), ['state'], unique=False)


def downgrade():
    with op.batch_alter_table('exemption_certificate_jurisdictions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exemption_certificate_jurisdictions_state'))
        batch_op.drop_index(batch_op.f('ix_exemption_certificate_jurisdictions_certificate_id'))

    op.drop_table('exemption_certificate_jurisdictions')
    with op.batch_alter_table('exemption_certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exemption_certificates_status'))
        batch_op.drop_index(batch_op.f('ix_exemption_certificates_request_id'))
        batch_op.drop_index(batch_op.f('ix_exemption_certificates_customer_id'))

    op.drop_table('exemption_certificates')
    with op.batch_alter_table('exemption_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exemption_requests_status'))
        batch_op.drop_index(batch_op.f('ix_exemption_requests_send_run_id'))
        batch_op.drop_index(batch_op.f('ix_exemption_requests_expires_at'))
        batch_op.drop_index(batch_op.f('ix_exemption_requests_customer_id'))

    op.drop_table('exemption_requests')
    op.drop_table('exemption_send_runs')
