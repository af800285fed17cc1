"""baseline: the plant file's `baseline:` section, the plant's figures from before mfgos

Revision ID: 0018
Revises: 0023

`plants.baseline` keeps the validated section (MTTR, schedule adherence, status calls a week,
ERP correction rate; overall and per exception type), which routing/outcomes.py compares the
four outcomes with. Empty: nothing to compare with.
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('baseline', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.drop_column('baseline')
