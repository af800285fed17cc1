"""MES write-back (issue 12, point 5): its outbox, the local MES's book, the plant file's `mes:` section

`mes_transactions` holds what goes to the MES (machine status, work-order hold and resume,
downtime reason code), one row per exception and slot; `mes_documents` is the book of the
`local` MES adapter; `plants.mes` keeps the plant file's `mes:` section.

Revision ID: 0017
Revises: 0013
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mes_transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('exception_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('slot', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['exception_id'], ['exceptions.id'], ),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('exception_id', 'slot'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('mes_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mes_transactions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mes_transactions_exception_id'), ['exception_id'], unique=False)
        batch_op.create_index('ix_mes_transactions_pending', ['status', 'next_attempt_at'], unique=False)
    op.create_table('mes_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('posted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mes', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.drop_column('mes')
    op.drop_table('mes_documents')
    with op.batch_alter_table('mes_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_mes_transactions_pending')
        batch_op.drop_index(batch_op.f('ix_mes_transactions_exception_id'))
        batch_op.drop_index(batch_op.f('ix_mes_transactions_created_at'))
    op.drop_table('mes_transactions')
