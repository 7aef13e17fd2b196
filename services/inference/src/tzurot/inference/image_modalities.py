"""What an image model is asked to output on the chat endpoint, decided by what its provider
says the model outputs.

OpenRouter (https://openrouter.ai/docs/guides/overview/multimodal/image-generation): a model
that outputs text and images (Gemini) is asked `modalities: ["image", "text"]`, one that outputs
images only (Flux, Sourceful) `["image"]`; the image-only model refuses the other with a 404 ("No
endpoints found that support the requested output modalities: image, text"). Its model list
(https://openrouter.ai/docs/models, `GET /models?output_modalities=image`) gives each image
model's `architecture.output_modalities`. An answer is kept an hour per provider and model; a
model the list says nothing of is asked for both (the guide's first case, and what was always
sent), and a failed look-up is not kept: the next drawing asks again. An image-only model
asked for both all the same (its list unread) refuses with a 404 before drawing anything
(nothing billed): the drawing is asked again once for the image alone, and that is kept.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

IMAGE_AND_TEXT = ("image", "text")
IMAGE_ONLY = ("image",)
KEPT_SECONDS = 3600.0

LookUp = Callable[[], Awaitable[frozenset[str] | None]]
"""The model's output modalities from its provider's list: empty when the list says nothing
of it, None when the list could not be read."""


def chat_modalities(outputs: frozenset[str]) -> tuple[str, ...]:
    """`["image"]` for a model that outputs images and no text; else `["image", "text"]`."""
    if "image" in outputs and "text" not in outputs:
        return IMAGE_ONLY
    return IMAGE_AND_TEXT


class ChatModalities:
    """The modalities to ask each (provider, model) for, looked up once and kept a while."""

    def __init__(
        self,
        *,
        kept_seconds: float = KEPT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kept_seconds = kept_seconds
        self._clock = clock
        self._kept: dict[tuple[str, str, str], tuple[float, tuple[str, ...]]] = {}

    async def for_model(
        self, provider: str, base_url: str, model: str, look_up: LookUp
    ) -> tuple[str, ...]:
        key = (provider, base_url, model)
        kept = self._kept.get(key)
        if kept is not None and kept[0] > self._clock():
            return kept[1]
        outputs = await look_up()
        if outputs is None:  # the list could not be read: not kept
            return IMAGE_AND_TEXT
        modalities = chat_modalities(outputs)
        self._kept[key] = (self._clock() + self._kept_seconds, modalities)
        return modalities

    def remember(
        self, provider: str, base_url: str, model: str, modalities: tuple[str, ...]
    ) -> None:
        """What the model itself said it takes (its refusal of the others), kept as a look-up is."""
        self._kept[(provider, base_url, model)] = (self._clock() + self._kept_seconds, modalities)


def refuses_text_output(message: str) -> bool:
    """Whether a provider's 404 says the model cannot output what was asked with the image
    (OpenRouter's "No endpoints found that support the requested output modalities: image,
    text", for an image-only model)."""
    return "output modalities" in message.lower()
