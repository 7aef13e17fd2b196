"""Card containers: JSON, PNG with tEXt chunks, and CHARX (a zip with `card.json`).

PNG (both specs): a tEXt chunk `chara` holds base64 of the V2 JSON, `ccv3` base64 of the V3
JSON; both are read and `ccv3` wins. A CHARX holds `card.json` at its root and the assets its
`embeded://` URIs point at. Pillow reads and writes the PNG chunks; the picture (a PNG's own,
a CHARX's main icon) becomes the avatar as pictures.py makes it, and one that cannot leaves a
warning instead. Pillow is imported on first use: gateway's start does not need it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import lzma
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tzurot.gateway.cards import pictures
from tzurot.gateway.cards.json_size import json_bytes
from tzurot.gateway.cards.spec import Card, backfill_v2, card_json, parse_card
from tzurot.gateway.uploaded_json import MAX_JSON_VALUES, load_uploaded_json
from tzurot.runtime.errors import InvalidArgument

if TYPE_CHECKING:
    from PIL import Image

MAX_CARD_BYTES = 16 * 1024 * 1024
MAX_CARD_JSON_BYTES = 10 * 1024 * 1024
"""The card's JSON itself (a JSON file, a PNG chunk once decoded, a CHARX's card.json), checked
before it is parsed: parsing and validating cost many times a document's size (a 16 MB one of
`{},` took 2 GB). Real cards are tens of KB; the bound is set by our own JSON export of the
largest card import accepts: a lorebook at its 4 MB cap, written indented with every entry's
fields, makes a card.json of about 8 MB, which must import again."""
MAX_CHARX_ENTRIES = 256
MAX_ASSET_BYTES = 8 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
EMBEDDED_PREFIX = "embeded://"  # sic: the V3 spec's spelling
_PLACEHOLDER_SIZE = (400, 600)


@dataclass
class DecodedCard:
    """A card read from a file, with the picture a PNG carried and a CHARX's assets."""

    card: Card
    container: str  # "json", "png" or "charx"
    image: bytes | None = None
    image_type: str = ""
    assets: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def bad(message: str, reason: str = "BAD_CARD") -> InvalidArgument:
    return InvalidArgument("document", message, reason=reason)


def decode(data: bytes, *, filename: str = "") -> DecodedCard:
    """Reads a card from JSON, PNG or CHARX bytes (recognised by content, not by name)."""
    if len(data) > MAX_CARD_BYTES:
        raise bad(
            f"the file is {len(data)} bytes; a card may be at most {MAX_CARD_BYTES} bytes",
            "CARD_TOO_LARGE",
        )
    if data.startswith(PNG_MAGIC):
        return _decode_png(data)
    if data.startswith(ZIP_MAGIC):
        return _decode_charx(data)
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return DecodedCard(parse_card(_json(stripped, "the JSON card")), "json")
    name = f" {filename!r}" if filename else ""
    raise bad(f"the file{name} is not a PNG, JSON or CHARX character card", "UNSUPPORTED_FORMAT")


def _json(raw: bytes, what: str) -> Any:
    if len(raw) > MAX_CARD_JSON_BYTES:
        raise bad(
            f"{what} is {len(raw)} bytes; a card's JSON may be at most {MAX_CARD_JSON_BYTES} bytes",
            "CARD_TOO_LARGE",
        )
    return load_uploaded_json(raw, what=what, reason="BAD_CARD", max_values=MAX_JSON_VALUES)


def _open_image(data: bytes, *, load: bool = True) -> Image.Image:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - see the module's docstring

    # No warnings filter (warnings.catch_warnings is process-wide, and this runs on worker
    # threads): the size is checked here, before any pixel is read, and a picture past
    # Pillow's own bomb limit raises DecompressionBombError at open (its warning, below that
    # limit, is an error where warnings are errors: refused alike).
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise bad(
                f"the image is {image.width}x{image.height}; at most {MAX_IMAGE_PIXELS} pixels",
                "CARD_TOO_LARGE",
            )
        if load:
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise bad("the image is too large to read", "CARD_TOO_LARGE") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise bad(f"the PNG cannot be read: {exc}") from None
    return image


def _decode_png(data: bytes) -> DecodedCard:
    # The header is read (a picture too large is refused), the pixels are not: the card is in
    # the text chunks, and a picture that cannot be decoded leaves a warning (`_take_avatar`).
    image = _open_image(data, load=False)
    chunks = card_chunks(data)
    raw = chunks.get("ccv3") or chunks.get("chara")
    chunk = "ccv3" if chunks.get("ccv3") else "chara"
    if not raw:
        raise bad(
            "the PNG has no character card in it (no 'chara' or 'ccv3' text chunk)", "NO_CARD"
        )
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"the PNG's '{chunk}' chunk is not valid base64") from None
    card = parse_card(_json(decoded, f"the PNG's '{chunk}' chunk"), source=f"'{chunk}' chunk")
    found = DecodedCard(card, "png")
    _take_avatar(found, data, "the PNG's picture", image)
    return found


_CARD_KEYWORDS = (b"chara", b"ccv3")
_MAX_CHUNK_TEXT = MAX_CARD_JSON_BYTES * 4 // 3 + 1024
"""A card chunk's text at most: the card's JSON in base64, and room for line breaks."""


def card_chunks(png: bytes) -> dict[str, str]:
    """The PNG's `chara` and `ccv3` text (tEXt, zTXt or iTXt chunks, before or after the
    pixels; the last of a keyword wins, as Pillow reads them), walked without decoding a
    pixel; the walk stops at IEND or where the file ends."""
    found: dict[str, str] = {}
    pos = len(PNG_MAGIC)
    while pos + 12 <= len(png):
        size = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + size]
        if kind == b"IEND" or len(body) < size:
            break
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, _, rest = body.partition(b"\0")
            if keyword in _CARD_KEYWORDS:
                found[keyword.decode("ascii")] = _chunk_text(kind, keyword, rest)
        pos += 12 + size
    return found


def _chunk_text(kind: bytes, keyword: bytes, rest: bytes) -> str:
    name = keyword.decode("ascii")
    if kind == b"tEXt":
        return rest.decode("latin-1")
    if kind == b"zTXt":  # a compression method byte (0: zlib), then the text
        return _inflate(rest[1:], name).decode("latin-1")
    # iTXt: a compressed flag, a method, a language tag, a translated keyword, the text
    compressed = rest[:1] == b"\1"
    _, _, after_language = rest[2:].partition(b"\0")
    _, _, text = after_language.partition(b"\0")
    raw = _inflate(text, name) if compressed else text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad(f"the PNG's '{name}' chunk is not UTF-8 text") from None


def _inflate(data: bytes, name: str) -> bytes:
    """A compressed chunk's text, inflating no more than a card chunk may hold."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, _MAX_CHUNK_TEXT)
    except zlib.error:
        raise bad(f"the PNG's '{name}' chunk cannot be decompressed") from None
    if inflater.unconsumed_tail:
        raise bad(f"the PNG's '{name}' chunk is too large", "CARD_TOO_LARGE")
    return text


def _take_avatar(
    decoded: DecodedCard, picture: bytes, what: str, image: Image.Image | None = None
) -> None:
    """The picture as the card's avatar; one that cannot be an avatar is left out, with a
    warning for the importer."""
    try:
        opened = image if image is not None else _open_image(picture, load=False)
        avatar = pictures.avatar_from(picture, opened)
    except (InvalidArgument, pictures.UnusablePicture) as exc:
        why = exc.message if isinstance(exc, InvalidArgument) else str(exc)
        decoded.warnings.append(f"{what} cannot be the avatar ({why}); imported without one")
        return
    decoded.image, decoded.image_type = avatar.data, avatar.content_type


def _plain_png(image: Image.Image) -> bytes:
    """The picture re-encoded without its text chunks (the card is kept apart)."""
    out = io.BytesIO()
    mode = image.mode if image.mode in ("RGB", "RGBA", "L", "LA", "P") else "RGBA"
    image.convert(mode).save(out, "PNG")
    return out.getvalue()


def _decode_charx(data: bytes) -> DecodedCard:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise bad("the CHARX file is not a valid zip archive") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_CHARX_ENTRIES:
            raise bad(f"the CHARX holds {len(infos)} files; at most {MAX_CHARX_ENTRIES}")
        if any(info.flag_bits & 0x1 for info in infos):
            raise bad("the CHARX is encrypted; export it without a password")
        total = sum(info.file_size for info in infos)
        if total > MAX_CARD_BYTES * 2:
            raise bad("the CHARX unpacks to more than 32 MB", "CARD_TOO_LARGE")
        names = {info.filename for info in infos}
        if "card.json" not in names:
            raise bad("the CHARX has no card.json at its root", "NO_CARD")
        if archive.getinfo("card.json").file_size > MAX_CARD_JSON_BYTES:
            raise bad(
                f"the CHARX's card.json is larger than {MAX_CARD_JSON_BYTES} bytes",
                "CARD_TOO_LARGE",
            )
        # read no further than one byte past the cap, whatever size the entry declares
        raw = _read(archive, "card.json", limit=MAX_CARD_JSON_BYTES + 1)
        card = parse_card(_json(raw, "card.json"), source="card.json")
        assets: dict[str, bytes] = {}
        for asset in card.data.assets or []:
            if not asset.uri.startswith(EMBEDDED_PREFIX):
                continue
            path = asset.uri[len(EMBEDDED_PREFIX) :]
            if path not in names:
                raise bad(f"the CHARX lacks the asset {path!r} that card.json names")
            info = archive.getinfo(path)
            if info.file_size > MAX_ASSET_BYTES:
                raise bad(f"the asset {path!r} is larger than {MAX_ASSET_BYTES} bytes")
            assets[path] = _read(archive, path)
    decoded = DecodedCard(card, "charx", assets=assets)
    icon = main_icon(card)
    if icon is not None and icon.uri.startswith(EMBEDDED_PREFIX):
        picture = assets.get(icon.uri[len(EMBEDDED_PREFIX) :])
        if picture:
            _take_avatar(decoded, picture, f"the icon {icon.uri[len(EMBEDDED_PREFIX) :]!r}")
    return decoded


def _read(archive: zipfile.ZipFile, path: str, *, limit: int = -1) -> bytes:
    """One file of a CHARX (at most `limit` bytes of it when given); a damaged or oddly packed
    one is the uploader's problem."""
    try:
        with archive.open(path) as member:
            return member.read(limit)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
        raise bad(f"the CHARX file {path!r} is damaged ({exc})") from None
    except NotImplementedError:
        raise bad(
            f"the CHARX file {path!r} is packed with a compression method not supported; "
            "use deflate or none"
        ) from None


def main_icon(card: Card) -> Any:
    """The V3 main icon: the icon asset named 'main', else the first icon."""
    icons = [a for a in card.data.assets or [] if a.type == "icon"]
    for asset in icons:
        if asset.name == "main":
            return asset
    return icons[0] if icons else None


# -- writing ----------------------------------------------------------------------------


def json_export_size(card: Card) -> int:
    """`len(encode_json(card))`, counted without writing it (`json_size`)."""
    document = card_json(card)
    indented = json_bytes(document, indent=2)
    return indented if indented <= MAX_CARD_JSON_BYTES else json_bytes(document)


def encode_json(card: Card) -> bytes:
    """The card as JSON (a `.json` export, a CHARX's `card.json`): indented, unless that is
    over `MAX_CARD_JSON_BYTES` (a lorebook whose extensions nest many small values deeply
    gains tens of bytes of indentation per value), then compact, so it imports again."""
    document = card_json(card)
    indented = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    if len(indented) <= MAX_CARD_JSON_BYTES:
        return indented
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _b64(document: dict[str, Any]) -> str:
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def encode_png(card: Card, image: bytes | None) -> bytes:
    """The picture (a placeholder when there is none) with `ccv3` and a backfilled `chara`."""
    from PIL import Image, PngImagePlugin  # noqa: PLC0415 - see the module's docstring

    picture = _open_image(image) if image else Image.new("RGB", _PLACEHOLDER_SIZE, "#2b2d31")
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", _b64(backfill_v2(card)))
    info.add_text("ccv3", _b64(card_json(card)))
    mode = picture.mode if picture.mode in ("RGB", "RGBA", "L", "LA", "P") else "RGBA"
    out = io.BytesIO()
    picture.convert(mode).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def encode_png_plain(image: bytes) -> bytes:
    """A picture as PNG without text chunks (a CHARX icon)."""
    return _plain_png(_open_image(image))


_CHARX_ENTRY_TIME = (1980, 1, 1, 0, 0, 0)
"""Every CHARX entry's time: the same card gives the same bytes whenever it is built (a
data export measures a card to plan its parts, then builds it again for the part that
carries it; the clock would otherwise move every entry's time)."""


def encode_charx(card: Card, assets: dict[str, bytes]) -> bytes:
    """A zip with card.json at its root and each embedded asset at its path."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_entry("card.json"), encode_json(card))
        for path, data in sorted(assets.items()):
            archive.writestr(_entry(path), data)
    return out.getvalue()


def _entry(path: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(path, date_time=_CHARX_ENTRY_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o600 << 16  # as writestr gives an entry made from a name
    return entry
