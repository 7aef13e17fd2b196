"""List pages: bounded sizes, opaque tokens, every item exactly once."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tzurot.gateway.paging import MAX_PAGE_SIZE, PageRequest, decode_token, encode_token, paginate
from tzurot.runtime.errors import InvalidArgument


@given(st.sets(st.text(min_size=1, max_size=8), max_size=60), st.integers(0, 120))
def test_paging_returns_every_item_once_in_order(keys: set[str], size: int) -> None:
    items = sorted(keys)
    seen: list[str] = []
    token = ""
    for _ in range(len(items) + 2):
        page = paginate(items, PageRequest(size, token), key=lambda k: k)
        assert len(page.items) <= min(size or 50, MAX_PAGE_SIZE)
        seen += page.items
        token = page.next_token
        if not token:
            break
    assert seen == items


def test_a_token_round_trips() -> None:
    assert decode_token(encode_token("sage")) == "sage"


@pytest.mark.parametrize("token", ["nonsense", "eyJ2IjoxfQ", "x" * 5000, "%%%", "bnVsbA"])
def test_a_foreign_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        paginate(["a"], PageRequest(1, token), key=lambda k: k)
    assert caught.value.field == "page.page_token"


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        paginate(["a"], PageRequest(-1), key=lambda k: k)
    assert caught.value.field == "page.page_size"
