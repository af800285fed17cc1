"""signals: the plant file's `signals` section and a machine's minimum downtime (issue 12)

Revision ID: 0010
Revises: 0009

`plants.signals` keeps the validated `signals` section (the flapping limit is read while
processing); on `machines`, `min_down_s` is the plant file's `min_down`, and `down_since`,
`breakdown_due_at` and `stops` are what state signals leave between messages: when the
machine stopped, when its breakdown opens if it is still down, and its recent stops.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signals', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('machines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_down_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('down_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('breakdown_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('stops', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('machines', schema=None) as batch_op:
        batch_op.drop_column('stops')
        batch_op.drop_column('breakdown_due_at')
        batch_op.drop_column('down_since')
        batch_op.drop_column('min_down_s')
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.drop_column('signals')
