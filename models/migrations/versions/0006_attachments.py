"""attachments served under random ids, never their integer key (issue 10)

Revision ID: 0006
Revises: 0005
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_id', sa.String(length=64), nullable=True))
    attachments = sa.table('attachments', sa.column('id', sa.Integer()), sa.column('public_id', sa.String()))
    connection = op.get_bind()
    for (row_id,) in connection.execute(sa.select(attachments.c.id)).all():
        connection.execute(attachments.update().where(attachments.c.id == row_id)
                           .values(public_id=secrets.token_urlsafe(16)))
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.alter_column('public_id', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_attachments_public_id', ['public_id'])


def downgrade() -> None:
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_constraint('uq_attachments_public_id', type_='unique')
        batch_op.drop_column('public_id')
