"""@mentions: longest match first, word boundaries, one result per personality, limits."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tzurot.gateway.domain import CharacterFields, Personality
from tzurot.gateway.mentions import find_mentions

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def personality(slug: str, name: str, *aliases: str) -> Personality:
    return Personality(
        id=slug,
        slug=slug,
        display_name=name,
        aliases=aliases,
        avatar_url="",
        system_prompt="",
        character=CharacterFields(),
        default_llm_config_id=None,
        error_message="",
        birthday="",
        owner_user_id=None,
        public=True,
        nsfw=False,
        created_at=NOW,
        updated_at=NOW,
    )


THE = personality("the", "The")
ORACLE = personality("oracle", "Oracle", "the oracle")
LILITH = personality("lilith", "Lilith", "lil")
ALL = [THE, ORACLE, LILITH]


def found(content: str, limit: int = 5) -> list[tuple[str, str, int]]:
    return [(p.slug, text, offset) for p, text, offset in find_mentions(content, ALL, limit)]


def test_the_longest_name_wins() -> None:
    assert found("ask @the  Oracle now") == [("oracle", "@the  Oracle", 4)]
    assert found("@the other one") == [("the", "@the", 0)]


def test_names_end_at_a_word_boundary() -> None:
    assert found("@lilithx and @lil, @lilith") == [("lilith", "@lil", 13)]
    assert found("mail me at x@lil-y") == []


def test_each_personality_once_in_order_of_appearance_up_to_the_limit() -> None:
    assert found("@Lil @oracle @lilith @the") == [
        ("lilith", "@Lil", 0),
        ("oracle", "@oracle", 5),
        ("the", "@the", 21),
    ]
    assert found("@Lil @oracle @the", limit=2) == [("lilith", "@Lil", 0), ("oracle", "@oracle", 5)]


def test_no_mentions() -> None:
    assert found("hello lilith, no at sign") == []
    assert found("@") == []


def test_a_letter_that_lowers_to_two_leaves_the_mention_where_it_was_written() -> None:
    """ "İ".lower() is two characters: the mention's text and offset are the original's."""
    content = "İstanbul'dan selam @Lilith nasılsın"  # noqa: RUF001 - Turkish (a dotless i)
    assert found(content) == [("lilith", "@Lilith", content.index("@"))]
    istanbul = personality("istanbul", "İstanbul")
    mentioned = find_mentions("hi @İstanbul!", [istanbul], 5)
    assert [(text, offset) for _p, text, offset in mentioned] == [("@İstanbul", 3)]
    # "i" is half of what "İ" lowers to: not a mention of "i".
    assert find_mentions("@İ hi", [personality("i", "i")], 5) == []


def test_a_name_wins_over_another_personalitys_alias_of_the_same_text() -> None:
    """Rows from before the gateway refused such names: `@zed` is Zed's own name and an
    alias of Abel (sorted first by slug); the name wins, in whatever order they come."""
    abel = personality("abel", "Abel", "zed", "nova")
    zed = personality("zed", "Zed")
    nova = personality("nova-star", "Nova")  # a display name against Abel's alias
    for order in ([abel, zed, nova], [nova, zed, abel]):
        mentioned = find_mentions("@zed and @Nova", order, 5)
        assert [(p.slug, text) for p, text, _ in mentioned] == [
            ("zed", "@zed"),
            ("nova-star", "@Nova"),
        ]


def test_equal_names_go_to_the_oldest_personality_whatever_the_order() -> None:
    older = replace(personality("b-twin", "Twin"), created_at=NOW - timedelta(days=1))
    newer = personality("a-twin", "Twin")
    for order in ([newer, older], [older, newer]):
        assert [p.slug for p, _, _ in find_mentions("@twin", order, 5)] == ["b-twin"]
