"""Webhook usernames Discord accepts."""

from hypothesis import given
from hypothesis import strategies as st

from tzurot.bot.webhooks import USERNAME_LIMIT, sanitize_username


def test_an_ordinary_name_is_kept() -> None:
    assert sanitize_username("Lilith") == "Lilith"


def test_names_are_cut_to_80_characters() -> None:
    assert len(sanitize_username("x" * 200)) == USERNAME_LIMIT


def test_forbidden_words_are_broken_invisibly() -> None:
    name = sanitize_username("Clyde of Discord")
    assert "clyde" not in name.lower()
    assert "discord" not in name.lower()
    assert name.replace("\u200b", "") == "Clyde of Discord"


def test_reserved_and_too_short_names_are_made_acceptable() -> None:
    assert sanitize_username("everyone").lower() != "everyone"
    assert len(sanitize_username("A")) >= 2
    assert sanitize_username("   ") == "Personality"


@given(st.text(max_size=200))
def test_any_name_becomes_acceptable(name: str) -> None:
    clean = sanitize_username(name)
    assert 2 <= len(clean) <= USERNAME_LIMIT
    assert "clyde" not in clean.lower()
    assert "discord" not in clean.lower()
    assert clean.lower() not in {"everyone", "here"}
