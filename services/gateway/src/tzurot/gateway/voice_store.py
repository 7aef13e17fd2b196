"""Voice tables (core.personality_voices, core.voice_clones, core.voice_samples) and speech
usage rows.

`voice_clones` records every voice Tzurot cloned, apart from the voice a personality uses
now: a clone replaced or removed by hand stays recorded until it is deleted from its cloner's
ElevenLabs account (a newer clone, the personality's deletion, the cloner's data deletion).
A voice id some personality still stores is never deleted (a voice set by hand, e.g. a clone
reused for a second personality): `deleting_clone` decides under a lock on the voice id that
`put_voice` takes too, and holds it while the caller deletes the voice at ElevenLabs, so a
voice set by hand meanwhile is either seen (and kept) or stored after the deletion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway import tables as t
from tzurot.gateway.store.deletions import Clone
from tzurot.gateway.voice import ELEVENLABS, Frequency, Voice, VoiceSample

_VOICE_LOCKS = 0x766F6963  # "voic": a voice id, between storing it and deleting its clone

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


def _voice_lock(voice_id: str) -> sa.Select[Any]:
    """Waits for the voice id's lock, held until the transaction ends."""
    return sa.select(sa.func.pg_advisory_xact_lock(_VOICE_LOCKS, sa.func.hashtext(voice_id)))


@dataclass
class CloneDeletion:
    """`VoiceStore.deleting_clone`'s decision: `go`, delete it; `gone`, set by the caller once
    ElevenLabs no longer has it."""

    go: bool
    gone: bool = False


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
        """Stores the voice; `cloned_by`: the user whose clone it is (recorded in
        voice_clones too, in the same transaction). Re-tuning the same voice id keeps who
        cloned it; another voice id by hand clears it (the clone stays recorded). Under the
        voice id's lock: a deletion of that voice deciding meanwhile sees it, or has
        finished."""
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
        async with self._engine.begin() as conn:
            await conn.execute(_voice_lock(voice.voice_id))
            await conn.execute(statement)
            if cloned_by is not None:
                await conn.execute(
                    insert(t.voice_clones)
                    .values(
                        cloner_id=cloned_by, voice_id=voice.voice_id, personality_id=personality_id
                    )
                    .on_conflict_do_nothing()
                )

    async def clones_for(self, personality_id: str, *, cloner_id: str | None = None) -> list[Clone]:
        """The clones recorded for the personality (only `cloner_id`'s, when given), whichever
        voice it uses now."""
        c = t.voice_clones.c
        which = c.personality_id == personality_id
        if cloner_id is not None:
            which = sa.and_(which, c.cloner_id == cloner_id)
        return await self._clones(which)

    async def lost_clone_accounts(self, personality_id: str) -> tuple[set[str], float]:
        """Whose ElevenLabs accounts a personality's deletion lists for the clones marked for
        it that voice_clones never recorded, and for how many seconds its deletion has been
        under way (0 when not marked). No account when it could have no marked clone: no voice
        sample, no clone recorded or stored for it, and no cloner kept by its deletion
        (`deletion_cloners`: whose recorded clones it deleted before its mark, their rows
        gone with them). Else its owner, those and whoever it records as a cloner of it
        (voice_clones, personality_voices.cloned_by)."""
        p, c, v, s = (
            t.personalities.c,
            t.voice_clones.c,
            t.personality_voices.c,
            t.voice_samples.c,
        )
        pending = sa.func.coalesce(
            sa.func.extract("epoch", sa.func.now() - p.deletion_requested_at), 0
        )
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        p.owner_user_id,
                        pending,
                        sa.exists().where(s.personality_id == personality_id),
                        p.deletion_cloners,
                    ).where(p.id == personality_id)
                )
            ).first()
            if row is None:
                return set(), 0.0
            recorded = set(
                (
                    await conn.scalars(
                        sa.union(
                            sa.select(c.cloner_id).where(c.personality_id == personality_id),
                            sa.select(v.cloned_by).where(
                                v.personality_id == personality_id, v.cloned_by.is_not(None)
                            ),
                        )
                    )
                ).all()
            )
        owner, seconds, has_samples, kept = row
        accounts = {str(u) for u in (*recorded, *kept)}
        if not accounts and not has_samples:
            return set(), float(seconds)
        if owner is not None:
            accounts.add(str(owner))
        return accounts, float(seconds)

    async def deletions_listing(self, user_id: str) -> list[str]:
        """The personalities under deletion whose lost-clone step lists `user_id`'s account
        for a clone she made (`deletion_cloners`), other than her private ones (her own
        data deletion deletes those): her data deletion lists her account for them while
        her key is there, since their deletion, finishing later, could not."""
        p = t.personalities.c
        stmt = (
            sa.select(p.id)
            .where(
                p.deletion_requested_at.is_not(None),
                sa.literal(user_id, UUID(as_uuid=False)) == sa.any_(p.deletion_cloners),
                sa.or_(p.public, p.owner_user_id.is_distinct_from(user_id)),
            )
            .order_by(p.deletion_requested_at, p.id)
        )
        async with self._autocommit.connect() as conn:
            return [str(found) for found in await conn.scalars(stmt)]

    async def is_cloner(self, user_id: str, voice_id: str) -> bool:
        """Whether `user_id` cloned `voice_id` (its clone, in her ElevenLabs account)."""
        c, v = t.voice_clones.c, t.personality_voices.c
        stmt = sa.select(
            sa.or_(
                sa.exists().where(c.cloner_id == user_id, c.voice_id == voice_id),
                sa.exists().where(v.cloned_by == user_id, v.voice_id == voice_id),
            )
        )
        async with self._autocommit.connect() as conn:
            return bool(await conn.scalar(stmt))

    async def clones_of_user(self, user_id: str) -> list[Clone]:
        """What a user's data deletion deletes: every clone she made (in her ElevenLabs
        account), and every clone made for one of her private personalities (which the
        deletion takes), in its cloner's account."""
        p = t.personalities.c
        private = sa.select(p.id).where(p.owner_user_id == user_id, sa.not_(p.public))
        c = t.voice_clones.c
        return await self._clones(sa.or_(c.cloner_id == user_id, c.personality_id.in_(private)))

    async def _clones(self, which: sa.ColumnElement[bool]) -> list[Clone]:
        c = t.voice_clones.c
        stmt = (
            sa.select(c.cloner_id, c.personality_id, c.voice_id)
            .where(which)
            .order_by(c.personality_id, c.created_at, c.voice_id)
        )
        async with self._autocommit.connect() as conn:
            return [
                Clone(str(row.cloner_id), str(row.personality_id or ""), row.voice_id)
                for row in await conn.execute(stmt)
            ]

    @asynccontextmanager
    async def deleting_clone(
        self, clone: Clone, *, leaving: Collection[str] = (), even_if_used: bool = False
    ) -> AsyncIterator[CloneDeletion]:
        """Decides whether the clone is deleted, and holds the decision while the caller
        deletes it at ElevenLabs: `go` is False when it is no longer recorded (deleted
        meanwhile) or some personality other than `leaving` (being deleted) stores its voice
        id (unless `even_if_used`). The caller sets `gone` once ElevenLabs deleted it (or had
        not got it); the record goes then, else it stays for the next deletion. Under the
        voice id's lock, which `put_voice` waits for: a voice set by hand meanwhile is seen
        here, or stored once the deletion is over, never in between."""
        c, v = t.voice_clones.c, t.personality_voices.c
        recorded = sa.exists().where(c.cloner_id == clone.cloner_id, c.voice_id == clone.voice_id)
        used = sa.exists().where(
            v.voice_id == clone.voice_id,
            v.provider == ELEVENLABS,
            v.personality_id.not_in(list(leaving)),
        )
        async with self._engine.begin() as conn:
            await conn.execute(_voice_lock(clone.voice_id))
            # Its own statement, after the lock: READ COMMITTED sees what was stored while
            # this one waited for it.
            found, in_use = (await conn.execute(sa.select(recorded, used))).one()
            decision = CloneDeletion(go=bool(found) and (even_if_used or not in_use))
            yield decision
            if decision.gone:
                await conn.execute(
                    sa.delete(t.voice_clones).where(
                        c.cloner_id == clone.cloner_id, c.voice_id == clone.voice_id
                    )
                )

    @asynccontextmanager
    async def deleting_unrecorded(
        self, voice_id: str, *, leaving: Collection[str] = ()
    ) -> AsyncIterator[bool]:
        """Whether a clone voice_clones never recorded (its answer lost) is deleted, held
        while the caller deletes it at ElevenLabs: not when some personality other than
        `leaving` stores its voice id (set by hand), nor when it is recorded after all
        (`deleting_clone` decides those). Under the voice id's lock, as `deleting_clone`."""
        c, v = t.voice_clones.c, t.personality_voices.c
        recorded = sa.exists().where(c.voice_id == voice_id)
        used = sa.exists().where(
            v.voice_id == voice_id,
            v.provider == ELEVENLABS,
            v.personality_id.not_in(list(leaving)),
        )
        async with self._engine.begin() as conn:
            await conn.execute(_voice_lock(voice_id))
            found, in_use = (await conn.execute(sa.select(recorded, used))).one()
            yield not found and not in_use

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
        """(filename, bytes) of every sample, oldest first: what a clone is made from. Up to
        25 of 10 MiB (+260 MiB read at once, measured): its caller holds document_work's slot
        from here to the clone's answer."""
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
