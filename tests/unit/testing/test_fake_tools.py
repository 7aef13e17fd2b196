"""The fake provider refuses malformed tool requests as OpenAI does, streams tool calls in
OpenAI's format (read back by the real `openai` SDK), and draws images as OpenRouter and
OpenAI's images endpoint answer. The fake search engines refuse what theirs refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx2 as httpx
import openai
import pytest

from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.testing.fake_web import FakeBrave, FakeSearxng

KEY = "sk-test-valid"
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(models=("fake/echo", "fake/draw")) as provider:
        yield provider


async def chat(fake: FakeProvider, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{fake.base_url}/chat/completions",
            json={"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}], **body},
            headers={"Authorization": f"Bearer {KEY}"},
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tool_choice": "auto"}, "only allowed when 'tools' are specified"),
        ({"parallel_tool_calls": True}, "only allowed when 'tools' are specified"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "does not match"),
        ({"tools": [{"type": "retrieval"}]}, "expected 'function'"),
        ({"tools": [TOOL] * 129}, "maximum length 128"),
        ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "no function named 'x'",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "c1", "content": "r"}]},
            "must be a response to a preceeding message with 'tool_calls'",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "user", "content": "and?"},
                ]
            },
            "did not have response messages: c1",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": {}},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": "r"},
                ]
            },
            "expected a string",
        ),
    ],
)
async def test_malformed_tool_requests_are_refused_like_openai(
    fake: FakeProvider, body: dict[str, Any], message: str
) -> None:
    response = await chat(fake, **body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


async def test_streamed_tool_calls_read_back_through_the_sdk(fake: FakeProvider) -> None:
    fake.enqueue_tool_calls(ToolCallSpec("lookup", {"q": "moon"}), ToolCallSpec("lookup", {}))
    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    finish = None
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="fake/echo",
            messages=[{"role": "user", "content": "hi"}],
            tools=[cast(Any, TOOL)],  # a plain dict is what goes on the wire
            stream=True,
        )
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    for call in choice.delta.tool_calls or []:
                        function = call.function
                        if function and function.name:
                            names[call.index] = function.name
                        if function and function.arguments:
                            before = arguments.get(call.index, "")
                            arguments[call.index] = before + function.arguments
                    finish = choice.finish_reason or finish
    assert names == {0: "lookup", 1: "lookup"}
    assert arguments == {0: '{"q": "moon"}', 1: "{}"}
    assert finish == "tool_calls"


async def test_tool_choice_none_gets_text_even_from_a_model_that_keeps_calling(
    fake: FakeProvider,
) -> None:
    fake.keep_calling = ToolCallSpec("lookup")
    fake.reply = "Text only."
    called = (await chat(fake, tools=[TOOL])).json()
    assert called["choices"][0]["finish_reason"] == "tool_calls"
    forced = (await chat(fake, tools=[TOOL], tool_choice="none")).json()
    assert forced["choices"][0]["message"]["content"] == "Text only."


async def test_a_model_without_tools_refuses_them_with_openrouters_404(fake: FakeProvider) -> None:
    fake.no_tool_models.add("fake/echo")
    response = await chat(fake, tools=[TOOL])
    assert response.status_code == 404
    assert "support tool use" in response.json()["error"]["message"]
    assert (await chat(fake)).status_code == 200


async def test_image_output_only_from_image_models(fake: FakeProvider) -> None:
    refused = await chat(fake, modalities=["image", "text"])
    assert refused.status_code == 404
    fake.image_models.add("fake/echo")
    answer = (await chat(fake, modalities=["image", "text"])).json()
    (image,) = answer["choices"][0]["message"]["images"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"prompt": ""}, 400),
        ({"prompt": "cat", "n": 11}, 400),
        ({"prompt": "cat", "size": "999x999"}, 400),
        ({"prompt": "cat", "model": "fake/none"}, 404),
    ],
)
async def test_the_images_endpoint_validates_like_openai(
    fake: FakeProvider, body: dict[str, Any], status: int
) -> None:
    fake.image_models.add("fake/draw")
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake.base_url}/images/generations",
            json={"model": "fake/draw", **body},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert response.status_code == status


async def test_searxng_without_json_format_answers_403() -> None:
    async with FakeSearxng(json_enabled=False) as searx, httpx.AsyncClient() as client:
        response = await client.get(f"{searx.base_url}/search", params={"q": "x", "format": "json"})
        assert response.status_code == 403
        searx.json_enabled = True
        assert (await client.get(f"{searx.base_url}/search", params={"q": "x"})).status_code == 403
        assert (
            await client.get(f"{searx.base_url}/search", params={"format": "json"})
        ).status_code == 400


async def test_searxng_answers_a_query_with_the_results_added_for_it() -> None:
    async with FakeSearxng() as searx, httpx.AsyncClient() as client:
        searx.add_result("General", "http://example.test/general", "For anything.")
        searx.add_result("Terns", "http://example.test/terns", "Arctic terns.", for_query="terns")

        async def titles(query: str) -> list[str]:
            response = await client.get(
                f"{searx.base_url}/search", params={"q": query, "format": "json"}
            )
            return [r["title"] for r in response.json()["results"]]

        assert await titles("terns") == ["Terns"]
        assert await titles("anything else") == ["General"]


async def test_brave_refuses_bad_tokens_counts_and_rates() -> None:
    async with FakeBrave({"good"}, per_second=4) as brave, httpx.AsyncClient() as client:
        url = f"{brave.base_url}/web/search"

        async def get(token: str, **params: Any) -> httpx.Response:
            return await client.get(
                url, params={"q": "x", **params}, headers={"X-Subscription-Token": token}
            )

        bad = await get("wrong")
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "SUBSCRIPTION_TOKEN_INVALID")
        assert (await get("good", count=21)).status_code == 422
        assert (await get("good", q="w " * 51)).status_code == 422
        assert (await get("good")).status_code == 200
        assert (await get("good")).status_code == 200  # the fourth request within a second
        limited = await get("good")
        assert limited.status_code == 429
        assert limited.headers["X-RateLimit-Remaining"] == "0"
