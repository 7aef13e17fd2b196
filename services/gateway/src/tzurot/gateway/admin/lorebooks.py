"""Lorebooks: import (SillyTavern world info, lorebook_v3, a card's book), export, list,
delete, attach to a personality, a channel or globally, and detach.

Who may: a lorebook belongs to whoever imported it; its owner or a superuser edits,
exports, deletes, attaches and detaches it (to anyone else it is not found, as one that does
not exist). Attaching to a personality needs that
personality's owner (or a superuser); globally, a superuser; to a channel (or detaching from
one), Manage Channels there as the bot saw it on the interaction (`manage_channels`, as for
channel activation), or a superuser.
"""

from __future__ import annotations

from dataclasses import replace

from tzurot.gateway.admin.base import (
    AdminBase,
    Principal,
    require,
    require_manage_channels,
)
from tzurot.gateway.cards.lorebooks import export_document, read_lorebook_document
from tzurot.gateway.document_work import run_document_work
from tzurot.gateway.ids import is_uuid
from tzurot.gateway.lore import Scope, StoredLorebook
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied

LorebookFormatName = str  # "lorebook_v3" or "world_info"


class LorebookAdmin(AdminBase):
    async def import_lorebook(
        self,
        who: Principal,
        document: bytes,
        name: str,
        attach: tuple[Scope, str] | None,
        replace_ref: str = "",
        *,
        manage_channels: bool = False,
    ) -> tuple[StoredLorebook, list[str]]:
        """The book stored, and what its importer is told of (uids renumbered, regex keys
        dropped). Read on a worker thread, one document at a time in the process; `name`, used
        when the file has no title, is refused there when too long."""
        book, warnings = await run_document_work(
            read_lorebook_document, document, name=name.strip()
        )
        target = (
            None
            if attach is None
            else await self._attach_target(who, *attach, manage_channels=manage_channels)
        )
        if replace_ref.strip():
            existing = await self._lorebook(who, replace_ref)
            await self._db.replace_lorebook(existing.id, book, attach=target)  # one transaction
            return await self._shown(await self._get(existing.id)), warnings
        book_id = await self._db.create_lorebook(book, who.user_id, target)
        return await self._shown(await self._get(book_id)), warnings

    async def export_lorebook(
        self, who: Principal, ref: str, fmt: LorebookFormatName
    ) -> tuple[bytes, str]:
        stored = await self._lorebook(who, ref)
        document = await run_document_work(
            export_document, stored.book, "world_info" if fmt == "world_info" else "lorebook_v3"
        )
        slug = "".join(ch if ch.isalnum() else "-" for ch in stored.book.name.lower()).strip("-")
        return document, f"{slug or 'lorebook'}.json"

    async def list_lorebooks(
        self, who: Principal, attached: tuple[Scope, str] | None
    ) -> list[StoredLorebook]:
        where = None
        if attached is not None:
            scope, target = attached
            if scope == "personality":
                target = (await self._personality(target, who, "attached_to.target")).id
            elif scope == "channel":
                target = require("attached_to.target", target)
            where = (scope, target if scope != "global" else "")
        found = await self._db.list_lorebooks(
            owner_user_id=who.user_id, everything=who.superuser, attached=where
        )
        return [await self._shown(stored) for stored in found]

    async def delete_lorebook(self, who: Principal, ref: str) -> None:
        stored = await self._lorebook(who, ref)
        await self._db.delete_lorebook(stored.id)

    async def attach_lorebook(
        self, who: Principal, ref: str, scope: Scope, target: str, *, manage_channels: bool = False
    ) -> StoredLorebook:
        stored = await self._lorebook(who, ref)
        resolved = await self._attach_target(who, scope, target, manage_channels=manage_channels)
        await self._db.attach_lorebook(stored.id, *resolved)
        return await self._shown(await self._get(stored.id))

    async def detach_lorebook(
        self, who: Principal, ref: str, scope: Scope, target: str, *, manage_channels: bool = False
    ) -> StoredLorebook:
        stored = await self._lorebook(who, ref)
        resolved = await self._attach_target(who, scope, target, manage_channels=manage_channels)
        if not await self._db.detach_lorebook(stored.id, *resolved):
            raise NotFound(f"{stored.book.name!r} is not attached there", reason="NOT_ATTACHED")
        return await self._shown(await self._get(stored.id))

    # ---- helpers ----

    async def _attach_target(
        self, who: Principal, scope: Scope, target: str, *, manage_channels: bool
    ) -> tuple[Scope, str]:
        if scope == "personality":
            return scope, (await self._owned(target, who, "attachment.target")).id
        if scope == "channel":
            channel_id = require("attachment.target", target)
            require_manage_channels(who, manage_channels)
            return scope, channel_id
        if scope == "global":
            if not who.superuser:
                raise PermissionDenied(
                    "only superusers attach lorebooks globally", reason="NOT_SUPERUSER"
                )
            return scope, ""
        raise InvalidArgument("attachment.scope", "scope is personality, channel or global")

    async def _get(self, book_id: str) -> StoredLorebook:
        stored = await self._db.get_lorebook(book_id)
        if stored is None:
            raise NotFound(f"no lorebook {book_id}", reason="LOREBOOK_NOT_FOUND")
        return stored

    async def _lorebook(self, who: Principal, ref: str) -> StoredLorebook:
        """A lorebook the principal may change, by id or by name; another user's is not found,
        as one that does not exist (its name is not told to exist)."""
        ref = require("lorebook", ref)
        if is_uuid(ref):
            found = [s for s in [await self._db.get_lorebook(ref)] if s is not None]
        else:
            found = await self._db.lorebooks_named(ref)
        mine = [s for s in found if who.superuser or s.owner_user_id == who.user_id]
        if not mine:
            raise NotFound(f"no lorebook {ref!r}", reason="LOREBOOK_NOT_FOUND")
        if len(mine) > 1:
            raise InvalidArgument("lorebook", f"several lorebooks are named {ref!r}; use its id")
        return mine[0]

    async def _shown(self, stored: StoredLorebook) -> StoredLorebook:
        """Attachments as users name them: a personality's slug instead of its id."""
        shown: list[tuple[Scope, str]] = []
        for scope, target in stored.attachments:
            name = target
            if scope == "personality":
                personality = await self._store.get_personality(target)
                name = personality.slug if personality is not None else target
            shown.append((scope, name))
        return replace(stored, attachments=tuple(shown))
