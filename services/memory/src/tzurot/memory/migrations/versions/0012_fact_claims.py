"""fact_outbox.claimed_by: each ClaimFactJobs leases its jobs under a token of its own, and
StoreFacts stores only while every job of the request is still that claim's. Without it a
claim whose lease ran out (a slow LLM) stored the facts of jobs that another claim had
taken again, and that claim stored them a second time.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "fact_outbox",
        sa.Column("claimed_by", postgresql.UUID(as_uuid=True), nullable=True),
        schema="memory",
    )


def downgrade() -> None:
    op.drop_column("fact_outbox", "claimed_by", schema="memory")
