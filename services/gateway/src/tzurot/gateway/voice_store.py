"""Voice tables (core.personality_voices, core.voice_samples) and speech usage rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway import tables as t
from tzurot.gateway.voice import Frequency, Voice, VoiceSample

_VOICE_FIELDS = (
    "provider",
    "voice_id",
    "model",
    "stability",
    "similarity_boost",
    "style",
    "speed",
    "frequency",
    "probability",
)
_SAMPLE_COLUMNS = (
    t.voice_samples.c.id,
    t.voice_samples.c.filename,
    t.voice_samples.c.format,
    t.voice_samples.c.duration_secs,
    t.voice_samples.c.size_bytes,
    t.voice_samples.c.created_at,
)


def _voice(row: Any) -> Voice:
    return voice_from_mapping(row._mapping)


def voice_from_mapping(m: Mapping[str, Any]) -> Voice:
    """A personality_voices row (a mapping of its columns; extra keys are ignored)."""
    return Voice(
        provider=m["provider"],
        voice_id=m["voice_id"],
        model=m["model"],
        stability=m["stability"],
        similarity_boost=m["similarity_boost"],
        style=m["style"],
        speed=m["speed"],
        frequency=cast(Frequency, m["frequency"]),
        probability=m["probability"],
    )


def _sample(row: Any) -> VoiceSample:
    return VoiceSample(
        id=str(row.id),
        filename=row.filename,
        format=row.format,
        duration_secs=row.duration_secs,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


class VoiceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._autocommit = autocommit(engine)

    async def voice(self, personality_id: str) -> Voice | None:
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.personality_voices).where(
                        t.personality_voices.c.personality_id == personality_id
                    )
                )
            ).first()
        return None if row is None else _voice(row)

    async def put_voice(
        self, personality_id: str, voice: Voice, *, cloned_by: str | None = None
    ) -> None:
        """Stores the voice; `cloned_by`: the user whose clone it is. Re-tuning the same voice
        id keeps who cloned it; another voice id by hand clears it."""
        values = {name: getattr(voice, name) for name in _VOICE_FIELDS}
        statement = insert(t.personality_voices).values(
            personality_id=personality_id, cloned_by=cloned_by, **values
        )
        current = t.personality_voices.c
        statement = statement.on_conflict_do_update(
            index_elements=[current.personality_id],
            set_={
                **values,
                "cloned_by": sa.case(
                    (
                        current.voice_id == statement.excluded.voice_id,
                        sa.func.coalesce(statement.excluded.cloned_by, current.cloned_by),
                    ),
                    else_=statement.excluded.cloned_by,
                ),
                "updated_at": sa.func.now(),
            },
        )
        async with self._autocommit.connect() as conn:
            await conn.execute(statement)

    async def cloned_by(self, personality_id: str) -> str | None:
        """The user who cloned the personality's current voice; None for one set by hand."""
        async with self._autocommit.connect() as conn:
            found = await conn.scalar(
                sa.select(t.personality_voices.c.cloned_by).where(
                    t.personality_voices.c.personality_id == personality_id
                )
            )
        return None if found is None else str(found)

    async def delete_voice(self, personality_id: str) -> bool:
        async with self._autocommit.connect() as conn:
            result = await conn.execute(
                sa.delete(t.personality_voices).where(
                    t.personality_voices.c.personality_id == personality_id
                )
            )
        return bool(result.rowcount)

    async def add_sample(
        self,
        personality_id: str,
        uploaded_by: str | None,
        *,
        filename: str,
        fmt: str,
        duration_secs: float,
        data: bytes,
        max_samples: int,
    ) -> VoiceSample | None:
        """Adds the sample unless the personality already has `max_samples` (then None).
        The count and the insert happen under a per-personality lock."""
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(personality_id)))
            )
            count = await conn.scalar(
                sa.select(sa.func.count()).where(t.voice_samples.c.personality_id == personality_id)
            )
            if int(count or 0) >= max_samples:
                return None
            row = (
                await conn.execute(
                    sa.insert(t.voice_samples)
                    .values(
                        personality_id=personality_id,
                        uploaded_by=uploaded_by,
                        filename=filename,
                        format=fmt,
                        duration_secs=duration_secs,
                        size_bytes=len(data),
                        data=data,
                    )
                    .returning(*_SAMPLE_COLUMNS)
                )
            ).one()
        return _sample(row)

    async def samples(self, personality_id: str) -> list[VoiceSample]:
        async with self._autocommit.connect() as conn:
            rows = await conn.execute(
                sa.select(*_SAMPLE_COLUMNS)
                .where(t.voice_samples.c.personality_id == personality_id)
                .order_by(t.voice_samples.c.created_at, t.voice_samples.c.id)
            )
        return [_sample(row) for row in rows]

    async def sample_data(self, personality_id: str) -> list[tuple[str, bytes]]:
        """(filename, bytes) of every sample, oldest first: what a clone is made from."""
        async with self._autocommit.connect() as conn:
            rows = await conn.execute(
                sa.select(t.voice_samples.c.filename, t.voice_samples.c.data)
                .where(t.voice_samples.c.personality_id == personality_id)
                .order_by(t.voice_samples.c.created_at, t.voice_samples.c.id)
            )
        return [(row.filename, bytes(row.data)) for row in rows]

    async def remove_sample(self, personality_id: str, sample_id: str) -> bool:
        async with self._autocommit.connect() as conn:
            result = await conn.execute(
                sa.delete(t.voice_samples).where(
                    t.voice_samples.c.personality_id == personality_id,
                    t.voice_samples.c.id == sample_id,
                )
            )
        return bool(result.rowcount)

    async def record_speech(
        self,
        user_id: str,
        job_id: str,
        provider: str,
        model: str,
        characters: int,
        *,
        failed: bool = False,
    ) -> int:
        """A speech usage row; its id."""
        async with self._autocommit.connect() as conn:
            row_id = await conn.scalar(
                sa.insert(t.usage_log)
                .values(
                    user_id=user_id,
                    job_id=job_id,
                    provider=provider,
                    model=model,
                    input_tokens=0,
                    output_tokens=0,
                    request_type="speech",
                    characters=characters,
                    failed=failed,
                )
                .returning(t.usage_log.c.id)
            )
        return int(row_id)

    async def speech_completed(self, usage_id: int) -> None:
        """The speech of usage row `usage_id` reached its end: no longer failed."""
        async with self._autocommit.connect() as conn:
            await conn.execute(
                sa.update(t.usage_log).where(t.usage_log.c.id == usage_id).values(failed=False)
            )
