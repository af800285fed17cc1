"""erp keys: unique across databases (issue 17)

Revision ID: 0007
Revises: 0006

No schema change: from this revision on, routing gives every new ERP transaction an
idempotency key with a random part (routing/keys.py), so a fresh or restored database never
reuses a key an ERP already holds. Rows already in `erp_transactions` keep their key
unchanged, so a pending one still finds the document an earlier attempt may have created.
"""

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
