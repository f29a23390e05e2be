"""create holder import, mass generation and sent certificate tables

Revision ID: d4f6182b3e54
Revises: c3e5071a2d43
Create Date: 2026-11-23 17:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4f6182b3e54'
down_revision = 'c3e5071a2d43'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('generation_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'failed', 'expired', name='generationstatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('mode', sa.Enum('zip', 'merged', name='generationmode', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('kind', sa.Enum('coi', 'coi_wos', 'poi', name='requesttype', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('holder_ids', sa.JSON(), nullable=False),
    sa.Column('record_sent', sa.Boolean(), nullable=False),
    sa.Column('email_holders', sa.Boolean(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('emailed_count', sa.Integer(), nullable=False),
    sa.Column('file_key', sa.String(length=80), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_generation_runs_created_by_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_generation_runs_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generation_runs'))
    )
    with op.batch_alter_table('generation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_generation_runs_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_runs_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_runs_status'), ['status'], unique=False)
    op.create_table('holder_import_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('holders', 'links', name='importkind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('status', sa.Enum('validating', 'preview', 'importing', 'done', 'failed', 'cancelled', name='importstatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('file_key', sa.String(length=80), nullable=True),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('processed_rows', sa.Integer(), nullable=False),
    sa.Column('valid_rows', sa.Integer(), nullable=False),
    sa.Column('error_rows', sa.Integer(), nullable=False),
    sa.Column('created_count', sa.Integer(), nullable=False),
    sa.Column('updated_count', sa.Integer(), nullable=False),
    sa.Column('unchanged_count', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('preview', sa.JSON(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_holder_import_runs_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holder_import_runs'))
    )
    with op.batch_alter_table('holder_import_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_holder_import_runs_status'), ['status'], unique=False)
    op.create_table('sent_certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=True),
    sa.Column('generation_run_id', sa.Integer(), nullable=True),
    sa.Column('holder_name', sa.String(length=200), nullable=False),
    sa.Column('holder_email', sa.String(length=254), nullable=False),
    sa.Column('kind', sa.Enum('coi', 'coi_wos', 'poi', name='requesttype', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('document_key', sa.String(length=80), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('emailed', sa.Boolean(), nullable=False),
    sa.Column('sent_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sent_certificates_customer_id_customers')),
    sa.ForeignKeyConstraint(['generation_run_id'], ['generation_runs.id'], name=op.f('fk_sent_certificates_generation_run_id_generation_runs')),
    sa.ForeignKeyConstraint(['holder_id'], ['holders.id'], name=op.f('fk_sent_certificates_holder_id_holders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sent_by_id'], ['users.id'], name=op.f('fk_sent_certificates_sent_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sent_certificates')),
    sa.UniqueConstraint('generation_run_id', 'holder_id', name='uq_sent_certificates_run_holder')
    )
    with op.batch_alter_table('sent_certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sent_certificates_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sent_certificates_generation_run_id'), ['generation_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sent_certificates_holder_id'), ['holder_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sent_certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sent_certificates_holder_id'))
        batch_op.drop_index(batch_op.f('ix_sent_certificates_generation_run_id'))
        batch_op.drop_index(batch_op.f('ix_sent_certificates_customer_id'))

    op.drop_table('sent_certificates')
    with op.batch_alter_table('holder_import_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_holder_import_runs_status'))

    op.drop_table('holder_import_runs')
    with op.batch_alter_table('generation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generation_runs_status'))
        batch_op.drop_index(batch_op.f('ix_generation_runs_expires_at'))
        batch_op.drop_index(batch_op.f('ix_generation_runs_customer_id'))

    op.drop_table('generation_runs')
