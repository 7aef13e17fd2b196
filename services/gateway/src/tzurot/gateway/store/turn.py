"""Everything a Generate reads before its job, in one statement (`TurnReads.turn_context`).

One round trip instead of eleven: the actor's user (created on first sight; the upsert of
users.py), the channel noted as not quiet (groups.note_message), and then, for the user,
the personality and the place: the denylist entries that apply, whether the idempotency key
has a job, the chosen LLM config ids (model_overrides, user_models, channel_models), the
persona, the stored settings of every level (in a thread, its parent channel's too), the
lorebooks in play and their lore state, the channel's activated personalities, the
personality's voice and the channel's round.

Read-only parts see the snapshot the statement began with (Postgres: data-modifying CTEs
and the reads of one statement share it), which is what separate reads just before would
have seen: the two writes touch no row the reads need, except `users`, whose row the read
takes from the upsert's own RETURNING.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tzurot.db import direct
from tzurot.db.warm import rolled_back
from tzurot.gateway.domain import (
    Actor,
    ConfigSource,
    DenyMode,
    GroupMember,
    Location,
    Persona,
    User,
)
from tzurot.gateway.lore import SCOPES, LoreContext, LoreState, Scope, StoredLorebook, TimedEffect
from tzurot.gateway.settings import stored_levels
from tzurot.gateway.store.base import SqlBase
from tzurot.gateway.store.lorebooks import lorebook_from_row
from tzurot.gateway.store.rows import user_from_row
from tzurot.gateway.voice import Voice
from tzurot.gateway.voice_store import voice_from_mapping

# $1 platform user id, $2 display name, $3 superuser, $4 personality id, $5 personality slug,
# $6 guild id, $7 channel id (the parent channel), $8 conversation id (thread or channel),
# $9 idempotency key, $10 note the message, $11 its round id ('' outside one), $12 thread id,
# $13 nsfw channel, $14 now (the gateway's clock). A channel deny names a channel (and so
# its threads) or one thread: matched against both $7 and $12.
_TURN_CONTEXT = direct.Statement(
    """
WITH changed AS (
    INSERT INTO core.users AS cur (platform_user_id, display_name, superuser)
    VALUES ($1::text, $2::text, $3::boolean)
    ON CONFLICT (platform_user_id) DO UPDATE
        SET display_name = excluded.display_name, superuser = cur.superuser OR excluded.superuser
        WHERE cur.display_name IS DISTINCT FROM excluded.display_name
           OR (excluded.superuser AND NOT cur.superuser)
    RETURNING *
), u AS (
    SELECT * FROM changed
    UNION ALL
    SELECT * FROM core.users
    WHERE platform_user_id = $1::text AND NOT EXISTS (SELECT 1 FROM changed)
), noted AS (
    INSERT INTO core.channel_state AS cs (conversation_id, guild_id, channel_id, thread_id,
        nsfw_channel, round_id, round_speakers, last_human_at, updated_at)
    SELECT $8::text, $6::text, $7::text, $12::text, $13::boolean, gen_random_uuid()::text,
        '{}'::text[], $14::timestamptz, $14::timestamptz
    WHERE $10::boolean AND $11::text = ''
    ON CONFLICT (conversation_id) DO UPDATE
        SET guild_id = excluded.guild_id, channel_id = excluded.channel_id,
            thread_id = excluded.thread_id, nsfw_channel = excluded.nsfw_channel,
            round_id = excluded.round_id, round_speakers = excluded.round_speakers,
            last_human_at = excluded.last_human_at, updated_at = excluded.updated_at
)
SELECT u.*,
    (SELECT json_agg(d.mode) FROM core.denylist d
      WHERE ((d.target = 'user' AND d.target_id = $1::text)
             OR ($6::text <> '' AND d.target = 'guild' AND d.target_id = $6::text))
        AND (d.scope = 'bot'
             OR ($6::text <> '' AND d.scope = 'guild' AND d.scope_id = $6::text)
             OR ($7::text <> '' AND d.scope = 'channel' AND d.scope_id = $7::text)
             OR ($12::text <> '' AND d.scope = 'channel' AND d.scope_id = $12::text)
             OR (d.scope = 'personality' AND d.scope_id = $5::text))) AS deny_modes,
    EXISTS (SELECT 1 FROM core.jobs j WHERE j.idempotency_key = $9::text) AS job_exists,
    (SELECT json_agg(json_build_array(c.level, c.id)) FROM (
        SELECT 'user_personality' AS level, o.llm_config_id AS id FROM core.model_overrides o
         WHERE o.user_id = u.id AND o.personality_id = $4::uuid
        UNION ALL
        SELECT 'user', m.llm_config_id FROM core.user_models m WHERE m.user_id = u.id
        UNION ALL
        SELECT 'channel', ch.llm_config_id FROM core.channel_models ch
         WHERE ch.channel_id = $8::text
    ) c) AS model_choices,
    (SELECT json_build_object('name', p.name, 'preferred_name', p.preferred_name,
                              'pronouns', p.pronouns, 'description', p.description)
       FROM core.personas p
      WHERE p.user_id = u.id AND (p.personality_id = $4::uuid OR p.personality_id IS NULL)
      ORDER BY p.personality_id NULLS LAST LIMIT 1) AS persona,
    (SELECT json_agg(json_build_array(s.scope, s.scope_id, s.key, s.value)) FROM core.settings s
      WHERE (s.scope, s.scope_id) IN (('global', ''), ('personality', $4::text),
            ('channel', $8::text), ('channel', $7::text), ('user', u.id::text),
            ('user_personality', u.id::text || ':' || $4::text))) AS settings,
    (SELECT json_agg(json_build_object('scope', a.scope, 'book', to_jsonb(l),
            'attached', (SELECT array_agg(concat(x.scope, ':', x.target))
                           FROM core.lorebook_attachments x WHERE x.lorebook_id = l.id))
            ORDER BY l.created_at, l.id)
       FROM core.lorebook_attachments a JOIN core.lorebooks l ON l.id = a.lorebook_id
      WHERE (a.scope = 'channel' AND a.target = $8::text)
         OR (a.scope = 'personality' AND a.target = $4::text)
         OR a.scope = 'global') AS lore_books,
    (SELECT json_build_array(ls.message_count, ls.effects) FROM core.lore_states ls
      WHERE ls.channel_id = $8::text AND ls.personality_id = $4::uuid) AS lore_state,
    (SELECT json_agg(json_build_array(p.id, p.display_name) ORDER BY a.activated_at, p.slug)
       FROM core.channel_activations a JOIN core.personalities p ON p.id = a.personality_id
      WHERE a.channel_id = $7::text) AS members,
    (SELECT to_jsonb(v) FROM core.personality_voices v
      WHERE v.personality_id = $4::uuid) AS voice,
    (SELECT json_build_array(r.round_id, r.round_speakers) FROM core.channel_state r
      WHERE r.conversation_id = $8::text) AS channel_round
FROM u
"""
)


@dataclass(frozen=True)
class ChannelRound:
    """The conversation's round as the turn began (groups.py)."""

    round_id: str
    speakers: tuple[str, ...]


@dataclass(frozen=True)
class TurnContext:
    user: User
    deny_modes: tuple[DenyMode, ...]
    job_exists: bool
    # Config ids chosen at the levels people choose (USER_PERSONALITY, USER, CHANNEL).
    model_choices: Mapping[ConfigSource, str]
    persona: Persona | None
    setting_levels: Mapping[ConfigSource, dict[str, Any]]
    lore: LoreContext
    # Everyone activated in the channel when that is a group (two or more), else ().
    group: tuple[GroupMember, ...]
    voice: Voice | None
    channel_round: ChannelRound | None = field(default=None)


class TurnReads(SqlBase):
    async def rehearse_turn_context(self, platform_user_id: str, now: datetime) -> None:
        """Runs the turn's statement for `platform_user_id` in a transaction that is rolled
        back, so nothing it writes (that user's row) is kept: the warm-up's way to have it
        compiled and prepared on a connection before the first turn (gateway/warm.py)."""
        nobody = "00000000-0000-0000-0000-000000000000"  # personality ids are random UUIDs
        params = (platform_user_id, "", False, nobody, "", "", "", "", "", False, "", "", False)
        await rolled_back(self._engine, _TURN_CONTEXT, (*params, now))

    async def turn_context(
        self,
        actor: Actor,
        *,
        superuser: bool,
        personality_id: str,
        personality_slug: str,
        where: Location,
        idempotency_key: str,
        note_message: bool,
        round_id: str,
        now: datetime,
    ) -> TurnContext | None:
        """The turn's reads and its user upsert (see the module); `note_message`: also mark
        the channel not quiet and interrupt its chain, unless the message is a speaker's of a
        planned round (`round_id` set: plan() noted it, and a late speaker of an older round
        must not replace the newer one; groups.note_message).

        None only when the actor's user was created by a concurrent request after this
        statement began (then nothing here applies; the caller reads the slower way)."""
        params = (
            actor.platform_user_id,
            actor.display_name,
            superuser,
            personality_id,
            personality_slug,
            where.guild_id,
            where.channel_id,
            where.conversation_id,
            idempotency_key,
            note_message,
            round_id,
            where.thread_id,
            where.nsfw_channel,
            now,
        )
        # One statement: its own transaction.
        m = await direct.fetchrow(self._autocommit, _TURN_CONTEXT, params)
        if m is None:
            return None
        # A thread's channel level: its own values over its parent channel's ($7).
        levels = stored_levels(m["settings"] or (), where.conversation_id)
        persona = m["persona"]
        members = m["members"] or ()
        channel_round = m["channel_round"]
        return TurnContext(
            user=user_from_row(m),
            deny_modes=tuple(DenyMode(mode) for mode in m["deny_modes"] or ()),
            job_exists=bool(m["job_exists"]),
            model_choices={
                ConfigSource(level): str(cid) for level, cid in m["model_choices"] or ()
            },
            persona=None if persona is None else Persona(**persona),
            setting_levels=levels,
            lore=_lore(m["lore_books"], m["lore_state"]),
            group=tuple(GroupMember(str(pid), name) for pid, name in members)
            if len(members) >= 2
            else (),
            voice=None if m["voice"] is None else voice_from_mapping(m["voice"]),
            channel_round=None
            if channel_round is None
            else ChannelRound(channel_round[0], tuple(channel_round[1] or ())),
        )


def _lore(books: Sequence[Mapping[str, Any]] | None, state: Sequence[Any] | None) -> LoreContext:
    """As LoreReads.lore_context: each book once, at its most specific scope, in order."""
    if not books:
        return LoreContext()
    found: dict[str, tuple[Scope, StoredLorebook]] = {}
    for item in books:
        scope: Scope = item["scope"]
        book = dict(item["book"])
        book["attached"] = item["attached"]
        for stamp in ("created_at", "updated_at"):
            if isinstance(book.get(stamp), str):
                book[stamp] = datetime.fromisoformat(book[stamp])
        stored = lorebook_from_row(book)
        previous = found.get(stored.id)
        if previous is None or SCOPES.index(scope) < SCOPES.index(previous[0]):
            found[stored.id] = (scope, stored)
    ordered = sorted(found.values(), key=lambda pair: SCOPES.index(pair[0]))
    lore_state = LoreState()
    if state is not None:
        count, effects = state
        if isinstance(effects, str):  # pragma: no cover - a driver without the json codec
            effects = json.loads(effects)
        lore_state = LoreState(
            message_count=count, effects=tuple(TimedEffect(**e) for e in effects or ())
        )
    return LoreContext(books=tuple(ordered), state=lore_state)
