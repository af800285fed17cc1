"""digests: the plant file's `digests` schedule, the decision reminder interval, what was sent

Revision ID: 0015
Revises: 0013

`plants.digests` keeps the validated `digests` section (per-shift and daily digests, their
roles and times); `plants.remind_every_s` the `decisions.remind_every` interval (none: two
hours). `digest_marks` holds, per plant and digest kind, the moment up to which every period's
digest was handled, so a restart or a second replica sends none twice.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digests', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('remind_every_s', sa.Float(), nullable=True))
    op.create_table('digest_marks',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('done_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('plant_id', 'kind')
    )


def downgrade() -> None:
    op.drop_table('digest_marks')
    with op.batch_alter_table('plants', schema=None) as batch_op:
        batch_op.drop_column('remind_every_s')
        batch_op.drop_column('digests')
