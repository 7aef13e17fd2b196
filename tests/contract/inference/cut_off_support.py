"""What the helper cut-off tests share (test_helper_cut_off.py, in-process; and
test_helper_rpc_cut_off.py, over gRPC): the attachments a local CDN serves them, and the
words the fake streamed before it broke off."""

from __future__ import annotations

from tzurot.testing.cdn import File

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
OGG = b"OggS" + bytes(300)
ATTACHMENTS: dict[str, File] = {".ogg": (OGG, "audio/ogg"), "": (PNG, "image/png")}
"""For `tzurot.testing.cdn.local_cdn`: `voice.ogg` is a voice message, any other name an image."""
CLEANED = "Hello there, Lilith. How are you this evening?"
"""A transcript's clean-up, as the fake's cheap model answers it."""


def words(text: str, n: int) -> str:
    """The first `n` chunks the fake streamed of `text`."""
    return " ".join(text.split(" ")[:n])
