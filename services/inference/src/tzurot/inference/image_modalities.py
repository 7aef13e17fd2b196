"""What an image model is asked to output on the chat endpoint, decided by what its provider
says the model outputs.

OpenRouter (https://openrouter.ai/docs/guides/overview/multimodal/image-generation): a model
that outputs text and images (Gemini) is asked `modalities: ["image", "text"]`, one that outputs
images only (Flux, Sourceful) `["image"]`; the image-only model refuses the other with a 404 ("No
endpoints found that support the requested output modalities: image, text"). Its model list
(https://openrouter.ai/docs/models, `GET /models?output_modalities=image`) gives each image
model's `architecture.output_modalities`. The list is read once per provider (base URL) at a
time: drawings that need it meanwhile (a `count` of 2, or several users at once) wait for that
one read. What it says is kept an hour; a list that could not be read is kept so a minute
(`FAILURE_KEPT_SECONDS`), drawings meanwhile asking for both at once instead of each waiting on
a provider that does not answer (up to 15 s). A model the list says nothing of is asked for
both (the guide's first case, and what was always sent). An image-only model asked for both
all the same (its list unread) refuses with a 404 before drawing anything (nothing billed): the
drawing is asked again once for the image alone, and when that refusal said the model cannot
output text with the image and the image alone was then drawn, that is kept an hour for the
model (`remember`), for every user; any other 404 is kept for no one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

IMAGE_AND_TEXT = ("image", "text")
IMAGE_ONLY = ("image",)
KEPT_SECONDS = 3600.0
FAILURE_KEPT_SECONDS = 60.0
"""How long a model list that could not be read is not asked for again."""

LookUp = Callable[[], Awaitable[Mapping[str, frozenset[str]] | None]]
"""The provider's model list as each listed model's output modalities, by model id; None when
the list could not be read."""

_OUTPUT_REFUSAL = re.compile(
    r"no endpoints found that support the requested output modalities:(?P<asked>[^.\n]*)",
    re.IGNORECASE,
)
"""OpenRouter's 404 for output modalities no endpoint of the model gives, naming those asked."""


def chat_modalities(outputs: frozenset[str]) -> tuple[str, ...]:
    """`["image"]` for a model that outputs images and no text; else `["image", "text"]`."""
    if "image" in outputs and "text" not in outputs:
        return IMAGE_ONLY
    return IMAGE_AND_TEXT


@dataclass(frozen=True, slots=True)
class _Listed:
    until: float
    image_only: frozenset[str] | None
    """The listed models asked for the image alone; None when the list could not be read."""


class ChatModalities:
    """The modalities to ask each (provider, model) for, from one model list read per provider
    at a time and kept a while."""

    def __init__(
        self,
        *,
        kept_seconds: float = KEPT_SECONDS,
        failure_kept_seconds: float = FAILURE_KEPT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kept_seconds = kept_seconds
        self._failure_kept_seconds = failure_kept_seconds
        self._clock = clock
        self._lists: dict[tuple[str, str], _Listed] = {}
        self._reading: dict[tuple[str, str], asyncio.Future[_Listed]] = {}
        self._told: dict[tuple[str, str, str], tuple[float, tuple[str, ...]]] = {}

    async def for_model(
        self, provider: str, base_url: str, model: str, look_up: LookUp
    ) -> tuple[str, ...]:
        told = self._told.get((provider, base_url, model))
        if told is not None and told[0] > self._clock():
            return told[1]
        listed = await self._listed((provider, base_url), look_up)
        if listed.image_only is not None and model in listed.image_only:
            return IMAGE_ONLY
        return IMAGE_AND_TEXT

    def remember(
        self, provider: str, base_url: str, model: str, modalities: tuple[str, ...]
    ) -> None:
        """What the model itself said it takes (its refusal of the others), kept as a list is;
        it comes before what the list says."""
        now = self._clock()
        self._told = {key: told for key, told in self._told.items() if told[0] > now}
        self._told[(provider, base_url, model)] = (now + self._kept_seconds, modalities)

    async def _listed(self, key: tuple[str, str], look_up: LookUp) -> _Listed:
        """The provider's list as kept, else as read by the one read under way (started here
        when there is none). A caller that stops waiting leaves the read to the others."""
        kept = self._lists.get(key)
        if kept is not None and kept.until > self._clock():
            return kept
        reading = self._reading.get(key)
        if reading is None or reading.done():
            reading = asyncio.ensure_future(self._read(key, look_up))
            self._reading[key] = reading
            reading.add_done_callback(lambda done: self._read_over(key, done))
        return await asyncio.shield(reading)

    async def _read(self, key: tuple[str, str], look_up: LookUp) -> _Listed:
        outputs = await look_up()
        if outputs is None:
            listed = _Listed(self._clock() + self._failure_kept_seconds, None)
        else:
            image_only = frozenset(
                model for model, out in outputs.items() if chat_modalities(out) == IMAGE_ONLY
            )
            listed = _Listed(self._clock() + self._kept_seconds, image_only)
        self._lists[key] = listed
        return listed

    def _read_over(self, key: tuple[str, str], done: asyncio.Future[_Listed]) -> None:
        if self._reading.get(key) is done:
            del self._reading[key]


def refuses_text_output(message: str) -> bool:
    """Whether a provider's 404 may say the model cannot output what was asked with the image
    (OpenRouter's "No endpoints found that support the requested output modalities: image,
    text", for an image-only model): reason enough to ask that drawing again for the image
    alone, not to keep that for the model (`says_text_output_refused`)."""
    return "output modalities" in message.lower()


def says_text_output_refused(body: object) -> bool:
    """Whether a 404's body (`{"message": ...}`, or the same under `"error"`) is OpenRouter's
    refusal of the output modalities asked, text among them: the model gives no text with its
    image. Not a model that is not there, nor a user's data policy or guardrails ("No endpoints
    found matching your data policy"), which hold for that user alone."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else None
    found = _OUTPUT_REFUSAL.search(message) if isinstance(message, str) else None
    if found is None:
        return False
    asked = {part.strip().lower() for part in found.group("asked").split(",")}
    return "text" in asked
