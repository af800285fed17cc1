"""erp transactions named by a random public id in buttons and the console (issue 17)

Revision ID: 0008
Revises: 0007

A rejected ERP transaction is retried or abandoned from its thread (`erp_retry:<public_id>`,
`erp_abandon:<public_id>`) and from the console: the button names the row by a random id, never
its integer key. Rows already stored get one here.
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('erp_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_id', sa.String(length=32), nullable=True))
    rows = sa.table('erp_transactions', sa.column('id', sa.Integer()), sa.column('public_id', sa.String()))
    connection = op.get_bind()
    for (row_id,) in connection.execute(sa.select(rows.c.id)).all():
        connection.execute(rows.update().where(rows.c.id == row_id).values(public_id=secrets.token_hex(10)))
    with op.batch_alter_table('erp_transactions', schema=None) as batch_op:
        batch_op.alter_column('public_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint('uq_erp_transactions_public_id', ['public_id'])


def downgrade() -> None:
    with op.batch_alter_table('erp_transactions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_erp_transactions_public_id', type_='unique')
        batch_op.drop_column('public_id')
