"""A card's picture as the personality's avatar, small enough for Discord to show.

Discord does not document what a webhook's `avatar_url` may point at; what bots found
(discord-api-docs#1303) is that a picture over about 1 MB, or with both sides over 1024 px, is
refused silently (the default avatar shows). So a PNG, JPEG or WebP picture within 1024 px and
1 MiB is kept in its format, without what must not be served publicly with the avatar: a PNG
byte for byte without its text and eXIf chunks (a card's `chara`/`ccv3`, XMP, Exif); a JPEG or
WebP re-encoded by Pillow without its Exif (GPS position, camera serial, times), XMP and
comments (`without_metadata`). The ICC profile is kept (the colours stay right) and the Exif
orientation applied first; a JPEG keeps its quantization tables and subsampling (as
`quality="keep"`), a lossless WebP stays lossless, a lossy one is encoded at quality 95, and
an animated WebP keeps its frames, their durations and its loop count. An animation is
re-encoded one frame at a time (never all its frames decoded at once), and only when its
frames together hold at most `MAX_ANIMATION_PIXELS` and its canvas at most
`MAX_ANIMATION_FRAME_PIXELS`, counted from the header before any decoding (identical frames
compress to a few bytes each: a 66 KB file can hold 12 frames of 4096x4096). A larger one is
`UnusablePicture` for `without_metadata`; a card's picture becomes a still of its first
frame. Any other picture, or
one whose re-encoding is over 1 MiB, is scaled down to 1024 px (orientation applied, no
metadata), then less until its PNG fits 1 MiB. Either way the avatar is far under what the
edge serves (8 MiB) and a card's export stays small. Pillow does the work, on a worker thread
(the callers' concern).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 1024
MAX_BYTES = 1024 * 1024
_STEPS = (1024, 768, 512, 384, 256)  # 256² RGBA is at most 256 KiB: the last step always fits
_KEPT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_DROPPED_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf"})
WEBP_LOSSY_QUALITY = 95
MAX_ANIMATION_PIXELS = 32 * 1024 * 1024
"""An animation's frames x width x height at most: about 1 s of CPU to re-encode, while one
frame at a time is held (1024x1024 x 32 frames, 256x256 x 512)."""
MAX_ANIMATION_FRAME_PIXELS = 2048 * 2048
"""An animation's canvas at most: libwebp's animation encoder keeps several canvases (a
2048x2048 animation peaks near 250 MB, a 4096x4096 one past 700 MB)."""


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
        if image.format == "PNG":
            kept = without_text_chunks(data)
            _load(image)  # a picture that cannot be decoded is not kept
        elif animation_refusal(image) is not None:
            return _scaled_down(image)  # a still of its first frame
        else:
            kept = without_metadata(data, image)
        if kept is not None and len(kept) <= MAX_BYTES:
            return Avatar(kept, content_type)
    return _scaled_down(image)


def without_metadata(data: bytes, image: Image.Image) -> bytes:
    """The JPEG or WebP picture `data` (opened as `image`) re-encoded in its format, upright
    and without Exif, XMP or comments; its ICC profile kept (see the module's docstring)."""
    refusal = animation_refusal(image)
    if refusal is not None:
        raise UnusablePicture(refusal)
    _load(image)
    icc = image.info.get("icc_profile") or None
    out = io.BytesIO()
    try:
        if image.format == "JPEG":
            _jpeg_without_metadata(image, icc, out)
        elif getattr(image, "n_frames", 1) > 1:
            _animation_without_metadata(data, image, icc, out)
        else:
            _upright(image).save(out, "WEBP", icc_profile=icc, **_webp_quality(data))
    except (OSError, ValueError) as exc:
        raise UnusablePicture(f"it cannot be re-encoded: {exc}") from None
    return out.getvalue()


def _jpeg_without_metadata(image: Image.Image, icc: bytes | None, out: io.BytesIO) -> None:
    # The source's own tables and subsampling (what quality="keep" does, which Pillow only
    # allows on the unrotated source): the re-encoding looks as the original did.
    from PIL import JpegImagePlugin  # noqa: PLC0415 - Pillow on first use (codec's docstring)

    tables: Any = getattr(image, "quantization", None) or None
    subsampling = JpegImagePlugin.get_sampling(image)
    upright = _upright(image)
    if upright.mode not in ("L", "RGB", "CMYK"):
        upright = upright.convert("RGB")
    extra: dict[str, Any] = {"qtables": tables} if tables else {"quality": 95}
    # comment=b"": Pillow otherwise writes the source's COM segment again.
    upright.save(out, "JPEG", icc_profile=icc, comment=b"", subsampling=subsampling, **extra)


def animation_refusal(image: Image.Image) -> str | None:
    """Why the animation `image` is too large to re-encode (its canvas past
    `MAX_ANIMATION_FRAME_PIXELS`, or its frames together past `MAX_ANIMATION_PIXELS`); None
    for a still picture or one within both. The frame count comes from the header: nothing is
    decoded."""
    frames = int(getattr(image, "n_frames", 1))
    canvas = image.width * image.height
    if frames <= 1:
        return None
    if canvas > MAX_ANIMATION_FRAME_PIXELS:
        return (
            f"the animation is {image.width}x{image.height}; an animation may hold at most "
            f"{MAX_ANIMATION_FRAME_PIXELS} pixels a frame"
        )
    if frames * canvas > MAX_ANIMATION_PIXELS:
        return (
            f"the animation has {frames} frames of {image.width}x{image.height}; at most "
            f"{MAX_ANIMATION_PIXELS} pixels in all its frames together"
        )
    return None


def _animation_without_metadata(
    data: bytes, image: Image.Image, icc: bytes | None, out: io.BytesIO
) -> None:
    # Pillow's encoder reads a frame, adds it, then reads `duration[i]`: `_UprightFrames`
    # decodes frame i only when asked and appends its duration as it does, so one frame is
    # held at a time and no Exif or XMP is passed on (the encoder writes only what it is given).
    first = _upright(_frame(image, 0))
    durations = [int(image.info.get("duration", 0))]
    rest = _UprightFrames(image, durations)
    first.save(
        out,
        "WEBP",
        save_all=True,
        append_images=[rest],
        duration=durations,
        loop=int(image.info.get("loop", 0)),
        icc_profile=icc,
        **_webp_quality(data),
    )


def _frame(image: Image.Image, index: int) -> Image.Image:
    image.seek(index)
    return image.convert("RGBA")  # loads the frame (and its duration); keeps the Exif


class _UprightFrames:
    """Frames 1.. of an animation, decoded one at a time as Pillow's WebP encoder seeks them
    (it needs `n_frames`, `seek`, `mode` and `getim`), each upright."""

    mode = "RGBA"

    def __init__(self, image: Image.Image, durations: list[int]) -> None:
        self._image = image
        self._durations = durations
        self.n_frames = int(getattr(image, "n_frames", 1)) - 1
        self._current: Image.Image | None = None

    def seek(self, index: int) -> None:
        self._current = None  # the previous frame goes before the next is decoded
        converted = _frame(self._image, index + 1)
        self._durations.append(int(self._image.info.get("duration", 0)))
        self._current = _upright(converted)

    def getim(self) -> Any:
        assert self._current is not None
        return self._current.getim()


def _upright(picture: Image.Image) -> Image.Image:
    """`picture` turned as its Exif (or XMP) orientation says (a copy of it when upright)."""
    from PIL import ImageOps  # noqa: PLC0415 - Pillow on first use (codec's docstring)

    return ImageOps.exif_transpose(picture)


def _webp_quality(webp: bytes) -> dict[str, Any]:
    """Lossless for a lossless WebP (every frame VP8L), else quality 95."""
    if webp_is_lossless(webp):
        return {"lossless": True}
    return {"quality": WEBP_LOSSY_QUALITY}


def webp_is_lossless(webp: bytes) -> bool:
    """Whether every image in the WebP's RIFF chunks (an animation's frames in ANMF) is
    lossless (VP8L), none lossy (VP8); False when there is none."""
    kinds: set[bytes] = set()
    _chunk_kinds(webp, 12, len(webp), kinds)
    return kinds == {b"VP8L"}


def _chunk_kinds(data: bytes, pos: int, end: int, kinds: set[bytes]) -> None:
    while pos + 8 <= end:
        kind, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if kind in (b"VP8 ", b"VP8L"):
            kinds.add(kind)
        elif kind == b"ANMF":  # a 16-byte frame header, then the frame's own chunks
            _chunk_kinds(data, pos + 24, min(pos + 8 + size, end), kinds)
        pos += 8 + size + (size & 1)


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
    picture = _upright(image.convert("RGBA" if transparent else "RGB"))
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
