"""Finding the personality names a message addresses."""

from tzurot.bot.addressing import candidate_names


def test_single_word_mention_at_start() -> None:
    assert candidate_names("@Lilith hi there")[-1] == ("Lilith", "hi there")


def test_multi_word_names_are_tried_longest_first() -> None:
    names = [name for name, _ in candidate_names("@the night queen hello")]
    assert names[:3] == ["the night queen hello", "the night queen", "the night"]
    assert names[-1] == "the"


def test_trailing_punctuation_is_not_part_of_the_name() -> None:
    assert ("Lilith", "are you there?") in candidate_names("@Lilith, are you there?")


def test_mention_in_the_middle_keeps_the_text_before() -> None:
    assert ("Sage", "hey what is 2+2") in candidate_names("hey @Sage what is 2+2")


def test_no_mention() -> None:
    assert candidate_names("just chatting") == []
    assert candidate_names("mail me at a@b.c") == []
