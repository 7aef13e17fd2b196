"""Avatars kept by the project: `/character avatar` uploads go here instead of Discord's
signed attachment URLs (which expire), and the edge serves them publicly at
`{public_url}/avatars/{slug}.{ext}`.

What is served publicly carries no metadata (`clean_avatar`): a PNG without its text and eXIf
chunks, a JPEG or WebP re-encoded without its Exif (GPS position, camera serial), XMP and
comments, as a card's picture is (cards/pictures.py); a GIF as it came (it holds no Exif). An
animated WebP too large to re-encode (`pictures.animation_refusal`: frames x pixels, canvas)
is refused before any frame is decoded.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re

from tzurot.gateway.admin.base import AdminBase, Principal
from tzurot.gateway.cards import pictures
from tzurot.gateway.domain import Personality
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

MAX_AVATAR_BYTES = 8 * 1024 * 1024
_FILE = re.compile(r"^([a-z0-9][a-z0-9-]{0,62})\.(png|jpg|gif|webp)$")
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def image_kind(data: bytes) -> str | None:
    """The extension of a PNG, JPEG, GIF or WebP image, recognised by its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


MAX_AVATAR_PIXELS = 4096 * 4096
"""A picture past this is refused before its pixels are decoded (as a card's picture is)."""


def clean_avatar(data: bytes, kind: str) -> bytes:
    """The picture `data` (of `image_kind` `kind`) without metadata, in its own format;
    InvalidArgument when it cannot be read. CPU: run on a worker thread."""
    if kind == "png":
        kept = pictures.without_text_chunks(data)
        if kept is None:
            raise InvalidArgument("image", "the avatar image cannot be read: a damaged PNG")
        return kept
    if kind not in ("jpg", "webp"):
        return data
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - Pillow on first use

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_AVATAR_PIXELS:
                raise InvalidArgument(
                    "image",
                    f"the avatar is {opened.width}x{opened.height}; at most "
                    f"{MAX_AVATAR_PIXELS} pixels",
                )
            refusal = pictures.animation_refusal(opened)  # from the header, nothing decoded
            if refusal is not None:
                raise InvalidArgument("image", f"the avatar cannot be kept: {refusal}")
            return pictures.without_metadata(data, opened)
    except (pictures.UnusablePicture, UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidArgument("image", f"the avatar image cannot be read: {exc}") from None


class AvatarAdmin(AdminBase):
    async def set_avatar(self, who: Principal, name: str, image: bytes) -> Personality:
        if not self._public_url:
            raise FailedPrecondition(
                "avatars cannot be served: TZUROT_PUBLIC_URL (where the edge is reachable) "
                "is not set",
                reason="NO_PUBLIC_URL",
            )
        if len(image) > MAX_AVATAR_BYTES:
            raise InvalidArgument("image", "the avatar image is larger than 8 MiB")
        if image_kind(image) is None:
            raise InvalidArgument("image", "the avatar must be a PNG, JPEG, GIF or WebP image")
        target = await self._owned(name, who)
        updated = await self._serve_avatar(target, image)
        assert updated is not None
        return updated

    async def _serve_avatar(self, target: Personality, image: bytes) -> Personality | None:
        """Keeps `image` as the personality's avatar, served by the edge, and points its
        avatar URL there; None (nothing changed) without a public URL or a known image."""
        kind = image_kind(image)
        if not self._public_url or kind is None or len(image) > MAX_AVATAR_BYTES:
            return None
        image = await asyncio.to_thread(clean_avatar, image, kind)
        digest = hashlib.sha256(image).hexdigest()
        await self._db.put_avatar(target.id, target.slug, CONTENT_TYPES[kind], image, digest)
        # The version parameter changes with the image: Discord caches avatars by URL.
        url = f"{self._public_url}/avatars/{target.slug}.{kind}?v={digest[:12]}"
        await self._db.update_personality(target.id, {"avatar_url": url}, None)
        return await self._store.get_personality(target.id)

    async def get_avatar(self, file: str) -> tuple[str, bytes]:
        """(content type, image) for "{slug}.{ext}"; NotFound unless the extension matches."""
        found = _FILE.match(file)
        stored = await self._db.get_avatar(found.group(1)) if found else None
        if found is None or stored is None or stored[0] != CONTENT_TYPES[found.group(2)]:
            raise NotFound(f"no avatar {file!r}", reason="AVATAR_NOT_FOUND")
        return stored
