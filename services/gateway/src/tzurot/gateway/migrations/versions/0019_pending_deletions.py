"""pending deletions: a user's data deletion and a personality's deletion are recorded on the
row they delete last (`deletion_requested_at`) before memory is asked to forget, so one cut
short (a gateway killed, Postgres failing over, a timeout) after memory forgot is finished
by any replica's sweep, not left half done until someone asks again. Meanwhile the user is
refused and the personality is hidden (admin/deletions.py). `deletion_lease_until`: who runs
it (the request, then a sweep) holds it until then. The rows go with their deletion, so the
partial indexes hold only the deletions under way.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "personalities")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("deletion_requested_at", sa.DateTime(timezone=True)),
            schema="core",
        )
        op.add_column(
            table,
            sa.Column("deletion_lease_until", sa.DateTime(timezone=True)),
            schema="core",
        )
        op.create_index(
            f"{table}_deletion_pending_idx",
            table,
            ["deletion_requested_at"],
            schema="core",
            postgresql_where=sa.text("deletion_requested_at IS NOT NULL"),
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_index(f"{table}_deletion_pending_idx", table, schema="core")
        op.drop_column(table, "deletion_lease_until", schema="core")
        op.drop_column(table, "deletion_requested_at", schema="core")
