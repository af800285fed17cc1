"""outbound channel state: button updates, delivery status (issue 10/11)

Revision ID: 0005
Revises: 0004
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updates_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_notifications_updates_id', 'notifications', ['updates_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint('fk_notifications_updates_id', type_='foreignkey')
        batch_op.drop_column('updates_id')
