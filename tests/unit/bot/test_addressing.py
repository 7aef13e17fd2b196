"""The mentions the gateway found taken out of the text, and whom a reply addresses."""

from tzurot.bot.addressing import Addressed, PostedAs, reply_addressee, strip_mentions
from tzurot.v1 import common_pb2 as common

LILITH = common.Personality(
    id="1", slug="lilith", display_name="Lilith", aliases=["lil", "the night queen"]
)
NIGHT = common.Personality(id="2", slug="the-night", display_name="The Night")
SAGE = common.Personality(id="3", slug="sage", display_name="Sage")
ALL = [LILITH, NIGHT, SAGE]


def test_strip_mentions_leaves_the_words_for_the_model() -> None:
    content = "@Lilith hi there"
    assert strip_mentions(content, [Addressed(LILITH, "@Lilith", 0)]) == "hi there"
    content = "hey @Sage and @Lilith, what now?"
    found = [Addressed(SAGE, "@Sage", 4), Addressed(LILITH, "@Lilith", 14)]
    assert strip_mentions(content, found) == "hey and , what now?"


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


def test_a_mention_found_in_folded_text_is_taken_out_where_it_was_written() -> None:
    """The gateway gives the mention's text and offset in the original ("ß" folds to "ss"):
    only the mention is taken out of what the model reads."""
    content = "Grüße aus der Straße, @Lilith! wie geht's?"
    found = [Addressed(LILITH, "@Lilith", content.index("@"))]
    assert strip_mentions(content, found) == "Grüße aus der Straße, ! wie geht's?"


def test_emphasis_left_empty_around_a_mention_is_taken_out_with_it() -> None:
    """The gateway's mention ends before Discord's closing '_' (`_waves at @Sage_`): a pair
    of markers that held only the mention goes with it, and one left holding text keeps no
    space before its closer, so the model reads no stray markers."""
    cases = {
        "_waves at @Sage_": "_waves at_",
        "__@Sage__": "",
        "___@Sage___ hi": "hi",
        "_@Sage_, what do you think?": "what do you think?",
        "**_@Sage_** hello": "hello",
        "||__@Sage__|| psst": "psst",
        "_@Sage waves_": "_waves_",
        "hi __@Sage__ and _@Lilith_!": "hi and !",
        # Several mentions in one emphasis, spaces inside its markers, runs of unequal length.
        "_@Sage @Lilith_ hi": "hi",
        "||@Sage||||@Lilith|| hi": "hi",
        "**__@Sage__ _@Lilith_**": "",
        "_@Sage @Lilith waves_": "_waves_",
        "__ @Sage__": "",
        "_ @Sage_": "",
        "** @Sage **": "",
        "**__ @Sage__**": "",
        "__@Sage_": "_",  # Discord shows "_" then italic "@Sage"
    }
    for content, model_reads in cases.items():
        found = [
            Addressed(SAGE, content[at : at + 5], at) for at in [content.find("@Sage")] if at != -1
        ]
        if "@Lilith" in content:
            found.append(Addressed(LILITH, "@Lilith", content.index("@Lilith")))
        assert strip_mentions(content, found) == model_reads, content


def test_markers_around_more_than_the_mention_stay() -> None:
    """Only a pair that held nothing but the mention goes: "_" then text is italics the
    writer meant, and unpaired markers are text."""
    content = "look @Sage*here*"  # italics opening after the mention
    assert strip_mentions(content, [Addressed(SAGE, "@Sage", 5)]) == "look *here*"
    content = "*hi* @Sage *bye*"
    assert strip_mentions(content, [Addressed(SAGE, "@Sage", 5)]) == "*hi* *bye*"
    content = "a_b @Sage c_d"
    assert strip_mentions(content, [Addressed(SAGE, "@Sage", 4)]) == "a_b c_d"
    content = "*hi* @Sage *bye*!"  # a closer and an opener around it, spaced
    assert strip_mentions(content, [Addressed(SAGE, "@Sage", 5)]) == "*hi* *bye*!"
    content = "_a_ @Sage _b_"
    assert strip_mentions(content, [Addressed(SAGE, "@Sage", 4)]) == "_a_ _b_"
    # A closer after text that is no letter is still a closer: its italics keep it.
    content = "*wow!* @Sage* ok"
    assert strip_mentions(content, [Addressed(SAGE, "@Sage", 7)]).startswith("*wow!*")
    content = "**hi**@Sage* ok"
    assert strip_mentions(content, [Addressed(SAGE, "@Sage", 6)]).startswith("**hi**")


def _found(content: str) -> list[Addressed]:
    """Each "@Sage" and "@Lilith" in `content`, as the gateway reports them."""
    people = [(SAGE, "@Sage"), (LILITH, "@Lilith")]
    return [Addressed(p, name, content.index(name)) for p, name in people if name in content]


def test_a_mention_between_two_formattings_leaves_both_whole_and_apart() -> None:
    """Discord reads marks left to right: "*hi*@Sage*bye*" is italic "hi", "@Sage" and italic
    "bye". The marks around the mention close and open other formatting: they stay, with a
    space between, so the model reads the two spans Discord shows, not one ("*hibye*") nor
    marks run together into other emphasis ("*hi**bye*")."""
    cases = {
        "*hi*@Sage*bye*": "*hi* *bye*",
        "**a**@Sage**b**": "**a** **b**",
        "||a||@Sage||b||": "||a|| ||b||",
        "~~a~~@Sage~~b~~": "~~a~~ ~~b~~",
        "_a_@Sage_b_": "_a_ _b_",
        "__a__@Sage__b__": "__a__ __b__",
        "*hi*@Sage @Lilith*bye*": "*hi* *bye*",
        "*a*_@Sage_*b*": "*a* *b*",  # the italics that held only the mention go
        "_**a**@Sage**_": "_**a** **_",  # the bold's closer stays
        "**hi**@Sage* ok": "**hi** * ok",  # a '*' nothing closes stays apart too
        "*hi!*@Sage bye": "*hi!* bye",  # a closer holds no text after it: the space stays
    }
    for content, model_reads in cases.items():
        assert strip_mentions(content, _found(content)) == model_reads, content


def test_marks_of_formatting_holding_the_mention_stay_together() -> None:
    """Where a mark beside the mention opens or closes formatting that holds it and more, and
    whose markers touch no space on its text's side, the marks meet without a space: '*'
    italics open before no space and close after none, so "*pats **you** *" would show no
    italics and a stray '*'."""
    cases = {
        "*pats **you** @Sage*": "*pats **you***",  # the bold closes, then the italics
        "*@Sage **hugs** you*": "***hugs** you*",  # the italics open, then the bold
        "***wow** @Sage*": "***wow***",
        "*I like **this** @Sage*": "*I like **this***",
        "*a **b** @Sage*, ok": "*a **b***, ok",
        "*@Sage **really** likes this*": "***really** likes this*",
        "*@Sage**wave*": "***wave*",
        "__***x** @Sage*__": "__***x***__",
        "_*@Lilith **hello***_": "_***hello***_",
        # Bold's closer may follow a space: it stays apart ("*there****" would close nothing).
        "***hi *there*@Sage***": "***hi *there* ***",
    }
    for content, model_reads in cases.items():
        assert strip_mentions(content, _found(content)) == model_reads, content


def test_marks_are_formatting_only_where_discord_reads_them_so() -> None:
    """Which marks pair is read as the gateway reads them (tzurot.runtime.emphasis): a run of
    four or more '_' opens nothing (for the gateway "____@Sage__" mentions nobody), so the
    space after it is no space inside formatting; '*' italics and strikethrough open before
    no space, so those marks are text and stay."""
    cases = {
        "____@Sage hi": "____ hi",  # Discord: italic "__", then "@Sage hi"
        "* @Sage* hi": "* * hi",
        "~~ @Sage~~ hi": "~~ ~~ hi",
        "***@Sage* hi**": "**hi**",  # italic "@Sage" inside the bold
        "_waves at @Sage _": "_waves at_",
    }
    for content, model_reads in cases.items():
        assert strip_mentions(content, _found(content)) == model_reads, content
