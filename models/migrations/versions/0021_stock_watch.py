"""stock watch (issue 12, point 4): the plant file's `stock_watch:`, the stock at the last read, the last run

`plants.stock_watch` keeps the validated section (how often, how far ahead); `stock_levels`
the quantity of each material per place (usable or blocked) at the watch's last read, so the
next read sees what moved; `stock_watch_runs` when the watch last ran per plant and why it
could not read the ERP.

Revision ID: 0021
Revises: 0017
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0021'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stock_watch', sa.JSON(), nullable=False, server_default='{}'))
    op.create_table('stock_levels',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('material_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('location', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('blocked', sa.Boolean(), nullable=False),
    sa.Column('quantity', sa.Float(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('plant_id', 'material_id', 'location', 'blocked')
    )
    op.create_table('stock_watch_runs',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ran_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('erp', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('materials', sa.Integer(), nullable=False),
    sa.Column('shortages', sa.JSON(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('plant_id')
    )


def downgrade() -> None:
    op.drop_table('stock_watch_runs')
    op.drop_table('stock_levels')
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.drop_column('stock_watch')
