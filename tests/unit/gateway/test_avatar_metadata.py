"""An avatar is served publicly: a JPEG or WebP picture loses its Exif (GPS position, camera
serial), XMP and comments, keeps its ICC profile, has its orientation applied, and an animated
WebP stays animated; a PNG is kept as before (byte for byte without its text chunks)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageChops, ImageCms, ImageStat

from tzurot.gateway.cards import codec, pictures
from tzurot.testing.cards import card_v3, charx_card

SERIAL = "SN-4242-SECRET"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>where-i-live</rdf:RDF></x:xmpmeta>'
COMMENT = b"taken at home"
WIDE, TALL = (96, 48), (48, 96)  # stored sideways; orientation 6 turns it upright


def exif_with_gps(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.BodySerialNumber] = SERIAL
    exif[ExifTags.Base.DateTimeOriginal] = "2024:05:01 07:30:00"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (51.0, 28.0, 40.0),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (0.0, 0.0, 5.0),
    }
    return exif


def gradient(size: tuple[int, int] = WIDE, mode: str = "RGB") -> Image.Image:
    """A smooth picture whose left half is red, right half blue (to see the rotation)."""
    half = (size[0] // 2, size[1])
    green = Image.linear_gradient("L").resize(half).point(lambda v: 40 + v // 4)
    red = Image.merge("RGB", (Image.new("L", half, 220), green, Image.new("L", half, 30)))
    blue = Image.merge("RGB", (Image.new("L", half, 30), green, Image.new("L", half, 220)))
    picture = Image.new("RGB", size)
    picture.paste(red, (0, 0))
    picture.paste(blue, (half[0], 0))
    return picture.convert(mode)


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo_with_metadata(kind: str, **options: Any) -> bytes:
    out = io.BytesIO()
    extra: dict[str, Any] = {"comment": COMMENT} if kind == "JPEG" else {}
    gradient().save(out, kind, exif=exif_with_gps(), xmp=XMP, icc_profile=SRGB, **extra, **options)
    data = out.getvalue()
    assert SERIAL.encode() in data
    assert b"where-i-live" in data
    return data


def avatar_of(data: bytes) -> pictures.Avatar:
    return pictures.avatar_from(data, Image.open(io.BytesIO(data)))


def assert_no_metadata(data: bytes) -> Image.Image:
    for secret in (SERIAL.encode(), b"PhoneCo", b"where-i-live", COMMENT, b"2024:05:01"):
        assert secret not in data
    served = Image.open(io.BytesIO(data))
    assert dict(served.getexif()) == {}
    assert "exif" not in served.info
    assert "xmp" not in served.info
    assert "comment" not in served.info
    return served


def assert_upright(served: Image.Image) -> None:
    """Orientation 6 (the top is on the right) applied: the stored left half (red) is on top."""
    assert served.size == TALL
    top = served.convert("RGB").getpixel((TALL[0] // 2, 5))
    bottom = served.convert("RGB").getpixel((TALL[0] // 2, TALL[1] - 5))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 150 > top[2]  # red
    assert bottom[2] > 150 > bottom[0]  # blue


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    difference = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return max(ImageStat.Stat(difference).mean)


@pytest.mark.parametrize(
    ("kind", "options", "content_type"),
    [
        ("JPEG", {"quality": 90}, "image/jpeg"),
        ("WEBP", {"quality": 90}, "image/webp"),
        ("WEBP", {"lossless": True}, "image/webp"),
    ],
    ids=["jpeg", "webp-lossy", "webp-lossless"],
)
def test_a_photo_loses_its_exif_xmp_and_comment_and_keeps_its_colour_profile(
    kind: str, options: dict[str, Any], content_type: str
) -> None:
    data = photo_with_metadata(kind, **options)
    avatar = avatar_of(data)
    assert avatar.content_type == content_type
    served = assert_no_metadata(avatar.data)
    assert served.format == kind
    assert served.info.get("icc_profile") == SRGB
    assert_upright(served)
    upright = gradient().transpose(Image.Transpose.ROTATE_270)
    assert mean_difference(served, upright) < 4  # looks the same
    if options.get("lossless"):
        assert pictures.webp_is_lossless(avatar.data)
        assert mean_difference(served, upright) == 0


def test_a_jpeg_keeps_its_quantization_tables() -> None:
    data = photo_with_metadata("JPEG", quality=60)
    served = Image.open(io.BytesIO(avatar_of(data).data))
    assert served.quantization == Image.open(io.BytesIO(data)).quantization  # type: ignore[attr-defined]


def test_an_animated_webp_stays_animated_without_metadata() -> None:
    frames = [gradient(mode="RGBA")] + [
        Image.new("RGBA", WIDE, colour) for colour in [(0, 200, 0, 255), (0, 0, 200, 128)]
    ]
    out = io.BytesIO()
    frames[0].save(
        out,
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=3,
        lossless=True,
        exif=exif_with_gps(),
        xmp=XMP,
    )
    avatar = avatar_of(out.getvalue())
    assert avatar.content_type == "image/webp"
    served = assert_no_metadata(avatar.data)
    assert getattr(served, "n_frames", 1) == 3
    assert served.info["loop"] == 3
    durations = []
    for index in range(3):
        served.seek(index)
        served.load()
        durations.append(served.info["duration"])
    assert durations == [100, 200, 300]
    served.seek(0)
    assert_upright(served)
    assert pictures.webp_is_lossless(avatar.data)


def test_a_card_icon_served_as_the_avatar_has_no_metadata() -> None:
    """Through the card import's own path (a CHARX's main icon becomes the avatar)."""
    path = "assets/icon/images/main.jpg"
    card = card_v3("Mossman")
    card["data"]["assets"] = [
        {"type": "icon", "uri": f"embeded://{path}", "name": "main", "ext": "jpg"}
    ]
    decoded = codec.decode(charx_card(card, {path: photo_with_metadata("JPEG")}))
    assert decoded.image is not None
    assert decoded.image_type == "image/jpeg"
    assert_upright(assert_no_metadata(decoded.image))
    assert decoded.warnings == []


def test_a_png_is_kept_as_before() -> None:
    out = io.BytesIO()
    gradient().save(out, "PNG", exif=exif_with_gps(), icc_profile=SRGB)
    data = out.getvalue()
    avatar = avatar_of(data)
    assert avatar == pictures.Avatar(pictures.without_text_chunks(data) or b"", "image/png")
    assert SERIAL.encode() not in avatar.data
    assert Image.open(io.BytesIO(avatar.data)).info.get("icc_profile") == SRGB


def test_a_large_photo_is_scaled_down_upright_without_metadata() -> None:
    out = io.BytesIO()
    gradient((2048, 1024)).save(out, "JPEG", exif=exif_with_gps(), xmp=XMP, comment=COMMENT)
    avatar = avatar_of(out.getvalue())
    assert avatar.content_type == "image/png"
    served = assert_no_metadata(avatar.data)
    assert served.size == (512, 1024)  # upright: tall


def test_a_lossy_webp_is_not_taken_for_lossless() -> None:
    assert not pictures.webp_is_lossless(photo_with_metadata("WEBP", quality=80))
    assert pictures.webp_is_lossless(photo_with_metadata("WEBP", lossless=True))
    assert not pictures.webp_is_lossless(b"RIFF\x00\x00\x00\x00WEBP")
