"""Data versions: counters the database itself moves on every change of what a cached page shows.

``queue``: any insert, update or delete of a certificate request, and any change of a customer's or a
user's name (the staff queue shows both). Triggers move it (so a bulk ``UPDATE`` counts as much as an ORM
change): on PostgreSQL a deferred constraint trigger, once per transaction at commit (no lock is held
while the transaction runs, and the new version becomes visible together with the change); on SQLite a
trigger per row. A reader reads the version *before* the data it renders, so what it keeps under a
version is never older than that version (app/dashboard/queue.py).

The same SQL is in the migration that created the table (migrations stay as they were written).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


class DataVersion(db.Model):
    __tablename__ = "data_versions"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    version: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)


# (table, events) whose changes move the queue's version.
QUEUE_SOURCES = (
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


def queue_version_ddl(dialect: str) -> list[str]:
    """The statements that make the database move the queue's version (idempotent)."""
    if dialect == "postgresql":
        statements = [POSTGRESQL_FUNCTION]
        for table, events in QUEUE_SOURCES:
            statements += [
                f"DROP TRIGGER IF EXISTS queue_version ON {table}",
                f"CREATE CONSTRAINT TRIGGER queue_version AFTER {events} ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION certdesk_bump_queue_version()",
            ]
        return statements
    statements = []
    for table, events in QUEUE_SOURCES:
        for event in events.split(" OR "):
            name = f"queue_version_{table}_{event.split()[0].lower()}"
            statements.append(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} "
                              f"BEGIN {SQLITE_BUMP} END")
    return statements


@sa.event.listens_for(db.metadata, "after_create")
def _create_version_triggers(target, connection, **kw) -> None:
    """``db.create_all()`` (tests, benchmarks, a first start without migrations) installs the triggers too."""
    for statement in queue_version_ddl(connection.dialect.name):
        connection.exec_driver_sql(statement)
