"""pgfast: NOTIFY on new signals and outbox rows (PostgreSQL); chat windows in the store

Revision ID: 0011
Revises: 0010

Statement triggers send `NOTIFY mfgos_signal` when signals are stored and `NOTIFY
mfgos_outbox` when notification rows are written, delivered at commit. Inbound workers
(mfgos/workers.py) wait on the first, the web process's outbox on the second, so no writer
spends a round trip announcing its rows and every writer (webhooks, workers, timers, the ERP
outbox, the console, another replica) is heard. SQLite has no NOTIFY: no triggers there.

`chat_windows` keeps when an address last wrote (WhatsApp's 24-hour window), which lived in
one replica's memory.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

TRIGGERS = (("signals", "mfgos_signal"), ("notifications", "mfgos_outbox"))


def upgrade() -> None:
    op.create_table('chat_windows',
                    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('heard_at', sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint('channel', 'address'))
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, channel in TRIGGERS:
        op.execute(f"""
            CREATE OR REPLACE FUNCTION {table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('{channel}', '');
                RETURN NULL;
            END $$""")
        op.execute(f"CREATE TRIGGER {table}_notify AFTER INSERT ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _ in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_notify()")
    op.drop_table('chat_windows')
