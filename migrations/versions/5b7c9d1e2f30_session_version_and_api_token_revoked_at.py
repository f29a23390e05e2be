"""per-user session version and API token revocation time

Revision ID: 5b7c9d1e2f30
Revises: e5a7c9b1d3f4
Create Date: 2026-12-02 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b7c9d1e2f30'
down_revision = 'e5a7c9b1d3f4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='1'))

    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('revoked_at')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
