"""OpenAI-compatible speech (`POST {base}/audio/speech`: OpenAI, Kokoro-FastAPI,
openedai-speech) through the `openai` client.

It answers `Accepted` the moment the provider took the text (it bills the characters from then
on, whatever becomes of the audio), then its audio (MP3) as it streams. Refusals are the LLM
calls' typed errors (provider_errors.provider_error), naming the provider and never quoting a key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import openai
from pydantic import SecretStr

from tzurot.inference.provider_errors import provider_error
from tzurot.inference.providers import Provider
from tzurot.inference.retries import RetryPolicy
from tzurot.inference.speech_types import Accepted, VoiceSpec
from tzurot.runtime.errors import Unavailable

DEFAULT_SPEECH_MODEL = "tts-1"


class OpenAISpeechClient:
    """`POST {base}/audio/speech` through the openai client (MP3 back), without the SDK's
    retries: asked again only as retries.py allows, never once the provider took the text
    (`max_retries`: its budget for a connection that failed before sending)."""

    def __init__(self, http: httpx.AsyncClient, *, max_retries: int = 2) -> None:
        self._http = http
        self._retry = RetryPolicy(failures=max_retries)

    async def synthesize(
        self, provider: Provider, api_key: SecretStr, voice: VoiceSpec, text: str
    ) -> AsyncIterator[Accepted | bytes]:
        client = openai.AsyncOpenAI(
            base_url=provider.base_url,
            api_key=api_key.get_secret_value(),
            max_retries=0,
            http_client=self._http,
        )
        extra: dict[str, Any] = {} if voice.speed is None else {"speed": voice.speed}
        model = voice.model or DEFAULT_SPEECH_MODEL
        retries, accepted = self._retry.retries(), False
        while True:
            try:
                async with client.audio.speech.with_streaming_response.create(
                    model=model,
                    voice=voice.voice_id,
                    input=text,
                    response_format="mp3",
                    **extra,
                ) as response:
                    accepted = True
                    yield Accepted(model)  # a 2xx: the openai client raised on anything else
                    async for chunk in response.iter_bytes():
                        yield chunk
                return
            except openai.OpenAIError as exc:
                err = provider_error(exc, provider.name, model=voice.model)
            except httpx.HTTPError:  # the body broke off after the 2xx
                raise Unavailable(
                    f"{provider.name} broke off the audio", metadata={"provider": provider.name}
                ) from None
            wait = retries.wait(err, began=accepted, resendable=False)
            if wait is None:
                raise err from None
            await asyncio.sleep(wait)
