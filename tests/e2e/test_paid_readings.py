"""Paid once, recorded always: what a message costs on the user's key, across the mesh.

A voice note is transcribed and its transcript cleaned, an image described for a model
without vision, by helper models on the user's key, before the answer is asked for. When the
answer then fails UNAVAILABLE (here an empty answer, twice), nothing is bought again: the
gateway does not re-send the call (no gRPC retry policy on paid calls), each reading is in
`/usage` under its own request type, and the same message sent again is answered from the
readings kept on its job. The fake provider counts every request it is paid for. A
transcription key the provider refuses turns inactive in the wallet, not the answer's key; so
does a clean-up key, though the answer goes on with the raw transcript.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.cdn import local_cdn
from tzurot.testing.e2e import (
    HELPER_MODELS_ON_USER_KEY,
    USER_KEY,
    Harness,
    actor,
    echo_mesh,
    request,
    set_key,
)
from tzurot.testing.fake_provider import FakeProvider, ScriptedReply
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
OGG = b"OggS" + bytes(300)
DESCRIPTION = "a grey cat asleep on a red sofa"
TRANSCRIPT = "Hello Echo, look at my cat."
EMPTY_TWICE = [ScriptedReply(""), ScriptedReply("")]  # inference: UNAVAILABLE EMPTY_ANSWER
OPENAI_KEY = "sk-openai-user-key-0123456789abcdef"


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    """Discord's CDN: the voice note and the photo (its links carry signed parameters)."""
    async with local_cdn({".ogg": (OGG, "audio/ogg"), "": (PNG, "image/png")}) as url:
        yield url


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as provider,
        echo_mesh(
            fresh_database(), tmp_path, provider=provider, inference=HELPER_MODELS_ON_USER_KEY
        ) as h,
    ):
        await set_key(h)
        yield h


@pytest.fixture
async def openai_transcribes(
    fresh_database: DatabaseFactory, tmp_path: Path
) -> AsyncIterator[Harness]:
    """Answers on Alice's OpenRouter key, voice notes transcribed on her OpenAI key."""
    async with (
        FakeProvider(valid_keys={USER_KEY, OPENAI_KEY}, any_model=True) as provider,
        echo_mesh(
            fresh_database(),
            tmp_path,
            provider=provider,
            inference={"attachment_hosts": ["127.0.0.1"], "transcription_provider": "openai"},
        ) as h,
    ):
        await set_key(h)
        await h.bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=actor(), provider="openai", api_key=OPENAI_KEY)
        )
        yield h


@pytest.fixture
async def openai_cleans(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    """Answers and transcribes on Alice's OpenRouter key, cleans transcripts on her OpenAI
    key."""
    async with (
        FakeProvider(valid_keys={USER_KEY, OPENAI_KEY}, any_model=True) as provider,
        echo_mesh(
            fresh_database(),
            tmp_path,
            provider=provider,
            inference={
                **HELPER_MODELS_ON_USER_KEY,
                "transcript_cleanup_provider": "openai",
            },
        ) as h,
    ):
        await set_key(h)
        await h.bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=actor(), provider="openai", api_key=OPENAI_KEY)
        )
        yield h


async def failure(h: Harness, req: gw.GenerateRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await answer(h, req)
    return caught.value


async def answer(h: Harness, req: gw.GenerateRequest) -> str:
    events = [event async for event in h.bot.Generate(req)]
    return events[-1].finished.content


async def usage(h: Harness) -> dict[str, tuple[str, int, float]]:
    """request_type -> (provider/model, requests, audio seconds) of Alice's last day."""
    reply = await h.bot.GetUsage(gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY))
    totals = {
        t.request_type: (f"{t.provider}/{t.model}", t.requests, t.audio_seconds)
        for t in reply.totals
    }
    assert len(totals) == len(reply.totals), "one line per request type here"
    return totals


def with_attachments(cdn: str, key: str, signature: str) -> gw.GenerateRequest:
    """A message with a photo and a voice note, as the bot sends it (links signed anew)."""
    req = request("", key=key)
    req.attachments.extend(
        [
            common.Attachment(
                url=f"{cdn}/cat.png?ex={signature}",
                content_type="image/png",
                filename="cat.png",
                size_bytes=len(PNG),
            ),
            common.Attachment(
                url=f"{cdn}/voice-message.ogg?ex={signature}",
                content_type="audio/ogg",
                filename="voice-message.ogg",
                size_bytes=len(OGG),
            ),
        ]
    )
    return req


async def test_a_failed_answer_is_not_asked_again_by_the_gateway(harness: Harness) -> None:
    """Inference asks an empty answer again once, then fails UNAVAILABLE: two paid calls,
    not one gRPC retry's worth more (it used to be 3 attempts x 2)."""
    harness.provider.reply = ""  # every answer empty
    error = await failure(harness, request("are you there?"))
    assert (error.code(), from_rpc_error(error).reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "EMPTY_ANSWER",
    )
    assert len(harness.provider.chat_requests()) == 2


async def test_readings_are_paid_once_recorded_and_kept_for_the_resend(
    harness: Harness, cdn: str
) -> None:
    provider = harness.provider
    provider.transcript = "hello echo look at my cat"
    provider.script = [ScriptedReply(DESCRIPTION), ScriptedReply(TRANSCRIPT), *EMPTY_TWICE]

    error = await failure(harness, with_attachments(cdn, "msg-voice", signature="1"))
    assert from_rpc_error(error).reason == "EMPTY_ANSWER"
    # One transcription, one clean-up, one description, two answers: nothing bought twice.
    assert len(provider.transcription_requests()) == 1
    assert len(provider.chat_requests()) == 4
    # Paid, so recorded, though no answer came of it: the readings, and the two empty answers
    # as one row paid but not delivered.
    assert await usage(harness) == {
        "chat": ("openrouter/fake/echo", 1, 0.0),
        "image_description": ("openrouter/openai/gpt-4o-mini", 1, 0.0),
        "transcription": ("openrouter/whisper-1", 1, provider.transcript_seconds),
        "transcript_cleanup": ("openrouter/openai/gpt-4o-mini", 1, 0.0),
    }

    # The same message again (its links signed anew): answered from what was read before.
    provider.script = [ScriptedReply("What a lazy cat.")]
    content = await answer(harness, with_attachments(cdn, "msg-voice", signature="2"))
    assert len(provider.transcription_requests()) == 1
    assert len(provider.chat_requests()) == 5
    assert content == "What a lazy cat."
    prompt = str(provider.chat_requests()[-1].body["messages"][-1]["content"])
    assert f"[Image cat.png: {DESCRIPTION}]" in prompt
    assert f"[Voice message: {TRANSCRIPT}]" in prompt
    totals = await usage(harness)
    assert totals["chat"][:2] == ("openrouter/fake/echo", 2)  # the failed answers, the answer
    assert totals["transcription"][1] == totals["transcript_cleanup"][1] == 1
    assert totals["image_description"][1] == 1


async def test_a_refused_transcription_key_turns_inactive_not_the_answers(
    openai_transcribes: Harness, cdn: str
) -> None:
    h = openai_transcribes
    h.provider.valid_keys.discard(OPENAI_KEY)  # Alice revoked it at OpenAI
    req = request("", key="msg-voice")
    req.attachments.append(
        common.Attachment(
            url=f"{cdn}/voice-message.ogg?ex=1",
            content_type="audio/ogg",
            filename="voice-message.ogg",
            size_bytes=len(OGG),
        )
    )
    error = await failure(h, req)
    assert from_rpc_error(error).reason == "INVALID_API_KEY"
    assert h.provider.chat_requests() == []  # refused before the answer was asked
    listed = await h.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
    assert {key.provider: key.active for key in listed.keys} == {
        "openai": False,
        "openrouter": True,
    }


async def test_a_refused_cleanup_key_turns_inactive_and_the_raw_transcript_is_answered(
    openai_cleans: Harness, cdn: str
) -> None:
    """Alice revoked her OpenAI key, which cleans transcripts: the clean-up is refused (401),
    the answer goes on with the raw transcript, and `/wallet list` shows her OpenAI key
    inactive (not "used" by this reply), her OpenRouter key active."""
    h = openai_cleans
    h.provider.transcript = "hello echo look at my cat"
    h.provider.valid_keys.discard(OPENAI_KEY)  # Alice revoked it at OpenAI
    req = request("", key="msg-voice")
    req.attachments.append(
        common.Attachment(
            url=f"{cdn}/voice-message.ogg?ex=1",
            content_type="audio/ogg",
            filename="voice-message.ogg",
            size_bytes=len(OGG),
        )
    )
    h.provider.script = [ScriptedReply("What a lazy cat.")]
    assert await answer(h, req) == "What a lazy cat."
    prompt = str(h.provider.chat_requests()[-1].body["messages"][-1]["content"])
    assert "[Voice message: hello echo look at my cat]" in prompt  # raw: not cleaned
    assert "transcript_cleanup" not in await usage(h)  # the refused clean-up was not paid
    listed = await h.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
    assert {key.provider: key.active for key in listed.keys} == {
        "openai": False,
        "openrouter": True,
    }
