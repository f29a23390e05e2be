"""generation runs list holders the issue guard skipped

Revision ID: 06927b8d7777
Revises: d6cb92da2c70
Create Date: 2026-12-03 07:33:16.151100

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '06927b8d7777'
down_revision = 'd6cb92da2c70'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('generation_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skipped_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('skipped', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade():
    with op.batch_alter_table('generation_runs', schema=None) as batch_op:
        batch_op.drop_column('skipped')
        batch_op.drop_column('skipped_count')
