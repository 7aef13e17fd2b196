"""A voice names a provider inference says speaks (ListProvidersResponse.speech_providers).

Review: ListProviders carried names only, so a chat back end the operator added
(`TZUROT_PROVIDERS={"deepseek": …}`) was taken as a voice and failed at every answer. Now
inference says which of its providers synthesise speech (ElevenLabs, the built-in speech
servers, and those the operator declares `"speech": true`), and the gateway takes only those:
any other it lists is INVALID_ARGUMENT naming the option and the providers that can speak. A
local speech server without an address in a pod stays FAILED_PRECONDITION
PROVIDER_NOT_CONFIGURED; while inference cannot answer, only ElevenLabs and OpenAI are taken
(test_voice_providers.py); an inference older than the field (it leaves
`speech_providers_listed` unset) is read as before it, by names minus the chat providers, so
a rollout that updates the gateway first refuses no voice that worked.

Gateway's real client (GrpcInference) asks inference's real servicer over gRPC, its registry
built from the operator's declarations, or one answering as an older inference did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, cast

import grpc
import pytest

from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.voice import VoiceAdmin
from tzurot.gateway.clients import GrpcInference
from tzurot.gateway.domain import Personality
from tzurot.gateway.provider_list import InferenceProviders, Listed, ProviderList
from tzurot.gateway.voice import NOT_SPEECH_PROVIDER, UNKNOWN_PROVIDER, Voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.inference.config import ProviderSetting
from tzurot.inference.providers import Declared, ProviderRegistry
from tzurot.inference.server import InferenceServicer
from tzurot.runtime.errors import PROVIDER_NOT_CONFIGURED, FailedPrecondition, InvalidArgument
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

OPERATOR = Principal(user=None)
SPEECH_SERVER = "http://tts.lan:8880/v1"
OPERATORS: Mapping[str, str | Declared] = {
    "deepseek": "http://deepseek.lan:8000/v1",  # a chat back end, as before: a base URL
    "my-tts": ProviderSetting(base_url=SPEECH_SERVER, speech=True, keyless=True),
}
"""The operator's TZUROT_PROVIDERS: a chat back end and a declared speech server."""
SPEAKERS = "elevenlabs, my-tts, openai"
"""What speaks in a pod (`TZUROT_LOOPBACK_PROVIDERS=false`: kokoro has no address)."""


class Inference:
    """Inference's use-cases as the servicer's ListProviders reads them: a real registry."""

    def __init__(self, registry: ProviderRegistry) -> None:
        self._registry = registry

    def provider_names(self) -> list[str]:
        return self._registry.names

    def speech_provider_names(self) -> list[str]:
        return self._registry.speech_names

    def keyless_provider_names(self) -> list[str]:
        return self._registry.keyless_names


class OlderInference(InferenceServicer):
    """ListProviders as an inference from before speech_providers answered it: names only."""

    async def ListProviders(
        self, request: inf.ListProvidersRequest, context: Any
    ) -> inf.ListProvidersResponse:
        answer = await super().ListProviders(request, context)
        return inf.ListProvidersResponse(providers=answer.providers)


@asynccontextmanager
async def inference(
    operators: Mapping[str, str | Declared], servicer: type[InferenceServicer] = InferenceServicer
) -> AsyncIterator[GrpcInference]:
    """Inference in a pod, voice served, the operator's `TZUROT_PROVIDERS` being `operators`,
    and the gateway's client to it."""
    registry = ProviderRegistry(operators, loopback_defaults=False)
    server = grpc.aio.server()
    inf_grpc.add_InferenceServiceServicer_to_server(
        servicer(cast(Any, Inference(registry)), voice=cast(Any, object())), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield GrpcInference(channel, generate_timeout=30)
    finally:
        await server.stop(None)


class Voices:
    def __init__(self) -> None:
        self.stored: dict[str, Voice] = {}

    async def put_voice(self, personality_id: str, voice: Voice) -> None:
        self.stored[personality_id] = voice

    async def voice(self, personality_id: str) -> Voice | None:
        return self.stored.get(personality_id)


class VoiceSetting(VoiceAdmin):
    """Only what set_personality_voice needs: the personality, its voice's store and
    inference's providers (the wallet's cached lookup, as the gateway wires it)."""

    def __init__(self, client: GrpcInference) -> None:  # no super().__init__: nothing else used
        self.voices = Voices()
        self._providers = InferenceProviders(client)

    @property
    def _voices(self) -> VoiceStore:
        return cast(VoiceStore, self.voices)

    async def _owned(self, name: str, who: Principal, field: str = "personality") -> Personality:
        return cast(Personality, SimpleNamespace(id="p1", slug=name))

    async def set(self, provider: str) -> Voice | None:
        return await self.set_personality_voice(OPERATOR, "echo", Voice(provider, "af_bella"))


@pytest.mark.parametrize("provider", ["deepseek", "openrouter", "anthropic"])
async def test_a_provider_inference_says_does_not_speak_is_refused_naming_those_that_do(
    provider: str,
) -> None:
    """The fix: `deepseek` (the operator's chat back end) was taken, and its voice failed at
    every answer."""
    async with inference(OPERATORS) as client:
        admin = VoiceSetting(client)
        with pytest.raises(InvalidArgument) as refused:
            await admin.set(provider)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.field, refused.value.reason) == ("voice.provider", NOT_SPEECH_PROVIDER)
    assert str(refused.value) == (
        f"provider {provider!r} is a chat provider, not a speech provider; the providers that "
        f'can speak here: {SPEAKERS} (the operator declares a speech server with "speech": '
        "true in TZUROT_PROVIDERS)"
    )
    assert admin.voices.stored == {}


@pytest.mark.parametrize("provider", SPEAKERS.split(", "))
async def test_each_provider_inference_says_speaks_is_taken(provider: str) -> None:
    async with inference(OPERATORS) as client:
        admin = VoiceSetting(client)
        voice = await admin.set(provider)
    assert voice is not None
    assert admin.voices.stored == {"p1": Voice(provider, "af_bella")}


async def test_a_built_in_chat_name_the_operator_declared_a_speech_server_is_taken() -> None:
    """Inference is believed over the gateway's list of chat names (`vllm` pointed at a
    speech server and declared so); Brave is never a speech provider."""
    operators = {"vllm": ProviderSetting(base_url=SPEECH_SERVER, speech=True)}
    async with inference(operators) as client:
        admin = VoiceSetting(client)
        voice = await admin.set("vllm")
        assert voice is not None
        with pytest.raises(InvalidArgument, match=r"^provider 'brave' is web search, not a sp"):
            await admin.set("brave")


async def test_an_unknown_name_is_refused_naming_those_that_speak_never_itself() -> None:
    async with inference(OPERATORS) as client:
        with pytest.raises(InvalidArgument) as refused:
            await VoiceSetting(client).set("sk-or-v1-pasted0key")
    assert refused.value.reason == UNKNOWN_PROVIDER
    assert str(refused.value) == f"unknown provider; the providers that can speak here: {SPEAKERS}"


async def test_in_a_pod_a_local_speech_server_without_an_address_is_still_the_operators() -> None:
    async with inference(OPERATORS) as client:
        with pytest.raises(FailedPrecondition) as refused:
            await VoiceSetting(client).set("kokoro")
    assert (refused.value.reason, refused.value.metadata) == (
        PROVIDER_NOT_CONFIGURED,
        {"provider": "kokoro"},
    )
    assert str(refused.value).startswith("provider 'kokoro' is not set up on this server")


async def test_an_older_inference_is_read_as_before_the_field_not_as_none_speaking() -> None:
    """The safe fallback: the names it lists but the chat providers are taken (the
    operator's own among them, even a chat back end, as before); none is refused for want of
    a field it never sent."""
    async with inference(OPERATORS, OlderInference) as client:
        names = {"anthropic", "deepseek", "elevenlabs", "gemini", "my-tts", "openai", "openrouter"}
        assert await InferenceProviders(client).listed() == Listed(
            ProviderList(frozenset(names)), answered=True
        )
        admin = VoiceSetting(client)
        for provider in ("my-tts", "deepseek", "elevenlabs", "openai"):
            assert await admin.set(provider) is not None
        with pytest.raises(InvalidArgument, match=r"^'openrouter' is a chat provider"):
            await admin.set("openrouter")
        with pytest.raises(FailedPrecondition):
            await admin.set("kokoro")


async def test_with_voice_not_served_no_provider_is_taken() -> None:
    """Inference says the list (set) and it is empty: nothing could speak a voice."""

    class Mute(InferenceServicer):
        async def ListProviders(
            self, request: inf.ListProvidersRequest, context: Any
        ) -> inf.ListProvidersResponse:
            answer = await super().ListProviders(request, context)
            return inf.ListProvidersResponse(
                providers=answer.providers, speech_providers_listed=True
            )

    async with inference(OPERATORS, Mute) as client:
        with pytest.raises(InvalidArgument) as refused:
            await VoiceSetting(client).set("openai")
    assert str(refused.value).startswith(
        "provider 'openai' is a chat provider, not a speech provider; the providers that can "
        "speak here: none (this server serves no voice)"
    )
