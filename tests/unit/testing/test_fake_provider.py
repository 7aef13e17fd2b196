"""The fake provider speaks the OpenAI protocol well enough for the real `openai` client."""

import asyncio

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
