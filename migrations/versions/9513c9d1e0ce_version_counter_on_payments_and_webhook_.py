"""Version counter on payments and webhook deliveries (their lifecycles now go through the engine)

Revision ID: 9513c9d1e0ce
Revises: efb0c7ce9ea9
Create Date: 2026-12-03 08:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9513c9d1e0ce'
down_revision = 'efb0c7ce9ea9'
branch_labels = None
depends_on = None

TABLES = ("payments", "webhook_deliveries")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade():
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("version")
