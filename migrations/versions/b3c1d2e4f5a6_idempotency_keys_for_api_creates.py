"""Idempotency keys for API calls that create exemption requests

Revision ID: b3c1d2e4f5a6
Revises: bb16b2425cd8
Create Date: 2026-12-02 23:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b3c1d2e4f5a6'
down_revision = 'bb16b2425cd8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'idempotency_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=80), nullable=False),
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('body_hash', sa.String(length=64), nullable=False),
        sa.Column('resource_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
        sa.UniqueConstraint('scope', 'key', name='uq_idempotency_keys_scope_key'),
    )


def downgrade():
    op.drop_table('idempotency_keys')
