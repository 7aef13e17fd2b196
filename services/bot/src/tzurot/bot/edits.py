"""A user's edit of a message a personality answered: its turns in history take the new text
(the gateway's `EditMessage`), and so does what a 🔄 of its answers asks again.

Every answer to the message is remembered with its request (`AnswerBook.answers_to`): each
takes the request the edited message makes (its content as `Generate`'s, the same for every
personality it addresses; the files, references and mentions the message shows now), and the
gateway is sent that content and the files still shown.

An edit waits while the message's answers are being generated (`EditQueue.holding`): their
turns are stored only once delivered, and a 🔄's new exchange only then replaces the old one.
The latest edit made meanwhile is sent once the last of them is delivered (or failed); edits
of one message are sent one at a time, the latest last. A bot stopping (its answers cancelled)
sends none: the edit is left out. An edit that fails (the gateway or Discord refusing or
unreachable) is logged and dropped, never tried again; a later one is sent all the same.

Only the user's edits count: Discord sends a message's update for a link preview, a pin or a
thread too, with no new `edited_timestamp` (discord.py's `edited_at`); those are ignored, and
so is an update whose `edited_at` is no newer than the edit last applied to its answers. A
🔄's new answer starts with the edit its request takes (`Poster.post`'s `edited_at`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import discord
import structlog

from tzurot.bot.addressees import Addressees
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.forwards import ForwardComments, shown_attachments
from tzurot.bot.gateway_client import GatewayClient, actor_of
from tzurot.bot.references import with_forward
from tzurot.bot.request_build import RequestBuilder
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)

Apply = Callable[[discord.Message], Awaitable[None]]


class EditQueue:
    """Per message: its latest edit not sent yet, sent when no answer of it is being made
    and no earlier edit of it is being sent."""

    def __init__(self, apply: Apply) -> None:
        self._apply = apply
        self._holds: dict[int, int] = {}  # message id: answers of it being made
        self._applying: dict[int, asyncio.Event] = {}  # set once its edits are sent
        self._waiting: dict[int, discord.Message] = {}  # its latest edit not sent yet

    @contextlib.asynccontextmanager
    async def holding(self, message_id: int) -> AsyncIterator[None]:
        """While an answer to `message_id` is being made: its edits wait, the latest is sent
        once the last hold ends. Begins once an edit being sent is sent."""
        while (applying := self._applying.get(message_id)) is not None:
            await applying.wait()
        self._holds[message_id] = self._holds.get(message_id, 0) + 1
        cancelled = False
        try:
            yield
        except asyncio.CancelledError:
            cancelled = True  # the bot stopping: nothing more is sent, the cancel goes on
            raise
        finally:
            self._holds[message_id] -= 1
            if not self._holds[message_id]:
                del self._holds[message_id]
            if not cancelled:
                await self._send(message_id)
            elif message_id not in self._holds:
                self._waiting.pop(message_id, None)

    async def edited(self, message: discord.Message) -> None:
        """The message as edited: sent now, or once its answers are made."""
        self._waiting[message.id] = message
        await self._send(message.id)

    async def _send(self, message_id: int) -> None:
        if message_id not in self._waiting:
            return
        if message_id in self._holds or message_id in self._applying:
            return  # sent by the last hold, or by the edit being sent, when done
        done = self._applying[message_id] = asyncio.Event()
        try:
            while (latest := self._waiting.pop(message_id, None)) is not None:
                try:
                    await self._apply(latest)
                except Exception as exc:  # dropped; the one edited meanwhile is sent
                    log.warning("bot.edit_not_applied", error=type(exc).__name__)
        finally:
            del self._applying[message_id]
            done.set()


class MessageEdits:
    """Sends an edited message's new request content to the gateway, and keeps it as its
    remembered answers' request."""

    def __init__(
        self,
        gateway: GatewayClient,
        answers: AnswerBook,
        *,
        addressees: Addressees,
        builder: RequestBuilder,
        forwards: ForwardComments,
    ) -> None:
        self._gateway, self._answers = gateway, answers
        self._addressees, self._builder, self._forwards = addressees, builder, forwards

    async def apply(self, message: discord.Message) -> None:
        """The edit of `message` (one of its answers remembered), or nothing; what the
        gateway or Discord refuses is logged: history keeps the text it had."""
        answered = self._answers.answers_to(str(message.id))
        edited_at = message.edited_at
        if edited_at is None or all(a.edited_at and a.edited_at >= edited_at for a in answered):
            return  # not the user's edit (a preview, a pin), or one applied already
        try:
            await self._apply(message, answered)
        except TzurotError as err:
            log.info("bot.edit_not_applied", reason=err.reason, code=err.code.name)
        except discord.HTTPException as exc:
            log.info("bot.edit_not_applied", error=type(exc).__name__, status=exc.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # Discord unreachable
            log.warning("bot.edit_not_applied", error=type(exc).__name__)

    async def _apply(self, message: discord.Message, answered: list[Answer]) -> None:
        actor = actor_of(message.author)
        addressed = await self._addressees.addressed(message, actor)
        # The request as `MessageFlow._on_message` makes it: the forward the message took,
        # its files (the notes of those not read), references and mentions as they are now.
        forward = self._forwards.taken_by(message.id)
        base, notes = await self._builder.base(message, actor, forward=forward)
        # Every personality addressed is sent the same text (all the mentions taken out); one
        # no longer addressed reads it too.
        text = with_forward(addressed[0][1] if addressed else message.content, forward)
        edited = "\n".join([self._builder.readable_text(message, text), *notes])
        for answer in answered:
            _take_edit(answer.request, base, edited)
            answer.edited_at = message.edited_at
        shown = [*shown_attachments(message), *(shown_attachments(forward) if forward else [])]
        await self._gateway.call(
            self._gateway.stub.EditMessage(
                gw.EditMessageRequest(
                    actor=actor,
                    message_id=str(message.id),
                    content=edited,
                    attachment_urls=[a.url for a in shown],
                    attachments_listed=True,
                )
            )
        )


def _take_edit(request: gw.GenerateRequest, base: gw.GenerateRequest, content: str) -> None:
    """`request` (an answer's, for a 🔄) as the edited message makes it: `content`, and the
    files, references and mentions of `base`; its key, ids and personality stay."""
    request.content = content
    request.ClearField("attachments")
    request.ClearField("references")
    request.ClearField("mentions")
    request.attachments.extend(base.attachments)
    request.references.extend(base.references)
    request.mentions.extend(base.mentions)
