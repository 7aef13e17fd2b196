"""The image model list behind `modalities` (image_modalities.ChatModalities) is read once per
provider at a time and kept: a read that failed is kept FAILURE_KEPT_SECONDS (drawings meanwhile
ask for both at once, without waiting on a provider that does not answer), drawings that need
the list while it is being read wait for that one read (a `count` of 2 on a cold cache, several
users at once), and a caller that stops waiting leaves the read to the others. What OpenRouter's
404 says of the text asked with an image is told apart from other 404s."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from tzurot.inference.image_modalities import (
    FAILURE_KEPT_SECONDS,
    IMAGE_AND_TEXT,
    IMAGE_ONLY,
    ChatModalities,
    says_text_output_refused,
)

FLUX = "black-forest-labs/flux.2-pro"
GEMINI = "google/gemini-2.5-flash-image"
LISTED: Mapping[str, frozenset[str]] = {
    FLUX: frozenset({"image"}),
    GEMINI: frozenset({"image", "text"}),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ModelList:
    """A provider's model list: counts its reads; each read waits for `opened` when given one,
    then answers `answer` (None: could not be read)."""

    def __init__(self, answer: Mapping[str, frozenset[str]] | None = LISTED) -> None:
        self.answer = answer
        self.reads = 0
        self.opened: asyncio.Event | None = None

    async def __call__(self) -> Mapping[str, frozenset[str]] | None:
        self.reads += 1
        if self.opened is not None:
            await self.opened.wait()
        return self.answer


async def test_a_failed_read_is_kept_a_minute_then_read_again() -> None:
    clock = Clock()
    kept = ChatModalities(clock=clock)
    listing = ModelList(answer=None)
    assert await kept.for_model("openrouter", "u", FLUX, listing) == IMAGE_AND_TEXT
    clock.now += FAILURE_KEPT_SECONDS - 1
    assert await kept.for_model("openrouter", "u", FLUX, listing) == IMAGE_AND_TEXT
    assert await kept.for_model("openrouter", "u", GEMINI, listing) == IMAGE_AND_TEXT
    assert listing.reads == 1  # the drawings meanwhile did not wait on the list
    listing.answer = LISTED
    clock.now += 2
    assert await kept.for_model("openrouter", "u", FLUX, listing) == IMAGE_ONLY
    assert listing.reads == 2


async def test_a_read_list_is_kept_an_hour_for_every_model_of_the_provider() -> None:
    clock = Clock()
    kept = ChatModalities(clock=clock)
    listing = ModelList()
    assert await kept.for_model("openrouter", "u", FLUX, listing) == IMAGE_ONLY
    clock.now += 3599
    assert await kept.for_model("openrouter", "u", GEMINI, listing) == IMAGE_AND_TEXT
    assert await kept.for_model("openrouter", "u", "unlisted/model", listing) == IMAGE_AND_TEXT
    assert listing.reads == 1


async def test_drawings_at_once_wait_for_one_read() -> None:
    kept = ChatModalities(clock=Clock())
    listing = ModelList()
    listing.opened = asyncio.Event()
    asked = [
        asyncio.ensure_future(kept.for_model("openrouter", "u", model, listing))
        for model in (FLUX, FLUX, GEMINI)
    ]
    await asyncio.sleep(0)  # every drawing is now waiting on the list
    await asyncio.sleep(0)
    listing.opened.set()
    assert await asyncio.gather(*asked) == [IMAGE_ONLY, IMAGE_ONLY, IMAGE_AND_TEXT]
    assert listing.reads == 1


async def test_drawings_at_once_share_a_failed_read_too() -> None:
    kept = ChatModalities(clock=Clock())
    listing = ModelList(answer=None)
    listing.opened = asyncio.Event()
    asked = [
        asyncio.ensure_future(kept.for_model("openrouter", "u", FLUX, listing)) for _ in range(2)
    ]
    await asyncio.sleep(0)
    listing.opened.set()
    assert await asyncio.gather(*asked) == [IMAGE_AND_TEXT, IMAGE_AND_TEXT]
    assert listing.reads == 1


async def test_each_provider_base_url_has_its_own_read() -> None:
    kept = ChatModalities(clock=Clock())
    listing = ModelList()
    listing.opened = asyncio.Event()
    asked = [
        asyncio.ensure_future(kept.for_model("openrouter", url, FLUX, listing))
        for url in ("https://a.example/v1", "https://b.example/v1")
    ]
    await asyncio.sleep(0)
    listing.opened.set()
    assert await asyncio.gather(*asked) == [IMAGE_ONLY, IMAGE_ONLY]
    assert listing.reads == 2


async def test_a_drawing_that_stops_waiting_leaves_the_read_to_the_others() -> None:
    kept = ChatModalities(clock=Clock())
    listing = ModelList()
    listing.opened = asyncio.Event()
    first = asyncio.ensure_future(kept.for_model("openrouter", "u", FLUX, listing))
    second = asyncio.ensure_future(kept.for_model("openrouter", "u", FLUX, listing))
    await asyncio.sleep(0)
    first.cancel()  # its deadline
    with pytest.raises(asyncio.CancelledError):
        await first
    listing.opened.set()
    assert await second == IMAGE_ONLY
    assert await kept.for_model("openrouter", "u", FLUX, listing) == IMAGE_ONLY
    assert listing.reads == 1


async def test_what_the_model_said_comes_before_the_list() -> None:
    clock = Clock()
    kept = ChatModalities(clock=clock)
    listing = ModelList()
    kept.remember("openrouter", "u", GEMINI, IMAGE_ONLY)
    assert await kept.for_model("openrouter", "u", GEMINI, listing) == IMAGE_ONLY
    assert listing.reads == 0
    clock.now += 3601
    assert await kept.for_model("openrouter", "u", GEMINI, listing) == IMAGE_AND_TEXT


@pytest.mark.parametrize(
    "body",
    [
        {"message": "No endpoints found that support the requested output modalities: image, text"},
        {
            "error": {
                "message": "No endpoints found that support the requested output modalities: "
                "text, image. To learn more about provider routing, visit: "
                "https://openrouter.ai/docs/provider-routing",
                "code": 404,
            }
        },
    ],
)
def test_openrouters_refusal_of_the_text_asked_is_told(body: object) -> None:
    assert says_text_output_refused(body)


@pytest.mark.parametrize(
    "body",
    [
        {"message": "No endpoints found matching your data policy (Free model publication)."},
        {"message": "No endpoints available matching your guardrail restrictions and data policy"},
        {"message": "No endpoints found for black-forest-labs/flux.2-pro."},
        {"message": "Model not found", "metadata": {"raw": "output modalities"}},
        {"message": "No endpoints found that support the requested output modalities: image"},
        {"message": "No allowed providers are available for the selected model.", "code": 404},
        "No endpoints found that support the requested output modalities: image, text",
        None,
        {"message": None},
    ],
)
def test_other_404s_are_not_the_refusal_of_text(body: object) -> None:
    assert not says_text_output_refused(body)
