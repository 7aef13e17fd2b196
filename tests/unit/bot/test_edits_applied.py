"""What an edit does to the answers remembered (tzurot.bot.edits.MessageEdits), and how the
queue bears a failing or cancelled send (EditQueue): only the user's edits count, every
answer's request takes the edit whole, and a failure or a stop leaves nothing behind."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.edits import EditQueue, MessageEdits
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

EDITED = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CAT = "https://cdn.example/cat.png"
DOG = "https://cdn.example/dog.png"


class Gateway:
    """Records the EditMessage requests sent; with `error`, raises it instead."""

    def __init__(self) -> None:
        self.sent: list[gw.EditMessageRequest] = []
        self.error: BaseException | None = None
        self.stub = self

    def EditMessage(self, request: gw.EditMessageRequest) -> gw.EditMessageRequest:
        return request

    async def call(self, request: gw.EditMessageRequest) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(request)


class Builder:
    """The message's request as it is now: only dog.png, reference 7 and one mention."""

    async def base(self, message: Any, actor: Any, *, forward: Any) -> tuple[Any, list[str]]:
        request = gw.GenerateRequest(
            attachments=[common.Attachment(url=DOG, filename="dog.png")],
            references=[common.ReferencedMessage(message_id="7")],
            mentions=[gw.MessageMention(id="42")],
        )
        return request, []

    def readable_text(self, message: Any, text: str) -> str:
        return f"Alice: {text}"


class Addressees:
    async def addressed(self, message: Any, actor: Any) -> list[tuple[Any, str]]:
        return [(common.Personality(slug="lilith"), "my dog is called Rex")]


class Forwards:
    def taken_by(self, message_id: int) -> None:
        return None


def message(edited_at: datetime | None, files: tuple[str, ...] = (DOG,)) -> Any:
    return SimpleNamespace(
        id=1,
        content="@Lilith @Sage my dog is called Rex",
        author=SimpleNamespace(id=5, display_name="Alice"),
        attachments=[SimpleNamespace(url=url) for url in files],
        reference=None,
        edited_at=edited_at,
    )


def remembered(book: AnswerBook, slug: str, posted: int) -> Answer:
    request = gw.GenerateRequest(
        content="Alice: my cat is called Tom",
        idempotency_key=f"1:{slug}",
        message_ids=["1"],
        personality=slug,
        attachments=[
            common.Attachment(url=CAT, filename="cat.png"),
            common.Attachment(url=DOG, filename="dog.png"),
        ],
    )
    answer = Answer(common.Personality(slug=slug), 5, None, request, message_ids=[posted])  # type: ignore[arg-type]
    book.remember(posted, answer)
    return answer


def edits(book: AnswerBook, gateway: Gateway) -> MessageEdits:
    return MessageEdits(
        gateway,  # type: ignore[arg-type]  # stand-ins for what it calls
        book,
        addressees=Addressees(),  # type: ignore[arg-type]
        builder=Builder(),  # type: ignore[arg-type]
        forwards=Forwards(),  # type: ignore[arg-type]
    )


async def test_every_answers_request_takes_the_edit_with_its_files() -> None:
    book, gateway = AnswerBook(10), Gateway()
    lilith, sage = remembered(book, "lilith", 11), remembered(book, "sage", 12)
    await edits(book, gateway).apply(message(EDITED))
    for answer, slug in ((lilith, "lilith"), (sage, "sage")):
        request = answer.request
        assert request.content == "Alice: my dog is called Rex"
        assert [a.url for a in request.attachments] == [DOG]
        assert [r.message_id for r in request.references] == ["7"]
        assert [m.id for m in request.mentions] == ["42"]
        assert (request.idempotency_key, request.personality) == (f"1:{slug}", slug)
    assert [(r.content, list(r.attachment_urls)) for r in gateway.sent] == [
        ("Alice: my dog is called Rex", [DOG])
    ]


async def test_an_update_that_is_no_edit_sends_nothing() -> None:
    """A link preview, a pin or a thread: Discord sets no `edited_timestamp`; a later one of
    an edited message keeps the edit's: neither is sent."""
    book, gateway = AnswerBook(10), Gateway()
    answer = remembered(book, "lilith", 11)
    applying = edits(book, gateway)
    await applying.apply(message(None))
    assert gateway.sent == []
    assert answer.request.content == "Alice: my cat is called Tom"
    await applying.apply(message(EDITED))
    await applying.apply(message(EDITED))  # its preview, after the edit
    assert len(gateway.sent) == 1
    await applying.apply(message(EDITED + timedelta(seconds=5)))  # edited again
    assert len(gateway.sent) == 2


@pytest.mark.parametrize(
    "error",
    [aiohttp.ClientConnectionError("reset"), TimeoutError(), ConnectionResetError("reset")],
    ids=["aiohttp", "timeout", "oserror"],
)
async def test_discord_unreachable_is_logged_not_raised(error: Exception) -> None:
    book, gateway = AnswerBook(10), Gateway()
    remembered(book, "lilith", 11)
    gateway.error = error
    await edits(book, gateway).apply(message(EDITED))  # raises nothing


class Failing:
    """An apply: "one" waits on `gate`, then fails; the others are recorded."""

    def __init__(self, error: BaseException) -> None:
        self.gate = asyncio.Event()
        self.error = error
        self.sent: list[str] = []

    async def __call__(self, edited: Any) -> None:
        if edited.text == "one":
            await self.gate.wait()
            raise self.error
        self.sent.append(edited.text)


async def test_an_edit_made_while_a_failing_one_is_sent_is_sent_after_it() -> None:
    apply = Failing(TimeoutError())
    queue = EditQueue(apply)
    first = asyncio.create_task(queue.edited(SimpleNamespace(id=1, text="one")))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    await queue.edited(SimpleNamespace(id=1, text="two"))  # type: ignore[arg-type]
    apply.gate.set()
    await first  # the failure is logged, not raised
    assert apply.sent == ["two"]
    assert queue._waiting == {}


async def test_an_answer_cancelled_by_a_stop_sends_no_waiting_edit() -> None:
    """The bot stopping cancels the answer: its waiting edit is left out (not sent through a
    closed channel), and the cancellation is what the task ends with."""
    apply = Failing(RuntimeError("Channel is closed"))
    queue = EditQueue(apply)
    held = asyncio.Event()

    async def answer() -> None:
        async with queue.holding(1):
            held.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(answer())
    await held.wait()
    await queue.edited(SimpleNamespace(id=1, text="one"))  # type: ignore[arg-type]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    assert queue._waiting == {}
    assert queue._holds == {}
