"""Seek-page indexes for the staff lists (exemption tabs, customers, outbox, sent certificates)

Each index matches a list's default filter and order, ending with the id, so a page is an index range.

Revision ID: d6cb92da2c70
Revises: 3bb58b652186
Create Date: 2026-12-03 07:33:31.211640

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd6cb92da2c70'
down_revision = '3bb58b652186'
branch_labels = None
depends_on = None

PENDING = sa.text("status IN ('expired', 'opened', 'sent')")
CLOSED = sa.text("status IN ('expired', 'rejected')")


def upgrade():
    op.create_index('ix_customers_name_id', 'customers', ['name', 'id'])
    op.create_index('ix_exemption_certificates_closed_submitted', 'exemption_certificates', ['submitted_at', 'id'],
                    sqlite_where=CLOSED, postgresql_where=CLOSED)
    op.create_index('ix_exemption_certificates_status_submitted', 'exemption_certificates',
                    ['status', 'submitted_at', 'id'])
    op.create_index('ix_exemption_requests_pending_sent', 'exemption_requests', ['sent_at', 'id'],
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index('ix_outbox_messages_channel_id', 'outbox_messages', ['channel', 'id'])
    op.create_index('ix_sent_certificates_created', 'sent_certificates', ['created_at', 'id'])
    op.create_index('ix_sent_certificates_customer_created', 'sent_certificates', ['customer_id', 'created_at', 'id'])


def downgrade():
    op.drop_index('ix_sent_certificates_customer_created', table_name='sent_certificates')
    op.drop_index('ix_sent_certificates_created', table_name='sent_certificates')
    op.drop_index('ix_outbox_messages_channel_id', table_name='outbox_messages')
    op.drop_index('ix_exemption_requests_pending_sent', table_name='exemption_requests')
    op.drop_index('ix_exemption_certificates_status_submitted', table_name='exemption_certificates')
    op.drop_index('ix_exemption_certificates_closed_submitted', table_name='exemption_certificates')
    op.drop_index('ix_customers_name_id', table_name='customers')
