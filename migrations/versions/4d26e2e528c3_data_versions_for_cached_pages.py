"""Data versions for cached pages: the queue's version, moved by triggers

Revision ID: 4d26e2e528c3
Revises: 5df278cfbca5
Create Date: 2026-12-03 07:46:56.496336

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4d26e2e528c3'
down_revision = '5df278cfbca5'
branch_labels = None
depends_on = None

# As in app/models/versions.py when this migration was written (a later change there needs a migration).
SOURCES = (
    ("certificate_requests", "INSERT OR UPDATE OR DELETE"),
    ("customers", "UPDATE OF name"),
    ("users", "UPDATE OF name"),
)
POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION certdesk_bump_queue_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('certdesk.queue_version_bumped', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('certdesk.queue_version_bumped', 'on', true);
    INSERT INTO data_versions (name, version) VALUES ('queue', 1)
        ON CONFLICT (name) DO UPDATE SET version = data_versions.version + 1;
    RETURN NULL;
END
$$
"""
SQLITE_BUMP = ("INSERT INTO data_versions (name, version) VALUES ('queue', 1) "
               "ON CONFLICT (name) DO UPDATE SET version = version + 1;")


def _sqlite_triggers():
    for table, events in SOURCES:
        for event in events.split(" OR "):
            yield f"queue_version_{table}_{event.split()[0].lower()}", table, event


def upgrade():
    op.create_table('data_versions',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_data_versions'))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        for table, events in SOURCES:
            op.execute(f"CREATE CONSTRAINT TRIGGER queue_version AFTER {events} ON {table} "
                       "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION certdesk_bump_queue_version()")
    else:
        for name, table, event in _sqlite_triggers():
            op.execute(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} BEGIN {SQLITE_BUMP} END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table, _events in SOURCES:
            op.execute(f"DROP TRIGGER IF EXISTS queue_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS certdesk_bump_queue_version()")
    else:
        for name, _table, _event in _sqlite_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('data_versions')
