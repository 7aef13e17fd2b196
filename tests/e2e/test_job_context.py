"""A job's context across the mesh: what history keeps of a user's turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tzurot.testing.cdn import local_cdn
from tzurot.testing.e2e import (
    HELPER_MODELS_ON_USER_KEY,
    USER_KEY,
    Harness,
    converse,
    echo_mesh,
    request,
    set_key,
)
from tzurot.testing.fake_provider import FakeProvider, ScriptedReply
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
DESCRIPTION = "a grey cat asleep on a red sofa"


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    """Discord's CDN, with one photo."""
    async with local_cdn({"": (PNG, "image/png")}) as url:
        yield url


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as provider,
        echo_mesh(
            fresh_database(), tmp_path, provider=provider, inference=HELPER_MODELS_ON_USER_KEY
        ) as h,
    ):
        yield h


async def test_history_keeps_the_image_description_the_prompt_saw(
    harness: Harness, cdn: str
) -> None:
    await set_key(harness)
    first = request("what is this?")
    first.attachments.append(
        common.Attachment(
            url=f"{cdn}/cat.png", content_type="image/png", filename="cat.png", size_bytes=208
        )
    )
    harness.provider.script = [ScriptedReply(DESCRIPTION)]  # the vision model's description
    await converse(harness, first)
    assert any(
        DESCRIPTION in str(r.body["messages"][-1]["content"])
        for r in harness.provider.chat_requests()[1:]
    ), "the first prompt saw the description"

    await converse(harness, request("and what colour was the sofa?"))

    messages = harness.provider.chat_requests()[-1].body["messages"]
    earlier_user_turns = [str(m["content"]) for m in messages[:-1] if m["role"] == "user"]
    assert any("what is this?" in c and c.count(DESCRIPTION) == 1 for c in earlier_user_turns), (
        earlier_user_turns
    )
