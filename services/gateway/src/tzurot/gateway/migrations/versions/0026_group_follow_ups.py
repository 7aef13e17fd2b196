"""group follow-ups: a group round's last answer (or a chain reply) delivered whose follow-up
(the last speaker, the chain reply) has not run yet. The delivery's own statement adds the row
and the follow-up deletes it, so a gateway killed between the two leaves it for every
replica's sweep to run (delivery_flow.run_owed_follow_ups); before this, a delivery stored by
the pending-history sweep lost its chain reply for good. A new, empty table: nothing is
rewritten, and a job delivered before it owes nothing.

Revision ID: 0026
Revises: 0025
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "group_follow_ups",
        sa.Column("job_id", sa.UUID(as_uuid=False), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["core.jobs.id"], ondelete="CASCADE"),
        schema="core",
    )


def downgrade() -> None:
    op.drop_table("group_follow_ups", schema="core")
