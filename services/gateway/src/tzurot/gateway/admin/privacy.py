"""Privacy and export: everything stored about a user as a zip, and deleting all of it
(gateway's rows, memory's history and memories, keyvault's keys, the voices cloned in their
ElevenLabs account)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import structlog
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.gateway.admin.base import AdminBase, Principal
from tzurot.runtime.errors import TzurotError
from tzurot.runtime.retry import RETRYABLE
from tzurot.v1 import common_pb2 as common

log = structlog.get_logger(__name__)


class PrivacyAdmin(AdminBase):
    async def export_user_data(self, who: Principal) -> tuple[bytes, str]:
        user = who.require_user()
        data = await self._db.export_user(user.id)
        keys = await self._keyvault.list_keys(user.id)
        data["wallet"] = [
            {
                "provider": k.provider,
                "created_at": k.created_at.isoformat() if k.created_at else None,
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                "active": k.active,
            }
            for k in keys
        ]
        stored = await self._memory.export_user(user.id)
        data["history"] = [_exported_turn(turn) for turn in stored.turns]
        data["memories"] = [_exported_memory(memory) for memory in stored.memories]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, rows in data.items():
                archive.writestr(f"{name}.json", json.dumps(rows, indent=2, ensure_ascii=False))
            archive.writestr(
                "README.txt",
                "Everything Tzurot stores about you. Your requests and answers are in "
                "messages.json; the conversation turns memory keeps (the context personalities "
                "see) are in history.json, and what personalities remember about you long-term "
                "is in memories.json. API keys are never exported (wallet.json lists "
                "providers).\n",
            )
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        return buffer.getvalue(), f"tzurot-{user.platform_user_id}-{stamp}.zip"

    async def delete_user_data(self, who: Principal) -> int:
        """Erases the user across the mesh; the count of what was deleted.

        In this order: the voices they cloned, from their ElevenLabs account (with their
        key, before it goes); their `core` rows but the `users` row, jobs first, so no answer
        of theirs still in flight is stored into history afterwards; their keys; memory's
        turns, memories and what waits to be formed from them; the `users` row last. Every
        step can be run again, and the row that maps their Discord id to the id the services
        know them by goes last: a request that failed half-way fails (never a success) and
        finishes when it is asked again.
        """
        user = who.require_user()
        deleted = await self._delete_clones(user.id)
        deleted += await self._db.delete_user_content(user.id)
        for key in await self._keyvault.list_keys(user.id):
            deleted += int(await self._keyvault.delete_key(user.id, key.provider))
        deleted += await self._memory.forget_user(user.id)
        deleted += await self._db.delete_user(user.id)
        log.info("privacy.user_deleted", user_id=user.id, deleted=deleted)
        return deleted

    async def _delete_clones(self, user_id: str) -> int:
        """Deletes the voices the user cloned from their ElevenLabs account; how many were
        there. ElevenLabs unreachable fails the request (nothing is deleted yet, so asking
        again finishes it); a clone their key cannot delete (no key, a rejected key) is left
        in their account, which they control, and logged."""
        clones = await self._db.user_clones(user_id)
        if not clones or self._speech is None:
            return 0
        deleted = 0
        for personality_id, voice_id in clones:
            try:
                deleted += int(await self._speech.delete_voice(user_id, voice_id))
            except TzurotError as err:
                if err.code in RETRYABLE:
                    raise
                log.warning("privacy.clone_kept", personality_id=personality_id, reason=err.reason)
        return deleted


def _stamp(message: Message, field: str) -> str | None:
    """A Timestamp field as ISO 8601 UTC; None when unset."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC).isoformat()


def _exported_turn(turn: common.Turn) -> dict[str, Any]:
    """One history turn for history.json."""
    return {
        "channel_id": turn.channel_id,
        "personality_id": turn.personality_id,
        "job_id": turn.job_id,
        "role": common.Role.Name(turn.role).removeprefix("ROLE_").lower(),
        "author_id": turn.author_id,
        "author_name": turn.author_name,
        "content": turn.content,
        "message_ids": list(turn.message_ids),
        "attachments": [
            {"url": a.url, "filename": a.filename, "content_type": a.content_type}
            for a in turn.attachments
        ],
        "created_at": _stamp(turn, "created_at"),
    }


def _exported_memory(memory: common.Memory) -> dict[str, Any]:
    """One long-term memory for memories.json (no embedding, no score)."""
    return {
        "personality_id": memory.personality_id,
        "text": memory.text,
        "sector": common.MemorySector.Name(memory.sector).removeprefix("MEMORY_SECTOR_").lower(),
        "salience": memory.salience,
        "created_at": _stamp(memory, "created_at"),
        "last_accessed_at": _stamp(memory, "last_accessed_at"),
    }
