"""Privacy and export: everything stored about a user as a zip, and deleting all of it
(gateway's rows, memory's history and memories, keyvault's keys, the voices cloned in their
ElevenLabs account).

The export is a versioned format (`manifest.json`: `format`, `version`): one JSON file per
kind of data (FILES), the V3 card of each personality they own (`cards/<slug>.json`), and
the bytes they gave or were answered with: their voice samples (`voice_samples/`), the
pictures of the personalities they own (`pictures/<slug>/`: the avatar and the card's
picture), the CHARX card of each that has assets beyond its picture (`cards/<slug>.charx`,
as `/character export format:charx` gives it: the only card that carries those assets, and
the one to import again) and the files answers carried (`answer_files/`). An archive is one
gRPC reply, so the export comes in parts (export_archive.py plans them): part 1 holds the
JSON and those bytes while it stays under MAX_ARCHIVE_BYTES (voice samples first, oldest
first, then pictures, CHARX cards and answers' files), and one left out keeps its row, with
`"file": null`, why (`omitted`) and which later part carries it (`part`, at `part_file`);
part 2 and on carry only such files, with a manifest listing them. JSON alone past the limit
is refused (FAILED_PRECONDITION `EXPORT_TOO_LARGE`), a part past the last too
(INVALID_ARGUMENT `part`). Every part's request gathers the rows and builds the cards again
(nothing is kept between requests): the plan rests on part 1's size and every file's; only
the files of the part asked for are read. Never key material: `wallet.json` says which
providers hold a key and when it was last used. A version adds files and fields only; one
that renames or drops any is the next version.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.gateway.admin.avatars import CONTENT_TYPES
from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.cards import MAX_EXPORT_BYTES, CardAdmin
from tzurot.gateway.admin.deletions import DeletionAdmin
from tzurot.gateway.admin.export_archive import (
    Blob,
    Head,
    first_texts,
    later_texts,
    pack,
    plan_parts,
    safe_name,
)
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from tzurot.runtime.grpc_options import MAX_MESSAGE_BYTES
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

log = structlog.get_logger(__name__)

MAX_ARCHIVE_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
"""The largest archive: a gRPC reply, less room for its file name."""
_ROW_SLACK = 64  # what a file's row in part 1 may grow by when its file is left out
_LONGEST_OMISSION = "deleted meanwhile"  # of the `omitted` reasons, the longest
_EXTENSIONS = {content_type: ext for ext, content_type in CONTENT_TYPES.items()}


@dataclass(frozen=True)
class UserExport:
    """One archive of a user's export: its bytes and file name, which part it is of how many."""

    archive: bytes
    filename: str
    part: int
    parts: int


class PrivacyAdmin(CardAdmin, DeletionAdmin):
    async def export_user_data(self, who: Principal, part: int = 1) -> UserExport:
        """Part `part` of the user's export (the module says what it holds)."""
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
            Blob(
                row,
                "voice_samples.json",
                f"voice_samples/{row['id']}.{safe_name(row['format'])}",
                int(row["size_bytes"]),
                partial(self._db.voice_sample_data, row["id"]),
            )
            for row in data["voice_samples"]
        ]
        blobs += self._pictures(data["personalities_owned"], data.pop("pictures"), user.id)
        cards: dict[str, bytes] = {}
        for personality in data["personalities_owned"]:
            charx = await self._cards(who, personality, cards)
            blobs += [charx] if charx else []
        for message in data["messages"]:
            message["files"] = files_of.get(message["id"], [])
            blobs += [
                Blob(
                    row,
                    "messages.json",
                    f"answer_files/{message['id']}/{row['position']}-{safe_name(row['filename'])}",
                    int(row["size_bytes"]),
                    partial(self._db.answer_file_data, message["id"], row["position"]),
                )
                for row in message["files"]
            ]
        head = Head(user.platform_user_id, datetime.now(UTC))
        archive, parts = await self._archive(data, cards, blobs, head, part)
        log.info("privacy.user_exported", user_id=user.id, bytes=len(archive), part=part)
        name = f"tzurot-{user.platform_user_id}-{head.stamp.strftime('%Y%m%d')}"
        if parts > 1:
            name += f"-part{part}of{parts}"
        return UserExport(archive, f"{name}.zip", part, parts)

    def _pictures(
        self, owned: list[dict[str, Any]], pictures: list[dict[str, Any]], user_id: str
    ) -> list[Blob]:
        """Lists each owned personality's pictures in its row (`pictures`: its avatar, then
        its card's picture, one row when they are the same image); their blobs."""
        found: dict[tuple[str, str], dict[str, Any]] = {
            (row["personality_id"], row["kind"]): row for row in pictures
        }
        blobs = []
        for personality in owned:
            personality["pictures"] = []
            avatar = found.get((personality["id"], "avatar"))
            card = found.get((personality["id"], "card"))
            if avatar and card and avatar["sha256"] == card["sha256"]:
                avatar, card = {**avatar, "used_as": ["avatar", "card"]}, None
            for picture in (avatar, card):
                if picture is None:
                    continue
                used_as = picture.get("used_as", [picture["kind"]])
                row = {
                    "used_as": used_as,
                    "content_type": picture["content_type"],
                    "size_bytes": picture["size_bytes"],
                }
                personality["pictures"].append(row)
                kind = str(picture["content_type"])
                ext = _EXTENSIONS.get(kind) or safe_name(kind.rpartition("/")[2])
                blobs.append(
                    Blob(
                        row,
                        "personalities_owned.json",
                        f"pictures/{safe_name(personality['slug'])}/{used_as[0]}.{ext}",
                        int(picture["size_bytes"]),
                        partial(self._db.picture_data, personality["id"], picture["kind"], user_id),
                    )
                )
        return blobs

    async def _cards(
        self, who: Principal, personality: dict[str, Any], cards: dict[str, bytes]
    ) -> Blob | None:
        """Names the owned personality's cards in its row. Its V3 card (JSON), added to
        `cards`: `card_file`, its path (None when too large for a reply; the row is still
        exported). Its CHARX card when it has assets beyond its picture (a CHARX's other
        files, which only that card carries): `charx` (None without such assets), with the
        assets' paths and the card's size; its blob, read again for the part that carries
        it (every request lists its size: building them all once per request, not keeping
        them all)."""
        slug = personality["slug"]
        personality.update(card_file=None, charx=None)
        try:
            contents = await self.card_contents(who, slug)
        except (NotFound, PermissionDenied):  # deleted or given away meanwhile
            return None
        document = await contents.encode("json")
        if len(document) > MAX_EXPORT_BYTES:
            log.warning("privacy.card_left_out", slug=slug, reason="CARD_TOO_LARGE")
        else:
            personality["card_file"] = f"cards/{safe_name(slug)}.json"
            cards[personality["card_file"]] = document
        if not contents.assets:
            return None
        size = len(await contents.encode("charx"))
        personality["charx"] = {"assets": sorted(contents.assets), "size_bytes": size}
        return Blob(
            personality["charx"],
            "personalities_owned.json",
            f"cards/{safe_name(slug)}.charx",
            size,
            partial(self._charx, who, slug),
        )

    async def _charx(self, who: Principal, slug: str) -> bytes:
        """The personality's CHARX card (b"" when it is gone, no longer theirs, or has no
        assets beyond its picture any more)."""
        try:
            contents = await self.card_contents(who, slug)
        except (NotFound, PermissionDenied):
            return b""
        return await contents.encode("charx") if contents.assets else b""

    async def _archive(
        self,
        data: dict[str, list[dict[str, Any]]],
        cards: dict[str, bytes],
        blobs: list[Blob],
        head: Head,
        part: int,
    ) -> tuple[bytes, int]:
        """Part `part` of the export and how many parts there are. Part 1: every JSON file
        and card, and the blobs planned for it; a later part: its blobs and a manifest.
        FAILED_PRECONDITION when the JSON alone does not fit part 1; INVALID_ARGUMENT past
        the last part."""
        # The room each part has is measured with every text at its longest: more parts
        # than there can be, every file left out of part 1 and its row saying so.
        most = len(blobs) + 1
        for blob in blobs:
            blob.row.update(file=None, omitted=_LONGEST_OMISSION, part=most, part_file=blob.path)
        first = first_texts(
            data=data, cards=cards, head=head, parts=most, left_out=len(blobs), too_large=len(blobs)
        )
        base = await _packed_size(first)
        room = MAX_ARCHIVE_BYTES - base - _ROW_SLACK * len(blobs)
        if room < 0:
            raise _too_large(base)
        later_room = MAX_ARCHIVE_BYTES - await _packed_size(later_texts(head, most, most, []))
        plan = plan_parts([blob.cost() for blob in blobs], room, later_room)
        parts = max((planned for planned in plan if planned is not None), default=1)
        if not 1 <= part <= parts:
            raise InvalidArgument(
                "part",
                f"your export has {parts} part{'s' if parts > 1 else ''}: there is no part "
                f"{part}; ask for part 1 to {parts}",
                reason="EXPORT_PART_NOT_FOUND",
            )
        kept, missing = await _read(
            [b for b, p in zip(blobs, plan, strict=True) if p == part],
            room if part == 1 else later_room,
        )
        if part == 1:
            for blob, planned in zip(blobs, plan, strict=True):
                _place(blob, planned, kept, missing)
            left_out = len(blobs) - len(kept)
            too_large = plan.count(None)
            texts = first_texts(
                data=data,
                cards=cards,
                head=head,
                parts=parts,
                left_out=left_out,
                too_large=too_large,
            )
        else:
            texts = later_texts(head, part, parts, [b for b in blobs if b.path in kept])
        archive = await asyncio.to_thread(pack, texts, kept)
        if len(archive) > MAX_ARCHIVE_BYTES:  # cannot happen with the room kept above
            raise _too_large(len(archive))
        return archive, parts

    async def delete_user_data(self, who: Principal) -> int:
        """Erases the user across the mesh; the count of what was deleted.

        First the voices they cloned, from their ElevenLabs account (with their key, before
        it goes), and those cloned for their private personalities, from their cloners'
        (ElevenLabs unreachable fails the request before anything else is touched; a clone
        by them or of those personalities under way refuses it, FAILED_PRECONDITION
        `CLONE_IN_PROGRESS`). Then the deletion is recorded on their `users` row and cannot
        be undone: they are refused from now on, and the rest (deletions.py: their private
        personalities, the clones of those whose answer was lost, their `core` rows, keys,
        memory's data, the `users` row last) is finished by a sweep if this request fails or
        dies on the way (FAILED_PRECONDITION `DELETION_PENDING`). The lost clones go before
        her keys, which alone reach her ElevenLabs account: ElevenLabs away keeps her key
        (unused, she is refused) for the sweep's retries, up to a day after she asked, then
        her key goes and those clones stay, logged.
        """
        user = who.require_user()
        deleted = await self._delete_for_good(
            "user",
            user.id,
            cloning="a voice is being cloned with your ElevenLabs key or for one of your "
            "personalities right now, so nothing was deleted; ask again once it is done (that "
            "voice is then deleted too)",
            deleting="another request is deleting your data, or one of your personalities, "
            "right now, so this one did nothing; if your data is not gone in a minute, ask "
            "again",
            interrupted="your data deletion was interrupted by a failure on our side; it is "
            "recorded and finishes by itself, usually within minutes (up to a day while "
            "ElevenLabs cannot be reached to delete cloned voices), so there is nothing to ask "
            "again (until then nothing you send is answered or kept)",
        )
        log.info("privacy.user_deleted", user_id=user.id, deleted=deleted)
        return deleted


async def _packed_size(texts: dict[str, bytes]) -> int:
    return len(await asyncio.to_thread(pack, texts, {}))


async def _read(blobs: list[Blob], room: int) -> tuple[dict[str, bytes], dict[str, str]]:
    """The blobs' bytes that fit `room` (in order), by path; and why the others were left
    out: deleted, or grown past the room since they were listed."""
    kept: dict[str, bytes] = {}
    missing: dict[str, str] = {}
    for blob in blobs:
        content = await blob.read()
        if content and blob.cost(len(content)) <= room:
            kept[blob.path] = content
            room -= blob.cost(len(content))
        else:
            missing[blob.path] = "changed meanwhile" if content else "deleted meanwhile"
    return kept, missing


def _place(
    blob: Blob, planned: int | None, kept: dict[str, bytes], missing: dict[str, str]
) -> None:
    """Says in the blob's row (part 1's JSON) where its file is: `file` in this archive, or
    null with why (`omitted`) and, when a later part carries it, which (`part`) and where
    in it (`part_file`)."""
    row = blob.row
    for field in ("omitted", "part_file"):
        row.pop(field, None)
    if blob.path in kept:
        row.update(file=blob.path, part=1)
    elif planned is None:
        row.update(file=None, omitted="too large", part=None)
    elif planned == 1:
        row.update(file=None, omitted=missing[blob.path], part=None)
    else:
        row.update(file=None, omitted="size limit", part=planned, part_file=blob.path)


def _too_large(size: int) -> FailedPrecondition:
    return FailedPrecondition(
        f"your data is {size / 1e6:.1f} MB even without its audio, images and CHARX cards, "
        f"over the {MAX_ARCHIVE_BYTES / 1e6:.0f} MB one export can carry; clear some history or "
        "memories (or ask the operator) and try again",
        reason="EXPORT_TOO_LARGE",
    )


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
