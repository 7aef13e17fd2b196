"""The fake provider refuses malformed tool requests as OpenAI does, streams tool calls in
OpenAI's format (read back by the real `openai` SDK) or Gemini's (and refuses, as Gemini 3
does, a next round without their thought signatures), and draws images as OpenRouter and
OpenAI's images endpoint answer. The fake search engines refuse what theirs refuse."""

from __future__ import annotations

import json
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
        csv = await client.get(f"{searx.base_url}/search", params={"q": "x", "format": "csv"})
        assert csv.status_code == 403  # not among this instance's formats
        no_query = await client.get(f"{searx.base_url}/search", params={"format": "json"})
        assert (no_query.status_code, no_query.json()) == (400, {"error": "No query"})


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
        for _ in range(4):  # the refused ones above are not counted, as Brave counts
            assert (await get("good")).status_code == 200
        limited = await get("good")
        assert limited.status_code == 429
        assert limited.headers["X-RateLimit-Remaining"].startswith("0, ")  # second, month


async def gemini_round(fake: FakeProvider) -> list[dict[str, Any]]:
    """One streamed tool-call step of a Gemini model: the tool calls as they came."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake.base_url}/chat/completions",
            json={
                "model": "fake/echo",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [TOOL],
                "stream": True,
            },
            headers={"Authorization": f"Bearer {KEY}"},
        )
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: {")
    ]
    return [
        call for c in chunks for ch in c["choices"] for call in ch["delta"].get("tool_calls", [])
    ]


def gemini_history(calls: list[dict[str, Any]], *, then: str | None = None) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        *({"role": "tool", "tool_call_id": c["id"], "content": "r"} for c in calls),
    ]
    if then is not None:
        messages.append({"role": "user", "content": then})
    return {"messages": messages, "tools": [TOOL]}


async def test_gemini_streams_whole_calls_without_index_and_signs_the_first(
    fake: FakeProvider,
) -> None:
    fake.gemini_tool_models.add("fake/echo")
    fake.enqueue_tool_calls(ToolCallSpec("lookup", {"q": "Paris"}), ToolCallSpec("lookup", {}))
    first, second = await gemini_round(fake)
    assert "index" not in first
    assert "index" not in second
    assert first["id"] != second["id"]
    assert (first["function"]["arguments"], second["function"]["arguments"]) == (
        '{"q": "Paris"}',
        "{}",
    )
    assert first["extra_content"]["google"]["thought_signature"]
    assert "extra_content" not in second  # only the step's first call is signed


async def test_gemini_refuses_a_next_round_without_the_thought_signature(
    fake: FakeProvider,
) -> None:
    """Gemini 3: 400 INVALID_ARGUMENT (a list-shaped body) when the current turn's step
    does not echo its signature; a made-up one is refused too; the echoed one passes."""
    fake.gemini_tool_models.add("fake/echo")
    fake.enqueue_tool_calls(ToolCallSpec("lookup", {"q": "Paris"}))
    (signed,) = await gemini_round(fake)
    unsigned = {k: v for k, v in signed.items() if k != "extra_content"}
    refused = await chat(fake, **gemini_history([unsigned]))
    assert refused.status_code == 400
    (error,) = refused.json()
    assert error["error"]["status"] == "INVALID_ARGUMENT"
    assert "missing a thought_signature" in error["error"]["message"]
    forged = {**signed, "extra_content": {"google": {"thought_signature": "bm90IGlzc3VlZA=="}}}
    assert (await chat(fake, **gemini_history([forged]))).status_code == 400
    assert (await chat(fake, **gemini_history([signed]))).status_code == 200
    # A past turn (before the last user message) is not checked.
    assert (await chat(fake, **gemini_history([unsigned], then="and?"))).status_code == 200
    fake.gemini_tool_models.clear()  # other models never ask for signatures
    assert (await chat(fake, **gemini_history([unsigned]))).status_code == 200


async def test_openrouter_routing_to_hosts_without_tools_is_its_404(fake: FakeProvider) -> None:
    fake.no_tool_hosts.add("TinyHost")
    refused = await chat(fake, tools=[TOOL], provider={"only": ["TinyHost"]})
    assert refused.status_code == 404
    assert "support tool use" in refused.json()["error"]["message"]
    assert (
        await chat(fake, tools=[TOOL], provider={"only": ["TinyHost", "Big"]})
    ).status_code == 200
    assert (await chat(fake, tools=[TOOL])).status_code == 200
    assert (await chat(fake, provider={"only": ["TinyHost"]})).status_code == 200
