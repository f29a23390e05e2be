"""COI request decision and issuing sub-states: real state columns (with their own transition tables in
the lifecycle engine) instead of needs_manual and the issuing columns read together; existing rows are
filled in from what those columns said

Revision ID: efb0c7ce9ea9
Revises: 4d26e2e528c3
Create Date: 2026-12-03 07:57:15.553812

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'efb0c7ce9ea9'
down_revision = '4d26e2e528c3'
branch_labels = None
depends_on = None

requests = sa.table(
    "certificate_requests", sa.column("status", sa.String), sa.column("needs_manual", sa.Boolean),
    sa.column("manual_reason", sa.String), sa.column("issue_requested_at", sa.DateTime),
    sa.column("issue_error", sa.String), sa.column("decision", sa.String), sa.column("issuing", sa.String))
OPEN = ("new", "in_progress")
# SQLite's batch mode rebuilds the table, which drops its triggers: the queue's data-version triggers
# (migration 4d26e2e528c3, as they were then) are created again after each rebuild.
SQLITE_BUMP = ("INSERT INTO data_versions (name, version) VALUES ('queue', 1) "
               "ON CONFLICT (name) DO UPDATE SET version = version + 1;")


def _sqlite_triggers_again():
    if op.get_bind().dialect.name != "sqlite":
        return
    for event in ("INSERT", "UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER IF NOT EXISTS queue_version_certificate_requests_{event.lower()} "
                   f"AFTER {event} ON certificate_requests BEGIN {SQLITE_BUMP} END")


def upgrade():
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decision', sa.Enum('undecided', 'manual', 'auto', name='automationdecision', native_enum=False, create_constraint=True, length=32), server_default='undecided', nullable=False))
        batch_op.add_column(sa.Column('issuing', sa.Enum('none', 'pending', 'failed', 'issued', name='issuestate', native_enum=False, create_constraint=True, length=32), server_default='none', nullable=False))
        batch_op.create_index(batch_op.f('ix_certificate_requests_issuing'), ['issuing'], unique=False)
    r = requests.c
    # automatic: issued without staff; manual: the automatic check (or the demo) said why not
    op.execute(requests.update().where(r.needs_manual == sa.false()).values(decision="auto"))
    op.execute(requests.update().where(r.needs_manual == sa.true(), r.manual_reason != "").values(decision="manual"))
    op.execute(requests.update().where(r.status == "completed").values(issuing="issued"))
    op.execute(requests.update().where(r.status.in_(OPEN), r.issue_requested_at.is_not(None)).values(issuing="pending"))
    op.execute(requests.update().where(r.issuing == "none", r.issue_error != "").values(issuing="failed"))
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.drop_column('needs_manual')
    _sqlite_triggers_again()


def downgrade():
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_manual', sa.BOOLEAN(), server_default=sa.true(), nullable=False))
    r = requests.c
    op.execute(requests.update().where(r.decision == "auto").values(needs_manual=sa.false()))
    with op.batch_alter_table('certificate_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_requests_issuing'))
        batch_op.drop_constraint('issuestate', type_='check')
        batch_op.drop_constraint('automationdecision', type_='check')
        batch_op.drop_column('issuing')
        batch_op.drop_column('decision')
    _sqlite_triggers_again()
