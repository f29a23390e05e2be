"""add asynchronous certificate issuing columns to certificate requests

Revision ID: c3e5071a2d43
Revises: b2d4f6081c32
Create Date: 2026-11-23 17:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3e5071a2d43'
down_revision = 'b2d4f6081c32'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_issue', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('issue_requested_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('issue_error', sa.String(length=500), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_certificate_requests_issue_requested_at'), ['issue_requested_at'], unique=False)


def downgrade():
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_requests_issue_requested_at'))
        batch_op.drop_column('issue_error')
        batch_op.drop_column('issue_requested_at')
        batch_op.drop_column('pending_issue')
