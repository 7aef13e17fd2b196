"""What a dead bot's half-posted answer becomes when the gateway could not produce it again,
and what a 🔄's answer finished by another bot does with the answer it replaces."""

from types import SimpleNamespace
from typing import Any

import discord

from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.bot.unfinished import failure_notice, finish_unfinished
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def test_the_failure_notice_speaks_in_the_personality_voice_and_says_what_to_do() -> None:
    lilith = common.Personality(error_message="*Lilith's candle gutters.* @everyone")
    notice = failure_notice(lilith, "PROVIDER_UNAVAILABLE")
    voice, why = notice.split("\n")
    assert voice == "*Lilith's candle gutters.* @\u200beveryone"  # shown, never a ping
    assert why == (
        "-# This answer was cut off when the bot restarted (PROVIDER_UNAVAILABLE); try again."
    )


def test_without_an_error_message_or_reason() -> None:
    notice = failure_notice(common.Personality(), "")
    assert notice == (
        "I couldn't answer that.\n-# This answer was cut off when the bot restarted; try again."
    )


def test_a_withheld_answer_shows_the_gateways_words_as_a_refused_message_would() -> None:
    """The user asked for their data to be deleted: the preview says so, in the voice the
    refusal of a message of theirs is shown in (errors.error_reply), and asks nothing."""
    lilith = common.Personality(error_message="*Lilith's candle gutters.*")
    notice = failure_notice(
        lilith, "USER_DATA_DELETING", "your data is being deleted, as you asked; nothing kept"
    )
    assert notice == (
        "*Lilith's candle gutters.*\n-# your data is being deleted, as you asked; nothing kept"
    )


async def test_a_withheld_answer_replaces_the_half_answer_and_deletes_nothing() -> None:
    pool = Pool()
    unfinished = gw.UnfinishedAnswer(
        job_id="job-3",
        personality=common.Personality(display_name="Lilith"),
        preview_message_ids=["800"],
        failed_reason="USER_DATA_DELETING",
        failed_message="your data is being deleted, as you asked",
        replaced_message_ids=["11"],
    )
    ids = await finish_unfinished(pool, Channel({800: "Once upon a"}), unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [800]
    assert pool.edited == [
        (800, "I couldn't answer that.\n-# your data is being deleted, as you asked")
    ]
    assert (pool.sent, pool.deleted) == ([], [])  # the answer it replaced stays too


class Pool:
    """The webhook pool as finishing an answer uses it: what was sent, edited and deleted."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.edited: list[tuple[int, str]] = []
        self.deleted: list[int] = []

    async def send(self, channel: object, content: str, **_: Any) -> Any:
        self.sent.append(content)
        return SimpleNamespace(id=900 + len(self.sent))

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        self.edited.append((message_id, content))

    async def delete(self, channel: object, message_id: int) -> None:
        self.deleted.append(message_id)


async def test_a_regenerations_answer_finished_deletes_the_answer_it_replaces() -> None:
    """Its dead bot had left the old answer until the new one was posted: the old goes now,
    as the acknowledgement takes its exchange out of history."""
    pool = Pool()
    unfinished = gw.UnfinishedAnswer(
        job_id="job-2",
        personality=common.Personality(display_name="Lilith"),
        content="The whole answer.",
        replaced_message_ids=["11", "12"],
    )
    ids = await finish_unfinished(pool, object(), unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert (ids, pool.sent, pool.deleted) == ([901], ["The whole answer."], [11, 12])


async def test_a_regeneration_that_failed_after_its_bot_died_leaves_the_answer_it_replaces() -> (
    None
):
    pool = Pool()
    unfinished = gw.UnfinishedAnswer(
        job_id="job-2",
        personality=common.Personality(display_name="Lilith"),
        failed_reason="PROVIDER_UNAVAILABLE",
        replaced_message_ids=["11", "12"],
    )
    await finish_unfinished(pool, object(), unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert pool.deleted == []  # not delivered: the old exchange stays in history, and shown


class Channel:
    """The channel the previews are in: `shown`, by id (any other is gone); those in
    `vanishing` are deleted (a moderator) right after the bot reads them."""

    def __init__(self, shown: dict[int, str], vanishing: tuple[int, ...] = ()) -> None:
        self.shown = shown
        self.vanishing = vanishing

    async def fetch_message(self, message_id: int) -> Any:
        if message_id not in self.shown:
            gone = SimpleNamespace(status=404, reason="Not Found")
            raise discord.NotFound(gone, "gone")  # type: ignore[arg-type]  # the fields NotFound reads
        read = SimpleNamespace(id=message_id, content=self.shown[message_id])
        if message_id in self.vanishing:
            del self.shown[message_id]
        return read


def withheld_without_personality() -> gw.UnfinishedAnswer:
    """Withheld (her data being deleted), and its personality was one of her private ones,
    deleted with her data: the gateway has none to send."""
    return gw.UnfinishedAnswer(
        job_id="job-4",
        preview_message_ids=["700", "701"],
        failed_reason="USER_DATA_DELETING",
        failed_message="your data is being deleted, as you asked",
    )


async def test_a_withheld_answer_without_its_personality_turns_its_previews_into_why() -> None:
    """Nothing else is posted, and no personality speaks: the first preview (its reply header
    kept) says why, in the default voice; the rest of the half answer goes."""
    pool = Pool()
    header = f"{REPLY_QUOTE_PREFIX} Alice: tell me a story"
    channel = Channel({700: f"{header}\nOnce upon a", 701: "time there"})
    ids = await finish_unfinished(pool, channel, withheld_without_personality())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [700]
    assert pool.edited == [
        (700, f"{header}\nI couldn't answer that.\n-# your data is being deleted, as you asked")
    ]
    assert (pool.sent, pool.deleted) == ([], [701])


async def test_without_its_personality_and_its_previews_gone_nothing_is_posted() -> None:
    """No preview left to explain, and nothing may be posted as a deleted personality."""
    pool = Pool()
    ids = await finish_unfinished(pool, Channel({}), withheld_without_personality())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == []
    assert (pool.sent, pool.edited, pool.deleted) == ([], [], [])


async def test_a_withheld_answer_with_its_previews_gone_posts_nothing_even_with_a_personality() -> (
    None
):
    """A replica's catalog may still name a personality being deleted for seconds: with its
    previews gone, a withheld answer posts nothing, whatever personality came with it."""
    pool = Pool()
    unfinished = withheld_without_personality()
    unfinished.personality.CopyFrom(common.Personality(slug="wren", display_name="Wren"))
    ids = await finish_unfinished(pool, Channel({}), unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == []
    assert (pool.sent, pool.edited, pool.deleted) == ([], [], [])


async def test_a_withheld_answer_whose_first_preview_is_gone_says_why_in_the_next() -> None:
    """A moderator deleted the first of its previews: the next one still there says why (the
    rest of the half answer goes), not none of them."""
    pool = Pool()
    channel = Channel({701: "time there"})
    ids = await finish_unfinished(pool, channel, withheld_without_personality())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [701]
    assert pool.edited == [
        (701, "I couldn't answer that.\n-# your data is being deleted, as you asked")
    ]
    assert pool.sent == []


class DiscordLikePool(Pool):
    """Reading, editing or deleting a message that is gone raises NotFound, as Discord's
    webhook API answers it; reading needs no permission in the channel."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel
        self.fetched: list[int] = []

    async def fetch(self, channel: object, message_id: int) -> Any:
        self.fetched.append(message_id)
        if message_id not in self.channel.shown:
            raise discord.NotFound(SimpleNamespace(status=404, reason="Not Found"), "gone")  # type: ignore[arg-type]  # the fields NotFound reads
        return SimpleNamespace(id=message_id, content=self.channel.shown[message_id])

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        if message_id not in self.channel.shown:
            raise discord.NotFound(SimpleNamespace(status=404, reason="Not Found"), "gone")  # type: ignore[arg-type]  # the fields NotFound reads
        await super().edit(channel, message_id, content)

    async def delete(self, channel: object, message_id: int) -> None:
        if message_id not in self.channel.shown:
            raise discord.NotFound(SimpleNamespace(status=404, reason="Not Found"), "gone")  # type: ignore[arg-type]  # the fields NotFound reads
        await super().delete(channel, message_id)


async def test_a_whole_answer_whose_middle_preview_was_deleted_is_finished_in_the_others() -> None:
    """A moderator deleted 701 of its previews 700, 701, 702: the answer's pieces go in 700
    and 702 (and a new message), never into the gone one, so the bot does not fail half way
    (which acknowledged it as a channel gone: the answer was never delivered)."""
    channel = Channel({700: "Once upon", 702: "a time"})
    pool = DiscordLikePool(channel)
    unfinished = gw.UnfinishedAnswer(
        job_id="job-5",
        personality=common.Personality(display_name="Lilith"),
        preview_message_ids=["700", "701", "702"],
        content="\n\n".join(["a" * 1900, "b" * 1900, "c" * 1900]),
    )
    ids = await finish_unfinished(pool, channel, unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids[:2] == [700, 702]
    assert 701 not in ids
    assert [message_id for message_id, _text in pool.edited] == [700, 702]


async def test_a_withheld_answer_whose_later_preview_was_deleted_says_why_in_the_first() -> None:
    channel = Channel({700: "Once upon"})
    pool = DiscordLikePool(channel)
    ids = await finish_unfinished(pool, channel, withheld_without_personality())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [700]
    assert pool.sent == []


class UnreadableChannel(Channel):
    """A channel the bot may not read history in: every fetch is 403, the message there or
    not (Discord checks the permission first)."""

    async def fetch_message(self, message_id: int) -> Any:
        denied = SimpleNamespace(status=403, reason="Forbidden")
        raise discord.Forbidden(denied, "Missing Access")  # type: ignore[arg-type]  # the fields Forbidden reads


async def test_previews_gone_that_the_bot_may_not_read_are_not_edited_blind() -> None:
    """Without Read Message History a deleted preview reads like one still there (403): one
    edited blind that is gone failed the whole hand-over (the answer never delivered). Read
    through the webhook, it is gone: the answer is posted anew."""
    channel = UnreadableChannel({})  # the previews are gone, and unreadable anyway
    pool = DiscordLikePool(channel)
    unfinished = gw.UnfinishedAnswer(
        job_id="job-6",
        personality=common.Personality(display_name="Lilith"),
        preview_message_ids=["700", "701"],
        content="Once upon a time.",
    )
    ids = await finish_unfinished(pool, channel, unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [901]
    assert (pool.sent, pool.edited) == (["Once upon a time."], [])
    assert pool.fetched == [700, 701]


async def test_previews_the_bot_may_not_read_are_read_through_the_webhook_and_finished() -> None:
    """Without Read Message History the channel refuses every read (403), but the webhook
    that posted the previews reads them without permission: the answer is finished in them,
    reply header kept, not posted anew beside the half answer (as it was before)."""
    header = f"{REPLY_QUOTE_PREFIX} Alice: tell me a story"
    channel = UnreadableChannel({700: f"{header}\nOnce upon", 701: "a time"})
    pool = DiscordLikePool(channel)
    unfinished = gw.UnfinishedAnswer(
        job_id="job-7",
        personality=common.Personality(display_name="Lilith"),
        preview_message_ids=["700", "701"],
        content="Once upon a time.",
    )
    ids = await finish_unfinished(pool, channel, unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [700]
    assert pool.edited == [(700, f"{header}\nOnce upon a time.")]
    assert (pool.sent, pool.deleted) == ([], [701])


def three_pieces(**fields: Any) -> gw.UnfinishedAnswer:
    """A whole answer of three 2000-character pieces, half shown in previews 700-702."""
    return gw.UnfinishedAnswer(
        job_id="job-8",
        personality=common.Personality(display_name="Lilith"),
        preview_message_ids=["700", "701", "702"],
        content="\n\n".join(["a" * 1900, "b" * 1900, "c" * 1900]),
        **fields,
    )


async def test_a_preview_deleted_between_its_read_and_its_edit_is_passed_over() -> None:
    """A moderator deleted 701 right after the bot read it: its edit is refused (404). The
    hand-over goes on as if 701 were gone when read: the pieces go in 700 and 702, the last
    one is posted anew (before, the 404 failed the whole hand-over, acknowledged as a channel
    gone: the answer was never delivered)."""
    channel = Channel({700: "Once", 701: "upon", 702: "a time"}, vanishing=(701,))
    pool = DiscordLikePool(channel)
    ids = await finish_unfinished(pool, channel, three_pieces())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [700, 702, 901]
    assert [text[0] for _, text in pool.edited] == ["a", "b"]
    assert [message_id for message_id, _ in pool.edited] == [700, 702]
    assert [text[0] for text in pool.sent] == ["c"]


async def test_the_header_of_a_first_preview_deleted_after_its_read_goes_on_the_next() -> None:
    """The header was read from 700, deleted before its edit: 701 shows the first piece,
    header and all, and so on down."""
    header = f"{REPLY_QUOTE_PREFIX} Alice: tell me a story"
    channel = Channel({700: f"{header}\nOnce", 701: "upon", 702: "a time"}, vanishing=(700,))
    pool = DiscordLikePool(channel)
    ids = await finish_unfinished(pool, channel, three_pieces())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [701, 702, 901]
    first = pool.edited[0]
    assert first[0] == 701
    assert first[1].startswith(f"{header}\naaa")
    assert pool.sent[0].startswith("c")


async def test_the_header_survives_when_every_preview_goes_before_its_edit() -> None:
    """All of them deleted after the bot read them: the answer is posted anew, whole, with
    the header read from the first."""
    header = f"{REPLY_QUOTE_PREFIX} Alice: tell me a story"
    shown = {700: f"{header}\nOnce", 701: "upon", 702: "a time"}
    channel = Channel(shown, vanishing=(700, 701, 702))
    pool = DiscordLikePool(channel)
    ids = await finish_unfinished(pool, channel, three_pieces())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [901, 902, 903]
    assert pool.edited == []
    assert pool.sent[0].startswith(f"{header}\naaa")


async def test_a_withheld_answer_whose_previews_go_before_their_edit_posts_nothing() -> None:
    """Withheld, the first preview deleted after its read: the next says why (header kept);
    every one deleted so: nothing is posted, nothing left to explain."""
    header = f"{REPLY_QUOTE_PREFIX} Alice: tell me a story"
    channel = Channel({700: f"{header}\nOnce upon a", 701: "time there"}, vanishing=(700,))
    pool = DiscordLikePool(channel)
    ids = await finish_unfinished(pool, channel, withheld_without_personality())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert ids == [701]
    assert pool.edited == [
        (701, f"{header}\nI couldn't answer that.\n-# your data is being deleted, as you asked")
    ]
    assert pool.sent == []

    channel = Channel({700: "Once upon a", 701: "time there"}, vanishing=(700, 701))
    pool = DiscordLikePool(channel)
    ids = await finish_unfinished(pool, channel, withheld_without_personality())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert (ids, pool.sent, pool.edited) == ([], [], [])
