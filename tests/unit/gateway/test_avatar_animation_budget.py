"""An animated WebP is measured by its header before any frame is decoded (review 158 H1): a
66 KB file of 12 frames of 4096x4096 took 1.4 GB to re-encode when every frame was decoded at
once. One too large is refused as an upload and becomes a still as a card's picture; one
within the budget is re-encoded a frame at a time."""

from __future__ import annotations

import io
import weakref

import pytest
from PIL import Image, WebPImagePlugin

from tzurot.gateway.admin.avatars import clean_avatar
from tzurot.gateway.cards import codec, pictures
from tzurot.runtime.errors import InvalidArgument
from tzurot.testing.cards import card_v3, charx_card


def animation(size: tuple[int, int], frames: int) -> bytes:
    """Frames that differ by one pixel: each is stored as a tiny sub-rectangle."""
    base = Image.new("RGB", size, (200, 30, 30))
    images = []
    for index in range(frames):
        frame = base.copy()
        frame.putpixel((index % size[0], 0), (index % 256, 0, 0))
        images.append(frame)
    out = io.BytesIO()
    images[0].save(out, "WEBP", save_all=True, append_images=images[1:], lossless=True)
    return out.getvalue()


@pytest.fixture
def no_frame_decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the WebP frames decoded (Pillow decodes a frame in `load`)."""
    decoded: list[int] = []
    load = WebPImagePlugin.WebPImageFile.load

    def counting(self: WebPImagePlugin.WebPImageFile) -> object:
        decoded.append(self.tell())
        return load(self)

    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", counting)
    return decoded


def test_an_upload_with_too_many_frames_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch, no_frame_decoded: list[int]
) -> None:
    monkeypatch.setattr(pictures, "MAX_ANIMATION_PIXELS", 64 * 64 * 4)
    data = animation((64, 64), 5)
    with pytest.raises(InvalidArgument, match="5 frames of 64x64"):
        clean_avatar(data, "webp")
    assert no_frame_decoded == []


def test_an_upload_on_a_large_canvas_is_refused_before_decoding(
    no_frame_decoded: list[int],
) -> None:
    data = animation((2100, 2100), 2)  # within the frame budget, past the canvas budget
    assert len(data) < 20_000
    with pytest.raises(InvalidArgument, match="2100x2100"):
        clean_avatar(data, "webp")
    assert no_frame_decoded == []


def test_the_reviewed_bomb_is_refused_by_the_default_budget() -> None:
    image = Image.open(io.BytesIO(animation((1024, 1024), 33)))  # 33 x 1 MiP > 32 MiP
    assert "33 frames" in (pictures.animation_refusal(image) or "")
    assert pictures.animation_refusal(Image.open(io.BytesIO(animation((64, 64), 33)))) is None


def test_a_card_icon_with_too_many_frames_becomes_a_still(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pictures, "MAX_ANIMATION_PIXELS", 64 * 64 * 4)
    path = "assets/icon/images/main.webp"
    card = card_v3("Flicker")
    card["data"]["assets"] = [
        {"type": "icon", "uri": f"embeded://{path}", "name": "main", "ext": "webp"}
    ]
    decoded = codec.decode(charx_card(card, {path: animation((64, 64), 5)}), filename="f.charx")
    assert decoded.warnings == []
    assert decoded.image_type == "image/png"
    assert getattr(Image.open(io.BytesIO(decoded.image or b"")), "n_frames", 1) == 1


def test_an_animation_within_the_budget_is_decoded_one_frame_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most the first frame (the image Pillow saves) and the current one are alive."""
    alive: set[int] = set()
    most = 0
    upright = pictures._upright

    def tracking(picture: Image.Image) -> Image.Image:
        nonlocal most
        result = upright(picture)
        alive.add(id(result))
        weakref.finalize(result, alive.discard, id(result))
        most = max(most, len(alive))
        return result

    monkeypatch.setattr(pictures, "_upright", tracking)
    served = Image.open(io.BytesIO(clean_avatar(animation((64, 64), 6), "webp")))
    assert getattr(served, "n_frames", 1) == 6
    assert most <= 2
