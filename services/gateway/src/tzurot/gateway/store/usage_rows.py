"""A reply's paid calls reported apart from its answer (inference's UsageSpent): one
`usage_log` row each, written as they arrive, whatever becomes of the answer.

- A skill's paid call: an image drawn (request_type "image_generation", under the image model's
  provider and model, its tokens and images), a Brave search ("web_search", provider "brave",
  no model: each row one billed request).
- A reply that failed after its answer paid for calls: what it was billed, under the answer's
  provider and model and the job's own kind (chat, guest), `failed` (paid, not delivered).
  Only a failed reply sends it, so it is never counted again with a ReplyFinished.
- An answer's round the provider broke off mid-stream (inference's estimate), or a reply its
  client cancelled mid-answer (gateway's, service.py): failed, and `estimated` (the tokens
  are Tzurot's estimate: the provider's count never came).

Unfenced by the job's attempt, as attachment reads are: what was paid is recorded, whichever
run paid it. Not for a user whose data is being deleted (nothing more is kept of them), as
for a lost run's usage (lost_jobs.py)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Usage
from tzurot.gateway.store.base import SqlBase


class UsageRowQueries(SqlBase):
    async def record_spent_usage(
        self,
        job_id: str,
        user_id: str,
        paid: Sequence[Usage],
        *,
        job_request_type: str,
        failed: bool,
    ) -> int:
        """Logs each of `paid` as a row of its own (`request_type` its own, or the job's
        `job_request_type` when it has none: the answer's calls). The rows written."""
        if not paid:
            return 0
        u, log = t.users.c, t.usage_log
        rows = sa.values(
            sa.column("provider", sa.Text),
            sa.column("model", sa.Text),
            sa.column("input_tokens", sa.Integer),
            sa.column("output_tokens", sa.Integer),
            sa.column("images", sa.Integer),
            sa.column("request_type", sa.Text),
            sa.column("audio_seconds", sa.Float),
            sa.column("estimated", sa.Boolean),
            name="paid",
        ).data(
            [
                (
                    p.provider,
                    p.model,
                    p.input_tokens,
                    p.output_tokens,
                    p.images,
                    p.request_type or job_request_type,
                    p.audio_seconds,
                    p.estimated,
                )
                for p in paid
            ]
        )
        columns = [
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "images",
            "request_type",
            "audio_seconds",
            "estimated",
        ]
        stmt = sa.insert(log).from_select(
            ["user_id", "job_id", *columns, "failed"],
            sa.select(
                sa.literal(user_id, u.id.type),
                sa.literal(job_id, log.c.job_id.type),
                *(rows.c[name] for name in columns),
                sa.literal(failed),
            ).where(sa.exists().where(u.id == user_id, u.deletion_requested_at.is_(None))),
        )
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            return (await conn.execute(stmt)).rowcount
