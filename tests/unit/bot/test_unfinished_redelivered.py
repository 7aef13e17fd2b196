"""A hand-over cut short before its acknowledgement (the bot stopped, AckBotEvent lost) comes
back to the next bot built from the answer's preview notes. Every message the restarted bot
posts is noted (awaited) as it is posted, so the next bot edits it instead of posting the
answer's tail a second time (the first copy left unacknowledged, out of reach of a 🔄 or ❌)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tzurot.bot.reasoning import reasoning_message
from tzurot.bot.splitting import split_message
from tzurot.bot.unfinished import finish_unfinished

from .test_unfinished_parts import FilesChannel, FilesPool, unfinished


class Gateway:
    """The gateway as a hand-over notes with it: the preview lists, in order, and how many
    messages had been posted when each was noted."""

    def __init__(self, pool: FilesPool) -> None:
        self.pool = pool
        self.notes: list[tuple[str, list[int], str]] = []
        self.posted_when_noted: list[int] = []

    async def note_preview(
        self, job_id: str, message_ids: list[int], reply_header: str, *, budget: float
    ) -> None:
        self.notes.append((job_id, list(message_ids), reply_header))
        self.posted_when_noted.append(len(self.pool.sent))


class ShowingPool(FilesPool):
    """A pool whose sends and edits show in `channel`, as Discord's do."""

    def __init__(self, channel: FilesChannel) -> None:
        super().__init__()
        self.channel = channel

    async def send(self, channel: object, content: str, **options: Any) -> Any:
        sent = await super().send(channel, content, **options)
        self.channel.shown[sent.id] = content
        return SimpleNamespace(id=sent.id)

    async def edit(self, channel: object, message_id: int, content: str, **options: Any) -> None:
        await super().edit(channel, message_id, content, **options)
        self.channel.shown[message_id] = content


async def hand_over(pool: ShowingPool, gateway: Gateway, previews: tuple[str, ...], content: str):  # type: ignore[no-untyped-def]  # test helper
    return await finish_unfinished(
        pool,  # type: ignore[arg-type]  # a fake pool
        pool.channel,  # type: ignore[arg-type]  # a fake channel
        unfinished(previews, content=content),
        gateway=gateway,  # type: ignore[arg-type]  # a fake gateway
    )


async def test_a_handover_cut_before_its_ack_is_not_posted_twice() -> None:
    """The reviewer's scenario: the dead bot showed a bit of a 2-piece answer in 11."""
    content = ("word " * 600).strip()
    pieces = split_message(content)
    channel = FilesChannel({11: "word word word"}, {})
    pool = ShowingPool(channel)
    gateway = Gateway(pool)
    first = await hand_over(pool, gateway, ("11",), content)
    assert first == [11, 901]
    assert gateway.notes == [("job-1", [11, 901], "")]  # noted before the ack
    # Cut before the ack: the event comes back, built from the last note.
    again_previews = tuple(str(i) for i in gateway.notes[-1][1])
    again = await hand_over(pool, gateway, again_previews, content)
    assert again == [11, 901]
    assert pool.sent == [pieces[1]]  # posted once
    assert channel.shown == {11: pieces[0], 901: pieces[1]}


async def test_each_piece_is_noted_as_it_is_posted() -> None:
    """Two pieces posted after the one preview: each noted once posted, before the next is
    posted, with the reply header the answer is shown with."""
    content = ("word " * 1000).strip()
    header = "-# ↪ **Ada** hi · https://discord.com/channels/1/2/3\n"
    channel = FilesChannel({11: header + "word"}, {})
    pool = ShowingPool(channel)
    gateway = Gateway(pool)
    ids = await hand_over(pool, gateway, ("11",), content)
    assert len(ids) == len(split_message(header + content)) == 3
    assert [n[1] for n in gateway.notes] == [ids[:2], ids[:3]]
    assert gateway.posted_when_noted == [1, 2]
    assert {n[2] for n in gateway.notes} == {header}


async def test_what_it_showed_beyond_its_text_stays_last_in_the_note() -> None:
    """Cut off for good, its text's preview deleted meanwhile: its notice is posted anew, and
    noted before the reasoning the dead bot noted (the next bot tells that by its place)."""
    channel = FilesChannel({13: reasoning_message("hm")}, {})
    pool = ShowingPool(channel)
    gateway = Gateway(pool)
    handed = unfinished(("11", "13"), failed_reason="PROVIDER_UNAVAILABLE")
    ids = await finish_unfinished(pool, channel, handed, gateway=gateway)  # type: ignore[arg-type]  # fakes
    assert ids == [901]
    assert gateway.notes == [("job-1", [901, 13], "")]
    assert pool.deleted == [13]  # then deleted, as a cut-off answer's reasoning is
