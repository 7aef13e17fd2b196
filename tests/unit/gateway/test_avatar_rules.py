"""Avatar rules in the gateway: URLs Discord accepts, images recognised by their content."""

import pytest

from tzurot.gateway.admin.avatars import image_kind
from tzurot.gateway.personalities import PersonalitySeed, avatar_url_problem


@pytest.mark.parametrize(
    "url", ["", "https://example.com/a.png", "http://127.0.0.1:8080/avatars/lilith.png?v=1"]
)
def test_well_formed_http_urls_are_fine(url: str) -> None:
    assert avatar_url_problem(url) is None


@pytest.mark.parametrize(
    "url", ["lilith.png", "ftp://example.com/a.png", "https://", "https://a b/c.png", "x" * 3000]
)
def test_other_urls_are_refused(url: str) -> None:
    assert avatar_url_problem(url) is not None


def test_a_seed_with_a_bad_avatar_url_is_refused() -> None:
    with pytest.raises(ValueError, match="avatar_url"):
        PersonalitySeed(name="X", avatar_url="javascript:alert(1)")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"\xff\xd8\xff\xe0....", "jpg"),
        (b"GIF89a....", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"<svg onload=...>", None),
        (b"", None),
    ],
)
def test_images_are_recognised_by_their_first_bytes(data: bytes, kind: str | None) -> None:
    assert image_kind(data) == kind
