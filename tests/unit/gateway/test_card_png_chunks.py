"""A PNG card is read from its text chunks without decoding a pixel: a picture that cannot be
decoded leaves a warning, not a refusal (SillyTavern reads such cards) (review 142, 10)."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from tzurot.gateway.cards import codec
from tzurot.runtime.errors import InvalidArgument


def _b64_card(name: str) -> str:
    return base64.b64encode(json.dumps({"name": name}).encode()).decode()


def _png(info: PngImagePlugin.PngInfo | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _before_iend(png: bytes, *chunks: bytes) -> bytes:
    """The PNG with `chunks` after its pixels, as SillyTavern writes a card."""
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + b"".join(chunks) + png[iend:]


def _damaged_pixels(png: bytes) -> bytes:
    idat = png.index(b"IDAT")
    length = struct.unpack(">I", png[idat - 4 : idat])[0]
    body = bytearray(png)
    body[idat + 4 : idat + 4 + length] = b"\x00" * length
    return bytes(body)


def test_a_card_whose_pixels_are_damaged_is_read_with_a_warning() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", _b64_card("Zed"))
    decoded = codec.decode(_damaged_pixels(_png(info)))  # the reviewer's repro
    assert decoded.card.data.name == "Zed"
    assert decoded.image is None
    assert len(decoded.warnings) == 1
    assert "the PNG's picture cannot be the avatar" in decoded.warnings[0]


def test_a_card_after_damaged_pixels_is_read_too() -> None:
    chunk = _chunk(b"tEXt", b"chara\0" + _b64_card("Zed").encode())
    decoded = codec.decode(_before_iend(_damaged_pixels(_png()), chunk))
    assert decoded.card.data.name == "Zed"
    assert decoded.image is None
    assert decoded.warnings


@pytest.mark.parametrize(
    "chunk",
    [
        _chunk(b"tEXt", b"ccv3\0" + _b64_card("Vee").encode()),
        _chunk(b"zTXt", b"ccv3\0\0" + zlib.compress(_b64_card("Vee").encode())),
        _chunk(b"iTXt", b"ccv3\0\0\0en\0\0" + _b64_card("Vee").encode()),
        _chunk(b"iTXt", b"ccv3\0\1\0\0\0" + zlib.compress(_b64_card("Vee").encode())),
    ],
)
def test_every_text_chunk_kind_is_read_and_ccv3_wins(chunk: bytes) -> None:
    chara = _chunk(b"tEXt", b"chara\0" + _b64_card("Zed").encode())
    decoded = codec.decode(_before_iend(_png(), chara, chunk))
    assert decoded.card.data.name == "Vee"
    assert decoded.image is not None
    assert not decoded.warnings


def test_a_compressed_chunk_past_the_card_cap_is_refused_without_inflating_it() -> None:
    flood = zlib.compress(b"A" * (codec.MAX_CARD_JSON_BYTES * 2))
    with pytest.raises(InvalidArgument) as caught:
        codec.decode(_before_iend(_png(), _chunk(b"zTXt", b"chara\0\0" + flood)))
    assert caught.value.reason == "CARD_TOO_LARGE"
