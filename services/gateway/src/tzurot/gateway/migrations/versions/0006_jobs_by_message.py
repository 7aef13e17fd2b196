"""jobs are found by a Discord message they delivered (reactions and Inspect from any bot
process, after restarts): a GIN index on delivered_message_ids.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "jobs_delivered_message_ids_idx",
        "jobs",
        ["delivered_message_ids"],
        schema="core",
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("jobs_delivered_message_ids_idx", table_name="jobs", schema="core")
