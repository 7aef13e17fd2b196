"""The bot's own rules for Discord's limits: the webhook cadence, remembered 403s, command
hashes, IDENTIFY slots, code-fence splitting, PluralKit reply embeds."""

from __future__ import annotations

from types import SimpleNamespace

import discord
import pytest

from tests.unit.bot.test_closed_threads import Thread
from tzurot.bot.cadence import WebhookCadence, webhook_key
from tzurot.bot.delivery import ForbiddenChannels
from tzurot.bot.proxied import reply_embed_target
from tzurot.bot.sharding import IdentifySchedule, command_hash
from tzurot.bot.splitting import split_message


def test_answers_streaming_through_one_webhook_share_its_budget() -> None:
    now = [0.0]
    cadence = WebhookCadence(0.2, clock=lambda: now[0])
    assert cadence.interval(1) == 0.2
    for _ in range(4):
        cadence.start(1)
    # 4 answers share 4 of the 5 requests per 2 s: each edits every 2 s at most.
    assert cadence.interval(1) == pytest.approx(2.0)
    assert cadence.interval(2) == 0.2  # another webhook is not slowed down
    cadence.limited(1, 1.0)
    assert cadence.interval(1) == pytest.approx(4.0)  # after a 429: slower for a while
    now[0] = 100.0
    assert cadence.interval(1) == pytest.approx(2.0)
    for _ in range(4):
        cadence.stop(1)
    assert cadence.interval(1) == 0.2


def test_a_lone_answer_keeps_the_configured_pace() -> None:
    cadence = WebhookCadence(1.5)
    cadence.start(1)
    assert cadence.interval(1) == 1.5  # the floor, as before any sharing
    fast = WebhookCadence(0.0)
    fast.start(1)
    assert fast.interval(1) == pytest.approx(0.5)  # never faster than the webhook's budget
    fast.stop(1)
    assert fast.interval(1) == 0.0  # nothing streaming: nothing to share


def test_the_threads_of_a_channel_stream_through_its_one_webhook() -> None:
    """A thread posts through its parent's webhook (`thread_id`), and Discord counts a
    webhook's requests per webhook: answers in three threads of one channel share one budget,
    as three answers in the channel itself would."""
    threads = [Thread() for _ in range(3)]
    for n, thread in enumerate(threads):
        thread.id = 100 + n
    assert {webhook_key(t) for t in threads} == {41}  # Parent's id
    assert webhook_key(threads[0].parent) == 41
    assert webhook_key(SimpleNamespace(id=7)) == 7  # no webhook can post there: its own id
    cadence = WebhookCadence(0.5)
    for thread in threads:
        cadence.start(webhook_key(thread))
    assert cadence.interval(webhook_key(threads[0])) == pytest.approx(1.5)  # a third each
    cadence.limited(webhook_key(threads[1]), 1.0)  # a 429 in one thread slows them all
    assert cadence.interval(webhook_key(threads[2])) == pytest.approx(3.0)


def test_a_403_is_remembered_for_a_while() -> None:
    now = [0.0]
    forbidden = ForbiddenChannels(600, clock=lambda: now[0])
    forbidden.remember(7)
    assert 7 in forbidden
    assert 8 not in forbidden
    now[0] = 601
    assert 7 not in forbidden


def test_the_command_hash_ignores_what_discord_adds() -> None:
    mine = [{"name": "help", "description": "How", "type": 1, "options": [], "nsfw": False}]
    theirs = [
        {
            "id": "1",
            "application_id": "2",
            "version": "3",
            "name": "help",
            "description": "How",
            "type": 1,
            "default_member_permissions": None,
        }
    ]
    assert command_hash(mine) == command_hash(theirs)
    assert command_hash(mine) != command_hash([{**mine[0], "description": "Other"}])


def test_shards_identify_in_their_max_concurrency_slots() -> None:
    schedule = IdentifySchedule(5.0)
    schedule.max_concurrency = 2
    assert schedule.delay(0) == pytest.approx(0.0, abs=0.1)
    assert schedule.delay(1) == pytest.approx(0.0, abs=0.1)  # same window, other bucket
    assert schedule.delay(2) == pytest.approx(5.0, abs=0.1)
    assert schedule.delay(5) == pytest.approx(10.0, abs=0.1)
    assert schedule.delay(0) == 5.0  # a re-IDENTIFY waits one window


def test_a_split_inside_a_code_block_closes_and_reopens_the_fence() -> None:
    code = "\n".join(f"    line_{i} = {i}" for i in range(300))
    pieces = split_message(f"Intro.\n\n```py\n{code}\n```\nOutro.")
    assert all(len(p) <= 2000 for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)
    assert all(p.startswith("```py\n") for p in pieces[2:])
    joined = "\n".join(p.removeprefix("```py\n").removesuffix("\n```") for p in pieces[1:])
    assert "    line_299 = 299" in joined  # indentation kept across the cut


def test_a_pluralkit_reply_embed_points_at_the_replied_message() -> None:
    embed = discord.Embed(description="**[Reply to:](https://discord.com/channels/1/22/333)** hi")
    embed.set_author(name="Lilith\u2004\u21a9\ufe0f", url="https://discord.com/channels/1/22/333")

    def message(*embeds: discord.Embed) -> discord.Message:
        return SimpleNamespace(embeds=list(embeds))  # type: ignore[return-value]

    assert reply_embed_target(message(embed)) == (22, 333)
    plain = discord.Embed(description="https://discord.com/channels/1/22/333")
    assert reply_embed_target(message(plain)) is None  # an ordinary link is not a reply


def test_a_429_after_the_slow_down_ran_out_starts_it_again_at_twice() -> None:
    """A webhook that stays busy (answers coming and going in its threads) keeps its entry;
    429s hours apart must not compound: each starts the slow-down at 2x again, and only one
    while it lasts doubles it."""
    now = [0.0]
    cadence = WebhookCadence(1.5, clock=lambda: now[0])
    cadence.start(41)
    for hour in range(3):
        now[0] = hour * 3600.0
        cadence.limited(41, 0.5)
        now[0] += 60
    assert cadence.interval(41) == 1.5
    cadence.limited(41, 0.5)
    assert cadence.interval(41) == 1.5 * 2
    cadence.limited(41, 0.5)  # again while it lasts
    assert cadence.interval(41) == 1.5 * 4
