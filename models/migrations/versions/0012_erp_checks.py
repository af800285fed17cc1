"""the last ERP preflight per plant, shown in the console (issue 17)

Revision ID: 0012
Revises: 0011

`serve` checks the plant's `erp:` settings against the ERP at start and before every sync;
the result is stored so that every replica's console shows the same problems.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'erp_checks',
        sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('erp', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('checked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('problems', sa.JSON(), nullable=False),
        sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(['plant_id'], ['plants.id']),
        sa.PrimaryKeyConstraint('plant_id'),
    )


def downgrade() -> None:
    op.drop_table('erp_checks')
