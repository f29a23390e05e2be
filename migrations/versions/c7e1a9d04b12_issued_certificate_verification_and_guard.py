"""Issued certificates: number kept across revisions, SHA-256, verification code, guard result,
superseded by; sent certificates point at theirs; the banned-wording list.

Revision ID: c7e1a9d04b12
Revises: ade9533617c5
Create Date: 2026-12-02 22:10:00

"""
import sqlalchemy as sa
from alembic import op

import app.models.base

revision = 'c7e1a9d04b12'
down_revision = 'ade9533617c5'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'banned_wordings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phrase', sa.String(length=120), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_banned_wordings')),
        sa.UniqueConstraint('phrase', name=op.f('uq_banned_wordings_phrase')),
    )
    with op.batch_alter_table('issued_certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sha256', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('verification_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('guard', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('superseded_at', app.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('superseded_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('generation_run_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint('uq_issued_certificates_certificate_number', type_='unique')
        batch_op.create_unique_constraint('uq_issued_certificates_number_revision', ['certificate_number', 'revision'])
        batch_op.create_unique_constraint(batch_op.f('uq_issued_certificates_verification_code'),
                                          ['verification_code'])
        batch_op.create_index(batch_op.f('ix_issued_certificates_certificate_number'), ['certificate_number'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_issued_certificates_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_issued_certificates_generation_run_id'), ['generation_run_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_issued_certificates_superseded_by_id_issued_certificates'),
                                    'issued_certificates', ['superseded_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_issued_certificates_generation_run_id_generation_runs'),
                                    'generation_runs', ['generation_run_id'], ['id'])
    with op.batch_alter_table('sent_certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('certificate_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_sent_certificates_certificate_id'), ['certificate_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_sent_certificates_certificate_id_issued_certificates'),
                                    'issued_certificates', ['certificate_id'], ['id'])


def downgrade():
    with op.batch_alter_table('sent_certificates', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sent_certificates_certificate_id_issued_certificates'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_sent_certificates_certificate_id'))
        batch_op.drop_column('certificate_id')
    with op.batch_alter_table('issued_certificates', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_issued_certificates_generation_run_id_generation_runs'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_issued_certificates_superseded_by_id_issued_certificates'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_issued_certificates_generation_run_id'))
        batch_op.drop_index(batch_op.f('ix_issued_certificates_sha256'))
        batch_op.drop_index(batch_op.f('ix_issued_certificates_certificate_number'))
        batch_op.drop_constraint(batch_op.f('uq_issued_certificates_verification_code'), type_='unique')
        batch_op.drop_constraint('uq_issued_certificates_number_revision', type_='unique')
        batch_op.create_unique_constraint('uq_issued_certificates_certificate_number', ['certificate_number'])
        batch_op.drop_column('generation_run_id')
        batch_op.drop_column('superseded_by_id')
        batch_op.drop_column('superseded_at')
        batch_op.drop_column('guard')
        batch_op.drop_column('verification_code')
        batch_op.drop_column('sha256')
    op.drop_table('banned_wordings')
