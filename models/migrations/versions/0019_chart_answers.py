"""Charts in answers (issue 13, point 4): `notifications.chart`, the figures a trend or ranking answer draws

Revision ID: 0019
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('notifications', sa.Column('chart', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('notifications', 'chart')
