"""job location: where a job was asked, beyond its conversation. A thread's parent channel
(the denylist and the channel's settings apply there) and whether the channel is marked
NSFW. A retry (an operator's RetryJob, or an answer generated again after its bot died)
rebuilds the request from the row, and an NSFW personality's answer needs both.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("parent_channel_id", sa.Text, nullable=False, server_default=""),
        schema="core",
    )
    op.add_column(
        "jobs",
        sa.Column("nsfw_channel", sa.Boolean, nullable=False, server_default=sa.false()),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("jobs", "nsfw_channel", schema="core")
    op.drop_column("jobs", "parent_channel_id", schema="core")
