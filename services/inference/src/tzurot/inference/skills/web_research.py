"""web_research: search the web, read the top results, answer with sources, remember.

The backend finds candidates; the top ones are read in parallel through read_url's
SSRF-safe fetcher (a result that cannot be read, for whatever reason, keeps its search
snippet with a note: one bad page never fails a search that may have been paid for). The model gets
numbered sources to cite. With auto_memorize the findings are stored as one long-term
memory of the asking user with the personality (their own scope, never the shared lore),
tagged `lore_research`, so their next question on the subject is answered from memory
without searching. Not shared: the query comes from one user's conversation, and the pages
it found are anyone's text, so neither may reach another user's prompt. A turn without a
user of its own (a scheduled one reads only the shared memories) remembers nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from tzurot.inference.skills.base import SkillContext, SkillError, SkillOutput
from tzurot.inference.skills.egress import SafeFetcher
from tzurot.inference.skills.extract import Extractor, InlineExtractor
from tzurot.inference.skills.read_url import read_page
from tzurot.inference.skills.search import SearchBackend, SearchHit

EXCERPT_CHARS = 1500
MEMORY_EXCERPT_CHARS = 300
MEMORY_TAG = "lore_research"
MEMORY_CHARS = 3900
"""Memory keeps at most 4000 characters a memory."""

log = structlog.get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebResearchSkill:
    name = "web_research"
    description = (
        "Research a question on the web: searches, reads the top results and returns numbered "
        "sources with excerpts. Use it for facts after your knowledge cutoff or that you are "
        "unsure of, and cite the sources ([1], [2]) with their links in your answer."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "minLength": 2,
                "maxLength": 400,
                "description": "The search query.",
            },
            "max_sources": {
                "type": "integer",
                "minimum": 1,
                "maximum": 5,
                "description": "How many results to read (default 3).",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    stealth = False
    auto_memorize = True
    timeout = 45.0
    min_seconds = 10.0  # a search may be paid (Brave, the user's key)

    def __init__(
        self,
        backend: SearchBackend,
        fetcher: SafeFetcher,
        clock: Callable[[], datetime] = _utc_now,
        pages: Extractor | None = None,
    ) -> None:
        self._backend = backend
        self._fetcher = fetcher
        self._pages = pages or InlineExtractor()
        self._clock = clock

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        query = " ".join(str(args["query"]).split())
        wanted = int(args.get("max_sources", 3))
        hits = await self._backend.search(query, wanted, ctx)
        if not hits:
            raise SkillError(f"no results for {query!r}")
        excerpts = await asyncio.gather(*(self._excerpt(hit) for hit in hits[:wanted]))
        sources = list(zip(hits[:wanted], excerpts, strict=True))
        lines = [f"Web research for {query!r}. Cite what you use as [n] with its link.", ""]
        for n, (hit, excerpt) in enumerate(sources, start=1):
            lines += [f"[{n}] {hit.title}: {hit.url}", excerpt, ""]
        day = self._clock().date().isoformat()
        findings = "; ".join(
            f"{hit.title}: {_sentence(excerpt)} ({hit.url})" for hit, excerpt in sources
        )
        memorize = f"Researched on {day}, {query!r}: {findings}"[:MEMORY_CHARS]
        return SkillOutput(
            text="\n".join(lines).strip(),
            summary=f"{len(sources)} sources: " + ", ".join(hit.url for hit, _ in sources),
            # Only into the asking user's own memories: no user, nothing kept.
            memorize=memorize if ctx.user_id else "",
            memorize_tags=(MEMORY_TAG,),
        )

    async def _excerpt(self, hit: SearchHit) -> str:
        try:
            page = await read_page(self._fetcher, hit.url, self._pages)
        except Exception as exc:  # one bad page must not fail a search that may be paid
            if not isinstance(exc, SkillError):
                log.warning("web_research_page_failed", url=hit.url, error=type(exc).__name__)
            why = str(exc) if isinstance(exc, SkillError) else "it could not be read"
            note = f"(the page was not read: {why})"
            return f"{hit.snippet} {note}" if hit.snippet else note
        return page.text[:EXCERPT_CHARS]


def _sentence(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MEMORY_EXCERPT_CHARS else flat[: MEMORY_EXCERPT_CHARS - 1] + "…"
