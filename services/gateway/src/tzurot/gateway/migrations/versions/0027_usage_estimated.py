"""usage estimated: a usage row whose tokens are Tzurot's estimate, because the provider's
count never came: an answer's round the provider broke off mid-stream (inference estimates the
prompt it sent and what it received) or a reply its client cancelled mid-answer (gateway
estimates what it relayed). `/usage` and `tzurot admin usage` can tell them apart. Adding a
column with a constant default rewrites nothing (Postgres 11+); every older row is the
provider's own count, so false.

Revision ID: 0027
Revises: 0026
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "usage_log",
        sa.Column("estimated", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("usage_log", "estimated", schema="core")
