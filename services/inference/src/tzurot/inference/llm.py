"""Streamed chat completions from an OpenAI-compatible provider, with errors classified.

One `httpx2.AsyncClient` (connection pool) serves the whole process, and one `AsyncOpenAI`
on it serves each base URL (a few, bounded). The client holds no user's key: each request
carries the caller's key in its own Authorization header, so keys never outlive a call and
never mix between users. (A client per call cost ~0.5 ms of CPU and a thread hop to learn
the platform for its headers, on every request.) The SDK's own retries are off on every
client: each method sends one request, and its callers ask again as retries.py allows,
within their time limits. A failure becomes a typed error whose message names the provider
and never repeats the provider's own text (error bodies can echo part of the key); a
connection that failed before the request was sent is `NotSent`, a request whose body the
client could not hand to its socket whole (a stalled or reset upload: uploads.py) is
`NotReceived`, a timeout once it was sent is `NoAnswerInTime` (all UNAVAILABLE).

Here: chat (streamed), transcription and key checks; images in image_calls.py, the SDK
clients in sdk_clients.py, the typed errors in provider_errors.py and tool_refusal.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

import httpx2
import openai
from openai.types.audio.transcription import UsageDuration, UsageTokens
from pydantic import SecretStr

from tzurot.inference.chunks import AnswerAssembly
from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import StreamEvent, TokenUsage, Transcript
from tzurot.inference.image_calls import ImageCalls
from tzurot.inference.image_modalities import ChatModalities
from tzurot.inference.provider_errors import provider_error, time_limit_passed
from tzurot.inference.providers import Provider
from tzurot.inference.sdk_clients import SdkClients, auth_headers
from tzurot.inference.sse import chat_chunks
from tzurot.inference.tool_refusal import USER_ROUTING, ToolsUnsupported, refuses_tools
from tzurot.inference.uploads import install, watching_upload
from tzurot.runtime.errors import FailedPrecondition, ResourceExhausted


class LlmClient(ImageCalls):
    """Calls providers over one shared connection pool; close it when the process stops."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        http_client: openai.DefaultAsyncHttpxClient | None = None,
    ) -> None:
        # Redirects are not followed (the SDK's default client does): a provider's API does
        # not redirect its calls, and a redirect would carry the user's extra headers to
        # another host and let its answer (a model list) pass for the key's (review 158 L5).
        self._http = http_client or openai.DefaultAsyncHttpxClient(follow_redirects=False)
        install(self._http)  # a failed upload tells whether it went out whole (uploads.py)
        self._timeout = timeout_seconds
        self._clients = SdkClients(self._http, timeout=timeout_seconds)
        self._image_modalities = ChatModalities()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yields the answer's text (and reasoning) deltas in order, then one Completion.

        `request_timeout` (seconds, at most the client's own) bounds each step of this
        request. One request: no wait (a 429's Retry-After) hides inside the caller's time
        limits. `on_accepted` is awaited once the provider accepted it (its 200's headers
        came), before the first chunk is read."""
        client = self._client(provider)
        assembly = AnswerAssembly()
        options: openai.RequestOptions = {"headers": {**call.headers, **auth_headers(api_key)}}
        if request_timeout is not None:
            options["timeout"] = max(min(request_timeout, self._timeout), 0.001)
        try:
            # client.post, not chat.completions.create: create first runs the SDK's typed
            # transform over every message (~1 ms each), a no-op for the plain messages
            # dialects.py builds. The raw response, not AsyncStream[ChatCompletionChunk],
            # which builds pydantic models for every chunk (see sse.py). Same request, same
            # errors.
            response = await client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body={
                    **call.body,
                    "model": model,
                    "messages": call.messages,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
                options=options,
                stream=True,
            )
            if on_accepted is not None:
                try:
                    await on_accepted()
                except BaseException:
                    await response.aclose()
                    raise
            chunks = chat_chunks(response)
            async with aclosing(chunks):
                async for chunk in chunks:
                    for event in assembly.take(chunk):
                        yield event
        except openai.OpenAIError as exc:
            if refuses_tools(exc, call):
                routed = any(name in call.body for name in USER_ROUTING)
                raise ToolsUnsupported(provider.name, model, routed=routed) from None
            raise provider_error(exc, provider.name, model=model) from None
        yield assembly.completion(call.messages)

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
        """The text of an audio file through `/audio/transcriptions` (Whisper), with the
        usage the provider reports: tokens (gpt-4o-transcribe) or seconds (whisper-1).

        `time_limit` (seconds) bounds the whole request, the upload and the provider's work
        included (each step within the client's own timeout too); past it the call is cut:
        NoAnswerInTime once the upload went out whole (the provider may be at work, and
        billing), else NotReceived or NotSent. `on_sent` is called as the upload is handed
        over whole (uploads.py)."""
        client = self._client(provider)
        step: float | openai.NotGiven = openai.NOT_GIVEN
        if time_limit is not None:
            step = max(min(time_limit, self._timeout), 0.001)
        limit = asyncio.timeout(None if time_limit is None else max(time_limit, 0.0))
        with watching_upload(on_sent) as upload:
            try:
                async with limit:
                    result = await client.audio.transcriptions.create(
                        model=model,
                        file=(filename, audio, content_type),
                        extra_headers=auth_headers(api_key),
                        timeout=step,
                    )
            except openai.OpenAIError as exc:
                raise provider_error(
                    exc, provider.name, model=model, upload_cut_short=upload.cut_short
                ) from None
            except TimeoutError:
                if not limit.expired():
                    raise
                raise time_limit_passed(
                    provider.name, started=upload.started, sent=upload.sent
                ) from None
        usage = result.usage  # None from providers that say nothing of it
        if isinstance(usage, UsageTokens):
            return Transcript(result.text, TokenUsage(usage.input_tokens, usage.output_tokens))
        if isinstance(usage, UsageDuration):
            return Transcript(result.text, audio_seconds=usage.seconds)
        return Transcript(result.text)

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        """How many models the key can see: a cheap call that proves the key works (within
        15 s: on a dead network the user hears so soon)."""
        client = self._client(provider, quick=True)
        auth = auth_headers(api_key)
        try:
            if provider.key_check_path is not None:
                await self._check_key_endpoint(client, provider, auth)
            return len([model async for model in client.models.list(extra_headers=auth)])
        except openai.NotFoundError:
            raise FailedPrecondition(
                f"cannot check the key: {provider.name} does not list models (HTTP 404)",
                reason="KEY_CHECK_UNSUPPORTED",
                metadata={"provider": provider.name},
            ) from None
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name) from None

    @staticmethod
    async def _check_key_endpoint(
        client: openai.AsyncOpenAI, provider: Provider, auth: dict[str, str]
    ) -> None:
        """The provider's own key endpoint: 401 for a bad key; no credit left is quota."""
        assert provider.key_check_path is not None
        answer = await client.get(
            provider.key_check_path, cast_to=object, options={"headers": auth}
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        remaining = data.get("limit_remaining") if isinstance(data, dict) else None
        if isinstance(remaining, int | float) and remaining <= 0:
            raise ResourceExhausted(
                f"the {provider.name} key has no credit left; add credit or raise its limit",
                reason="PROVIDER_QUOTA_EXCEEDED",
                metadata={"provider": provider.name},
            )
