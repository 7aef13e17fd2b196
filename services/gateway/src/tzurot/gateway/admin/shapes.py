"""The shapes.inc import (operators): one personality from its configuration, then its
long-term memories in batches, each with its original time, then its chat history as
exchanges of the conversation history (with their original times).

Ownership goes to `owner` (a Discord id), else the bot owner (TZUROT_BOT_OWNER_ID), else
the first configured superuser. Memories are filed under the Discord user a sender maps to
(the user map), else the personality's shared scope (every user of it sees them). Each
memory's id is derived from the personality and the shapes.inc memory id, so a re-run
imports nothing twice; so is each history exchange's job id (from its first message's id).
A summary longer than a memory may hold is stored as several (`shapes.summaries`), each
with the summary's time and scope and an id derived from the summary's and its part's
number. A dry run parses, checks and cuts exactly as the import does (every refusal of the
data comes from parsing), then only counts. Documents are parsed on a worker thread, one
document at a time in the process (`document_work`, shared with cards and lorebooks).
The history goes to the conversation of the Discord channel given (it continues there), else
to the personality's legacy conversation `shapes:<slug>`, kept but in no channel's prompt.
Nothing is formed into long-term memories from it: the summaries are that.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import settings as cascade
from tzurot.gateway.admin.avatars import AvatarAdmin, clean_avatar, image_kind
from tzurot.gateway.admin.base import Principal, named_for, require
from tzurot.gateway.document_work import run_document_work
from tzurot.gateway.domain import ConfigSource, Personality
from tzurot.gateway.shapes.documents import (
    ShapeMemory,
    read_config,
    read_history,
    read_memories,
)
from tzurot.gateway.shapes.history import HistoryExchange, exchanges
from tzurot.gateway.shapes.mapping import plan_personality
from tzurot.gateway.shapes.summaries import summary_parts
from tzurot.gateway.store.lorebooks import save_avatar
from tzurot.gateway.store.personalities import PersonalityReads
from tzurot.gateway.voice import imported_voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

_MEMORY_NAMESPACE = uuid.UUID("3f6c1d2e-5a4b-4c8d-9e0f-7a1b2c3d4e5f")
_HISTORY_NAMESPACE = uuid.UUID("9b2e4f61-0c3d-4a5b-8e7f-1d2c3b4a5f60")
MAX_AVATAR_BYTES = 8 * 1024 * 1024
MAX_BATCH = 500
MAX_HISTORY_BATCH = 2000
MAX_EXCHANGE_TURNS = 16
"""Memory's limit of turns in one exchange."""
MAX_DISCORD_ID_DIGITS = 20


@dataclass(frozen=True)
class ShapesImport:
    personality: Personality | None
    created: bool
    warnings: tuple[str, ...]
    settings: tuple[str, ...]


@dataclass(frozen=True)
class HistoryBatch:
    exchanges: int = 0
    skipped: int = 0
    messages: int = 0
    channel_id: str = ""


@dataclass(frozen=True)
class MemoryBatch:
    imported: int = 0
    skipped: int = 0
    mapped: int = 0
    shared: int = 0
    split: int = 0
    """Summaries stored as several memories (each counted once above)."""
    split_parts: int = 0


def memory_id(personality_key: str, shapes_memory_id: str, part: int = 0) -> str:
    """The memory of a summary (`part` 0), or of part 1, 2… of one that was split."""
    key = f"{personality_key}\0{shapes_memory_id}" + (f"\0{part}" if part else "")
    return str(uuid.uuid5(_MEMORY_NAMESPACE, key))


def check_user_map(user_map: Mapping[str, str]) -> None:
    """Each shapes.inc user maps to a Discord user id (digits) or to nothing."""
    for discord_id in user_map.values():
        digits = discord_id.isascii() and discord_id.isdigit()
        if discord_id and not (digits and len(discord_id) <= MAX_DISCORD_ID_DIGITS):
            raise InvalidArgument(
                "user_map", "user_map maps shapes.inc user ids to Discord user ids (digits)"
            )


class ShapesAdmin(AvatarAdmin):
    bot_owner_id: str = ""
    superuser_ids: frozenset[str] = frozenset()

    def _operator(self, who: Principal) -> None:
        if not who.superuser:
            raise PermissionDenied(
                "only operators import shapes.inc backups", reason="NOT_SUPERUSER"
            )

    async def import_shapes(  # the request's fields
        self,
        who: Principal,
        config: bytes,
        *,
        aliases: Sequence[str],
        avatar: bytes,
        avatar_type: str,
        owner: str,
        dry_run: bool,
    ) -> ShapesImport:
        self._operator(who)
        plan = plan_personality(
            await run_document_work(read_config, config), extra_aliases=list(aliases)
        )
        slug = plan.seed.effective_slug
        existing = await self._store.find_personality(slug)
        existing = existing if existing is not None and existing.slug == slug else None
        settings = tuple(f"{key}={value}" for key, value in sorted(plan.settings.items()))
        for key, value in plan.settings.items():
            cascade.validate(key, value)
        if avatar and len(avatar) > MAX_AVATAR_BYTES:
            raise InvalidArgument("avatar", f"the avatar is larger than {MAX_AVATAR_BYTES} bytes")
        if avatar and not avatar_type.startswith("image/"):
            raise InvalidArgument("avatar_content_type", "the avatar must be an image")
        if dry_run:  # the import refuses it too, checked again in its transaction
            await self._store.refuse_alias_as_name(
                slug,
                plan.seed.name,
                named=named_for(who),
                aliases=plan.seed.aliases,
                public=plan.seed.public,
                owner_platform_id=self._owner_platform_id(owner),
            )
            return ShapesImport(existing, existing is None, tuple(plan.warnings), settings)
        owner_id = await self._owner(owner)
        kind = image_kind(avatar) if avatar else None
        if avatar and kind is not None:  # kept and served without its metadata (Exif, GPS)
            avatar = await asyncio.to_thread(clean_avatar, avatar, kind)

        async def parts(conn: AsyncConnection, personality_id: str) -> None:
            if avatar:
                await save_avatar(conn, personality_id, avatar_type, avatar)

        personality, created = await self._store.import_personality(
            plan.seed,
            owner_user_id=owner_id,
            extra_values={"custom_fields": plan.custom_fields, "voice_id": plan.voice_id},
            then=parts,
            named=named_for(who),
        )
        if avatar:  # served from the project's own URL when the edge is reachable
            personality = await self._serve_avatar(personality, avatar) or personality
        for key, value in plan.settings.items():
            await self._db.set_setting(
                ConfigSource.PERSONALITY,
                {"personality_id": personality.id},
                key,
                cascade.validate(key, value),
            )
        voice_fields = plan.custom_fields.get("voice")
        voice = imported_voice(
            plan.voice_id, voice_fields if isinstance(voice_fields, dict) else {}
        )
        if voice is not None:  # its voice, speaking as often as its old "frequency" said
            await VoiceStore(self._store.engine).put_voice(personality.id, voice)
        return ShapesImport(personality, created, tuple(plan.warnings), settings)

    async def import_shapes_memories(
        self,
        who: Principal,
        slug: str,
        document: bytes,
        user_map: Mapping[str, str],
        *,
        dry_run: bool,
    ) -> MemoryBatch:
        self._operator(who)
        memories = await run_document_work(read_memories, document)
        if len(memories) > MAX_BATCH:
            raise InvalidArgument("memories", f"send at most {MAX_BATCH} memories a call")
        require("personality", slug)
        check_user_map(user_map)
        texts = [summary_parts(item.result) for item in memories]
        split = sum(1 for parts in texts if len(parts) > 1)
        split_parts = sum(len(parts) for parts in texts if len(parts) > 1)
        personality = await self._store.find_personality(slug)
        if personality is None or personality.slug != slug:  # a slug, not a name or alias
            if dry_run:
                mapped = sum(1 for m in memories if any(user_map.get(s) for s in m.sender_ids))
                return MemoryBatch(
                    imported=len(memories),
                    mapped=mapped,
                    shared=len(memories) - mapped,
                    split=split,
                    split_parts=split_parts,
                )
            raise NotFound(
                f"no personality named {slug!r}; import its configuration first",
                reason="PERSONALITY_NOT_FOUND",
            )
        users: dict[str, str] = {}
        imported = skipped = mapped = shared = 0
        for item, parts in zip(memories, texts, strict=True):
            discord_id = next((user_map[s] for s in item.sender_ids if user_map.get(s)), "")
            if discord_id:
                mapped += 1
            else:
                shared += 1
            if dry_run:
                imported += 1
                continue
            user_id = ""
            if discord_id:
                if discord_id not in users:
                    users[discord_id] = await self._db.user_id_for(discord_id)
                user_id = users[discord_id]
            if await self._store_summary(personality.id, user_id, item, parts):
                imported += 1
            else:
                skipped += 1
        return MemoryBatch(imported, skipped, mapped, shared, split, split_parts)

    async def _store_summary(
        self, personality_id: str, user_id: str, item: ShapeMemory, parts: Sequence[str]
    ) -> bool:
        """Stores a summary as its memories (its parts when split, each with its time and
        scope); False when every one was there already."""
        created = False
        for part, text in enumerate(parts, start=1 if len(parts) > 1 else 0):
            memory = common.Memory(
                id=memory_id(personality_id, item.id, part),
                personality_id=personality_id,
                user_id=user_id,
                text=text,
            )
            if item.created_at is not None:
                memory.created_at.FromDatetime(item.created_at)
            added = await self._memory.add_memory(mem.AddMemoryRequest(memory=memory))
            created = created or not added.existed
        return created

    async def import_shapes_history(  # the request's fields
        self,
        who: Principal,
        slug: str,
        document: bytes,
        user_map: Mapping[str, str],
        *,
        channel_id: str,
        dry_run: bool,
    ) -> HistoryBatch:
        self._operator(who)
        history = await run_document_work(read_history, document)
        if len(history) > MAX_HISTORY_BATCH:
            raise InvalidArgument("history", f"send at most {MAX_HISTORY_BATCH} messages a call")
        require("personality", slug)
        check_user_map(user_map)
        channel = channel_id.strip() or f"shapes:{slug}"
        if not channel.startswith("shapes:") and not channel.isdigit():
            raise InvalidArgument("channel_id", "channel_id is a Discord channel or thread id")
        found = exchanges(history, max_turns=MAX_EXCHANGE_TURNS)
        messages = sum(len(e.messages) for e in found)
        personality = await self._store.find_personality(slug)
        if personality is None or personality.slug != slug:
            if dry_run:
                return HistoryBatch(len(found), 0, messages, channel)
            raise NotFound(
                f"no personality named {slug!r}; import its configuration first",
                reason="PERSONALITY_NOT_FOUND",
            )
        if dry_run:
            return HistoryBatch(len(found), 0, messages, channel)
        users: dict[str, tuple[str, str]] = {}
        stored = skipped = 0
        for exchange in found:
            request = await self._history_request(personality, exchange, user_map, users, channel)
            if (await self._memory.import_exchange(request)).created:
                stored += 1
            else:
                skipped += 1
        return HistoryBatch(stored, skipped, messages, channel)

    async def _history_request(  # one exchange as memory stores it
        self,
        personality: Personality,
        exchange: HistoryExchange,
        user_map: Mapping[str, str],
        users: dict[str, tuple[str, str]],
        channel: str,
    ) -> mem.StoreExchangeRequest:
        for message in exchange.messages:
            mapped = user_map.get(message.user_id, "") if message.user_id else ""
            if mapped and mapped not in users:
                users[mapped] = await self._db.user_for(mapped)
        discord_id = user_map.get(exchange.user_id, "") if exchange.user_id else ""
        job_id = str(uuid.uuid5(_HISTORY_NAMESPACE, f"{personality.id}\0{exchange.key}"))
        turns = []
        for message in exchange.messages:
            if message.role == "assistant":
                author_id, author_name = personality.slug, personality.display_name
            else:
                mapped = user_map.get(message.user_id, "") if message.user_id else ""
                author_id = mapped or f"shapes:{message.user_id or 'unknown'}"
                author_name = (users[mapped][1] if mapped else "") or "Someone"
            turns.append(
                common.Turn(
                    role=common.ROLE_ASSISTANT if message.role == "assistant" else common.ROLE_USER,
                    author_id=author_id[:100],
                    author_name=author_name,
                    content=message.content,
                    personality_id=personality.id,
                    channel_id=channel,
                    job_id=job_id,
                )
            )
        request = mem.StoreExchangeRequest(
            job_id=job_id,
            channel_id=channel,
            personality_id=personality.id,
            user_id=users[discord_id][0] if discord_id else "",
            turns=turns,
            imported=True,
        )
        when = exchange.occurred_at
        if when is not None:
            request.occurred_at.FromDatetime(when)
        return request

    def count_operator_as_one_owner(self, reads: PersonalityReads) -> None:
        """The name rules treat the operator's personalities as one owner's: the ownerless
        ones (seed files, cards the operator imports) and those of the user imports go to by
        default (`_owner_platform_id("")`), in `reads` (the gateway's lookups) and in the
        admin's own store."""
        operator = self._owner_platform_id("")
        reads.operator_platform_id = operator
        self._db.operator_platform_id = operator

    def _owner_platform_id(self, owner: str) -> str:
        """The platform id of the user an import is owned by ("": the operator)."""
        return owner.strip() or self.bot_owner_id or min(self.superuser_ids, default="")

    async def _owner(self, owner: str) -> str | None:
        platform_id = self._owner_platform_id(owner)
        if not platform_id:
            return None
        return await self._db.user_id_for(platform_id)
