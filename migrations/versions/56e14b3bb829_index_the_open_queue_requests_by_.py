"""Index the open queue requests by received time and type

Revision ID: 56e14b3bb829
Revises: 38eae4d0d4ea
Create Date: 2026-12-02 22:25:59.615952

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '56e14b3bb829'
down_revision = '38eae4d0d4ea'
branch_labels = None
depends_on = None

OPEN = "status IN ('new', 'in_progress')"


def upgrade():
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.create_index('ix_certificate_requests_open_created', ['created_at', 'id'], unique=False,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.create_index('ix_certificate_requests_open_type', ['type'], unique=False,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))


def downgrade():
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_certificate_requests_open_type')
        batch_op.drop_index('ix_certificate_requests_open_created')
