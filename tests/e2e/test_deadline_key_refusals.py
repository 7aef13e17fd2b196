"""A wallet key a skill's service refused turns inactive even when the reply then runs into
the gateway's deadline, through the whole mesh: Echo searches the web on Alice's Brave key,
which Brave refuses (401); the next round's model then thinks unseen past the gateway's
deadline. Inference cuts the reply a grace before that deadline (`report_grace_seconds`)
and its error names the refused key, so `/wallet list` shows it inactive; once the gateway's
own deadline cut the reply, no report of it arrived and the key stayed active."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tzurot.testing.e2e import USER_KEY, Harness, actor, echo_mesh, request, set_key
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.testing.fake_web import FakeBrave
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

BRAVE_KEY = "BSAaliceBraveKey0q7f3e9c1x"
SEARCH = ToolCallSpec("web_research", {"query": "moon base"})
DEADLINE_SECONDS = 16.0
"""The gateway's deadline: web_research starts only with 10 s of the reply left."""


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as provider,
        FakeBrave({BRAVE_KEY}) as brave,
        echo_mesh(
            fresh_database(),
            tmp_path,
            provider=provider,
            gateway={"generate_deadline_seconds": DEADLINE_SECONDS},
            inference={
                "search_backend": "brave",
                "brave_url": brave.base_url,
                "provider_max_retries": 0,
                "min_attempt_seconds": 1.0,
            },
        ) as h,
    ):
        await h.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug="echo", skills=["web_research"]),
                update_paths=["skills"],
            )
        )
        await set_key(h)
        await h.bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=actor(), provider="brave", api_key=BRAVE_KEY)
        )
        brave.tokens.discard(BRAVE_KEY)  # Alice revoked it since
        yield h


async def wallet(h: Harness) -> dict[str, bool]:
    listed = await h.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
    return {key.provider: key.active for key in listed.keys}


@pytest.mark.parametrize("model", ["silent", "streaming"])
async def test_a_key_refused_before_the_deadline_turns_inactive(
    harness: Harness, model: str
) -> None:
    h = harness
    assert await wallet(h) == {"brave": True, "openrouter": True}
    h.provider.enqueue_tool_calls(SEARCH)  # streams no words: no chunk_delay
    if model == "silent":  # the answer's round thinks unseen past the deadline
        h.provider.enqueue("Nothing found, darling.")
        h.provider.stall_next(0.0)  # (the tool round answers at once)
        h.provider.stall_next(DEADLINE_SECONDS * 2)
    else:  # the answer's round is still streaming, a word a second, at the deadline
        h.provider.enqueue(" ".join(["moon"] * int(DEADLINE_SECONDS * 2)))
        h.provider.chunk_delay = 1.0
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async for _ in h.bot.Generate(request("research the moon"), timeout=60):
            pass
    assert await wallet(h) == {"brave": False, "openrouter": True}
    # Inference's own error, sent before the gateway's deadline: the user reads why.
    if model == "silent":
        assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "did not answer in time" in (failed.value.details() or "")
    else:
        assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert "took too long" in (failed.value.details() or "")
    assert len(h.provider.chat_requests()) == 2  # the tool round, then the one cut off
    for key in (BRAVE_KEY, USER_KEY):  # names travel, never a key
        assert key not in (failed.value.details() or "")
        assert key not in str(failed.value.trailing_metadata())
