"""The fake's image models on chat completions and in the model list, from OpenRouter's docs.

https://openrouter.ai/docs/guides/overview/multimodal/image-generation: a model whose output
modalities are image and text (Gemini) is asked `modalities: ["image", "text"]`, one whose
output is image only (Flux, Sourceful) `modalities: ["image"]`. A request for a modality no
endpoint of the model outputs is OpenRouter's 404 "No endpoints found that support the
requested output modalities: image, text" (its words, numeric `code`, as users report them:
github.com/BerriAI/litellm/pull/34908, github.com/HKUDS/DeepTutor/issues/1348); a request
without `modalities` asks for text. `image_config.aspect_ratio` takes the documented ratios
(`ASPECT_RATIOS`), the extended 1:4, 4:1, 1:8 and 8:1 only on
google/gemini-3.1-flash-image-preview. OpenRouter documents that list, not the words of a
refusal: the fake's 400 is OpenRouter's error shape with its own message.

The model list (https://openrouter.ai/docs/models) gives each model's
`architecture.output_modalities` and filters by `?output_modalities=`: text models by default,
a comma-separated list (models that output every one named), or "all".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

ASPECT_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
"""`image_config.aspect_ratio` as OpenRouter's image generation guide lists it."""
EXTENDED_ASPECT_RATIOS = frozenset({"1:4", "4:1", "1:8", "8:1"})
EXTENDED_RATIO_MODELS = frozenset({"google/gemini-3.1-flash-image-preview"})
"""The only models the guide gives the extended ratios."""
TEXT_ONLY = ("text",)


def output_modalities(
    model: str, image_models: Iterable[str], image_only_models: Iterable[str]
) -> list[str]:
    """What the model outputs: image only, image and text, or text."""
    if model in set(image_only_models):
        return ["image"]
    if model in set(image_models):
        return ["image", "text"]
    return list(TEXT_ONLY)


def _openrouter_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message}}, status=status)


def chat_output_refusal(body: dict[str, Any], outputs: list[str]) -> web.Response | None:
    """OpenRouter's 404 when the request asks for a modality the model does not output."""
    asked = body.get("modalities") or list(TEXT_ONLY)
    if all(modality in outputs for modality in asked):
        return None
    named = ", ".join(str(m) for m in asked)
    return _openrouter_error(
        404, f"No endpoints found that support the requested output modalities: {named}"
    )


def image_config_refusal(body: dict[str, Any], model: str) -> web.Response | None:
    """A 400 for an `image_config` that is not an object or an `aspect_ratio` off the
    documented list (the extended ratios only on the models given them)."""
    config = body.get("image_config")
    if config is None:
        return None
    if not isinstance(config, dict):
        return _openrouter_error(400, "image_config must be an object")
    ratio = config.get("aspect_ratio")
    if ratio is None or ratio in ASPECT_RATIOS:
        return None
    if ratio in EXTENDED_ASPECT_RATIOS and model in EXTENDED_RATIO_MODELS:
        return None
    allowed = ", ".join(sorted(ASPECT_RATIOS))
    return _openrouter_error(
        400, f"image_config.aspect_ratio {ratio!r} is not supported; use one of {allowed}"
    )


def model_entry(model: str, outputs: list[str]) -> dict[str, Any]:
    """One model of the list, with its architecture as OpenRouter describes it."""
    return {
        "id": model,
        "object": "model",
        "created": 0,
        "owned_by": "fake",
        "architecture": {
            "modality": f"text->{'+'.join(outputs)}",
            "input_modalities": ["text"],
            "output_modalities": outputs,
        },
    }


def listed_models(
    catalogue: Iterable[tuple[str, list[str]]], output_filter: str | None
) -> list[dict[str, Any]]:
    """The models (id, outputs) `?output_modalities=` asks for: text by default, "all", or
    those outputting every modality named."""
    wanted = set((output_filter or "text").split(","))
    return [
        model_entry(model, outputs)
        for model, outputs in catalogue
        if "all" in wanted or wanted <= set(outputs)
    ]
