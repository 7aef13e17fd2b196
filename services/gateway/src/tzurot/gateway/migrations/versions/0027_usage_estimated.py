"""usage estimated: a usage row whose tokens are Tzurot's estimate, because the provider's
count never came: an answer's round the provider broke off mid-stream (inference estimates the
prompt it sent and what it received) or a reply its client cancelled mid-answer (gateway
estimates what it relayed), or an answer whose stream ended without the provider's usage
chunk, or whose silent attempt's prompt was counted (inference's rough estimate). `/usage` and
`tzurot admin usage` can tell them apart. Adding a column with a constant default rewrites
nothing (Postgres 11+). Older rows read false, though not all are the provider's own count:
before this revision, an answer without a usage chunk and a silent attempt's prompt were
estimated too, unmarked.

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
