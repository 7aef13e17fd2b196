"""memories.embedding and search_text stored in the row (STORAGE MAIN), not in TOAST.

A search reads both of every memory of the scope (the nearest pool's distance, the full-text
pool's match and rank); with the row's text, context, 384-d vector and tsvector a memory's
row passes TOAST's 2 kB threshold, and the vector and tsvector were moved out of line, so
each candidate cost extra page reads. Measured at 2,056 memories in one scope: the nearest
pool's scan read 6,257 buffers in 21 ms, inline 650 buffers in 1.8 ms (docs/MEMORY.md).
The text and context (read only for the winners) are moved out of line first instead. Rows
already stored keep their layout until they are next rewritten.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE memory.memories ALTER COLUMN embedding SET STORAGE MAIN,"
        " ALTER COLUMN search_text SET STORAGE MAIN"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE memory.memories ALTER COLUMN embedding SET STORAGE EXTERNAL,"
        " ALTER COLUMN search_text SET STORAGE EXTENDED"
    )
