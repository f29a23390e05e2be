"""add insurers, endorsements, policy status and renewals, customer external ids

Existing policies keep their insurer: one insurer row per NAIC number (or per name where a policy had no
valid NAIC number) is created from the policies' free-text insurer columns, which are then dropped.

Revision ID: 2ed328653a5f
Revises: 7e2af976b356
Create Date: 2026-12-02 21:47:02.694168

"""
import re

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '2ed328653a5f'
down_revision = '7e2af976b356'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('insurers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('naic', sa.String(length=5), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_insurers')),
    sa.UniqueConstraint('naic', name=op.f('uq_insurers_naic'))
    )
    op.create_table('endorsements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('additional_insured', 'waiver_of_subrogation', 'primary_noncontributory',
                              'notice_of_cancellation', name='endorsementkind', native_enum=False,
                              create_constraint=True, length=32), nullable=False),
    sa.Column('form_number', sa.String(length=40), nullable=False),
    sa.Column('holder_name', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['policies.id'], name=op.f('fk_endorsements_policy_id_policies'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endorsements'))
    )
    with op.batch_alter_table('endorsements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endorsements_policy_id'), ['policy_id'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('status_reason', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('language', sa.Enum('en', 'es', name='language', native_enum=False,
                                                          create_constraint=True, length=8),
                                      server_default='en', nullable=False))
        batch_op.add_column(sa.Column('card_brand', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('card_exp_month', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('card_exp_year', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_customers_external_id'), ['external_id'])

    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('insurer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('status', sa.Enum('active', 'cancelled', name='policystatus', native_enum=False,
                                                        create_constraint=True, length=32),
                                      server_default='active', nullable=False))
        batch_op.add_column(sa.Column('cancelled_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('coverage', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('supersedes_id', sa.Integer(), nullable=True))

    _insurers_from_policies()

    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.alter_column('insurer_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('coverage', existing_type=sa.JSON(), nullable=False)
        batch_op.create_index(batch_op.f('ix_policies_insurer_id'), ['insurer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_policies_supersedes_id'), ['supersedes_id'], unique=False)
        batch_op.create_unique_constraint('uq_policies_insurer_line_number', ['insurer_id', 'line', 'policy_number'])
        batch_op.create_foreign_key(batch_op.f('fk_policies_supersedes_id_policies'), 'policies',
                                    ['supersedes_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_policies_insurer_id_insurers'), 'insurers', ['insurer_id'], ['id'])
        batch_op.drop_column('insurer_name')
        batch_op.drop_column('naic_number')


def _insurers_from_policies():
    conn = op.get_bind()
    policies = sa.table('policies', sa.column('id', sa.Integer), sa.column('insurer_name', sa.String),
                        sa.column('naic_number', sa.String), sa.column('insurer_id', sa.Integer),
                        sa.column('coverage', sa.JSON))
    insurers = sa.table('insurers', sa.column('id', sa.Integer), sa.column('name', sa.String),
                        sa.column('naic', sa.String), sa.column('created_at', sa.DateTime(timezone=True)))
    conn.execute(policies.update().values(coverage={}))
    rows = conn.execute(sa.select(policies.c.id, policies.c.insurer_name, policies.c.naic_number)
                        .order_by(policies.c.id)).all()
    by_key: dict[str, int] = {}
    for policy_id, name, naic in rows:
        naic = (naic or "").strip()
        name = (name or "").strip() or "Unknown insurer"
        key = f"naic:{naic}" if re.fullmatch(r"\d{5}", naic) else f"name:{name.lower()}"
        if key not in by_key:
            conn.execute(insurers.insert().values(name=name, naic=naic if key.startswith("naic:") else None,
                                                  created_at=sa.func.now()))
            by_key[key] = conn.execute(sa.select(sa.func.max(insurers.c.id))).scalar_one()
        conn.execute(policies.update().where(policies.c.id == policy_id).values(insurer_id=by_key[key]))


def downgrade():
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('naic_number', sa.VARCHAR(length=10), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('insurer_name', sa.VARCHAR(length=200), nullable=False, server_default=''))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE policies SET insurer_name = (SELECT name FROM insurers WHERE insurers.id = "
                         "policies.insurer_id), naic_number = COALESCE((SELECT naic FROM insurers WHERE "
                         "insurers.id = policies.insurer_id), '')"))
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_policies_insurer_id_insurers'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_policies_supersedes_id_policies'), type_='foreignkey')
        batch_op.drop_constraint('uq_policies_insurer_line_number', type_='unique')
        batch_op.drop_index(batch_op.f('ix_policies_supersedes_id'))
        batch_op.drop_index(batch_op.f('ix_policies_insurer_id'))
        batch_op.drop_constraint(batch_op.f('ck_policies_policystatus'), type_='check')
        batch_op.drop_column('supersedes_id')
        batch_op.drop_column('coverage')
        batch_op.drop_column('cancelled_on')
        batch_op.drop_column('status')
        batch_op.drop_column('insurer_id')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_customers_external_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('ck_customers_language'), type_='check')
        batch_op.drop_column('card_exp_year')
        batch_op.drop_column('card_exp_month')
        batch_op.drop_column('card_brand')
        batch_op.drop_column('language')
        batch_op.drop_column('status_reason')
        batch_op.drop_column('external_id')

    with op.batch_alter_table('endorsements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endorsements_policy_id'))
    op.drop_table('endorsements')
    op.drop_table('insurers')
