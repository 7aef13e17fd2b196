"""The fake provider speaks the OpenAI protocol well enough for the real `openai` client."""

import asyncio
import json
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tzurot.testing.fake_provider import FakeProvider

KEY = "sk-good-key-123456"


def client(fake: FakeProvider, key: str = KEY, retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=key, max_retries=retries)


async def test_streams_the_reply_in_order_with_a_usage_chunk() -> None:
    fake = FakeProvider(valid_keys={KEY}, reply="one two three four")
    async with fake, client(fake) as api:
        stream = await api.chat.completions.create(
            model="fake/echo",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, usage, finish = [], None, None
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
    assert "".join(pieces) == "one two three four"
    assert [p for p in pieces if p] == ["one", " two", " three", " four"]
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens > 0
    assert usage.prompt_tokens > 0
    assert fake.chat_requests()[0].api_key == KEY


async def test_echoes_the_last_user_message_without_streaming() -> None:
    async with FakeProvider(valid_keys={KEY}) as fake, client(fake) as api:
        reply = await api.chat.completions.create(
            model="fake/echo",
            messages=[
                {"role": "user", "content": "first"},
                {"role": "user", "content": "second"},
            ],
        )
    assert reply.choices[0].message.content == "You said: second"


async def test_a_wrong_key_gets_401_like_a_real_vendor() -> None:
    async with FakeProvider(valid_keys={KEY}) as fake:
        with pytest.raises(openai.AuthenticationError) as caught:
            async with client(fake, key="sk-wrong") as api:
                await api.models.list()
    assert caught.value.status_code == 401


async def test_injected_faults_are_retried_by_the_client() -> None:
    async with FakeProvider(valid_keys={KEY}) as fake:
        fake.fail_next(500, times=1, retry_after=0)
        async with client(fake, retries=2) as api:
            models = await api.models.list()
        assert [m.id for m in models.data] == fake.models
        assert len(fake.requests) == 2
        fake.fail_next(429, times=5, retry_after=0)
        with pytest.raises(openai.RateLimitError):
            async with client(fake) as api:
                await api.models.list()


async def test_a_429_says_when_in_whole_seconds_and_exactly_in_ms() -> None:
    """HTTP's Retry-After is whole seconds (RFC 9110), never "0.25"; the exact delay goes in
    retry-after-ms, as OpenAI's and Azure's APIs send it."""
    async with FakeProvider(valid_keys={KEY}) as fake:
        fake.fail_next(429, retry_after=0.25)
        with pytest.raises(openai.RateLimitError) as caught:
            async with client(fake) as api:
                await api.models.list()
    headers = caught.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "250")


async def test_a_429_is_openais_rate_limit_error() -> None:
    """The body OpenAI sends with a 429: type `requests`, code `rate_limit_exceeded`, and the
    delay in words as well as in the headers."""
    async with FakeProvider(valid_keys={KEY}) as fake:
        fake.fail_next(429, retry_after=20)
        with pytest.raises(openai.RateLimitError) as caught:
            async with client(fake) as api:
                await api.models.list()
    err = caught.value
    assert (err.status_code, err.type, err.code, err.param) == (
        429,
        "requests",
        "rate_limit_exceeded",
        None,
    )
    assert "Please try again in 20s." in err.message
    headers = err.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("20", "20000")


async def test_a_fault_kept_for_one_endpoint_leaves_the_others_alone() -> None:
    async with FakeProvider(valid_keys={KEY}) as fake, client(fake) as api:
        fake.fail_next(503, path="/v1/audio/transcriptions")
        assert [m.id for m in (await api.models.list()).data] == fake.models
        with pytest.raises(openai.InternalServerError):
            await api.audio.transcriptions.create(model="whisper-1", file=("a.ogg", b"OggS"))
        heard = await api.audio.transcriptions.create(model="whisper-1", file=("a.ogg", b"OggS"))
    assert heard.text == fake.transcript


async def test_a_stalled_stream_sends_its_headers_then_nothing() -> None:
    async def deltas(stream: openai.AsyncStream[Any], into: list[object]) -> None:
        async for chunk in stream:
            into.append(chunk.choices[0].delta.content)

    async with FakeProvider(valid_keys={KEY}, reply="a b c") as fake:
        fake.stall_next(30.0)
        seen: list[object] = []
        api = openai.AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=0.3)
        async with api:
            stream = await api.chat.completions.create(
                model="fake/echo", messages=[{"role": "user", "content": "x"}], stream=True
            )
            with pytest.raises(openai.APITimeoutError):
                await deltas(stream, seen)
        assert seen == [""]  # the role chunk only: the model "thinks" unseen
        async with client(fake) as again:  # the next request is answered at once
            reply = await again.chat.completions.create(
                model="fake/echo", messages=[{"role": "user", "content": "x"}]
            )
        assert reply.choices[0].message.content == "a b c"


async def test_unknown_model_is_404() -> None:
    async with FakeProvider(valid_keys={KEY}) as fake:
        with pytest.raises(openai.NotFoundError):
            async with client(fake) as api:
                await api.chat.completions.create(
                    model="nope", messages=[{"role": "user", "content": "x"}]
                )


async def test_a_dropped_stream_surfaces_as_an_error() -> None:
    async with FakeProvider(valid_keys={KEY}, reply="a b c d e") as fake:
        fake.drop_after_chunks = 2
        async with client(fake) as api:
            stream = await api.chat.completions.create(
                model="fake/echo", messages=[{"role": "user", "content": "x"}], stream=True
            )
            with pytest.raises(openai.APIError):
                async for _ in stream:
                    pass


async def test_embeddings_are_deterministic_unit_vectors() -> None:
    async with FakeProvider(valid_keys={KEY}) as fake, client(fake) as api:
        result = await api.embeddings.create(
            model="fake/embed", input=["the cat sat", "the cat sat", "dogs bark"], dimensions=64
        )
    first, again, other = (d.embedding for d in result.data)
    assert first == again != other
    assert len(first) == 64
    assert abs(sum(v * v for v in first) - 1.0) < 1e-9


async def test_chunk_delay_spaces_the_stream() -> None:
    async with FakeProvider(valid_keys={KEY}, reply="a b c", chunk_delay=0.05) as fake:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with client(fake) as api:
            stream = await api.chat.completions.create(
                model="fake/echo", messages=[{"role": "user", "content": "x"}], stream=True
            )
            async for _ in stream:
                pass
        assert loop.time() - started >= 0.15


async def stream_lines(fake: FakeProvider) -> list[str]:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.base_url}/chat/completions",
            json={
                "model": "fake/echo",
                "messages": [{"role": "user", "content": "x"}],
                "stream": True,
            },
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert response.status_code == 200
    return [line for line in response.text.splitlines() if line.startswith("data: ")]


def finish_reasons(lines: list[str]) -> list[str]:
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines if line != "data: [DONE]"]
    return [c["finish_reason"] for chunk in chunks for c in chunk["choices"] if c["finish_reason"]]


async def test_a_cut_stream_ends_cleanly_without_finish_or_done() -> None:
    async with FakeProvider(valid_keys={KEY}, reply="a b c d e") as fake:
        fake.cut_after_chunks = 2
        lines = await stream_lines(fake)
    assert len(lines) == 3  # the role chunk, then two pieces
    assert finish_reasons(lines) == []
    assert "data: [DONE]" not in lines


async def test_omit_done_still_sends_the_finish_reason() -> None:
    async with FakeProvider(valid_keys={KEY}, reply="a b") as fake:
        fake.omit_done = True
        lines = await stream_lines(fake)
    assert finish_reasons(lines) == ["stop"]
    assert "data: [DONE]" not in lines


async def test_the_error_event_carries_the_chosen_code() -> None:
    async with FakeProvider(valid_keys={KEY}, reply="a b c") as fake:
        fake.error_after_chunks = 1
        fake.stream_error_code = 402
        lines = await stream_lines(fake)
    error = json.loads(lines[-1].removeprefix("data: "))["error"]
    assert error["code"] == 402


async def test_flag_next_answers_openrouters_moderation_403() -> None:
    """openrouter.ai/docs/errors: 403 "Your chosen model requires moderation and your input
    was flagged"; `error.code` is the status as a number, `metadata` has `reasons` and
    `flagged_input` (at most 100 characters, cut in the middle with "...")."""
    async with FakeProvider(valid_keys={KEY}) as fake, client(fake) as api:
        fake.flag_next(reasons=("harassment", "violence"), flagged_input="x" * 150)
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await api.chat.completions.create(
                model="fake/echo", messages=[{"role": "user", "content": "hi"}]
            )
        answer = await api.chat.completions.create(
            model="fake/echo", messages=[{"role": "user", "content": "hi"}]
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == 403
    assert body["message"] == "Your chosen model requires moderation and your input was flagged"
    metadata = body["metadata"]
    assert metadata["reasons"] == ["harassment", "violence"]
    assert len(metadata["flagged_input"]) == 100
    assert "..." in metadata["flagged_input"]
    assert answer.choices[0].message.content == "You said: hi"  # only the next call


async def test_ignore_stream_answers_one_json_body_to_a_stream_request() -> None:
    async with FakeProvider(valid_keys={KEY}, reply="all at once") as fake:
        fake.ignore_stream = True
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{fake.base_url}/chat/completions",
                json={
                    "model": "fake/echo",
                    "messages": [{"role": "user", "content": "x"}],
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
                headers={"Authorization": f"Bearer {KEY}"},
            )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "all at once"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("shape", ["openai", "openrouter"])
async def test_a_prompt_over_the_context_limit_is_refused_as_the_vendor_does(
    shape: str,
) -> None:
    async with FakeProvider(valid_keys={KEY}) as fake, client(fake) as api:
        fake.context_limit, fake.context_error_shape = 10, shape
        await api.chat.completions.create(  # within the window: answered
            model="fake/echo", messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.BadRequestError) as caught:
            await api.chat.completions.create(
                model="fake/echo",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=64,  # the window holds the prompt and the answer's room
            )
    err = caught.value
    if shape == "openai":
        assert (err.code, err.type, err.param) == (
            "context_length_exceeded",
            "invalid_request_error",
            "messages",
        )
        assert "This model's maximum context length is 10 tokens." in err.message
    else:
        assert err.code == "400"  # OpenRouter's code is the status, a number
        assert "This endpoint's maximum context length is 10 tokens." in err.message
