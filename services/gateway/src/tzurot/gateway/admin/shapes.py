"""The shapes.inc import (operators): one personality from its configuration, then its
long-term memories in batches, each with its original time.

Ownership goes to `owner` (a Discord id), else the bot owner (TZUROT_BOT_OWNER_ID), else
the first configured superuser. Memories are filed under the Discord user a sender maps to
(the user map), else the personality's shared scope (every user of it sees them). Each
memory's id is derived from the personality and the shapes.inc memory id, so a re-run
imports nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import settings as cascade
from tzurot.gateway.admin.base import AdminBase, Principal, require
from tzurot.gateway.domain import ConfigSource, Personality
from tzurot.gateway.shapes.documents import load_json, parse_config, parse_memories
from tzurot.gateway.shapes.mapping import plan_personality
from tzurot.gateway.store.lorebooks import save_avatar
from tzurot.gateway.voice import imported_voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

_MEMORY_NAMESPACE = uuid.UUID("3f6c1d2e-5a4b-4c8d-9e0f-7a1b2c3d4e5f")
MAX_AVATAR_BYTES = 8 * 1024 * 1024
MAX_BATCH = 500


@dataclass(frozen=True)
class ShapesImport:
    personality: Personality | None
    created: bool
    warnings: tuple[str, ...]
    settings: tuple[str, ...]


@dataclass(frozen=True)
class MemoryBatch:
    imported: int = 0
    skipped: int = 0
    mapped: int = 0
    shared: int = 0


def memory_id(personality_key: str, shapes_memory_id: str) -> str:
    return str(uuid.uuid5(_MEMORY_NAMESPACE, f"{personality_key}\0{shapes_memory_id}"))


class ShapesAdmin(AdminBase):
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
            parse_config(load_json(config, source="the configuration")), extra_aliases=list(aliases)
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
        if dry_run:
            return ShapesImport(existing, existing is None, tuple(plan.warnings), settings)
        owner_id = await self._owner(owner)

        async def parts(conn: AsyncConnection, personality_id: str) -> None:
            if avatar:
                await save_avatar(conn, personality_id, avatar_type, avatar)

        personality, created = await self._store.import_personality(
            plan.seed,
            owner_user_id=owner_id,
            extra_values={"custom_fields": plan.custom_fields, "voice_id": plan.voice_id},
            then=parts,
        )
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
        memories = parse_memories(load_json(document, source="the memories"))
        if len(memories) > MAX_BATCH:
            raise InvalidArgument("memories", f"send at most {MAX_BATCH} memories a call")
        require("personality", slug)
        personality = await self._store.find_personality(slug)
        if personality is None:
            if dry_run:
                mapped = sum(1 for m in memories if any(s in user_map for s in m.sender_ids))
                return MemoryBatch(
                    imported=len(memories), mapped=mapped, shared=len(memories) - mapped
                )
            raise NotFound(
                f"no personality named {slug!r}; import its configuration first",
                reason="PERSONALITY_NOT_FOUND",
            )
        users: dict[str, str] = {}
        imported = skipped = mapped = shared = 0
        for item in memories:
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
            memory = common.Memory(
                id=memory_id(personality.id, item.id),
                personality_id=personality.id,
                user_id=user_id,
                text=item.result.strip(),
            )
            when = item.created_at
            if when is not None:
                stamp = Timestamp()
                stamp.FromDatetime(when)
                memory.created_at.CopyFrom(stamp)
            added = await self._memory.add_memory(mem.AddMemoryRequest(memory=memory))
            if added.existed:
                skipped += 1
            else:
                imported += 1
        return MemoryBatch(imported, skipped, mapped, shared)

    async def _owner(self, owner: str) -> str | None:
        platform_id = owner.strip() or self.bot_owner_id or min(self.superuser_ids, default="")
        if not platform_id:
            return None
        return await self._db.user_id_for(platform_id)
