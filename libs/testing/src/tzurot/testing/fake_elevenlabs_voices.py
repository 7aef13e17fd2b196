"""The fake ElevenLabs' voices as its API reference shows them: the VoiceResponseModel shape
they are listed in, `GET /v2/voices`' filters and paging (`page_size` at most 100, an opaque
`next_page_token`, `has_more`, `total_count`) and the serialized `labels` Add Voice takes.

Kept apart from the server (tzurot.testing.fake_elevenlabs) so each stays one job: this module
is plain data and rules, no HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10
VOICE_TYPES = ("personal", "community", "default", "workspace", "non-default")
CATEGORIES = ("premade", "cloned", "generated", "professional")
SORTS = ("created_at_unix", "name")


@dataclass
class FakeVoice:
    voice_id: str
    name: str
    category: str
    sample_count: int = 0
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    created_at_unix: int = 0
    account: str = ""
    """The account that made it (a custom voice: only that account's keys list, speak with or
    delete it); empty for a default (premade) voice, which every account has."""

    def visible_to(self, account: str) -> bool:
        """Whether `account` has this voice: a default voice, or one of its own."""
        return self.category == "premade" or self.account == account

    def listed(self) -> dict[str, Any]:
        """As the vendor lists it (VoiceResponseModel: its required fields and ours)."""
        return {
            "voice_id": self.voice_id,
            "name": self.name,
            "category": self.category,
            "labels": dict(self.labels),
            "description": self.description or None,
            "available_for_tiers": [],
            "high_quality_base_model_ids": [],
            "is_owner": self.category != "premade",
            "created_at_unix": self.created_at_unix or None,
        }


@dataclass(frozen=True)
class QueryError:
    """A query the vendor refuses with FastAPI's 422: where, and why."""

    loc: list[str]
    msg: str


def search_voices(  # noqa: PLR0911  # one refusal per documented query rule
    voices: Iterable[FakeVoice], query: Mapping[str, str]
) -> dict[str, Any] | QueryError:
    """One page of `GET /v2/voices` (GetVoicesV2ResponseModel), or the query's refusal."""
    try:
        page_size = int(query.get("page_size", str(DEFAULT_PAGE_SIZE)))
        start = int(query.get("next_page_token", "0"))
    except ValueError:
        return QueryError(["query"], "page_size and next_page_token must be integers")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        return QueryError(["query", "page_size"], f"can not exceed {MAX_PAGE_SIZE}")
    if start < 0:
        return QueryError(["query", "next_page_token"], "not a page token")
    voice_type, category = query.get("voice_type"), query.get("category")
    if voice_type is not None and voice_type not in VOICE_TYPES:
        return QueryError(["query", "voice_type"], f"must be one of {', '.join(VOICE_TYPES)}")
    if category is not None and category not in CATEGORIES:
        return QueryError(["query", "category"], f"must be one of {', '.join(CATEGORIES)}")
    sort = query.get("sort", "created_at_unix")
    direction = query.get("sort_direction", "desc")
    if sort not in SORTS or direction not in ("asc", "desc"):
        return QueryError(["query", "sort"], "sort by created_at_unix or name, asc or desc")
    search = query.get("search", "")
    found = [
        v
        for v in voices
        if _of_type(v, voice_type)
        and (category is None or v.category == category)
        and _matches(v, search)
    ]
    found.sort(
        key=lambda v: v.name if sort == "name" else v.created_at_unix,
        reverse=direction == "desc",
    )
    more = start + page_size < len(found)
    return {
        "voices": [v.listed() for v in found[start : start + page_size]],
        "has_more": more,
        "total_count": len(found),
        "next_page_token": str(start + page_size) if more else None,
    }


def parse_labels(serialized: str | None) -> dict[str, str] | None:
    """`labels` as sent to Add Voice: absent, or a JSON object of strings; None otherwise."""
    if serialized is None or not serialized.strip():
        return {}
    try:
        labels = json.loads(serialized)
    except json.JSONDecodeError:
        return None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return None
    return labels


def _of_type(voice: FakeVoice, voice_type: str | None) -> bool:
    """The vendor's `voice_type` filter: `personal` the account's own voices, `default` the
    premade ones, `non-default` all but those; no community or workspace voices here."""
    if voice_type is None:
        return True
    if voice_type == "default":
        return voice.category == "premade"
    if voice_type in ("personal", "non-default"):
        return voice.category != "premade"
    return False


def _matches(voice: FakeVoice, search: str) -> bool:
    """The vendor's `search`: in the name, description, labels and category."""
    if not search:
        return True
    haystack = " ".join([voice.name, voice.description, voice.category, *voice.labels.values()])
    return search.lower() in haystack.lower()
