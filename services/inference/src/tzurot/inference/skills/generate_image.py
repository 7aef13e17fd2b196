"""generate_image: the personality draws, with the user's key.

Two endpoints: OpenRouter's image-output models through chat completions
(openrouter.ai/docs/guides/overview/multimodal/image-generation) with `modalities` as the model
outputs them (`["image"]` for an image-only model, else `["image", "text"]`: what its provider's
model list says, image_calls.py) and the shape asked as `image_config.aspect_ratio` (`CHAT_SHAPES`:
landscape 16:9, portrait 9:16; a square is the default and sends none), the images coming
back as data URLs in `message.images`; or an OpenAI-compatible `/images/generations`
(`b64_json`). Images are checked (type by magic bytes, size) and become files of the answer,
which the bot posts as attachments.
On `/images/generations` the model is offered the shapes the image model draws and each is
asked in its size (`image_model_rules`: gpt-image-1 1024x1024, 1024x1536, 1536x1024; dall-e-3
1024x1024, 1024x1792, 1792x1024; dall-e-2 square only), and `count` images that one request
may not ask for (dall-e-3 draws one per request, as does a chat request: OpenRouter documents
no `n` for image output) are asked in several requests at once (`REQUESTS_AT_ONCE` out
together), each paid for and noted as its own call; those that answered are delivered when
another fails or answers without an image, and the model is told how many were not drawn.
Limits: `max_count` images per call, `max_bytes` each. The loop starts a call only when the
answer has room for `count` images of `max_bytes` (MakesFiles), so every image drawn is
delivered. Every call the model answered is paid for, and noted once its images are read
(`SkillContext.spending`, request_type "image_generation": the image model's provider, model,
tokens and images), also when an image cannot be used (too large, not an image): noted
failed (paid, not delivered) when not one image could be attached. An image answered as a
URL is fetched by the SSRF-safe fetcher with the image's own limit (`max_bytes`), and DALL-E
is asked for base64 (`response_format`, image_calls.py) so there is nothing to fetch. A call cut
off by the loop's time limit while its request was out is noted as paid, not delivered
(failed): the images asked for, no tokens (unknown). The provider may have drawn and billed
them: it bills a request it received, and with at least `min_seconds` left when it starts,
a cut-off call has nearly always been received. A 429 is asked again as retries.py allows
(once, within the call's time limit); a failure once the request went out never is (the
image may have been drawn, and billed).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import SecretStr

from tzurot.inference.domain import (
    IMAGE_GENERATION,
    GeneratedFile,
    ImageAnswer,
    PaidCall,
    TokenUsage,
)
from tzurot.inference.providers import Provider
from tzurot.inference.retries import NoAnswerInTime, whole_answer
from tzurot.inference.skills.base import SkillContext, SkillError, SkillOutput
from tzurot.inference.skills.egress import SafeFetcher

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
SQUARE = "square"
CHAT_PER_REQUEST = 1
"""Images one chat request is asked for: OpenRouter documents no `n` for image output, and
its image models answer the image they drew."""
REQUESTS_AT_ONCE = 4
"""Image requests of one call out together at most (the others wait their turn)."""
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF8", "image/gif", "gif"),
)


class ImageModel(Protocol):
    async def chat_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str | None,
    ) -> ImageAnswer: ...

    async def generate_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        count: int,
        size: str,
    ) -> ImageAnswer: ...


@dataclass(frozen=True)
class ImageSettings:
    provider: str = "openrouter"
    model: str = "google/gemini-2.5-flash-image"
    endpoint: Literal["chat", "images"] = "chat"
    max_count: int = 2
    max_bytes: int = 5 * 1024 * 1024


@dataclass(frozen=True)
class ImageModelRules:
    """What OpenAI's `/images/generations` takes from one model: the size of each shape it
    draws, and how many images one request may ask for."""

    sizes: Mapping[str, str]
    per_request: int = 10


GPT_IMAGE = ImageModelRules(
    {SQUARE: "1024x1024", "portrait": "1024x1536", "landscape": "1536x1024"}
)
DALL_E_3 = ImageModelRules(
    {SQUARE: "1024x1024", "portrait": "1024x1792", "landscape": "1792x1024"}, per_request=1
)
DALL_E_2 = ImageModelRules({SQUARE: "1024x1024"})
CHAT_SHAPES = ImageModelRules(
    {SQUARE: "1:1", "portrait": "9:16", "landscape": "16:9"}, per_request=CHAT_PER_REQUEST
)
"""The chat endpoint's shapes as OpenRouter's `image_config.aspect_ratio` values (from its
documented list: 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9)."""


def image_model_rules(model: str) -> ImageModelRules:
    """DALL-E's own rules; any other model gpt-image-1's (OpenAI's current sizes)."""
    bare = model.rsplit("/", 1)[-1].lower()
    if bare.startswith("dall-e-3"):
        return DALL_E_3
    if bare.startswith("dall-e-2"):
        return DALL_E_2
    return GPT_IMAGE


def _kind(data: bytes) -> tuple[str, str]:
    for magic, mime, ext in _MAGIC:
        if data.startswith(magic):
            return mime, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    raise SkillError("the image model returned something that is not an image")


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.3g} MiB"


class GenerateImageSkill:
    name = "generate_image"
    description = (
        "Draw a picture from a detailed description. The image is attached to your answer; "
        "just say what you drew."
    )
    stealth = False
    auto_memorize = False
    timeout = 120.0
    min_seconds = 30.0  # an image paid for, then cancelled, is paid for nothing

    def __init__(self, images: ImageModel, settings: ImageSettings, fetcher: SafeFetcher) -> None:
        self._images = images
        self._settings = settings
        # An image answered as a URL is fetched with the image's own limit, not a page's:
        # a 3 MiB image refused by read_url's 2 MiB was paid for and never shown.
        self._fetcher = fetcher.with_max_bytes(settings.max_bytes)
        self.file_bytes = settings.max_bytes
        chat = settings.endpoint == "chat"
        self._rules = CHAT_SHAPES if chat else image_model_rules(settings.model)
        properties: dict[str, Any] = {
            "prompt": {
                "type": "string",
                "minLength": 3,
                "maxLength": 4000,
                "description": "What to draw, in detail.",
            },
            "count": {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.max_count,
                "description": "How many images (default 1).",
            },
        }
        shapes = list(self._rules.sizes)
        if len(shapes) > 1:
            properties["size"] = {
                "type": "string",
                "enum": shapes,
                "description": f"{', '.join(shapes).capitalize()} (default square).",
            }
        else:  # dall-e-2 draws squares only
            self.description = f"{self.description} Images are square."
        self.parameters: Mapping[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": ["prompt"],
            "additionalProperties": False,
        }

    def most_files(self, args: Mapping[str, Any]) -> int:
        return int(args.get("count", 1))

    def _size(self, args: Mapping[str, Any]) -> str:
        """The size of the shape asked for (a size the model draws is taken as is); square
        when the model draws no other."""
        asked = str(args.get("size", SQUARE))
        sizes = self._rules.sizes
        return sizes.get(asked) or (asked if asked in sizes.values() else sizes[SQUARE])

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        if ctx.provider_key is None:
            raise SkillError("drawing is not available here")
        prompt = str(args["prompt"]).strip()
        count = int(args.get("count", 1))
        settings = self._settings
        provider, key = await ctx.provider_key(settings.provider, settings.model)
        images, model, size = self._images, settings.model, self._size(args)
        chat = settings.endpoint == "chat"
        # A square is the chat models' default: only another shape is asked for.
        aspect_ratio = size if chat and size != self._rules.sizes[SQUARE] else None

        def paid(usage: TokenUsage, *, failed: bool = False) -> None:
            ctx.spending.paid(
                PaidCall(IMAGE_GENERATION, provider.name, model, usage), failed=failed
            )

        def request(asked: int) -> Callable[[], Awaitable[ImageAnswer]]:
            def send() -> Awaitable[ImageAnswer]:
                if chat:
                    return images.chat_images(
                        provider,
                        key,
                        model=model,
                        prompt=prompt,
                        aspect_ratio=aspect_ratio,
                    )
                return images.generate_images(
                    provider, key, model=model, prompt=prompt, count=asked, size=size
                )

            return lambda: whole_answer(lambda: _noting_cutoff(send, paid, asked), ctx.retry)

        per_request = self._rules.per_request
        outcomes = await _all_answers([request(n) for n in _batches(count, per_request)], paid)
        answers = [o for o in outcomes if isinstance(o, ImageAnswer)]
        errors = [o for o in outcomes if not isinstance(o, ImageAnswer)]
        if not answers:
            raise errors[0]
        # A request refused, or answered without its images (a chat model that wrote
        # instead of drawing): the images asked for and not drawn.
        not_drawn = max(0, count - sum(len(a.urls) for a in answers))
        return await self._deliver(answers, not_drawn, count, prompt, paid)

    async def _deliver(
        self,
        answers: list[ImageAnswer],
        not_drawn: int,
        count: int,
        prompt: str,
        paid: Callable[..., None],
    ) -> SkillOutput:
        """The answers' images as files (up to `count`); each answer noted paid, `failed`
        (paid, not delivered) when not one of its images could be attached."""
        usages = [
            TokenUsage(a.usage.input_tokens, a.usage.output_tokens, images=len(a.urls))
            for a in answers
        ]
        try:
            files, unusable, sources = await self._files(answers, count, prompt)
        except BaseException:  # cut off while fetching: paid, not delivered
            for usage in usages:
                paid(usage, failed=True)
            raise
        for n, usage in enumerate(usages):
            paid(usage, failed=n not in sources)
        if not files:
            raise SkillError(
                f"{unusable[0]}; nothing to attach"
                if unusable
                else "the image model returned no image"
            )
        drawn = "an image" if len(files) == 1 else f"{len(files)} images"
        text = f"Drew {drawn} of: {prompt}. {'It is' if len(files) == 1 else 'They are'} "
        text += "attached to your answer."
        if unusable:
            text += f" {len(unusable)} more could not be used ({unusable[0]})."
        if not_drawn:
            text += f" {not_drawn} more could not be drawn (the image model refused or failed)."
        return SkillOutput(
            text=text,
            summary=f"{drawn} ({', '.join(f'{len(f.data) // 1024} KiB' for f in files)})",
            files=tuple(files),
        )

    async def _files(
        self, answers: list[ImageAnswer], count: int, prompt: str
    ) -> tuple[list[GeneratedFile], list[str], set[int]]:
        """Up to `count` attachable images, why each one that is not could not be used, and
        which answers (by index) gave a file."""
        files: list[GeneratedFile] = []
        unusable: list[str] = []
        sources: set[int] = set()
        urls = [(n, url) for n, answer in enumerate(answers) for url in answer.urls]
        for n, url in urls:  # a spare image stands in for one that cannot be used
            if len(files) == count:
                break
            try:
                data = await self._bytes(url)
                mime, ext = _kind(data)
            except SkillError as exc:
                unusable.append(str(exc))
                continue
            name = f"image-{len(files) + 1}.{ext}"
            files.append(GeneratedFile(name, mime, data, description=prompt[:500]))
            sources.add(n)
        return files, unusable, sources

    async def _bytes(self, url: str) -> bytes:
        limit = self._settings.max_bytes
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            if ";base64" not in header:
                raise SkillError("the image model returned an unreadable image")
            if len(payload) * 3 // 4 > limit + 2:  # before decoding: base64 pads to 3 bytes
                raise SkillError(f"the image is larger than {_mib(limit)}")
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise SkillError("the image model returned an unreadable image") from None
            if len(data) > limit:
                raise SkillError(f"the image is larger than {_mib(limit)}")
            return data
        fetched = await self._fetcher.fetch(url, accept=IMAGE_TYPES)
        if len(fetched.data) > limit:
            raise SkillError(f"the image is larger than {_mib(limit)}")
        return fetched.data


async def _noting_cutoff(
    send: Callable[[], Awaitable[ImageAnswer]],
    paid: Callable[..., None],
    asked: int,
) -> ImageAnswer:
    """One request; cut off while it is out (cancelled by the loop's time limit, or no
    answer in time: NoAnswerInTime, the provider may be drawing and billing), it is noted
    as paid, not delivered: `asked` images, no tokens (the answer never came)."""
    try:
        return await send()
    except (asyncio.CancelledError, NoAnswerInTime):
        paid(TokenUsage(0, 0, images=asked), failed=True)
        raise


def _batches(count: int, per_request: int) -> list[int]:
    """`count` images as requests of at most `per_request` each."""
    full, rest = divmod(count, per_request)
    return [per_request] * full + ([rest] if rest else [])


async def _all_answers(
    requests: list[Callable[[], Awaitable[ImageAnswer]]], paid: Callable[..., None]
) -> list[ImageAnswer | BaseException]:
    """Every request, `REQUESTS_AT_ONCE` at a time; each one's answer, or the error it failed
    with. Cut off (the loop's time limit), the requests still out note themselves
    (`_noting_cutoff`), those still waiting their turn were never sent (nothing to note), and
    an answer already in hand is noted paid, not delivered."""
    turns = asyncio.Semaphore(REQUESTS_AT_ONCE)

    async def in_turn(send: Callable[[], Awaitable[ImageAnswer]]) -> ImageAnswer:
        async with turns:
            return await send()

    tasks = [asyncio.ensure_future(in_turn(send)) for send in requests]
    try:
        return await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is None:
                answer = task.result()
                usage = answer.usage
                paid(
                    TokenUsage(usage.input_tokens, usage.output_tokens, images=len(answer.urls)),
                    failed=True,
                )
        raise
