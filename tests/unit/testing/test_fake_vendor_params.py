"""The fake provider refuses, as the vendors do, what a model does not take (review H2, M1,
M2): OpenAI's images endpoint per model (sizes, `n`, `response_format`, URL or base64),
OpenAI's reasoning models (`max_tokens`, sampling, `stop`) and Gemini 2.5's thinking budgets
outside each model's range; and accepts what the vendors accept. Read by the real `openai`
SDK where Tzurot uses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tzurot.testing.fake_provider import FakeProvider

KEY = "sk-test-valid"
IMAGE_MODELS = {"gpt-image-1", "dall-e-2", "dall-e-3"}
CHAT_MODELS = (
    "o1",
    "o3",
    "o3-mini",
    "o4-mini",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-chat-latest",
    "gpt-4o",
    "openai/o3",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(models=CHAT_MODELS) as provider:
        provider.image_models = set(IMAGE_MODELS)
        yield provider


@pytest.fixture
async def client(fake: FakeProvider) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0) as sdk:
        yield sdk


async def post(fake: FakeProvider, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{fake.base_url}{path}", json=body, headers={"Authorization": f"Bearer {KEY}"}
        )


# -- images -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "extra", "message", "code"),
    [
        ("dall-e-3", {"n": 2}, "You must provide n=1 for this model.", None),
        ("dall-e-3", {"size": "1024x1536"}, "The size is not supported by this model.", None),
        ("dall-e-3", {"size": "512x512"}, "The size is not supported by this model.", None),
        ("dall-e-2", {"size": "1536x1024"}, "The size is not supported by this model.", None),
        ("dall-e-2", {"size": "1792x1024"}, "The size is not supported by this model.", None),
        ("gpt-image-1", {"size": "256x256"}, "The size is not supported by this model.", None),
        ("gpt-image-1", {"size": "1792x1024"}, "The size is not supported by this model.", None),
        (
            "gpt-image-1",
            {"response_format": "b64_json"},
            "Unknown parameter: 'response_format'.",
            "unknown_parameter",
        ),
        ("gpt-image-1", {"response_format": "url"}, "Unknown parameter: 'response_format'.", None),
        ("dall-e-2", {"n": 11}, "Invalid 'n': expected an integer between 1 and 10.", None),
    ],
)
async def test_the_images_endpoint_refuses_what_the_model_does_not_take(
    fake: FakeProvider, model: str, extra: dict[str, Any], message: str, code: str | None
) -> None:
    response = await post(
        fake, "/images/generations", {"model": model, "prompt": "a lighthouse", **extra}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["message"], error["type"]) == (message, "invalid_request_error")
    if code is not None:
        assert error["code"] == code
    if "size" in extra:
        assert error["code"] == "invalid_size"


@pytest.mark.parametrize(
    ("model", "size", "n"),
    [
        ("dall-e-3", "1792x1024", 1),
        ("dall-e-3", "1024x1792", 1),
        ("dall-e-2", "256x256", 10),
        ("gpt-image-1", "1536x1024", 4),
        ("gpt-image-1", "auto", 1),
    ],
)
async def test_the_images_endpoint_draws_what_the_model_takes(
    client: openai.AsyncOpenAI, model: str, size: str, n: int
) -> None:
    dall_e = model.startswith("dall-e")
    extra: dict[str, Any] = {"response_format": "b64_json"} if dall_e else {}
    result = await client.images.generate(model=model, prompt="a cat", size=size, n=n, **extra)
    assert result.data is not None
    assert len(result.data) == n
    assert all(image.b64_json and not image.url for image in result.data)


async def test_dall_e_answers_a_url_unless_asked_for_base64(client: openai.AsyncOpenAI) -> None:
    for model in ("dall-e-2", "dall-e-3"):
        default = await client.images.generate(model=model, prompt="a cat")
        asked = await client.images.generate(model=model, prompt="a cat", response_format="url")
        for result in (default, asked):
            assert result.data is not None
            (image,) = result.data
            assert image.url is not None
            assert image.url.startswith("https://")
            assert image.b64_json is None


async def test_gpt_image_answers_base64_without_being_asked(client: openai.AsyncOpenAI) -> None:
    result = await client.images.generate(model="gpt-image-1", prompt="a cat")
    assert result.data is not None
    (image,) = result.data
    assert image.b64_json
    assert image.url is None


# -- OpenAI reasoning models --------------------------------------------------------------


def chat_body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.mark.parametrize("model", ["o1", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini"])
async def test_a_reasoning_model_refuses_max_tokens(client: openai.AsyncOpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=100
        )
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "max_tokens"
    assert caught.value.message.endswith(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
        "'max_completion_tokens' instead."
    )
    answer = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_completion_tokens=100
    )
    assert answer.choices[0].message.content


@pytest.mark.parametrize(
    ("model", "extra", "param", "code"),
    [
        ("o1", {"temperature": 0.7}, "temperature", "unsupported_value"),
        ("o3", {"temperature": 0}, "temperature", "unsupported_value"),
        ("gpt-5", {"temperature": 0.2}, "temperature", "unsupported_value"),
        ("gpt-5-mini", {"top_p": 0.9}, "top_p", "unsupported_parameter"),
        ("gpt-5", {"stop": ["\n"]}, "stop", "unsupported_parameter"),
    ],
)
async def test_a_reasoning_model_refuses_sampling(
    fake: FakeProvider, model: str, extra: dict[str, Any], param: str, code: str
) -> None:
    response = await post(fake, "/chat/completions", chat_body(model, **extra))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("o3", {"temperature": 1, "top_p": 1, "max_completion_tokens": 50}),
        ("gpt-5-chat-latest", {"temperature": 0.3, "max_tokens": 50}),  # not a reasoning model
        ("gpt-4o", {"temperature": 0.3, "max_tokens": 50, "stop": ["x"]}),
        ("openai/o3", {"temperature": 0.3, "max_tokens": 50}),  # OpenRouter translates
    ],
)
async def test_what_openai_accepts_is_answered(
    fake: FakeProvider, model: str, extra: dict[str, Any]
) -> None:
    response = await post(fake, "/chat/completions", chat_body(model, **extra))
    assert response.status_code == 200, response.text


# -- Gemini 2.5 thinking budgets ----------------------------------------------------------


def thinking(budget: object) -> dict[str, Any]:
    return {"extra_body": {"google": {"thinking_config": {"thinking_budget": budget}}}}


@pytest.mark.parametrize(
    ("model", "budget", "message"),
    [
        ("gemini-2.5-pro", 0, "Budget 0 is invalid. This model only works in thinking mode."),
        (
            "gemini-2.5-pro",
            64,
            "The thinking budget 64 is invalid. Please choose a value between 128 and 32768.",
        ),
        (
            "gemini-2.5-pro",
            32769,
            "The thinking budget 32769 is invalid. Please choose a value between 128 and 32768.",
        ),
        (
            "gemini-2.5-flash",
            32768,
            "The thinking budget 32768 is invalid. Please choose a value between 1 and 24576.",
        ),
        (
            "gemini-2.5-flash-lite",
            256,
            "The thinking budget 256 is invalid. Please choose a value between 512 and 24576.",
        ),
    ],
)
async def test_gemini_refuses_a_budget_outside_the_models_range(
    fake: FakeProvider, model: str, budget: int, message: str
) -> None:
    response = await post(fake, "/chat/completions", chat_body(model, **thinking(budget)))
    assert response.status_code == 400
    assert response.json() == [
        {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    ]


@pytest.mark.parametrize(
    ("model", "budget"),
    [
        ("gemini-2.5-pro", 128),
        ("gemini-2.5-pro", 32768),
        ("gemini-2.5-pro", -1),
        ("gemini-2.5-flash", 0),
        ("gemini-2.5-flash", 24576),
        ("gemini-2.5-flash-lite", 0),
        ("gemini-2.5-flash-lite", 512),
        ("gemini-2.5-flash-lite", -1),
    ],
)
async def test_gemini_accepts_a_budget_within_the_models_range(
    fake: FakeProvider, model: str, budget: int
) -> None:
    response = await post(fake, "/chat/completions", chat_body(model, **thinking(budget)))
    assert response.status_code == 200, response.text
