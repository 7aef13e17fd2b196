"""job replaces: a 🔄's job names the job whose answer it replaces. That exchange stays in
history (left out of the new prompt) until the new answer is delivered, then leaves it; a
regeneration refused or failed leaves it as it was. On the row, so a delivery stored late
(memory away) or a retry still knows what it replaces.

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("replaces_job_id", UUID(as_uuid=False)), schema="core")


def downgrade() -> None:
    op.drop_column("jobs", "replaces_job_id", schema="core")
