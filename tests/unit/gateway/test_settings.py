"""The settings cascade: the most specific level wins and says where the value came from."""

import pytest

from tzurot.gateway.domain import ConfigSource, Location
from tzurot.gateway.settings import SPECS, channel_ids, resolve, stored_levels, validate
from tzurot.runtime.errors import InvalidArgument


def test_defaults_are_hardcoded() -> None:
    resolved = resolve({})
    assert {k: (r.value, r.source) for k, r in resolved.items()} == {
        k: (spec.default, ConfigSource.HARDCODED) for k, spec in SPECS.items()
    }
    assert resolved["max_history_messages"].value == 50
    assert resolved["memory_threshold"].value == 0.5


def test_each_level_overrides_the_ones_before() -> None:
    levels: dict[ConfigSource, dict[str, object]] = {
        ConfigSource.GLOBAL: {"max_history_messages": 80, "max_images": 4},
        ConfigSource.PERSONALITY: {"max_history_messages": 60},
        ConfigSource.CHANNEL: {"max_history_messages": 40, "voice_mode": "auto"},
        ConfigSource.USER: {"max_history_messages": 30},
        ConfigSource.USER_PERSONALITY: {"max_history_messages": 20},
    }
    resolved = resolve(levels, {"max_history_messages": 45})
    assert (resolved["max_history_messages"].value, resolved["max_history_messages"].source) == (
        20,
        ConfigSource.USER_PERSONALITY,
    )
    assert (resolved["max_images"].value, resolved["max_images"].source) == (
        4,
        ConfigSource.GLOBAL,
    )
    assert resolved["voice_mode"].source is ConfigSource.CHANNEL
    del levels[ConfigSource.USER_PERSONALITY]
    assert resolve(levels)["max_history_messages"].source is ConfigSource.USER


def test_an_invalid_stored_value_falls_back_to_the_level_below() -> None:
    resolved = resolve(
        {ConfigSource.GLOBAL: {"max_images": 3}, ConfigSource.USER: {"max_images": 99}}
    )
    assert (resolved["max_images"].value, resolved["max_images"].source) == (
        3,
        ConfigSource.GLOBAL,
    )


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("max_history_messages", 101, "value"),
        ("max_history_messages", 0, "value"),
        ("max_history_messages", 2.5, "value"),
        ("max_history_messages", True, "value"),
        ("memory_threshold", 1.5, "value"),
        ("model_footer", "yes", "value"),
        ("voice_mode", "loud", "value"),
        ("colour", 1, "key"),
    ],
)
def test_validation_names_the_field(key: str, value: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(key, value)
    assert caught.value.field == field


def test_validation_normalizes() -> None:
    assert validate("max_history_messages", 100.0) == 100
    assert validate("memory_threshold", 1) == 1.0
    assert validate("model_footer", False) is False


def test_images_and_audio_are_limited_separately() -> None:
    from tzurot.gateway.domain import Attachment
    from tzurot.gateway.settings import limit_attachments

    files = [
        Attachment("u1", "image/png"),
        Attachment("u2", "audio/ogg"),
        Attachment("u3", "image/jpeg"),
        Attachment("u4", "audio/mpeg; codecs=mp3"),
        Attachment("u5", "text/plain"),
        Attachment("u6", "audio/wav"),
    ]
    kept = limit_attachments(files, max_images=1, max_audio=2)
    assert [a.url for a in kept] == ["u1", "u2", "u4", "u5"]
    assert [a.url for a in limit_attachments(files, max_images=0, max_audio=0)] == ["u5"]


def test_a_threads_channel_level_is_its_own_over_its_parents_key_by_key() -> None:
    rows = [
        ("global", "", "max_images", 8),
        ("channel", "parent", "voice_mode", "off"),
        ("channel", "parent", "max_images", 4),
        ("channel", "thread", "max_images", 2),
        ("user", "u1", "voice_mode", "always"),
    ]
    levels = stored_levels(rows, "thread")
    assert levels == {
        ConfigSource.GLOBAL: {"max_images": 8},
        ConfigSource.CHANNEL: {"voice_mode": "off", "max_images": 2},
        ConfigSource.USER: {"voice_mode": "always"},
    }
    # In the channel itself, only its own rows are read (the parent is the conversation).
    assert stored_levels(rows[1:3], "parent") == {
        ConfigSource.CHANNEL: {"voice_mode": "off", "max_images": 4}
    }


def test_channel_ids_name_the_thread_and_its_parent() -> None:
    thread = Location(guild_id="g", channel_id="parent", thread_id="thread")
    assert channel_ids(thread) == {"channel_id": "thread", "parent_channel_id": "parent"}
    assert channel_ids(Location(channel_id="c")) == {"channel_id": "c", "parent_channel_id": ""}
    assert channel_ids(None) == {}
