"""LlmClient against the fake OpenAI-compatible provider: the real openai client over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from tzurot.inference.dialects import ProviderCall, build_call
from tzurot.inference.domain import Completion, StreamEvent, TextDelta, TokenUsage
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.inference.retries import NoAnswerInTime, NotSent
from tzurot.inference.tool_refusal import ToolsUnsupported
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec

pytestmark = pytest.mark.contract

# Deliberately not shaped like any vendor key, so only its absence (not the redactor) passes.
GOOD_KEY = "plantedGOODzq7Wm3Xv9Rt2Lp8"
BAD_KEY = "plantedBADkey5Hj2Qw9Zx4Cv7"

MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Ann: hello there"},
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={GOOD_KEY}) as provider:
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


def provider(fake: FakeProvider, name: str = "fakeai") -> Provider:
    return Provider(name, fake.base_url)


async def run(
    llm: LlmClient,
    target: Provider,
    key: str = GOOD_KEY,
    *,
    model: str = "fake/echo",
    messages: Sequence[ChatMessage] = MESSAGES,
    parameters: dict[str, Any] | None = None,
) -> list[StreamEvent]:
    """One call as the service makes it: the config's parameters through the dialect."""
    call = build_call(target.name, model, parse_advanced_parameters(parameters), messages)
    events = llm.stream_chat(target, SecretStr(key), model=model, call=call)
    return [event async for event in events]


async def drain(events: AsyncIterator[StreamEvent], into: list[StreamEvent]) -> None:
    async for event in events:
        into.append(event)


def assert_key_hidden(err: TzurotError, key: str) -> None:
    shown = f"{err.message} {err!r} {err} {err.metadata}"
    assert key not in shown
    assert key[:5] not in shown  # the provider's masked echo ("Incorrect API key: plant***")
    assert "***" not in shown
    assert err.__cause__ is None


async def test_streams_deltas_in_order_then_usage(fake: FakeProvider, llm: LlmClient) -> None:
    fake.reply = "one two three four"
    events = await run(llm, provider(fake), parameters={"temperature": 0.2, "max_tokens": 64.0})
    *deltas, done = events
    assert deltas == [TextDelta("one"), TextDelta(" two"), TextDelta(" three"), TextDelta(" four")]
    assert isinstance(done, Completion)
    assert done.content == "one two three four"
    assert done.finish_reason == "stop"
    # The fake counts ceil(len/4) per message: 4 + 4 prompt tokens, 5 answer tokens.
    assert done.usage == TokenUsage(input_tokens=8, output_tokens=5)
    [request] = fake.chat_requests()
    assert request.api_key == GOOD_KEY
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["messages"] == MESSAGES
    assert (request.body["temperature"], request.body["max_tokens"]) == (0.2, 64)


async def test_401_names_the_provider_never_the_key(fake: FakeProvider, llm: LlmClient) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        await run(llm, provider(fake, "openrouter"), BAD_KEY)
    err = caught.value
    assert err.reason == "INVALID_API_KEY"
    assert err.metadata == {"provider": "openrouter"}
    assert err.message == (
        "openrouter rejected the API key (HTTP 401); update it with /wallet set openrouter"
    )
    assert_key_hidden(err, BAD_KEY)
    assert len(fake.chat_requests()) == 1  # a 401 is never retried


async def test_a_403_whose_body_says_the_key_was_refused_is_an_invalid_key(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.fail_next(403, code="invalid_api_key")
    with pytest.raises(FailedPrecondition) as caught:
        await run(llm, provider(fake))
    assert (caught.value.reason, "HTTP 403" in caught.value.message) == ("INVALID_API_KEY", True)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        # OpenAI's documented 403: the request comes from an unsupported region.
        ("unsupported_country_region_territory", "Country, region, or territory not supported"),
        # Anthropic's: a working key without permission for this resource.
        ("permission_error", "Your API key does not have permission to use this resource."),
        (None, None),  # a bare 403
    ],
)
async def test_any_other_403_is_a_refused_request_never_a_refused_key(
    fake: FakeProvider, llm: LlmClient, code: str | None, message: str | None
) -> None:
    fake.fail_next(403, code=code, message=message)
    with pytest.raises(InvalidArgument) as caught:
        await run(llm, provider(fake))
    assert caught.value.reason == "PROVIDER_REJECTED_REQUEST"
    assert "HTTP 403" in caught.value.message
    assert "key_source" not in caught.value.metadata
    assert "not supported" not in caught.value.message  # never the vendor's text


async def test_openrouters_moderation_403_is_content_filtered_not_a_refused_key(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """OpenRouter documents 403 as "Your chosen model requires moderation and your input was
    flagged", with `metadata.reasons` and `flagged_input`."""
    fake.flag_next(reasons=("harassment",), flagged_input="you are all idiots")
    with pytest.raises(FailedPrecondition) as caught:
        await run(llm, provider(fake, "openrouter"))
    err = caught.value
    assert err.reason == "CONTENT_FILTERED"
    assert err.message.startswith("openrouter refused the request: its moderation flagged")
    assert "idiots" not in f"{err} {err.metadata}"  # the flagged input is never repeated
    assert len(fake.chat_requests()) == 1


@pytest.mark.parametrize("shape", ["openai", "openrouter"])
async def test_a_context_overflow_tells_to_lower_the_context_window(
    fake: FakeProvider, llm: LlmClient, shape: str
) -> None:
    fake.context_limit, fake.context_error_shape = 4, shape
    with pytest.raises(InvalidArgument) as caught:
        await run(llm, provider(fake, "openrouter"))
    err = caught.value
    assert (err.reason, err.field) == ("CONTEXT_TOO_LONG", "config.context_window")
    assert "lower context_window" in err.message
    assert "maximum context length" not in err.message  # never the vendor's text
    code = "context_length_exceeded" if shape == "openai" else ""
    assert err.metadata.get("provider_code", "") == code


async def test_a_5xx_is_unavailable_at_once(fake: FakeProvider, llm: LlmClient) -> None:
    """One request: its callers ask again as retries.py allows, never the SDK."""
    fake.fail_next(503, times=2, retry_after=0.01)
    with pytest.raises(Unavailable) as caught:
        await run(llm, provider(fake))
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert caught.value.message == "fakeai is unavailable (HTTP 503); try again later"
    assert not isinstance(caught.value, NotSent | NoAnswerInTime)  # the provider answered
    assert len(fake.chat_requests()) == 1


async def test_every_call_is_one_request_and_a_429_is_raised_with_its_retry_after(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """No call waits out a 429 unseen (the SDK did, up to 60 s, twice, then asked again)."""
    fake.image_models = {"fake/draw"}
    key, target = SecretStr(GOOD_KEY), provider(fake)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "/v1/chat/completions": lambda: drain(
            llm.stream_chat(target, key, model="fake/echo", call=ProviderCall(MESSAGES)), []
        ),
        "/v1/audio/transcriptions": lambda: llm.transcribe(
            target,
            key,
            model="whisper-1",
            audio=b"OggS",
            filename="a.ogg",
            content_type="audio/ogg",
        ),
        "/v1/images/generations": lambda: llm.generate_images(
            target, key, model="fake/draw", prompt="a cat", count=1, size="1024x1024"
        ),
        "/v1/models": lambda: llm.count_models(target, key),
    }
    for path, call in calls.items():
        fake.fail_next(429, times=3, retry_after=0.01, path=path)
        with pytest.raises(ResourceExhausted) as caught:
            await call()
        assert caught.value.reason == "PROVIDER_RATE_LIMITED", path
        assert caught.value.retry_after_seconds == pytest.approx(0.01), path
        assert [r.path for r in fake.requests].count(path) == 1, path


async def test_a_request_timeout_bounds_the_call(fake: FakeProvider) -> None:
    fake.stall_next(60.0)  # headers, then silence
    llm = LlmClient(timeout_seconds=60.0)
    events = llm.stream_chat(
        provider(fake),
        SecretStr(GOOD_KEY),
        model="fake/echo",
        call=ProviderCall(MESSAGES),
        request_timeout=0.2,
    )
    try:
        # The client's own 60 s would end in the outer guard's TimeoutError instead.
        with pytest.raises(Unavailable) as caught:
            async with asyncio.timeout(10):
                await drain(events, [])
    finally:
        await llm.aclose()
    assert caught.value.message == "fakeai did not answer in time; try again later"
    assert len(fake.chat_requests()) == 1


async def test_429_is_resource_exhausted_with_retry_after(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.fail_next(429, times=2, retry_after=0.02)
    with pytest.raises(ResourceExhausted) as caught:
        await run(llm, provider(fake))
    assert caught.value.reason == "PROVIDER_RATE_LIMITED"
    assert caught.value.retry_after_seconds == pytest.approx(0.02)
    assert "fakeai" in caught.value.message


async def test_402_is_quota(fake: FakeProvider, llm: LlmClient) -> None:
    fake.fail_next(402)
    with pytest.raises(ResourceExhausted) as caught:
        await run(llm, provider(fake))
    assert caught.value.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert caught.value.retry_after_seconds is None
    assert len(fake.chat_requests()) == 1


async def test_unknown_model_names_the_model(fake: FakeProvider, llm: LlmClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await run(llm, provider(fake), model="fake/nope")
    assert caught.value.reason == "MODEL_NOT_FOUND"
    assert caught.value.message == "fakeai has no model 'fake/nope' (HTTP 404)"
    assert caught.value.metadata == {"provider": "fakeai", "model": "fake/nope"}


async def test_400_carries_only_the_provider_code(fake: FakeProvider, llm: LlmClient) -> None:
    fake.fail_next(400)
    with pytest.raises(InvalidArgument) as caught:
        await run(llm, provider(fake))
    assert caught.value.reason == "PROVIDER_REJECTED_REQUEST"
    # The fake's code "http_400" is not a plain identifier, so nothing of the body is quoted.
    assert caught.value.message == "fakeai rejected the request (HTTP 400)"
    assert caught.value.metadata == {"provider": "fakeai", "status": "400"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_connection_refused_is_unavailable() -> None:
    llm = LlmClient(timeout_seconds=5.0)
    try:
        with pytest.raises(Unavailable) as caught:
            await run(llm, Provider("local", f"http://127.0.0.1:{_closed_port()}/v1"))
    finally:
        await llm.aclose()
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert caught.value.message == "local is unreachable; try again later"
    assert isinstance(caught.value, NotSent)  # nothing left: safe to send again


async def test_silence_past_the_timeout_is_unavailable(fake: FakeProvider) -> None:
    fake.chunk_delay = 1.0
    llm = LlmClient(timeout_seconds=0.2)
    try:
        with pytest.raises(Unavailable) as caught:
            await run(llm, provider(fake))
    finally:
        await llm.aclose()
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert isinstance(caught.value, NoAnswerInTime)  # sent: the provider may be at work


async def test_connection_dropped_mid_stream(fake: FakeProvider, llm: LlmClient) -> None:
    fake.drop_after_chunks = 1
    seen: list[StreamEvent] = []
    events = llm.stream_chat(
        provider(fake), SecretStr(GOOD_KEY), model="fake/echo", call=ProviderCall(MESSAGES)
    )
    with pytest.raises(Unavailable):
        await drain(events, seen)
    assert seen == [TextDelta("You")]


async def test_error_event_mid_stream_is_unavailable(fake: FakeProvider, llm: LlmClient) -> None:
    """OpenRouter's mid-generation error: HTTP 200, text, then a chunk carrying `error`."""
    fake.reply = "one two three four"
    fake.error_after_chunks = 2
    seen: list[StreamEvent] = []
    events = llm.stream_chat(
        provider(fake), SecretStr(GOOD_KEY), model="fake/echo", call=ProviderCall(MESSAGES)
    )
    with pytest.raises(Unavailable) as caught:
        await drain(events, seen)
    assert seen == [TextDelta("one"), TextDelta(" two")]
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert caught.value.message == "fakeai failed while answering; try again later"
    assert "upstream" not in f"{caught.value} {caught.value.metadata}"  # not the vendor's text
    assert caught.value.__cause__ is None
    assert len(fake.chat_requests()) == 1  # a stream that began is never retried


async def test_keepalive_comments_are_skipped(fake: FakeProvider, llm: LlmClient) -> None:
    fake.reply = "still here"
    fake.keepalive_comments = 3
    *deltas, done = await run(llm, provider(fake))
    assert deltas == [TextDelta("still"), TextDelta(" here")]
    assert isinstance(done, Completion)
    assert done.content == "still here"


async def test_streams_reuse_one_connection(fake: FakeProvider, llm: LlmClient) -> None:
    """The body is read past [DONE], so HTTP/1.1 keeps the connection for the next call."""
    for _ in range(3):
        await run(llm, provider(fake))
    ports = {request.client_port for request in fake.chat_requests()}
    assert len(ports) == 1
    assert 0 not in ports


async def test_count_models(fake: FakeProvider, llm: LlmClient) -> None:
    fake.models = ["a", "b", "c"]
    assert await llm.count_models(provider(fake), SecretStr(GOOD_KEY)) == 3
    with pytest.raises(FailedPrecondition) as caught:
        await llm.count_models(provider(fake, "openai"), SecretStr(BAD_KEY))
    assert caught.value.reason == "INVALID_API_KEY"
    assert_key_hidden(caught.value, BAD_KEY)


async def test_many_calls_share_one_pool(fake: FakeProvider, llm: LlmClient) -> None:
    for _ in range(3):
        await run(llm, provider(fake))
    await llm.count_models(provider(fake), SecretStr(GOOD_KEY))
    assert [r.api_key for r in fake.requests] == [GOOD_KEY] * 4


async def test_each_call_carries_its_own_key(fake: FakeProvider, llm: LlmClient) -> None:
    """One SDK client serves the provider; the key is the call's, never a previous one's."""
    await run(llm, provider(fake))
    with pytest.raises(FailedPrecondition) as caught:
        await run(llm, provider(fake), BAD_KEY)
    assert caught.value.reason == "INVALID_API_KEY"
    await run(llm, provider(fake))
    with pytest.raises(FailedPrecondition):
        await llm.count_models(provider(fake), SecretStr(BAD_KEY))
    assert await llm.count_models(provider(fake), SecretStr(GOOD_KEY)) == len(fake.models)
    assert [r.api_key for r in fake.requests] == [GOOD_KEY, BAD_KEY, GOOD_KEY, BAD_KEY, GOOD_KEY]


async def test_openrouter_keys_are_proven_by_its_key_endpoint(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """OpenRouter lists models without a key, so listing them alone would accept any key."""
    fake.public_models = True
    fake.models = ["a", "b"]
    with pytest.raises(FailedPrecondition) as caught:
        await llm.count_models(provider(fake, "openrouter"), SecretStr(BAD_KEY))
    assert caught.value.reason == "INVALID_API_KEY"
    assert "openrouter" in caught.value.message
    assert_key_hidden(caught.value, BAD_KEY)
    assert await llm.count_models(provider(fake, "openrouter"), SecretStr(GOOD_KEY)) == 2
    assert [r.path for r in fake.requests][-2:] == ["/v1/key", "/v1/models"]


async def test_openrouter_key_without_credit_is_quota(fake: FakeProvider, llm: LlmClient) -> None:
    fake.credit_remaining = 0
    with pytest.raises(ResourceExhausted) as caught:
        await llm.count_models(provider(fake, "openrouter"), SecretStr(GOOD_KEY))
    assert caught.value.reason == "PROVIDER_QUOTA_EXCEEDED"
    fake.credit_remaining = 3.5
    assert await llm.count_models(provider(fake, "openrouter"), SecretStr(GOOD_KEY)) == len(
        fake.models
    )


async def test_a_body_that_ends_cleanly_mid_answer_is_unavailable(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """A proxy dying mid-answer with a clean end of body: no finish_reason, no [DONE]."""
    fake.reply = "and then the provider went quiet"
    fake.cut_after_chunks = 3
    seen: list[StreamEvent] = []
    events = llm.stream_chat(
        provider(fake), SecretStr(GOOD_KEY), model="fake/echo", call=ProviderCall(MESSAGES)
    )
    with pytest.raises(Unavailable) as caught:
        await drain(events, seen)
    assert seen == [TextDelta("and"), TextDelta(" then"), TextDelta(" the")]  # no Completion
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert caught.value.message == "fakeai dropped the answer before finishing it; try again later"
    assert caught.value.__cause__ is None


async def test_a_finish_reason_without_done_is_a_whole_answer(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.reply = "all of it"
    fake.omit_done = True
    *_, done = await run(llm, provider(fake))
    assert isinstance(done, Completion)
    assert (done.content, done.finish_reason) == ("all of it", "stop")


@pytest.mark.parametrize(
    ("code", "error", "reason"),
    [
        (402, ResourceExhausted, "PROVIDER_QUOTA_EXCEEDED"),
        ("429", ResourceExhausted, "PROVIDER_RATE_LIMITED"),
        ("content_filter", FailedPrecondition, "CONTENT_FILTERED"),
        # The key was accepted before the 200: an upstream's 401/403 never refuses it.
        (401, Unavailable, "PROVIDER_UNAVAILABLE"),
        ("403", Unavailable, "PROVIDER_UNAVAILABLE"),
        (503, Unavailable, "PROVIDER_UNAVAILABLE"),
        ("server_error", Unavailable, "PROVIDER_UNAVAILABLE"),
    ],
)
async def test_an_error_event_is_classified_by_its_code_as_a_status_would_be(
    fake: FakeProvider,
    llm: LlmClient,
    code: int | str,
    error: type[TzurotError],
    reason: str,
) -> None:
    """OpenRouter puts the upstream's status in a mid-stream error's `code`: no credit or a
    rate limit is not "try again later", and a content filter is a refusal."""
    fake.reply = "one two three"
    fake.error_after_chunks = 1
    fake.stream_error_code = code
    with pytest.raises(error) as caught:
        await run(llm, provider(fake))
    assert type(caught.value) is error
    assert caught.value.reason == reason
    assert "upstream" not in f"{caught.value} {caught.value.metadata}"  # not the vendor's text
    assert len(fake.chat_requests()) == 1


TOOLS = [{"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}}]
CONTEXT_OVERFLOW = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "131000 tokens (130000 in the messages, 1000 in the functions). Please reduce the length "
    "of the messages or functions."
)


async def run_with_tools(llm: LlmClient, fake: FakeProvider, **body: Any) -> list[StreamEvent]:
    call = ProviderCall(MESSAGES, body={"tools": TOOLS, **body})
    events = llm.stream_chat(provider(fake), SecretStr(GOOD_KEY), model="fake/echo", call=call)
    return [event async for event in events]


@pytest.mark.parametrize(
    "refusal",
    [
        {"status": 404, "code": "404", "message": "No endpoints found that support tool use."},
        {"status": 400, "message": "registry.ollama.ai/library/gemma3:1b does not support tools"},
        {
            "status": 400,
            "message": '"auto" tool choice requires --enable-auto-tool-choice and '
            "--tool-call-parser to be set",
        },
        {
            "status": 400,
            "code": "unsupported_parameter",
            "message": "Unsupported parameter: 'tools' is not supported with this model.",
            "param": "tools",
        },
    ],
)
async def test_known_tool_refusals_are_tools_unsupported(
    fake: FakeProvider, llm: LlmClient, refusal: dict[str, Any]
) -> None:
    fake.fail_next(**refusal)
    with pytest.raises(ToolsUnsupported) as caught:
        await run_with_tools(llm, fake)
    assert not caught.value.routed


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("context_length_exceeded", CONTEXT_OVERFLOW),  # names "functions"
        ("invalid_request_error", "Invalid 'tools[0].function.name': string too long."),
        (None, "The function call in message 3 has no matching tool response."),
    ],
)
async def test_other_errors_naming_tools_or_functions_are_not_tool_refusals(
    fake: FakeProvider, llm: LlmClient, code: str | None, message: str
) -> None:
    fake.fail_next(400, code=code, message=message)
    with pytest.raises(InvalidArgument) as caught:
        await run_with_tools(llm, fake)
    overflow = code == "context_length_exceeded"
    assert caught.value.reason == ("CONTEXT_TOO_LONG" if overflow else "PROVIDER_REJECTED_REQUEST")


async def test_a_refusal_under_the_users_own_routing_says_so(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """OpenRouter's 404 when `provider.only` names only hosts without tool use: the user's
    routing, not the model, may be the cause."""
    fake.no_tool_hosts.add("TinyHost")
    with pytest.raises(ToolsUnsupported) as caught:
        await run_with_tools(llm, fake, provider={"only": ["TinyHost"]})
    assert caught.value.routed


async def test_one_json_body_to_a_stream_request_is_the_whole_answer(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """Some OpenAI-compatible proxies and local servers ignore `stream: true` and answer
    one `chat.completion`: a complete (and billed) answer, never a failure to resend."""
    fake.ignore_stream = True
    fake.enqueue("A whole answer.", reasoning="Thinking it over.")
    events = await run(llm, provider(fake))
    *deltas, done = events
    assert isinstance(done, Completion)
    assert (done.content, done.reasoning, done.finish_reason) == (
        "A whole answer.",
        "Thinking it over.",
        "stop",
    )
    assert done.usage.input_tokens > 0  # the body's own usage, not an estimate
    assert [e.text for e in deltas if isinstance(e, TextDelta)] == ["A whole answer."]
    assert len(fake.chat_requests()) == 1
    assert fake.chat_requests()[0].body["stream"] is True


async def test_one_json_body_with_tool_calls_is_read_as_a_stream_s(
    fake: FakeProvider, llm: LlmClient
) -> None:
    fake.ignore_stream = True
    fake.enqueue_tool_calls(ToolCallSpec("clock", {}), ToolCallSpec("clock", {"tz": "UTC"}))
    *_, done = await run_with_tools(llm, fake)
    assert isinstance(done, Completion)
    assert done.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in done.tool_calls] == [
        ("clock", "{}"),
        ("clock", '{"tz": "UTC"}'),
    ]


async def test_a_json_body_is_read_as_strictly_as_a_stream(llm: LlmClient) -> None:
    """An `error` in a 200 body (OpenRouter: errors while producing the output come in the
    body) is classified as an error event; an answer without a finish_reason is cut short."""
    bodies: list[Any] = [
        {"error": {"code": 402, "message": "Insufficient credits"}},
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "half"}}]},
        ["not", "an", "object"],
    ]

    async def chat(request: web.Request) -> web.Response:
        return web.json_response(bodies.pop(0))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target = Provider("local", f"http://127.0.0.1:{runner.addresses[0][1]}/v1")
    try:
        with pytest.raises(ResourceExhausted) as quota:
            await run(llm, target)
        assert quota.value.reason == "PROVIDER_QUOTA_EXCEEDED"
        with pytest.raises(Unavailable) as cut:
            await run(llm, target)
        assert cut.value.message == "local dropped the answer before finishing it; try again later"
        with pytest.raises(Unavailable) as malformed:
            await run(llm, target)
        assert malformed.value.message == "local failed while answering; try again later"
    finally:
        await runner.cleanup()
