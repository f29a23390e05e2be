"""Store the holders of a generation run as rows, not a JSON list

Revision ID: e5a7c9b1d3f4
Revises: b3c1d2e4f5a6
Create Date: 2026-12-02 22:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5a7c9b1d3f4'
down_revision = 'b3c1d2e4f5a6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('generation_run_holders',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['holder_id'], ['holders.id'], name=op.f('fk_generation_run_holders_holder_id_holders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['generation_runs.id'], name=op.f('fk_generation_run_holders_run_id_generation_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'position', name=op.f('pk_generation_run_holders'))
    )
    # Runs still waiting keep their chosen holders (finished runs no longer need them).
    runs = sa.table('generation_runs', sa.column('id', sa.Integer), sa.column('status', sa.String),
                    sa.column('holder_ids', sa.JSON))
    rows = sa.table('generation_run_holders', sa.column('run_id', sa.Integer), sa.column('position', sa.Integer),
                    sa.column('holder_id', sa.Integer))
    conn = op.get_bind()
    for run_id, holder_ids in conn.execute(sa.select(runs.c.id, runs.c.holder_ids)
                                           .where(runs.c.status.in_(['queued', 'running']))).all():
        values = [{'run_id': run_id, 'position': i, 'holder_id': h} for i, h in enumerate(holder_ids or [], start=1)]
        for start in range(0, len(values), 1000):
            conn.execute(rows.insert(), values[start:start + 1000])
    with op.batch_alter_table('generation_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('all_holders', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_column('holder_ids')


def downgrade():
    with op.batch_alter_table('generation_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holder_ids', sa.JSON(), server_default='[]', nullable=False))
        batch_op.drop_column('all_holders')
    op.drop_table('generation_run_holders')
