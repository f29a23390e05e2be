"""Migrations build an empty database up to head, and the models match them."""

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from tests.conftest import _config


@pytest.fixture
def empty_database_url(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"certdesk_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_to_head_and_no_pending_diff(empty_database_url, tmp_path):
    app = create_app(_config(empty_database_url, upload_dir=str(tmp_path)))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
            assert "users" in sa.inspect(conn).get_table_names()
            # the triggers that move the queue's data version (app/models/versions.py) exist after migrating:
            # a later migration that rebuilds one of these tables (SQLite batch mode) must create them again
            if conn.dialect.name == "postgresql":
                triggers = conn.execute(sa.text("SELECT tgrelid::regclass::text FROM pg_trigger "
                                                "WHERE tgname = 'queue_version'")).scalars().all()
            else:
                triggers = conn.execute(sa.text("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' "
                                                "AND name LIKE 'queue_version_%'")).scalars().all()
        assert {"certificate_requests", "customers", "users"} <= set(triggers), triggers
        db.engine.dispose()
    assert diff == [], f"models and migrations differ; run `flask db migrate`: {diff}"
