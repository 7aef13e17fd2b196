"""A card's picture as the personality's avatar, small enough for Discord to show.

Discord does not document what a webhook's `avatar_url` may point at; what bots found
(discord-api-docs#1303) is that a picture over about 1 MB, or with both sides over 1024 px, is
refused silently (the default avatar shows). So a PNG, JPEG or WebP picture within 1024 px and
1 MiB is kept as it came (a PNG without its text chunks: a card's `chara`/`ccv3` must not be
served publicly with the avatar); any other is scaled down to 1024 px, then less until its PNG
fits 1 MiB. Either way the avatar is far under what the edge serves (8 MiB) and a card's
export stays small. Pillow does the work, on a worker thread (the callers' concern).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 1024
MAX_BYTES = 1024 * 1024
_STEPS = (1024, 768, 512, 384, 256)  # 256² RGBA is at most 256 KiB: the last step always fits
_KEPT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_DROPPED_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf"})


class UnusablePicture(Exception):
    """The picture cannot be an avatar; the message says why."""


@dataclass(frozen=True)
class Avatar:
    data: bytes
    content_type: str


def avatar_from(data: bytes, image: Image.Image) -> Avatar:
    """The avatar of the picture `data`, which `image` is opened (loaded or not)."""
    content_type = _KEPT.get(image.format or "")
    if content_type is not None and max(image.size) <= MAX_SIDE:
        kept = without_text_chunks(data) if image.format == "PNG" else data
        if kept is not None and len(kept) <= MAX_BYTES:
            _load(image)  # a picture that cannot be decoded is not kept
            return Avatar(kept, content_type)
    return _scaled_down(image)


def without_text_chunks(png: bytes) -> bytes | None:
    """The PNG without its text and Exif chunks, byte for byte otherwise; None when its
    chunks cannot be walked to IEND."""
    parts = [png[:8]]
    pos = 8
    while pos + 12 <= len(png):
        end = pos + 12 + int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        if end > len(png):
            return None
        if kind not in _DROPPED_CHUNKS:
            parts.append(png[pos:end])
        if kind == b"IEND":
            return b"".join(parts)
        pos = end
    return None


def _scaled_down(image: Image.Image) -> Avatar:
    if image.format == "JPEG":  # decoded at 1/2 to 1/8 scale: far faster than at full size
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))
    _load(image)
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    picture = image.convert("RGBA" if transparent else "RGB")
    for side in _STEPS:
        picture.thumbnail((side, side))  # in place, from the previous step's
        out = io.BytesIO()
        picture.save(out, "PNG")
        if out.tell() <= MAX_BYTES:
            break
    return Avatar(out.getvalue(), "image/png")


def _load(image: Image.Image) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnusablePicture(f"it cannot be read: {exc}") from None
