"""Finding the personalities a message addresses by @name or @alias, and by a reply."""

from tzurot.bot.addressing import PostedAs, match_mentions, reply_addressee, strip_mentions
from tzurot.v1 import common_pb2 as common

LILITH = common.Personality(
    id="1", slug="lilith", display_name="Lilith", aliases=["lil", "the night queen"]
)
NIGHT = common.Personality(id="2", slug="the-night", display_name="The Night")
SAGE = common.Personality(id="3", slug="sage", display_name="Sage")
ALL = [LILITH, NIGHT, SAGE]


def names(content: str, limit: int = 5) -> list[str]:
    return [a.personality.slug for a in match_mentions(content, ALL, limit)]


def test_a_mention_is_case_insensitive_and_found_anywhere() -> None:
    assert names("@lilith hi") == ["lilith"]
    assert names("hey @LILITH, you there?") == ["lilith"]


def test_aliases_address_the_personality() -> None:
    assert names("@lil hi") == ["lilith"]


def test_the_longest_name_wins() -> None:
    found = match_mentions("@the night queen sing", ALL)
    assert [a.personality.slug for a in found] == ["lilith"]
    assert found[0].matched_text == "@the night queen"
    assert names("@the night is dark") == ["the-night"]


def test_a_name_must_end_at_a_word_boundary() -> None:
    assert names("@lilithx hi") == []
    assert names("@sage's idea") == []
    assert names("@sage, idea") == ["sage"]


def test_several_personalities_answer_in_order_each_once() -> None:
    assert names("@Sage and @Lilith and @sage again") == ["sage", "lilith"]


def test_at_most_limit_personalities() -> None:
    assert names("@Sage @Lilith @the night", limit=2) == ["sage", "lilith"]


def test_an_email_address_is_not_a_mention() -> None:
    assert names("mail sage@lilith.com") == []


def test_strip_mentions_leaves_the_words_for_the_model() -> None:
    content = "@Lilith hi there"
    assert strip_mentions(content, match_mentions(content, ALL)) == "hi there"
    content = "hey @Sage and @Lilith, what now?"
    assert strip_mentions(content, match_mentions(content, ALL)) == "hey and , what now?"


def test_a_reply_reaches_the_personality_its_answer_was_posted_as() -> None:
    assert reply_addressee(PostedAs("1", "lilith"), LILITH) is LILITH


def test_a_reply_to_a_personality_the_gateway_no_longer_finds_addresses_nobody() -> None:
    # Deleted, being deleted, or someone else's private one: the gateway says the same.
    assert reply_addressee(PostedAs("1", "lilith"), None) is None


def test_a_reply_never_reaches_another_personality_now_holding_the_name() -> None:
    reborn = common.Personality(id="9", slug="lilith", display_name="Lilith")
    assert reply_addressee(PostedAs("1", "lilith"), reborn) is None


def test_a_message_without_a_job_goes_by_its_name() -> None:
    # A greeting posted before a restart: only the name it was posted under is known.
    assert reply_addressee(PostedAs("", "Sage"), SAGE) is SAGE


def test_a_letter_that_folds_to_two_leaves_the_mention_where_it_was_written() -> None:
    """ "ß" case-folds to "ss": the mention's text and offset are the original's, so only
    the mention is taken out of what the model reads."""
    content = "Grüße aus der Straße, @Lilith! wie geht's?"
    (found,) = match_mentions(content, ALL)
    assert (found.matched_text, found.offset) == ("@Lilith", content.index("@"))
    assert strip_mentions(content, [found]) == "Grüße aus der Straße, ! wie geht's?"
    strasse = common.Personality(id="9", slug="strasse", display_name="Straße")
    (named,) = match_mentions("hallo @STRASSE und @straße", [strasse])
    assert (named.matched_text, named.offset) == ("@STRASSE", 6)
    assert match_mentions("@ß", [common.Personality(id="8", slug="s", display_name="s")]) == []
