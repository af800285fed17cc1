"""materials.lead_time_minutes: a material's lead time, for a shortage's options (issue 16)

The plant file's `lead_time` on a material: how long a new supply takes, so the planner's
"wait for the material" has a time when no expedite or transfer of it is approved yet.

Revision ID: 0016
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('materials') as batch:
        batch.add_column(sa.Column('lead_time_minutes', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('materials') as batch:
        batch.drop_column('lead_time_minutes')
