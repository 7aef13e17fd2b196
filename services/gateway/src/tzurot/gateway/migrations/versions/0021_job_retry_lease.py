"""job retry lease: a failed job the gateway runs again by itself (an operator's retry, an
answer its dying bot cancelled) is leased from the moment it is made retryable until its
claim or a refusal, so GetJobStatus reads it `queued` for exactly that window instead of
`failed RETRY_REQUESTED`; a lease whose gateway died runs out, and the job reads failed again.

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("retry_until", sa.DateTime(timezone=True)), schema="core")


def downgrade() -> None:
    op.drop_column("jobs", "retry_until", schema="core")
