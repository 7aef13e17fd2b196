"""A job's attachment reads (attachment_reads.py): the text kept on the job and the usage of
each paid call, written together in one statement as inference reports them."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Usage
from tzurot.gateway.store.base import SqlBase


class AttachmentReadQueries(SqlBase):
    async def record_attachment_read(
        self, job_id: str, user_id: str, key: str, text: str, paid: Sequence[Usage]
    ) -> None:
        """Keeps `text` as the job's reading of attachment `key` and logs each paid call
        (request_type its kind). Unfenced by the attempt: what was paid is recorded, whichever
        run paid it."""
        jobs = t.jobs.c
        kept = (
            sa.update(t.jobs)
            .where(jobs.id == job_id)
            .values(
                attachment_reads=jobs.attachment_reads.op("||", return_type=JSONB)(
                    sa.func.jsonb_build_object(sa.literal(key, sa.Text), sa.literal(text, sa.Text))
                )
            )
        )
        if not paid:
            statement: sa.Executable = kept
        else:
            statement = (
                sa.insert(t.usage_log)
                .values(
                    [
                        {
                            "user_id": user_id,
                            "job_id": job_id,
                            "provider": u.provider,
                            "model": u.model,
                            "input_tokens": u.input_tokens,
                            "output_tokens": u.output_tokens,
                            "request_type": u.request_type,
                            "audio_seconds": u.audio_seconds,
                        }
                        for u in paid
                    ]
                )
                .add_cte(kept.cte("kept"))
            )
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            await conn.execute(statement)
