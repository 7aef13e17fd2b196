"""A helper model's refusal of its key says whose key it was, as an answer's does.

Transcription, image description and fact extraction run on keys resolved for their own
providers (often not the answer's): a refused key (INVALID_API_KEY) carries `key_source`
and the helper's provider, so gateway marks that provider's stored key inactive.
"""

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from tests.unit.inference.fake_models import NoHistory
from tzurot.inference.attachments import AttachmentLimits, AttachmentReader
from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    AttachmentRef,
    Character,
    Downloaded,
    ModelChoice,
    ReplyRequest,
    StreamEvent,
    Transcript,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.reply_settings import ModelName, ReplySettings
from tzurot.inference.service import Inference
from tzurot.runtime.errors import FailedPrecondition

USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)
OGG = b"OggS" + bytes(30)
WHISPER = ModelName("openai", "whisper-1")
VISION = ModelName("openai", "gpt-4o-mini")
VOICE = AttachmentRef(
    url="https://cdn.test/voice.ogg", content_type="audio/ogg", filename="voice.ogg", size_bytes=34
)
IMAGE = AttachmentRef(
    url="https://cdn.test/cat.png", content_type="image/png", filename="cat.png", size_bytes=28
)


class Vault:
    def __init__(self, providers: set[str]) -> None:
        self.providers = providers

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(f"sk-{provider}-user") if provider in self.providers else None


class Cdn:
    async def fetch(
        self, url: str, *, field: str, max_bytes: int, allowed_types: frozenset[str]
    ) -> Downloaded:
        return (
            Downloaded(OGG, "audio/ogg") if url.endswith(".ogg") else Downloaded(PNG, "image/png")
        )


def _refused(provider: Provider) -> FailedPrecondition:
    """What provider_errors.py raises for a 401: the provider, never whose key it was."""
    return FailedPrecondition(
        f"{provider.name} rejected the API key",
        reason="INVALID_API_KEY",
        metadata={"provider": provider.name},
    )


class RefusingProvider:
    """Every provider refuses every key; records which provider was asked for what."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
        max_retries: int | None = None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        self.asked.append(("chat", provider.name))
        raise _refused(provider)
        yield  # an async generator, as the real client's

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        raise _refused(provider)

    async def transcribe(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        audio: bytes,
        filename: str,
        content_type: str,
        time_limit: float | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Transcript:
        self.asked.append(("transcribe", provider.name))
        raise _refused(provider)


def make(
    *, user_keys: set[str], system_keys: dict[str, SecretStr] | None = None
) -> tuple[Inference, RefusingProvider]:
    llm = RefusingProvider()
    inference = Inference(
        providers=ProviderRegistry(),
        keys=KeyResolver(Vault(user_keys), system_keys),
        history=NoHistory(),
        llm=llm,
        settings=ReplySettings(vision=VISION, transcription=WHISPER),
        attachments=AttachmentReader(Cdn(), llm, AttachmentLimits()),
    )
    return inference, llm


def voice_message(*, free_use: bool = False, attachment: AttachmentRef = VOICE) -> ReplyRequest:
    """A voice note (or another attachment) for an answer on OpenRouter, by a model without
    vision; transcription and image description are on OpenAI."""
    return ReplyRequest(
        job_id="job-1",
        user_id=USER,
        author_name="Ann",
        channel_id="chan-1",
        character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
        model=ModelChoice(provider="openrouter", model="m/one", free_use=free_use),
        content="",
        attachments=(attachment,),
    )


async def refusal_of_reply(inference: Inference, request: ReplyRequest) -> FailedPrecondition:
    with pytest.raises(FailedPrecondition) as caught:
        async for _ in inference.generate_reply(request):
            pass
    return caught.value


def whose(err: FailedPrecondition) -> dict[str, Any]:
    return {k: err.metadata.get(k) for k in ("provider", "key_source")} | {"reason": err.reason}


async def test_a_refused_transcription_key_of_the_user_names_it_and_its_provider() -> None:
    inference, llm = make(user_keys={"openrouter", "openai"})
    err = await refusal_of_reply(inference, voice_message())
    assert llm.asked == [("transcribe", "openai")]  # refused before the answer was asked
    assert whose(err) == {"provider": "openai", "key_source": "user", "reason": "INVALID_API_KEY"}


async def test_a_refused_operator_key_says_system() -> None:
    """A free-use config on the operator's OpenAI key: gateway must not mark anything."""
    inference, _ = make(
        user_keys={"openrouter"}, system_keys={"openai": SecretStr("sk-operator-openai")}
    )
    err = await refusal_of_reply(inference, voice_message(free_use=True))
    assert whose(err) == {
        "provider": "openai",
        "key_source": "system",
        "reason": "INVALID_API_KEY",
    }


async def test_a_refused_description_key_of_the_user_names_it() -> None:
    inference, llm = make(user_keys={"openrouter", "openai"})
    err = await refusal_of_reply(inference, voice_message(attachment=IMAGE))
    assert llm.asked == [("chat", "openai")]  # refused before the answer was asked
    assert whose(err) == {
        "provider": "openai",
        "key_source": "user",
        "reason": "INVALID_API_KEY",
    }


async def test_a_refused_fact_extraction_key_of_the_user_names_it() -> None:
    inference, _ = make(user_keys={"openai"})
    with pytest.raises(FailedPrecondition) as caught:
        await inference.extract_facts(
            USER, VISION, False, [{"role": "user", "content": "I live in Oslo"}], set()
        )
    assert whose(caught.value) == {
        "provider": "openai",
        "key_source": "user",
        "reason": "INVALID_API_KEY",
    }


async def test_another_providers_refusal_is_not_claimed_for_this_key() -> None:
    """Only the helper's own provider's refusal is about its key."""

    class OtherRefuses(RefusingProvider):
        async def transcribe(self, provider: Provider, *args: Any, **kwargs: Any) -> Transcript:
            raise _refused(Provider("elsewhere", "https://elsewhere.test/v1"))

    inference, _ = make(user_keys={"openrouter", "openai"})
    inference._attachments = AttachmentReader(Cdn(), OtherRefuses(), AttachmentLimits())
    err = await refusal_of_reply(inference, voice_message())
    assert "key_source" not in err.metadata
