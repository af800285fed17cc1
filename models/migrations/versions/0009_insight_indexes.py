"""insight indexes: the KPIs and the export read exceptions by period (issue 13)

Revision ID: 0009
Revises: 0008

`routing/kpis.py` and `routing/export.py` select a plant's exceptions by `opened_at`, and what
happened to them (timeline events, notifications, ERP transactions) by time as well, so a
week's figures read a week's rows, not a year's. Work orders due in a period are read by `end`, and the MES's reports on them through a
partial index of work-order signals only (chat and machine signals, nearly all, skip it).
The time columns only grow, so these indexes are appended to at their right edge.
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_exceptions_plant_opened', 'exceptions', ['plant_id', 'opened_at'])
    op.create_index('ix_work_orders_plant_end', 'work_orders', ['plant_id', 'end'])
    op.create_index('ix_timeline_events_at', 'timeline_events', ['at'])
    op.create_index('ix_notifications_created_at', 'notifications', ['created_at'])
    op.create_index('ix_erp_transactions_created_at', 'erp_transactions', ['created_at'])
    op.create_index('ix_signals_work_orders', 'signals', ['received_at'],
                    postgresql_where=sa.text("kind = 'work_order'"), sqlite_where=sa.text("kind = 'work_order'"))


def downgrade() -> None:
    op.drop_index('ix_signals_work_orders', table_name='signals')
    op.drop_index('ix_erp_transactions_created_at', table_name='erp_transactions')
    op.drop_index('ix_notifications_created_at', table_name='notifications')
    op.drop_index('ix_timeline_events_at', table_name='timeline_events')
    op.drop_index('ix_work_orders_plant_end', table_name='work_orders')
    op.drop_index('ix_exceptions_plant_opened', table_name='exceptions')
