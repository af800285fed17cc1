"""exception figures: each exception's KPI figures kept as they happen (routing/figures.py)

Revision ID: 0023
Revises: 0019

`exception_figures` holds per exception the moments and counts the KPIs aggregate, so a
year's KPIs read one narrow row per exception instead of its million timeline events;
`figure_orders` the customer orders each named at risk, `figure_order_lasts` when each order was
last named; `figures_marks`, per plant, up to
when they are up to date. Filled on first use: nothing to copy here.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0023'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exception_figures',
    sa.Column('exception_id', sa.Integer(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('area_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('running_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('approved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('posted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('escalations', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('erp_rows', sa.Integer(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('notify_seconds', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('exception_id')
    )
    op.create_index('ix_exception_figures_plant_opened', 'exception_figures', ['plant_id', 'opened_at'], unique=False)
    op.create_index('ix_exception_figures_plant_notify', 'exception_figures',
                    ['plant_id', 'notify_seconds', 'opened_at'], unique=False)
    op.create_table('figure_orders',
    sa.Column('exception_id', sa.Integer(), nullable=False),
    sa.Column('customer_order', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('exception_id', 'customer_order')
    )
    op.create_index('ix_figure_orders_plant_order', 'figure_orders', ['plant_id', 'customer_order', 'opened_at'],
                    unique=False)
    ints = ('opened', 'closed', 'ack_n', 'breakdowns', 'breakdown_repair_n', 'resolution_n', 'erp_latency_n',
            'repair_n', 'unrepaired_breakdowns', 'escalations', 'escalated', 'rejected', 'erp_rows', 'messages',
            'people', 'notified')
    op.create_table('figure_days',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('area_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    *(sa.Column(name, sa.Integer(), nullable=False) for name in ints[:2]),
    sa.Column('ack_sum', sa.Float(), nullable=False),
    *(sa.Column(name, sa.Integer(), nullable=False) for name in ('ack_n', 'breakdowns')),
    sa.Column('breakdown_repair_sum', sa.Float(), nullable=False),
    sa.Column('breakdown_repair_n', sa.Integer(), nullable=False),
    sa.Column('resolution_sum', sa.Float(), nullable=False),
    sa.Column('resolution_n', sa.Integer(), nullable=False),
    sa.Column('erp_latency_sum', sa.Float(), nullable=False),
    sa.Column('erp_latency_n', sa.Integer(), nullable=False),
    sa.Column('repair_sum', sa.Float(), nullable=False),
    sa.Column('repair_n', sa.Integer(), nullable=False),
    sa.Column('unrepaired_breakdowns', sa.Integer(), nullable=False),
    sa.Column('unrepaired_opened_sum', sa.Float(), nullable=False),
    *(sa.Column(name, sa.Integer(), nullable=False) for name in ints[9:]),
    sa.PrimaryKeyConstraint('plant_id', 'day', 'type', 'area_id')
    )
    op.create_table('figure_order_lasts',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('customer_order', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('last_opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('plant_id', 'customer_order')
    )
    op.create_index('ix_figure_order_lasts_plant_opened', 'figure_order_lasts', ['plant_id', 'last_opened_at'],
                    unique=False)
    op.create_table('figures_marks',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('done_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('plant_id')
    )


def downgrade() -> None:
    op.drop_table('figures_marks')
    op.drop_index('ix_figure_order_lasts_plant_opened', table_name='figure_order_lasts')
    op.drop_table('figure_order_lasts')
    op.drop_table('figure_days')
    op.drop_index('ix_figure_orders_plant_order', table_name='figure_orders')
    op.drop_table('figure_orders')
    op.drop_index('ix_exception_figures_plant_notify', table_name='exception_figures')
    op.drop_index('ix_exception_figures_plant_opened', table_name='exception_figures')
    op.drop_table('exception_figures')
