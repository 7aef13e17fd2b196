"""Images from a provider: through chat completions (an image-output model, its output
modalities as the provider's model list says) or an OpenAI-compatible `/images/generations`,
with the tokens each answer says it billed."""

from __future__ import annotations

from typing import Any

import openai
from pydantic import SecretStr

from tzurot.inference.domain import ImageAnswer, TokenUsage
from tzurot.inference.image_modalities import (
    IMAGE_ONLY,
    ChatModalities,
    refuses_text_output,
    says_text_output_refused,
)
from tzurot.inference.provider_errors import provider_error
from tzurot.inference.providers import Provider
from tzurot.inference.sdk_clients import ProviderClients, auth_headers


class ImageCalls(ProviderClients):
    """The image calls of `LlmClient`."""

    _image_modalities: ChatModalities

    async def chat_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str | None,
    ) -> ImageAnswer:
        """Image URLs (usually data URLs) from an image-output model through chat
        completions (OpenRouter's image generation, openrouter.ai/docs/guides/overview/
        multimodal/image-generation), `image_config.aspect_ratio` when one is given, with the
        tokens the answer says it billed (the image model's own bill, reported under its name).
        `modalities` as the provider's model list says the model outputs (`["image"]` for an
        image-only model, which refuses `["image", "text"]`; read once an hour and once at a
        time per provider, `image_modalities.py`), as `_b64_format` asks each DALL-E model its
        own way."""
        modalities = await self._image_modalities.for_model(
            provider.name,
            provider.base_url,
            model,
            lambda: self._listed_image_outputs(provider, api_key),
        )
        client = self._client(provider)
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "modalities": list(modalities),
            "stream": False,
        }
        if aspect_ratio is not None:
            body["image_config"] = {"aspect_ratio": aspect_ratio}
        try:
            try:
                answer = await client.post(
                    "/chat/completions",
                    cast_to=object,
                    body=body,
                    options={"headers": auth_headers(api_key)},
                )
            except openai.NotFoundError as exc:
                # An image-only model asked for text too (its list unread): refused before
                # drawing, nothing billed; asked once more for the image alone. Kept for every
                # user only when the refusal was of the text and the image alone was drawn.
                if modalities == IMAGE_ONLY or not refuses_text_output(str(exc)):
                    raise
                answer = await client.post(
                    "/chat/completions",
                    cast_to=object,
                    body={**body, "modalities": list(IMAGE_ONLY)},
                    options={"headers": auth_headers(api_key)},
                )
                if says_text_output_refused(exc.body):
                    self._image_modalities.remember(
                        provider.name, provider.base_url, model, IMAGE_ONLY
                    )
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name, model=model) from None
        return ImageAnswer(tuple(_image_urls(answer)), _answer_usage(answer))

    async def _listed_image_outputs(
        self, provider: Provider, api_key: SecretStr
    ) -> dict[str, frozenset[str]] | None:
        """Each listed model's `architecture.output_modalities` from the provider's image model
        list (OpenRouter's `GET /models?output_modalities=image`, openrouter.ai/docs/models),
        by model id; None when the list could not be read (within 15 s, or not JSON: the drawing
        goes ahead without it)."""
        client = self._client(provider, quick=True)
        try:
            answer = await client.get(
                "/models",
                cast_to=object,
                options={
                    "headers": auth_headers(api_key),
                    "params": {"output_modalities": "image"},
                },
            )
        except (openai.OpenAIError, ValueError):  # ValueError: a body that is not JSON
            return None
        return _listed_outputs(answer)

    async def generate_images(  # the endpoint's own parameters
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        count: int,
        size: str,
    ) -> ImageAnswer:
        """Base64 images (or URLs) from an OpenAI-compatible `/images/generations`, with the
        tokens its `usage` says were billed (gpt-image-1; zero when it says nothing). `count`
        and `size` must be ones the model takes (the caller keeps `image_model_rules`: dall-e-3
        draws one image per request, each model has its own sizes); OpenAI refuses others with
        a 400. DALL-E answers with a URL unless asked for `b64_json` (`_b64_format`); the GPT
        image models always answer in base64 and refuse the parameter (400 "Unknown parameter:
        'response_format'.", code `unknown_parameter`)."""
        client = self._client(provider)
        try:
            result = await client.images.generate(
                model=model,
                prompt=prompt,
                n=count,
                size=size,
                extra_headers=auth_headers(api_key),
                **_b64_format(model),
            )
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name, model=model) from None
        images: list[str] = []
        for image in result.data or []:
            if image.b64_json:
                images.append("data:image/png;base64," + image.b64_json)
            elif image.url:
                images.append(image.url)
        usage = result.usage  # the SDK does not validate: a field may be missing
        return ImageAnswer(
            tuple(images),
            TokenUsage(
                _whole(getattr(usage, "input_tokens", 0)),
                _whole(getattr(usage, "output_tokens", 0)),
            ),
        )


def _whole(value: object) -> int:
    """A count the provider reported, or 0 when it is not a non-negative number."""
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


def _answer_usage(answer: object) -> TokenUsage:
    """The `usage` of a non-streamed chat completion (zero when it has none)."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return TokenUsage(0, 0)
    return TokenUsage(_whole(usage.get("prompt_tokens")), _whole(usage.get("completion_tokens")))


def _listed_outputs(answer: object) -> dict[str, frozenset[str]]:
    """`architecture.output_modalities` of each model in a model list, by id (the first entry
    of an id that gives them)."""
    listed = answer.get("data") if isinstance(answer, dict) else None
    found: dict[str, frozenset[str]] = {}
    for entry in listed if isinstance(listed, list) else []:
        model = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(model, str) or model in found:
            continue
        architecture = entry.get("architecture")
        outputs = architecture.get("output_modalities") if isinstance(architecture, dict) else None
        if isinstance(outputs, list):
            found[model] = frozenset(o for o in outputs if isinstance(o, str))
    return found


def _image_urls(answer: object) -> list[str]:
    """`choices[0].message.images[].image_url.url` of an OpenRouter image answer."""
    if not isinstance(answer, dict):
        return []
    urls: list[str] = []
    for choice in (answer.get("choices") or [])[:1]:
        message = choice.get("message") if isinstance(choice, dict) else None
        for image in (message or {}).get("images") or []:
            url = (image.get("image_url") or {}).get("url") if isinstance(image, dict) else None
            if isinstance(url, str) and url:
                urls.append(url)
    return urls


def _b64_format(model: str) -> dict[str, Any]:
    """`response_format="b64_json"` for DALL-E 2 and 3 (whose default is a URL valid for an
    hour, fetched again and paid for in vain when it cannot be); nothing for other models:
    the GPT image models always answer in base64 and refuse the parameter."""
    if model.rsplit("/", 1)[-1].lower().startswith("dall-e"):
        return {"response_format": "b64_json"}
    return {}
