"""Version counter on policies (a policy's status goes through the lifecycle engine)

Revision ID: 8ef2fff7c172
Revises: 9513c9d1e0ce
Create Date: 2026-12-03 08:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8ef2fff7c172'
down_revision = '9513c9d1e0ce'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.drop_column('version')
