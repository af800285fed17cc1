"""decision parts of an exception, plant approvals, machine kinds (issue 16)

`exception_decisions` holds each role's decision on an exception (reschedule, material request,
customer-order date); `plant_approvals` names who approves each kind; `machines.kind` and
`machines.mttr_minutes` let the planner's options find sister machines and repair times.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exception_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('exception_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('proposed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('erp_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('reminded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['exception_id'], ['exceptions.id'], ),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('exception_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exception_decisions_exception_id'), ['exception_id'], unique=False)
    op.create_table('plant_approvals',
    sa.Column('plant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], ),
    sa.PrimaryKeyConstraint('plant_id', 'kind')
    )
    with op.batch_alter_table('machines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('mttr_minutes', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('machines', schema=None) as batch_op:
        batch_op.drop_column('mttr_minutes')
        batch_op.drop_column('kind')
    op.drop_table('plant_approvals')
    with op.batch_alter_table('exception_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exception_decisions_exception_id'))
    op.drop_table('exception_decisions')
