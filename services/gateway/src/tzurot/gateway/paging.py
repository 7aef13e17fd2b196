"""Pages of a list ordered by a unique string key: bounded sizes and opaque tokens. Pure.

A token names the last key of the page it ends (base64url of a small versioned JSON), so
the next page starts after it even when items were added or removed in between. A token
that is not one of ours is INVALID_ARGUMENT naming `page.page_token`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tzurot.runtime.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_TOKEN_CHARS = 512
_VERSION = 1

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    size: int = 0
    token: str = ""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str


def page_size(requested: int) -> int:
    """0 is the default size; larger than the maximum is the maximum; negative is refused."""
    if requested < 0:
        raise InvalidArgument("page.page_size", "page_size must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(after: str) -> str:
    raw = json.dumps({"v": _VERSION, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> str:
    """The key the previous page ended with."""
    try:
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError("length")
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = payload["a"]
        if payload["v"] != _VERSION or not isinstance(after, str):
            raise ValueError("fields")
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidArgument(
            "page.page_token", "page_token is not a token this list returned"
        ) from None
    return after


def paginate(items: Sequence[T], request: PageRequest, key: Callable[[T], str]) -> Page[T]:
    """The page of `items` (sorted by `key`, unique) that `request` asks for."""
    size = page_size(request.size)
    after = decode_token(request.token) if request.token else None
    rest = [item for item in items if after is None or key(item) > after]
    page = rest[:size]
    next_token = encode_token(key(page[-1])) if len(rest) > size else ""
    return Page(page, next_token)
