"""Quality inspection results (issue 12, point 3): the drift state of each machine's characteristics

`quality_charts` keeps, per plant, machine and characteristic, the run of results on one side
of the centre line and the run rising or falling, and whether each run has warned already.

Revision ID: 0020
Revises: 0018
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0020'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quality_charts',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('machine_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('characteristic', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('side', sa.Integer(), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('run_warned', sa.Boolean(), nullable=False),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('direction', sa.Integer(), nullable=False),
    sa.Column('trend', sa.Integer(), nullable=False),
    sa.Column('trend_warned', sa.Boolean(), nullable=False),
    sa.Column('results', sa.Integer(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('plant_id', 'machine_id', 'characteristic')
    )


def downgrade() -> None:
    op.drop_table('quality_charts')
