"""Character cards: import (JSON, PNG, CHARX) and export (V3 as PNG, JSON or CHARX).

An imported card creates or updates the personality of its slug: a user may update only a
personality they own (a superuser, any). The card's picture is kept as the personality's
card image (exported again inside the PNG) and, when the edge is reachable
(TZUROT_PUBLIC_URL), becomes its avatar served at `/avatars/{slug}.{ext}`; its CHARX assets
are kept by path, its character_book as the personality's card lorebook (attached to it).
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway.admin.avatars import AvatarAdmin
from tzurot.gateway.admin.base import Principal
from tzurot.gateway.cards import codec
from tzurot.gateway.cards.mapping import (
    CHARX_ICON_PATH,
    CharacterView,
    card_from_view,
    draft_from_card,
    with_charx_icon,
)
from tzurot.gateway.domain import Personality
from tzurot.gateway.rules import rules_to_json
from tzurot.gateway.store.lorebooks import save_card_parts
from tzurot.runtime.errors import PermissionDenied

CardFormatName = Literal["png", "json", "charx"]
AVATAR_ASSET = "avatar"
"""The path under which the card picture is kept among a personality's assets."""
_CONTENT_TYPES = {"png": "image/png", "json": "application/json", "charx": "application/zip"}


class CardAdmin(AvatarAdmin):
    async def import_card(self, who: Principal, document: bytes) -> tuple[Personality, bool]:
        draft = draft_from_card(codec.decode(document))
        slug = draft.seed.effective_slug
        existing = await self._store.find_personality(slug)
        if existing is not None and existing.slug != slug:
            existing = None  # found by display name or alias: another personality
        if existing is not None and not (who.superuser or existing.owner_user_id == who.user_id):
            raise PermissionDenied(
                f"a personality {slug!r} already exists and is not yours; rename the card "
                "or ask its owner",
                reason="NOT_OWNER",
            )
        assets = {path: ("application/octet-stream", data) for path, data in draft.assets.items()}
        if draft.avatar:
            assets[AVATAR_ASSET] = (draft.avatar_type or "image/png", draft.avatar)
        owner = who.user_id if existing is None else existing.owner_user_id

        async def parts(conn: AsyncConnection, personality_id: str) -> None:
            await save_card_parts(
                conn, personality_id, assets=assets, book=draft.lorebook, owner_user_id=owner
            )

        personality, created = await self._store.import_personality(
            draft.seed,
            owner_user_id=owner,
            extra_values={"card": draft.card},
            then=parts,
        )
        if draft.avatar:
            personality = await self._serve_avatar(personality, draft.avatar) or personality
        return personality, created

    async def export_card(
        self, who: Principal, name: str, fmt: CardFormatName
    ) -> tuple[bytes, str, str]:
        """The personality as a V3 card: (document, file name, content type). The owner's or
        a superuser's: a card holds the whole system prompt."""
        personality = await self._owned(name, who)
        book = await self._db.card_lorebook(personality.id)
        assets = await self._db.card_assets(personality.id)
        c = personality.character
        card = card_from_view(
            CharacterView(
                name=personality.display_name,
                slug=personality.slug,
                aliases=personality.aliases,
                avatar_url=personality.avatar_url,
                system_prompt=personality.system_prompt,
                description=c.description,
                personality=c.personality,
                scenario=c.scenario,
                example_dialogues=c.example_dialogues,
                post_history_instructions=c.post_history_instructions,
                author_note=c.author_note,
                author_note_depth=c.author_note_depth,
                cleanup_rules=rules_to_json(personality.cleanup_rules),
                error_message=personality.error_message,
                birthday=personality.birthday,
                nsfw=personality.nsfw,
                public=personality.public,
                card=dict(personality.card),
                lorebook=None if book is None else book.book,
                created_at=int(personality.created_at.timestamp()),
                updated_at=int(personality.updated_at.timestamp()),
            )
        )
        picture = assets.pop(AVATAR_ASSET, None)
        if fmt == "png":
            document = codec.encode_png(card, picture[1] if picture else None)
        elif fmt == "json":
            document = codec.encode_json(card)
        else:
            files = {path: data for path, (_, data) in assets.items()}
            if picture is not None:
                card = with_charx_icon(card)
                files[CHARX_ICON_PATH] = codec.encode_png_plain(picture[1])
            document = codec.encode_charx(card, files)
        return document, f"{personality.slug}.{fmt}", _CONTENT_TYPES[fmt]
