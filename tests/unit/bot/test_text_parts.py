"""Mentions, attachments, links and settings: the small pure parts of reading a message."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from tzurot.bot.attachments import AttachmentLimits, kind_of, triage
from tzurot.bot.config import BotSettings
from tzurot.bot.dedup import SeenMessages
from tzurot.bot.mentions import ChannelInfo, resolve_mentions
from tzurot.bot.references import linked_ids, strip_reply_quote
from tzurot.v1 import common_pb2 as common

CHANNELS = {1: ChannelInfo("general", "anything goes"), 2: ChannelInfo("art", None)}


def resolve(content: str, **limits: int) -> str:
    return resolve_mentions(
        content,
        channel=CHANNELS.get,
        role={7: "mods"}.get,
        user={9: "Alice"}.get,
        **limits,
    )


def test_channel_role_and_user_mentions_become_names_with_topics() -> None:
    text = resolve("see <#1> and <#2>, ask <@&7> or <@!9>")
    assert text.startswith("see #general and #art, ask @mods or @Alice")
    assert "#general is about: anything goes" in text


def test_mentions_beyond_the_limit_stay_as_they_are() -> None:
    text = resolve("<#1> <#2>", max_channels=1)
    assert text.startswith("#general <#2>")
    assert resolve("<@&7> <@&8>", max_roles=0) == "<@&7> <@&8>"


def test_unknown_ids_are_left_alone() -> None:
    assert resolve("<#5>") == "<#5>"


def test_attachments_are_triaged_by_kind_and_size() -> None:
    limits = AttachmentLimits(max_image_bytes=100, max_audio_bytes=1000)
    items = [
        common.Attachment(filename="a.png", content_type="image/png", size_bytes=50),
        common.Attachment(filename="voice-message.ogg", content_type="audio/ogg", size_bytes=500),
        common.Attachment(filename="big.jpg", content_type="image/jpeg", size_bytes=5000),
        common.Attachment(filename="doc.pdf", content_type="application/pdf", size_bytes=5),
    ]
    usable, notes = triage(items, limits)
    assert [a.filename for a in usable] == ["a.png", "voice-message.ogg"]
    assert any("big.jpg" in n and "not read" in n for n in notes)
    assert any("doc.pdf" in n and "only images and audio" in n for n in notes)
    assert kind_of("", "clip.mp3") == "audio"


def test_message_links_are_found() -> None:
    content = (
        "look https://discord.com/channels/1/22/333 and https://ptb.discord.com/channels/1/4/5"
    )
    assert linked_ids(content) == [(22, 333), (4, 5)]


def test_our_reply_quote_is_stripped_from_referenced_answers() -> None:
    assert strip_reply_quote("-# ↪ **Alice** hi · link\nthe answer") == "the answer"
    assert strip_reply_quote("plain") == "plain"


def test_a_message_is_seen_once_and_memory_is_bounded() -> None:
    seen = SeenMessages(capacity=2)
    assert seen.first_time(1)
    assert not seen.first_time(1)
    seen.first_time(2)
    seen.first_time(3)
    assert seen.first_time(1)  # forgotten: only the last two are kept


def test_the_shard_group_comes_from_the_statefulset_ordinal(tmp_path: Path) -> None:
    settings = BotSettings(tls_dir=tmp_path, shard_count=8, shard_groups=4, pod_name="bot-2")
    assert settings.shard_ids == [2, 6]
    one_each = BotSettings(tls_dir=tmp_path, shard_count=2, shard_index=1)
    assert one_each.shard_ids == [1]
    assert BotSettings(tls_dir=tmp_path).shard_ids is None
    with pytest.raises(ValidationError, match="out of range"):
        BotSettings(tls_dir=tmp_path, shard_count=4, shard_groups=2, shard_index=2)
    with pytest.raises(ValidationError, match="need shard_count"):
        BotSettings(tls_dir=tmp_path, shard_index=1)
    with pytest.raises(ValidationError, match="would have no shard"):
        BotSettings(tls_dir=tmp_path, shard_count=2, shard_groups=3)
