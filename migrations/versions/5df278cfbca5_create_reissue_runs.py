"""create reissue_runs (re-issue of certificates as new revisions, in one job with progress)

Revision ID: 5df278cfbca5
Revises: 8937d3ed36ff
Create Date: 2026-12-03 07:53:07.280548

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5df278cfbca5'
down_revision = '8937d3ed36ff'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reissue_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'failed', name='reissuestatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('certificate_ids', sa.JSON(), nullable=False),
    sa.Column('processed', sa.JSON(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('reissued_count', sa.Integer(), nullable=False),
    sa.Column('emailed_count', sa.Integer(), nullable=False),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_reissue_runs_created_by_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_reissue_runs_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reissue_runs'))
    )
    with op.batch_alter_table('reissue_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reissue_runs_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reissue_runs_status'), ['status'], unique=False)



def downgrade():
    with op.batch_alter_table('reissue_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reissue_runs_status'))
        batch_op.drop_index(batch_op.f('ix_reissue_runs_customer_id'))

    op.drop_table('reissue_runs')
