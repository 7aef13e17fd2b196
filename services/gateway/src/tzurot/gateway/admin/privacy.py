"""Privacy and export: everything stored about a user as a zip, and deleting all of it
(gateway's rows, memory's history and memories, keyvault's keys, the voices cloned in their
ElevenLabs account).

The export is a versioned format (`manifest.json`: `format`, `version`): one JSON file per
kind of data (FILES), the V3 card of each personality they own (`cards/<slug>.json`), and
the bytes they gave or were answered with: their voice samples (`voice_samples/`) and the
files answers carried (`answer_files/`). The archive is one gRPC reply: those bytes go in
while it stays under MAX_ARCHIVE_BYTES (voice samples first, oldest first), and one left
out keeps its row, with `"file": null` and why (`omitted`). JSON alone past the limit is
refused (FAILED_PRECONDITION `EXPORT_TOO_LARGE`). Never key material: `wallet.json` says which
providers hold a key and when it was last used. A version adds files and fields only; one
that renames or drops any is the next version.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.cards import CardAdmin
from tzurot.gateway.admin.deletions import DeletionAdmin
from tzurot.runtime.errors import FailedPrecondition
from tzurot.runtime.grpc_options import MAX_MESSAGE_BYTES
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

log = structlog.get_logger(__name__)

EXPORT_FORMAT = "tzurot-user-export"
EXPORT_VERSION = 1
MAX_ARCHIVE_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
"""The largest archive: a gRPC reply, less room for its file name."""
_ENTRY_BYTES = 128  # a stored zip entry's headers beyond its name (local and central)
_ROW_SLACK = 64  # what a row's JSON may grow by when its file is left out

FILES = {
    "user.json": "your account: Discord id, name, timezone, flags",
    "personas.json": "your personas (the default one, and per personality)",
    "llm_configs.json": "the LLM configs you made",
    "model_overrides.json": "the config you chose per personality",
    "user_models.json": "the config you chose for every personality",
    "personal_aliases.json": "your own aliases for personalities",
    "settings.json": "your settings (yours, and yours per personality)",
    "personalities_owned.json": "the personalities you own, with their aliases; `card_file` "
    "is their V3 character card in cards/ (import it again with /character import)",
    "messages.json": "every request you sent and its answer (model, usage, what helper models "
    "read of your attachments, the files it carried: `files`); a turn you pay for that "
    "answered nobody (free will, a chain reply: `scheduled`) has no answer here, its text "
    "is the channel's",
    "usage.json": "every paid call made for you",
    "lorebooks.json": "the lorebooks you own, with their entries and where they are attached",
    "voice_samples.json": "the recordings you uploaded to clone voices; `file` is the audio "
    "in voice_samples/",
    "voices_cloned.json": "the voices you cloned (they are in your ElevenLabs account)",
    "free_will.json": "the personalities whose free will you pay for, per conversation",
    "scheduled_turns.json": "the turns scheduled on you (free will, chain replies, greetings)",
    "wallet.json": "which providers hold a key of yours and when it was last used (never a key)",
    "history.json": "the conversation turns of your exchanges (the context personalities see)",
    "memories.json": "what personalities remember about you long-term (facts are tagged "
    "`fact`; a fact replaced by a newer one has `superseded_by`)",
    "memory_modes.json": "your memory modes per personality (incognito, fresh start)",
}


@dataclass
class _Blob:
    """Bytes the archive may carry: the row that lists them, where they go, their size."""

    row: dict[str, Any]
    path: str
    size: int
    read: Callable[[], Awaitable[bytes]]


class PrivacyAdmin(CardAdmin, DeletionAdmin):
    async def export_user_data(self, who: Principal) -> tuple[bytes, str]:
        """The user's export (the module says what it holds) and its file name."""
        user = who.require_user()
        data = await self._db.export_user(user.id)
        await self._gateway.key_uses.flush()  # "last used" as of now, not the last flush
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
        data["memory_modes"] = [_exported_mode(mode) for mode in stored.modes]
        files_of: dict[str, list[dict[str, Any]]] = {}
        for row in data.pop("answer_files"):
            files_of.setdefault(row.pop("job_id"), []).append(row)
        blobs = [
            _Blob(
                row,
                f"voice_samples/{row['id']}.{_safe(row['format'])}",
                int(row["size_bytes"]),
                partial(self._db.voice_sample_data, row["id"]),
            )
            for row in data["voice_samples"]
        ]
        for message in data["messages"]:
            message["files"] = files_of.get(message["id"], [])
            blobs += [
                _Blob(
                    row,
                    f"answer_files/{message['id']}/{row['position']}-{_safe(row['filename'])}",
                    int(row["size_bytes"]),
                    partial(self._db.answer_file_data, message["id"], row["position"]),
                )
                for row in message["files"]
            ]
        cards: dict[str, bytes] = {}
        for personality in data["personalities_owned"]:
            personality["card_file"] = await self._card(who, personality["slug"], cards)
        stamp = datetime.now(UTC)
        archive = await self._archive(data, cards, blobs, user.platform_user_id, stamp)
        log.info("privacy.user_exported", user_id=user.id, bytes=len(archive))
        return archive, f"tzurot-{user.platform_user_id}-{stamp.strftime('%Y%m%d')}.zip"

    async def _card(self, who: Principal, slug: str, cards: dict[str, bytes]) -> str | None:
        """Adds the personality's V3 card (JSON) to `cards`; its path, or None when it has
        none (too large for a reply: its row is still exported)."""
        try:
            document, _, _ = await self.export_card(who, slug, "json")
        except FailedPrecondition as err:
            log.warning("privacy.card_left_out", slug=slug, reason=err.reason)
            return None
        path = f"cards/{_safe(slug)}.json"
        cards[path] = document
        return path

    async def _archive(
        self,
        data: dict[str, list[dict[str, Any]]],
        cards: dict[str, bytes],
        blobs: list[_Blob],
        platform_user_id: str,
        stamp: datetime,
    ) -> bytes:
        """The zip: every JSON file and card, and the blobs that fit under MAX_ARCHIVE_BYTES
        (in order); FAILED_PRECONDITION when the JSON alone does not fit."""
        for blob in blobs:
            blob.row["file"] = blob.path

        def texts(omitted: int) -> dict[str, bytes]:
            manifest = {
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "created_at": stamp.isoformat(),
                "discord_user_id": platform_user_id,
                "files": FILES,
                "files_left_out": omitted,
            }
            out = {"manifest.json": _json(manifest), "README.txt": _readme(omitted).encode()}
            out |= {f"{name}.json": _json(rows) for name, rows in data.items()}
            return out | cards

        base = len(await asyncio.to_thread(_pack, texts(len(blobs)), {}))
        room = MAX_ARCHIVE_BYTES - base - _ROW_SLACK * len(blobs)
        if room < 0:
            raise _too_large(base)
        kept: dict[str, bytes] = {}
        for blob in blobs:
            entry = 2 * len(blob.path.encode()) + _ENTRY_BYTES
            content = await blob.read() if blob.size + entry <= room else None
            if content and len(content) + entry <= room:
                kept[blob.path] = content
                room -= len(content) + entry
            else:
                blob.row["file"] = None
                blob.row["omitted"] = "deleted meanwhile" if content == b"" else "size limit"
        archive = await asyncio.to_thread(_pack, texts(len(blobs) - len(kept)), kept)
        if len(archive) > MAX_ARCHIVE_BYTES:  # cannot happen with the room kept above
            raise _too_large(len(archive))
        return archive

    async def delete_user_data(self, who: Principal) -> int:
        """Erases the user across the mesh; the count of what was deleted.

        First the voices they cloned, from their ElevenLabs account (with their key, before
        it goes; ElevenLabs unreachable fails the request before anything else is touched).
        Then the deletion is recorded on their `users` row and cannot be undone: they are
        refused from now on, and the rest (deletions.py: their private personalities,
        their `core` rows, keys, memory's data, the `users` row last) is finished by a sweep
        if this request fails or dies on the way (FAILED_PRECONDITION `DELETION_PENDING`).
        """
        user = who.require_user()
        deleted = await self._delete_clones(await self._db.user_clones(user.id))
        deleted += await self._delete_for_good(
            "user",
            user.id,
            "your data deletion was interrupted by a failure on our side; it is recorded and "
            "finishes by itself within a few minutes, so there is nothing to ask again (until "
            "then nothing you send is answered or kept)",
        )
        log.info("privacy.user_deleted", user_id=user.id, deleted=deleted)
        return deleted


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode()


def _pack(texts: dict[str, bytes], blobs: dict[str, bytes]) -> bytes:
    """A zip: texts deflated, blobs (audio, images: compressed already) stored."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in texts.items():
            archive.writestr(name, text)
        for name, content in blobs.items():
            archive.writestr(name, content, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def _safe(name: str) -> str:
    """A file name safe inside the archive: no folders, no dots first, no odd characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name.rsplit("/", 1)[-1]).lstrip(".")
    return cleaned[:100] or "file"


def _too_large(size: int) -> FailedPrecondition:
    return FailedPrecondition(
        f"your data is {size / 1e6:.1f} MB even without its audio and images, over the "
        f"{MAX_ARCHIVE_BYTES / 1e6:.0f} MB one export can carry; clear some history or "
        "memories (or ask the operator) and try again",
        reason="EXPORT_TOO_LARGE",
    )


def _readme(omitted: int) -> str:
    lines = [
        "Everything Tzurot stores about you, as of manifest.json's created_at.",
        f"Format {EXPORT_FORMAT} version {EXPORT_VERSION}: manifest.json lists each file.",
        "",
        *(f"{name}: {about}." for name, about in FILES.items()),
        "cards/: the V3 character card (JSON) of each personality you own.",
        "voice_samples/, answer_files/: your recordings, and the files answers carried.",
        "",
        "API keys are never exported (wallet.json lists the providers).",
    ]
    if omitted:
        lines.append(
            f"{omitted} audio or image files did not fit in one export (they are listed with "
            '"file": null); what you uploaded yourself came first.'
        )
    return "\n".join(lines) + "\n"


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
        "id": memory.id,
        "personality_id": memory.personality_id,
        "text": memory.text,
        "sector": common.MemorySector.Name(memory.sector).removeprefix("MEMORY_SECTOR_").lower(),
        "salience": memory.salience,
        "created_at": _stamp(memory, "created_at"),
        "last_accessed_at": _stamp(memory, "last_accessed_at"),
        "tags": list(memory.tags),
        "superseded_by": memory.superseded_by or None,
    }


def _exported_mode(mode: mem.UserMemoryMode) -> dict[str, Any]:
    """One memory mode for memory_modes.json (a time unset: that mode is off)."""
    return {
        "personality_id": mode.personality_id,
        "incognito_until": _stamp(mode.mode, "incognito_until"),
        "fresh_since": _stamp(mode.mode, "fresh_since"),
    }
