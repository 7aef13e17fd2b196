"""A helper call whose request goes out whole and whose answer comes in the same loop step (an
in-process provider; over a socket the client waits once between them) still says what it
may bill before its outcome (billable.running, review 307 L1): the outcome leaves only after
more awaits, and a reply cut among them (the user's cancel) has nothing else for the gateway
to count. Uncut, the outcome replaces it: the gateway keeps nothing pending, so nothing is
counted twice. Inference's events are read as the gateway reads them (the wire, then
RelayedAnswer, as service._replies does)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable

import httpx2
from pydantic import SecretStr

from tests.unit.inference.fake_models import UnusedModel
from tzurot.gateway import convert as gateway_convert
from tzurot.gateway import domain as g
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.inference import convert as inference_convert
from tzurot.inference import uploads
from tzurot.inference.attachments import AttachmentLimits, AttachmentReader, Prepared
from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    AttachmentRef,
    Completion,
    Downloaded,
    ReplyEvent,
    StreamEvent,
    TokenUsage,
)
from tzurot.inference.providers import Provider
from tzurot.inference.readings import ModelTarget

PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)
IMAGE = AttachmentRef(
    url="https://cdn.test/cat.png", content_type="image/png", filename="cat.png", size_bytes=28
)
DESCRIBER = ModelTarget(
    Provider("openrouter", "https://api.test/v1"), SecretStr("sk-test"), "x/vision", "user"
)


class Cdn:
    async def fetch(
        self, url: str, *, field: str, max_bytes: int, allowed_types: frozenset[str]
    ) -> Downloaded:
        return Downloaded(PNG, "image/png")


class AnsweredAsSent(UnusedModel):
    """Hands the request over whole (the client's upload trace, as httpcore calls it) and
    answers in the same loop step: the provider billed the call."""

    def __init__(self) -> None:
        self.answered = asyncio.Event()

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        request = httpx2.Request("POST", f"{provider.base_url}/chat/completions")
        await uploads.trace_uploads(request)  # the shared client's request hook
        trace = request.extensions["trace"]
        for event in ("started", "complete"):
            await trace(f"http11.send_request_body.{event}", {})
        self.answered.set()
        yield Completion("A cat.", TokenUsage(900, 5), "stop")


def kept(relayed: RelayedAnswer, event: ReplyEvent) -> None:
    """What the gateway keeps of `event`, read off the wire."""
    said = gateway_convert.reply_event(inference_convert.reply_event(event))
    if isinstance(said, g.HelperCallPending):
        relayed.helper_call_pending(said)
    elif isinstance(said, g.AttachmentRead):
        relayed.read(said)
    elif isinstance(said, g.UsageSpent):
        relayed.reported(said)


async def relay(llm: AnsweredAsSent, relayed: RelayedAnswer) -> None:
    reader = AttachmentReader(Cdn(), llm, AttachmentLimits())
    steps = reader.prepare(
        [IMAGE], Prepared(), vision=False, describer=DESCRIBER, transcriber=None, cleaner=None
    )
    async for event in steps:
        kept(relayed, event)


async def test_a_reply_cut_as_the_call_ends_counts_what_it_may_bill() -> None:
    llm, relayed = AnsweredAsSent(), RelayedAnswer()
    reply = asyncio.create_task(relay(llm, relayed))
    await llm.answered.wait()
    reply.cancel()  # the message deleted: its outcome never goes out
    await asyncio.gather(reply, return_exceptions=True)
    (described,) = relayed.pending_calls()  # what the gateway writes for the cut
    assert (described.request_type, described.provider, described.model) == (
        "image_description",
        "openrouter",
        "x/vision",
    )
    assert described.estimated
    assert described.input_tokens > 0  # its prompt
    assert described.output_tokens == 0


async def test_its_outcome_replaces_it() -> None:
    relayed = RelayedAnswer()
    await relay(AnsweredAsSent(), relayed)
    assert relayed.pending_calls() == ()  # counted once: by its AttachmentRead
