"""The memory query of a message always fits memory's limit; short messages pass whole."""

from hypothesis import given
from hypothesis import strategies as st

from tzurot.inference.memory_query import MEMORY_QUERY_MAX_CHARS, memory_query


def test_a_short_message_is_the_query() -> None:
    assert memory_query("what did I say about my cat?") == "what did I say about my cat?"


def test_a_long_message_keeps_its_start_and_its_question() -> None:
    body = " ".join(f"filler{i}" for i in range(3000))
    message = f"About my cat Mochi: {body} So, what was her favourite toy?"
    query = memory_query(message)
    assert len(query) <= MEMORY_QUERY_MAX_CHARS
    assert query.startswith("About my cat Mochi:")
    assert query.endswith("what was her favourite toy?")
    assert " … " in query


@given(st.text(max_size=20_000), st.integers(min_value=10, max_value=5_000))
def test_any_message_fits_any_limit(message: str, limit: int) -> None:
    assert len(memory_query(message, limit)) <= limit
