"""The reasoning posted under an answer is noted with its preview (tzurot.bot.reasoning): a bot
that dies before confirming the answer leaves it to its successor with the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tzurot.bot.answering import Poster
from tzurot.bot.answers import AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.v1 import gateway_pb2 as gw

from .test_answer_reasoning import LILITH, Channel, Stub, Voices, Webhooks


class NotingStub(Stub):
    def __init__(self, finished: gw.GenerationFinished) -> None:
        super().__init__(finished)
        self.notes: list[list[str]] = []

    async def NoteAnswerPreview(self, request: gw.NoteAnswerPreviewRequest, **_: Any) -> Any:
        self.notes.append(list(request.message_ids))
        return gw.NoteAnswerPreviewResponse()


async def test_the_reasoning_message_is_noted_with_the_answers_preview() -> None:
    stub, hooks = NotingStub(gw.GenerationFinished(content="Yes.", reasoning="Hm.")), Webhooks()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    poster = Poster(gateway, hooks, settings, AnswerBook(10), voice=Voices())  # type: ignore[arg-type]  # fakes of the pool and the voice poster
    await poster.post(Channel(), None, LILITH, gw.GenerateRequest(), 7)
    await poster.notes_sent()
    (answer_id, reasoning_id) = hooks.sent
    assert stub.notes[-1] == [str(answer_id), str(reasoning_id)]
    assert stub.confirmed == [[str(answer_id), str(reasoning_id)]]
