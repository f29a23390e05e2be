"""Certificate review drafts: the review form as a processor typed it, kept across reloads

Revision ID: 3bb58b652186
Revises: 4aeca065666d
Create Date: 2026-12-03 07:32:52.962212

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3bb58b652186'
down_revision = '4aeca065666d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('certificate_review_drafts',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('saved_by_id', sa.Integer(), nullable=True),
    sa.Column('saved_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['certificate_requests.id'], name=op.f('fk_certificate_review_drafts_request_id_certificate_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['saved_by_id'], ['users.id'], name=op.f('fk_certificate_review_drafts_saved_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_certificate_review_drafts'))
    )


def downgrade():
    op.drop_table('certificate_review_drafts')
