"""insight indexes: the KPIs and the export read exceptions by period (issue 13)

Revision ID: 0008
Revises: 0007

`routing/kpis.py` and `routing/export.py` select a plant's exceptions by `opened_at`; the
timeline and outbox look-ups by exception already have their indexes. Work orders due in a
period are read by `end`.
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_exceptions_plant_opened', 'exceptions', ['plant_id', 'opened_at'])
    op.create_index('ix_work_orders_plant_end', 'work_orders', ['plant_id', 'end'])


def downgrade() -> None:
    op.drop_index('ix_work_orders_plant_end', table_name='work_orders')
    op.drop_index('ix_exceptions_plant_opened', table_name='exceptions')
