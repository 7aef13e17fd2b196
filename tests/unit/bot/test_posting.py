"""Streaming an answer into Discord messages: bounded edits, pieces mirror the final split."""

from tzurot.bot.posting import StreamedAnswer


class Channel:
    def __init__(self) -> None:
        self.messages: dict[int, str] = {}
        self.edits = 0

    async def send(self, text: str) -> int:
        message_id = len(self.messages) + 1
        self.messages[message_id] = text
        return message_id

    async def edit(self, message_id: int, text: str) -> None:
        self.messages[message_id] = text
        self.edits += 1

    async def delete(self, message_id: int) -> None:
        del self.messages[message_id]


def answer(channel: Channel, now: list[float], interval: float = 1.0) -> StreamedAnswer:
    return StreamedAnswer(
        channel.send, channel.edit, channel.delete, interval=interval, clock=lambda: now[0]
    )


async def test_updates_within_the_interval_are_not_sent() -> None:
    channel, now = Channel(), [0.0]
    stream = answer(channel, now)
    text = ""
    for i in range(100):
        text += f"w{i} "
        now[0] = i * 0.1  # ten updates a second
        await stream.update(text)
    ids = await stream.finish(text)
    assert ids == [1]
    assert channel.messages[1] == text.strip()
    assert channel.edits <= 11  # about one per second, plus the final one


async def test_a_long_answer_ends_as_its_split_pieces() -> None:
    channel, now = Channel(), [0.0]
    stream = answer(channel, now, interval=0)
    paragraph = ("word " * 199 + "end.").strip()
    text = ""
    for _ in range(5):
        text += ("\n\n" if text else "") + paragraph
        now[0] += 1
        await stream.update(text)
    ids = await stream.finish(text)
    assert len(ids) == 3
    assert all(len(channel.messages[i]) <= 2000 for i in ids)
    assert "".join(channel.messages[i] for i in ids).replace("\n", "") == text.replace("\n", "")


async def test_the_prefix_goes_on_the_first_message_only() -> None:
    channel = Channel()
    stream = StreamedAnswer(
        channel.send, channel.edit, channel.delete, interval=0, prefix="-# ↪ quote\n"
    )
    ids = await stream.finish("hello")
    assert channel.messages[ids[0]] == "-# ↪ quote\nhello"


async def test_a_final_text_shorter_than_the_streamed_one_removes_extra_messages() -> None:
    channel, now = Channel(), [0.0]
    stream = answer(channel, now, interval=0)
    await stream.update("a " * 1500)
    assert len(channel.messages) == 2
    ids = await stream.finish("short")
    assert ids == [1]
    assert channel.messages == {1: "short"}
