"""What a dead bot's half-posted answer becomes when the gateway could not produce it again,
and what a 🔄's answer finished by another bot does with the answer it replaces."""

import asyncio
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.bot.splitting import DISCORD_LIMIT
from tzurot.bot.unfinished import failure_notice, finish_unfinished
from tzurot.bot.webhooks import WebhookLimitReached
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


OUR_WEBHOOK = 1  # the channel's webhook, which posted the previews
UNKNOWN_MESSAGE = 10008
UNKNOWN_CHANNEL = 10003


def not_found(code: int = UNKNOWN_MESSAGE) -> discord.NotFound:
    """Discord's 404, with its JSON error code (10008: Unknown Message)."""
    gone = SimpleNamespace(status=404, reason="Not Found")
    return discord.NotFound(gone, {"code": code, "message": "Unknown"})  # type: ignore[arg-type]  # the fields NotFound reads


class Pool:
    """The webhook pool as finishing an answer uses it: what was sent, edited and deleted;
    `webhook_id`, the channel's webhook (None: it has none)."""

    def __init__(self, webhook_id: int | None = OUR_WEBHOOK) -> None:
        self.sent: list[str] = []
        self.edited: list[tuple[int, str]] = []
        self.deleted: list[int] = []
        self.webhook_id = webhook_id

    async def find(self, channel: object) -> Any:
        return None if self.webhook_id is None else SimpleNamespace(id=self.webhook_id)

    async def serves(self, channel: object, webhook_id: int | None) -> bool:
        return webhook_id is not None and webhook_id == self.webhook_id

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
    `vanishing` are deleted (a moderator) right after the bot reads them; `posted_by`, the
    webhook that posted one when it is not the channel's webhook of now."""

    def __init__(
        self,
        shown: dict[int, str],
        vanishing: tuple[int, ...] = (),
        posted_by: dict[int, int] | None = None,
    ) -> None:
        self.shown = shown
        self.vanishing = vanishing
        self.posted_by = posted_by or {}

    async def fetch_message(self, message_id: int) -> Any:
        if message_id not in self.shown:
            raise not_found()
        read = SimpleNamespace(
            id=message_id,
            content=self.shown[message_id],
            webhook_id=self.posted_by.get(message_id, OUR_WEBHOOK),
            attachments=[],
        )
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
            raise not_found()
        return SimpleNamespace(
            id=message_id,
            content=self.channel.shown[message_id],
            webhook_id=OUR_WEBHOOK,
            attachments=[],
        )

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        if message_id not in self.channel.shown:
            raise not_found()
        await super().edit(channel, message_id, content)

    async def delete(self, channel: object, message_id: int) -> None:
        if message_id not in self.channel.shown:
            raise not_found()
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


async def test_a_preview_another_webhook_posted_is_passed_over_not_edited() -> None:
    """The webhook that posted 700 was deleted (an admin) and the channel's webhook now is
    another, which cannot edit it (Discord: 10008, as for a message gone): it is passed over,
    logged, and the answer posted anew; before, the edit's 404 read as "gone"."""
    channel = Channel({700: "Once upon"}, posted_by={700: 5})
    pool = DiscordLikePool(channel)
    unfinished = gw.UnfinishedAnswer(
        job_id="job-9",
        personality=common.Personality(display_name="Lilith"),
        preview_message_ids=["700"],
        content="Once upon a time.",
    )
    with capture_logs() as logs:
        ids = await finish_unfinished(pool, channel, unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert (ids, pool.edited, pool.sent) == ([901], [], ["Once upon a time."])
    foreign = [e for e in logs if e["event"] == "bot.unfinished_preview_foreign"]
    assert [(e["message_id"], e["webhook_id"]) for e in foreign] == [(700, 5)]


class EditRefusedPool(DiscordLikePool):
    """Every edit answered with Discord's 404 of `code`."""

    def __init__(self, channel: Channel, code: int) -> None:
        super().__init__(channel)
        self.code = code

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        raise not_found(self.code)


class ChannelReadRefused(Channel):
    """Every read answered with Discord's 404 of `code`."""

    def __init__(self, shown: dict[int, str], code: int) -> None:
        super().__init__(shown)
        self.code = code

    async def fetch_message(self, message_id: int) -> Any:
        raise not_found(self.code)


@pytest.mark.parametrize("where", ["read", "edit"])
async def test_only_unknown_message_passes_a_preview_over(where: str) -> None:
    """A 404 that is not Unknown Message (10008) is not a preview gone: Unknown Channel (the
    channel deleted) ends the hand-over, as any other refusal, instead of posting the answer
    anew beside the half answer."""
    shown = {700: "Once upon"}
    channel = ChannelReadRefused(shown, UNKNOWN_CHANNEL) if where == "read" else Channel(shown)
    pool = EditRefusedPool(channel, UNKNOWN_CHANNEL)
    unfinished = gw.UnfinishedAnswer(
        job_id="job-10",
        personality=common.Personality(display_name="Lilith"),
        preview_message_ids=["700"],
        content="Once upon a time.",
    )
    with pytest.raises(discord.NotFound) as refused:
        await finish_unfinished(pool, channel, unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert refused.value.code == UNKNOWN_CHANNEL
    assert pool.sent == []


class NoWebhookPool(Pool):
    """A channel without a webhook of the bot's, at Discord's cap of 15: making one, as
    editing, deleting or sending through the real pool would, is refused."""

    def __init__(self) -> None:
        super().__init__(webhook_id=None)

    async def send(self, channel: object, content: str, **_: Any) -> Any:
        raise WebhookLimitReached("general")

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        raise WebhookLimitReached("general")

    async def delete(self, channel: object, message_id: int) -> None:
        raise WebhookLimitReached("general")


async def test_a_withheld_answer_needs_no_webhook_made_and_never_hits_the_cap() -> None:
    """The dead bot's webhook was deleted, the channel holds 15 others: its previews can be
    edited by no webhook. A withheld answer, which posts nothing, passes them over; before,
    its edit made a webhook, and the cap's WebhookLimitReached escaped to the event stream."""
    channel = Channel({700: "Once upon a", 701: "time there"}, posted_by={700: 5, 701: 5})
    pool = NoWebhookPool()
    ids = await finish_unfinished(pool, channel, withheld_without_personality())  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert (ids, pool.sent, pool.edited, pool.deleted) == ([], [], [], [])


LONG_VOICE = ("*The candle gutters and the shadows lean in.* " * 50)[:2000].strip()


async def test_a_long_refusal_is_cut_to_the_previews_left_and_nothing_is_posted() -> None:
    """A personality's error message may be 2000 characters: with the reply header and the
    "-#" line the refusal is longer than the one preview left. It is cut (its voice, ending
    "…"; the reason kept whole) to fit there; before, the rest was posted anew, as a
    personality perhaps deleted."""
    header = f"{REPLY_QUOTE_PREFIX} Alice: tell me a story"
    channel = Channel({700: f"{header}\nOnce upon a"})
    pool = DiscordLikePool(channel)
    unfinished = withheld_without_personality()
    unfinished.personality.CopyFrom(
        common.Personality(display_name="Wren", error_message=LONG_VOICE)
    )
    ids = await finish_unfinished(pool, channel, unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert (ids, pool.sent) == ([700], [])
    ((_, shown),) = pool.edited
    assert len(shown) <= DISCORD_LIMIT
    assert shown.startswith(f"{header}\n*The candle gutters")
    assert shown.endswith("…\n-# your data is being deleted, as you asked")


async def test_a_long_refusal_is_shown_whole_when_the_previews_left_hold_it() -> None:
    header = f"{REPLY_QUOTE_PREFIX} Alice: tell me a story"
    channel = Channel({700: f"{header}\nOnce upon a", 701: "time there"})
    pool = DiscordLikePool(channel)
    unfinished = withheld_without_personality()
    unfinished.personality.CopyFrom(
        common.Personality(display_name="Wren", error_message=LONG_VOICE)
    )
    ids = await finish_unfinished(pool, channel, unfinished)  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert (ids, pool.sent) == ([700, 701], [])
    whole = "\n".join(text for _, text in pool.edited)
    assert whole.replace("\n", " ").count("The candle gutters") == LONG_VOICE.count("The candle")
    assert whole.endswith("\n-# your data is being deleted, as you asked")


_VOICE_UNIT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(
    voice=st.text(st.characters(codec="utf-8"), max_size=2000)
    | st.builds(lambda unit, n: (unit * 2000)[:n], _VOICE_UNIT, st.integers(1200, 2000)),
    previews=st.integers(min_value=1, max_value=3),
    header=st.booleans(),
)
@example(voice=LONG_VOICE, previews=1, header=True)
@example(voice="0" * 2000, previews=2, header=True)
def test_a_withheld_answer_never_posts_whatever_its_voice(
    voice: str, previews: int, header: bool
) -> None:
    """Any error message (up to Discord's 2000 characters), any number of previews left:
    nothing is posted, each message fits, and the reason line is shown whole at the end."""
    ids = [700 + i for i in range(previews)]
    quote = f"{REPLY_QUOTE_PREFIX} **Alice** tell me a story · https://discord.com/channels/1/2/3\n"
    channel = Channel({i: f"{quote if header else ''}Once upon a" for i in ids})
    pool = DiscordLikePool(channel)
    unfinished = withheld_without_personality()
    unfinished.preview_message_ids[:] = [str(i) for i in ids]
    unfinished.personality.CopyFrom(common.Personality(display_name="Wren", error_message=voice))
    shown = asyncio.run(finish_unfinished(pool, channel, unfinished))  # type: ignore[arg-type]  # fakes of the pool and the channel
    assert pool.sent == []
    assert shown
    assert shown == ids[: len(shown)]  # the first previews, in order
    assert all(len(text) <= DISCORD_LIMIT for _, text in pool.edited)
    last_line = pool.edited[-1][1].split("\n")[-1]
    assert last_line == "-# your data is being deleted, as you asked"
