"""add intake idempotency key and the sandbox payment ledger

Revision ID: b2d4f6081c32
Revises: a1c3e5f70b21
Create Date: 2026-11-23 17:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b2d4f6081c32'
down_revision = 'a1c3e5f70b21'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sandbox_charges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('charge_id', sa.String(length=40), nullable=False),
    sa.Column('card_token', sa.String(length=64), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_charges')),
    sa.UniqueConstraint('charge_id', name=op.f('uq_sandbox_charges_charge_id')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sandbox_charges_idempotency_key'))
    )
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_certificate_requests_idempotency_key'), ['idempotency_key'])


def downgrade():
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_certificate_requests_idempotency_key'), type_='unique')
        batch_op.drop_column('idempotency_key')

    op.drop_table('sandbox_charges')
