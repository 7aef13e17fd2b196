"""Character card and lorebook RPCs, and the shapes.inc import (issue 20)."""

from __future__ import annotations

from tzurot.gateway import convert
from tzurot.gateway.admin.cards import CardFormatName
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.imports import seed_from_document
from tzurot.gateway.lore import Scope
from tzurot.gateway.lore_convert import SCOPE_NAME, lorebook
from tzurot.gateway.server import Context
from tzurot.runtime.errors import InvalidArgument
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

_CARD_FORMATS = (gw.IMPORT_FORMAT_CHARACTER_CARD, gw.IMPORT_FORMAT_CHARACTER_CARD_JSON)
_EXPORT_FORMATS: dict[int, CardFormatName] = {
    gw.CARD_FORMAT_UNSPECIFIED: "png",
    gw.CARD_FORMAT_PNG: "png",
    gw.CARD_FORMAT_JSON: "json",
    gw.CARD_FORMAT_CHARX: "charx",
}


def _attachment(message: common.LorebookAttachment, field: str) -> tuple[Scope, str]:
    scope = SCOPE_NAME.get(message.scope)
    if scope is None:
        raise InvalidArgument(f"{field}.scope", "scope is PERSONALITY, CHANNEL or GLOBAL")
    return scope, message.target


class CardRpcs(AdminRpcs):
    async def ImportPersonality(
        self, request: gw.ImportPersonalityRequest, context: Context
    ) -> gw.ImportPersonalityResponse:
        who = await self._who(request)
        if request.format not in _CARD_FORMATS:
            seed = seed_from_document(convert.import_format(request.format), request.document)
            personality, created = await self._admin.import_seed(who, seed)
            return gw.ImportPersonalityResponse(
                personality=convert.personality(personality), created=created
            )
        done = await self._admin.import_card(who, request.document)
        return gw.ImportPersonalityResponse(
            personality=convert.personality(done.personality),
            created=done.created,
            warnings=list(done.warnings),
        )

    async def ExportPersonality(
        self, request: gw.ExportPersonalityRequest, context: Context
    ) -> gw.ExportPersonalityResponse:
        fmt = _EXPORT_FORMATS.get(request.format)
        if fmt is None:
            raise InvalidArgument("format", "format is PNG, JSON or CHARX")
        document, filename, content_type = await self._admin.export_card(
            await self._who(request), request.personality, fmt
        )
        return gw.ExportPersonalityResponse(
            document=document, filename=filename, content_type=content_type
        )


class LorebookRpcs(AdminRpcs):
    async def ImportLorebook(
        self, request: gw.ImportLorebookRequest, context: Context
    ) -> gw.ImportLorebookResponse:
        attach = _attachment(request.attach, "attach") if request.HasField("attach") else None
        stored, warnings = await self._admin.import_lorebook(
            await self._who(request),
            request.document,
            request.name,
            attach,
            request.replace,
            manage_channels=request.manage_channels,
        )
        return gw.ImportLorebookResponse(lorebook=lorebook(stored), warnings=warnings)

    async def ExportLorebook(
        self, request: gw.ExportLorebookRequest, context: Context
    ) -> gw.ExportLorebookResponse:
        fmt = "world_info" if request.format == gw.LOREBOOK_FORMAT_WORLD_INFO else "lorebook_v3"
        document, filename = await self._admin.export_lorebook(
            await self._who(request), request.lorebook, fmt
        )
        return gw.ExportLorebookResponse(document=document, filename=filename)

    async def ListLorebooks(
        self, request: gw.ListLorebooksRequest, context: Context
    ) -> gw.ListLorebooksResponse:
        attached = None
        if request.HasField("attached_to") and request.attached_to.scope:
            attached = _attachment(request.attached_to, "attached_to")
        found = await self._admin.list_lorebooks(await self._who(request), attached)
        return gw.ListLorebooksResponse(
            lorebooks=[lorebook(stored, with_entries=False) for stored in found]
        )

    async def DeleteLorebook(
        self, request: gw.DeleteLorebookRequest, context: Context
    ) -> gw.DeleteLorebookResponse:
        await self._admin.delete_lorebook(await self._who(request), request.lorebook)
        return gw.DeleteLorebookResponse()

    async def AttachLorebook(
        self, request: gw.AttachLorebookRequest, context: Context
    ) -> gw.AttachLorebookResponse:
        scope, target = _attachment(request.attachment, "attachment")
        stored = await self._admin.attach_lorebook(
            await self._who(request),
            request.lorebook,
            scope,
            target,
            manage_channels=request.manage_channels,
        )
        return gw.AttachLorebookResponse(lorebook=lorebook(stored))

    async def DetachLorebook(
        self, request: gw.DetachLorebookRequest, context: Context
    ) -> gw.DetachLorebookResponse:
        scope, target = _attachment(request.attachment, "attachment")
        stored = await self._admin.detach_lorebook(
            await self._who(request),
            request.lorebook,
            scope,
            target,
            manage_channels=request.manage_channels,
        )
        return gw.DetachLorebookResponse(lorebook=lorebook(stored))


class ShapesRpcs(AdminRpcs):
    async def ImportShapes(
        self, request: gw.ImportShapesRequest, context: Context
    ) -> gw.ImportShapesResponse:
        done = await self._admin.import_shapes(
            await self._who(request),
            request.config,
            aliases=list(request.aliases),
            avatar=request.avatar,
            avatar_type=request.avatar_content_type,
            owner=request.owner_user_id,
            dry_run=request.dry_run,
        )
        reply = gw.ImportShapesResponse(
            created=done.created, warnings=list(done.warnings), settings=list(done.settings)
        )
        if done.personality is not None:
            reply.personality.CopyFrom(convert.personality(done.personality))
        return reply

    async def ImportShapesMemories(
        self, request: gw.ImportShapesMemoriesRequest, context: Context
    ) -> gw.ImportShapesMemoriesResponse:
        batch = await self._admin.import_shapes_memories(
            await self._who(request),
            request.personality,
            request.memories,
            dict(request.user_map),
            dry_run=request.dry_run,
        )
        return gw.ImportShapesMemoriesResponse(
            imported=batch.imported,
            skipped=batch.skipped,
            mapped=batch.mapped,
            shared=batch.shared,
            split=batch.split,
            split_parts=batch.split_parts,
        )

    async def ImportShapesHistory(
        self, request: gw.ImportShapesHistoryRequest, context: Context
    ) -> gw.ImportShapesHistoryResponse:
        batch = await self._admin.import_shapes_history(
            await self._who(request),
            request.personality,
            request.history,
            dict(request.user_map),
            channel_id=request.channel_id,
            dry_run=request.dry_run,
        )
        return gw.ImportShapesHistoryResponse(
            exchanges=batch.exchanges,
            skipped=batch.skipped,
            messages=batch.messages,
            channel_id=batch.channel_id,
        )
