"""conversation state and lifecycle (issue 11)

The bot's open questions move from `pending_reports` (report questions only) to one
`conversations` row per person, which also holds "which exception do you mean?" questions;
`stranger_replies` throttles the "not registered" answer. An unanswered report question is
carried over (the newest per person), so an answer after the upgrade still completes it.

Revision ID: 0004
Revises: 0003
"""
from datetime import timedelta

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

QUESTION_TTL = timedelta(minutes=30)  # as routing.conversation.QUESTION_TTL when this revision was written


def upgrade() -> None:
    conversations = op.create_table('conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('pending', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('questions', sa.Integer(), nullable=False),
    sa.Column('signal_id', sa.Integer(), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('asked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.ForeignKeyConstraint(['signal_id'], ['signals.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plant_id', 'person_id')
    )
    op.create_table('stranger_replies',
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('replied_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('channel', 'address')
    )
    pending = sa.table('pending_reports', sa.column('id', sa.Integer()), sa.column('plant_id', sa.String()),
                       sa.column('person_id', sa.String()), sa.column('signal_id', sa.Integer()),
                       sa.column('text', sa.String()), sa.column('extraction', sa.JSON()),
                       sa.column('missing', sa.String()), sa.column('candidates', sa.JSON()),
                       sa.column('created_at', sqlmodel.sql.sqltypes.UTCDateTime()),
                       sa.column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime()))
    newest: dict[tuple[str, str], dict] = {}
    for row in op.get_bind().execute(sa.select(pending).where(pending.c.resolved_at.is_(None))
                                     .order_by(pending.c.id)).mappings():
        newest[(row['plant_id'], row['person_id'])] = dict(row)
    if newest:
        op.bulk_insert(conversations, [{
            'plant_id': row['plant_id'], 'person_id': row['person_id'],
            'state': 'awaiting_machine' if row['missing'] == 'machine' else 'awaiting_type',
            'pending': {'text': row['text'], 'extraction': row['extraction']}, 'options': row['candidates'] or [],
            'questions': 1, 'signal_id': row['signal_id'], 'channel': None, 'asked_at': row['created_at'],
            'expires_at': row['created_at'] + QUESTION_TTL if row['created_at'] else None,
        } for row in newest.values()])
    with op.batch_alter_table('pending_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_reports_person_id'))
    op.drop_table('pending_reports')


def downgrade() -> None:
    op.create_table('pending_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('signal_id', sa.Integer(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('extraction', sa.JSON(), nullable=False),
    sa.Column('missing', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('candidates', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.ForeignKeyConstraint(['signal_id'], ['signals.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pending_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_reports_person_id'), ['person_id'], unique=False)
    op.drop_table('stranger_replies')
    op.drop_table('conversations')
