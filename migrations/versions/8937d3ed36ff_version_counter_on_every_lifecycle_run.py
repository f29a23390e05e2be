"""Version counter on every lifecycle run (the lifecycle engine checks it in the UPDATE)

Revision ID: 8937d3ed36ff
Revises: 06927b8d7777
Create Date: 2026-12-03 07:33:02.445083

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8937d3ed36ff'
down_revision = '06927b8d7777'
branch_labels = None
depends_on = None

TABLES = ("exemption_audit_packs", "exemption_send_runs", "generation_runs", "holder_import_runs")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade():
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("version")
